//! `batch start` against servers that misbehave: a scripted hostile server for what no real
//! server does on demand, a real TLS Dovecot reached with `--security none`. For each: no
//! crash, no panic, no hang, bounded memory, an outcome that names the mailbox and the
//! cause, and exit 0 only when the mail was staged.

mod cli_support;

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Result;
use cli_support::Cli;
use mailstage_tests::Dovecot;
use mailstage_tests::hostile_server::{HostileServer, Hostility, Mail};

const ALICE: &str = "alice@contoso.edu";
/// Longer than any scenario may take; past it the run is killed and the test fails.
const HANG: Duration = Duration::from_secs(90);
/// Peak resident memory any scenario may reach (a debug build idles near 15 MiB).
const MAX_PEAK_KIB: u64 = 96 << 10;

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    text: String,
    took: Duration,
    peak_kib: u64,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}, peak {} KiB\n{}",
            self.code, self.took, self.peak_kib, self.text
        )
    }
}

impl Run {
    /// Asserts what every scenario must show: no panic, no crash, bounded time and memory.
    fn sane(self, within: Duration) -> Self {
        eprintln!("{self}");
        assert!(
            !self.text.contains("panicked") && !self.text.contains("internal error"),
            "{self}"
        );
        assert!(matches!(self.code, Some(0..=2)), "crashed: {self}");
        assert!(self.took < within, "took too long: {self}");
        assert!(self.peak_kib < MAX_PEAK_KIB, "memory: {self}");
        self
    }
}

/// Runs `mailstage-extract ARGS…`, watching its peak memory (VmHWM) until it exits.
fn extract(cli: &Cli, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut cmd = cli.command(args);
    cmd.stdout(Stdio::from(File::create(&out).expect("out file")))
        .stderr(Stdio::from(File::create(&err).expect("err file")));
    let started = Instant::now();
    let mut child = cmd.spawn().expect("mailstage-extract starts");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            let hwm = s.lines().find_map(|l| l.strip_prefix("VmHWM:"));
            if let Some(kib) = hwm.and_then(|v| v.trim().trim_end_matches(" kB").parse().ok()) {
                peak_kib = peak_kib.max(kib);
            }
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hung: mailstage-extract {args:?} ran for {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read =
        |p: &std::path::Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    Run {
        code: status.code(),
        text: format!("{}{}", read(&out), read(&err)),
        took: started.elapsed(),
        peak_kib,
    }
}

/// A stage with batch `b` of one mailbox on the server at `port`.
fn batch_on(port: u16) -> Cli {
    let cli = Cli::new();
    cli.endpoint_on("src", port);
    cli.batch("b", "src", &[&format!("{ALICE},alice,alice-pw")]);
    cli
}

fn two_mails() -> Vec<Mail> {
    vec![
        Mail::new(1, b"Subject: one\r\nMessage-ID: <1@x>\r\n\r\nfirst\r\n"),
        Mail::new(2, b"Subject: two\r\nMessage-ID: <2@x>\r\n\r\nsecond\r\n"),
    ]
}

/// A pass that must stage everything: exit 0, the count in the outcome, a clean stage.
fn staged(server: &HostileServer, n: usize) -> Cli {
    let cli = batch_on(server.port());
    let run = extract(&cli, &["batch", "start", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.text.contains(&format!("{ALICE}: {n} staged")), "{run}");
    assert!(run.text.contains("batch \"b\": Synced"), "{run}");
    assert!(cli.ok(&["verify"]).contains("result: clean"));
    cli
}

/// A pass that must fail the mailbox fast, permanently (no reconnects), naming the cause.
fn fails_fast(server: &HostileServer, cause: &str) -> Run {
    let cli = batch_on(server.port());
    let run = extract(&cli, &["batch", "start", "b", "--quiet"]).sane(Duration::from_secs(20));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.text.contains(&format!("{ALICE}: 0 staged")) && run.text.contains("FAILED"),
        "{run}"
    );
    assert!(run.text.contains(cause), "{run}");
    // The reachability check, then one attempt: nothing to retry.
    assert_eq!(server.connections(), 2, "{run}");
    let status = cli.ok(&["batch", "status", "b", "--users"]);
    assert!(
        status.contains("Failed") && !status.contains("Syncing"),
        "{status}"
    );
    run
}

#[test]
fn the_scripted_server_behaving_is_staged() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::None)?;
    staged(&server, 2);
    Ok(())
}

/// A folder recreated (a new UIDVALIDITY) between the pass listing its messages and opening
/// it for their bodies: nothing is fetched by the listed UIDs, which may name other messages
/// now; the attempt stops and the next one reads the folder again under the new UIDVALIDITY.
#[test]
fn a_folder_recreated_between_listing_and_bodies_is_read_again() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::RecreatedAfterFirstExamine)?;
    let cli = staged(&server, 2);
    // The reachability check, the attempt the change stopped, the one that staged.
    assert_eq!(server.connections(), 3);
    let status = cli.ok(&["batch", "status", "b", "--users"]);
    assert!(status.contains("Synced"), "{status}");
    Ok(())
}

#[test]
fn fetches_nested_thousands_deep_stage_without_overflowing_the_stack() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::DeepFetch(20_000))?;
    staged(&server, 2);
    Ok(())
}

#[test]
fn internaldates_with_non_ascii_zones_and_out_of_range_fields_are_kept_raw() -> Result<()> {
    let dates = [
        "17-Jul-1996 02:44:25 +1é2",
        "99-Jul-1996 25:61:61 +9999",
        "31-Feb-2024 00:00:00 +0000",
        "17-Jül-1996 02:44:25 -0700",
        "é",
    ];
    let mails = dates
        .iter()
        .zip(1..)
        .map(|(d, uid)| Mail::dated(uid, d, format!("Subject: {uid}\r\n\r\nx\r\n").as_bytes()))
        .collect();
    let server = HostileServer::start(mails, Hostility::None)?;
    let cli = staged(&server, dates.len());
    let status = cli.ok(&["batch", "status", "b", "--users"]);
    assert!(
        status.contains("Synced") && !status.contains("Syncing"),
        "{status}"
    );
    Ok(())
}

#[test]
fn a_megabyte_of_garbage_after_list_then_silence_fails_fast_saying_what_arrived() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::GarbageAfterList(1 << 20))?;
    let run = fails_fast(&server, "does not speak IMAP");
    assert!(
        run.text.contains("listing folders") && run.text.contains("--security ssl"),
        "{run}"
    );
    assert!(run.text.contains(r"\x"), "the garbage shown escaped: {run}");
    Ok(())
}

#[test]
fn an_endless_stream_of_fetch_responses_is_cut() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::FetchFlood)?;
    let run = fails_fast(&server, "untagged responses to one command");
    assert!(
        run.text.contains("listing new messages of \"INBOX\""),
        "{run}"
    );
    Ok(())
}

#[test]
fn a_never_ending_line_is_cut_at_the_line_limit() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::EndlessLine)?;
    let run = fails_fast(&server, "response line longer than");
    assert!(
        run.text.contains(r#"starting \"* LIST"#) || run.text.contains("* LIST"),
        "{run}"
    );
    Ok(())
}

#[test]
fn many_body_literals_in_one_fetch_stage_each_message_once() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::ManyLiterals(2_000))?;
    let cli = staged(&server, 2);
    let json = cli.json(&["batch", "status", "b", "--users"]);
    assert!(json.to_string().contains("\"Synced\""), "{json}");
    Ok(())
}

#[test]
fn uid_4294967295_is_staged_and_the_next_pass_finds_nothing_new() -> Result<()> {
    let mails = vec![
        Mail::new(7, b"Subject: low\r\n\r\nx\r\n"),
        Mail::new(u32::MAX, b"Subject: last\r\n\r\ny\r\n"),
    ];
    let server = HostileServer::start(mails, Hostility::None)?;
    let cli = staged(&server, 2);
    let run = extract(&cli, &["batch", "sync", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.text.contains(&format!("{ALICE}: 0 staged")), "{run}");
    assert!(run.text.contains("batch \"b\": Synced"), "{run}");
    Ok(())
}

#[test]
fn an_endless_stream_of_untagged_exists_is_cut() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::ExistsFlood)?;
    let run = fails_fast(&server, "untagged responses to one command");
    assert!(run.text.contains("EXAMINE"), "{run}");
    Ok(())
}

/// `batch start` on an endpoint that is not IMAP: exit 1 before any mailbox, with the hint.
fn not_imap(port: u16, said: &str) -> Run {
    let cli = batch_on(port);
    let run = extract(&cli, &["batch", "start", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.text.contains("cannot reach the source server"), "{run}");
    assert!(run.text.contains(said), "{run}");
    assert!(run.text.contains("--security"), "the hint: {run}");
    run
}

#[test]
fn security_none_at_a_tls_port_fails_fast_with_the_hint() -> Result<()> {
    let d = Dovecot::builder()
        .tls(true)
        .user("alice", "alice-pw")
        .start()?;
    let port = d.tls_port().expect("TLS is on");
    // test-server says the same, meanwhile.
    let args = ["test-server", "--server", "127.0.0.1", "--security", "none"];
    let probe = Cli::new()
        .command(&[&args[..], &["--port", &port.to_string()]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let run = not_imap(port, "no greeting within");
    assert!(run.text.contains("TLS port"), "{run}");
    let out = probe.wait_with_output()?;
    let shown = cli_support::text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("FAILED [protocol]")
            && shown.contains("no greeting within 15s")
            && shown.contains("--security"),
        "{shown}"
    );
    Ok(())
}

#[test]
fn a_service_that_is_not_imap_fails_fast_with_the_hint() -> Result<()> {
    // One that speaks first (SSH): its banner is shown.
    let ssh = HostileServer::start(
        vec![],
        Hostility::Banner(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
    )?;
    let run = not_imap(ssh.port(), "not an IMAP greeting");
    assert!(run.text.contains(r"SSH-2.0-OpenSSH_9.6\r\n"), "{run}");
    assert!(run.took < Duration::from_secs(5), "{run}");
    // One that waits for the client (HTTP): no greeting comes.
    let http = HostileServer::start(vec![], Hostility::Silent)?;
    not_imap(http.port(), "no greeting within");
    Ok(())
}

/// A server that refuses a whole body fetch for one damaged message (`NO [SERVERBUG]`, no
/// data for the others) costs that message only: the rest is asked for in smaller parts and
/// staged on the same connection, the damaged one recorded failed with the server's words.
#[test]
fn a_message_the_server_refuses_to_send_fails_alone_and_the_rest_is_staged() -> Result<()> {
    let mails = (1..=30)
        .map(|uid| {
            Mail::new(
                uid,
                format!("Subject: {uid}\r\n\r\nbody {uid}\r\n").as_bytes(),
            )
        })
        .collect();
    let server = HostileServer::start(mails, Hostility::UnreadableBody(7))?;
    let cli = batch_on(server.port());
    let run = extract(&cli, &["batch", "start", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert!(run.text.contains(&format!("{ALICE}: 29 staged")), "{run}");
    assert!(run.text.contains("1 failed"), "{run}");
    // The reachability check and one attempt: no reconnect for a refusal.
    assert_eq!(server.connections(), 2, "{run}");
    // The report lists it as needing attention (exit status 2), in the server's words.
    let out = cli.run(&["batch", "report", "b", "--format", "csv"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{report}");
    assert!(
        report.contains("alice@contoso.edu,INBOX,7,")
            && report.contains("refused to send it")
            && report.contains("SERVERBUG"),
        "{report}"
    );
    assert!(cli.ok(&["verify"]).contains("result: clean"));
    Ok(())
}

#[path = "extract_hostile/answers.rs"]
mod answers;
