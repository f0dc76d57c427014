//! `mailstage-upload target | run | status` as an admin runs them: a batch extracted from
//! one Dovecot and uploaded into another, a dry run first, a resumed run that sends
//! nothing, and the errors an admin meets.

mod cli_support;

use anyhow::Result;
use cli_support::{Cli, contains, index_bytes, text};
use mailstage_tests::Dovecot;
use mailstage_tests::fixtures::{long_line, message_of_size, simple};
use mailstage_tests::upload::{ADMIN, target_dovecot, target_dovecot_with};
use serde_json::Value;
use std::process::Output;

const T0: u64 = 1_695_000_000;
const SECRET_VAR: &str = "MAILSTAGE_TEST_TARGET_PASSWORD";

/// A source with alice's INBOX, Sent and a `Files` folder, extracted as batch `b1`.
fn extracted(cli: &Cli) -> Result<Dovecot> {
    let d = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..3 {
        d.write_message_at("alice", "INBOX", &["\\Seen"], T0 + i, &simple(i))?;
    }
    d.write_message_at("alice", "Sent", &[], T0 + 10, &simple(10))?;
    d.create_folder("alice", "Files")?;
    d.write_message_at("alice", "Files", &[], T0 + 11, &simple(11))?;
    cli.endpoint_on("src", d.port());
    cli.batch("b1", "src", &["alice@contoso.edu,alice,alice-pw"]);
    cli.ok(&["batch", "start", "b1", "--quiet"]);
    Ok(d)
}

/// `target new --name dst --kind imap` for the Dovecot listening on `port`, logging in as
/// `mailbox*admin` with the password from [`SECRET_VAR`].
fn new_imap_target(cli: &Cli, port: u16) {
    new_imap_target_with(cli, port, &["--security", "none"]);
}

/// [`new_imap_target`] with other `--security` and TLS arguments.
fn new_imap_target_with(cli: &Cli, port: u16, tls: &[&str]) {
    let port = port.to_string();
    let args = [
        &["target", "new", "--name", "dst", "--kind", "imap"][..],
        &["--server", "localhost", "--port", &port],
        &["--admin-user", ADMIN.0, "--password-env", SECRET_VAR],
        tls,
    ];
    let created = cli.upload(&args.concat(), &[]);
    assert_eq!(created.status.code(), Some(0), "{}", text(&created));
}

/// `mailstage-upload run --batch b1 --target TARGET ARGS…`.
fn upload_run(cli: &Cli, target: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec!["run", "--batch", "b1", "--target", target];
    all.extend_from_slice(args);
    cli.upload(&all, env)
}

fn status(cli: &Cli) -> Value {
    let out = cli.upload(
        &["status", "--batch", "b1", "--target", "dst", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("JSON status")
}

#[test]
fn dry_run_then_run_then_a_run_that_sends_nothing() -> Result<()> {
    let cli = Cli::new();
    let _source = extracted(&cli)?;
    let target = target_dovecot(&["alice@contoso.edu"])?;
    new_imap_target(&cli, target.port());
    let shown = text(&cli.upload(&["target", "show", "dst"], &[]));
    assert!(
        shown.contains(&format!("environment variable {SECRET_VAR}")),
        "{shown}"
    );
    assert_eq!(status(&cli)[0]["pending"], 5);

    let env = [(SECRET_VAR, ADMIN.1)];
    let dry = upload_run(&cli, "dst", &["--dry-run", "--quiet"], &env);
    let shown = text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{shown}");
    assert!(shown.contains("would upload 5 message(s)"), "{shown}");
    assert!(
        shown.contains("Files -> Files") && shown.contains("Sent -> Sent"),
        "{shown}"
    );
    assert_eq!(status(&cli)[0]["pending"], 5, "a dry run sends nothing");

    let run = upload_run(&cli, "dst", &["--exclude", "Files"], &env);
    let shown = text(&run);
    assert_eq!(run.status.code(), Some(0), "{shown}");
    assert!(shown.contains("alice@contoso.edu: 4 uploaded"), "{shown}");
    assert!(
        shown.contains("Files -> (left out)  [excluded by --exclude \"Files\"]"),
        "{shown}"
    );
    let s = &status(&cli)[0];
    assert_eq!(
        (
            s["done"].as_u64(),
            s["pending"].as_u64(),
            s["excluded"].as_u64(),
            s["state"].as_str()
        ),
        (Some(4), Some(0), Some(1), Some("Uploaded")),
        "{s}"
    );

    let run = upload_run(&cli, "dst", &["--quiet"], &env);
    let shown = text(&run);
    assert_eq!(run.status.code(), Some(0), "{shown}");
    assert!(shown.contains("alice@contoso.edu: 1 uploaded"), "{shown}");
    let run = upload_run(&cli, "dst", &["--quiet"], &env);
    assert!(
        text(&run).contains("alice@contoso.edu: 0 uploaded"),
        "{}",
        text(&run)
    );
    let table = text(&cli.upload(&["status", "--batch", "b1", "--target", "dst"], &[]));
    assert!(
        table.contains("MAILBOX") && table.contains("Uploaded"),
        "{table}"
    );

    let mut p = target.connect()?;
    p.login(&format!("alice@contoso.edu*{}", ADMIN.0), ADMIN.1)?
        .ok()?;
    for (folder, n) in [("INBOX", 3), ("Sent", 1), ("Files", 1)] {
        p.examine(folder)?;
        assert_eq!(p.uids()?.len(), n, "{folder}");
    }
    assert!(
        !contains(&index_bytes(&cli.stage()), ADMIN.1),
        "the password reached the index"
    );
    Ok(())
}

#[test]
fn errors_name_the_cause() -> Result<()> {
    let cli = Cli::new();
    let _source = extracted(&cli)?;
    let args = [
        "target",
        "new",
        "--name",
        "dst",
        "--kind",
        "imap",
        "--server",
        "127.0.0.1",
        "--port",
        "9",
        "--security",
        "none",
        "--password-env",
        SECRET_VAR,
    ];
    assert_eq!(cli.upload(&args, &[]).status.code(), Some(0));
    let again = text(&cli.upload(&args, &[]));
    assert!(again.contains("already exists"), "{again}");
    let no_secret = text(&cli.upload(
        &[
            "target", "new", "--name", "x", "--kind", "imap", "--server", "h",
        ],
        &[],
    ));
    assert!(
        no_secret.contains("--password-env VAR or --password-file FILE"),
        "{no_secret}"
    );

    let run = upload_run(&cli, "dst", &["--quiet"], &[]);
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run).contains(SECRET_VAR), "{}", text(&run));

    // Nothing listens on port 9: the run stops at once, naming the target and the address.
    let started = std::time::Instant::now();
    let run = upload_run(&cli, "dst", &["--quiet"], &[(SECRET_VAR, "x")]);
    let shown = text(&run);
    assert_eq!(run.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("cannot reach the target \"dst\" at 127.0.0.1:9"),
        "{shown}"
    );
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());

    let unknown = text(&upload_run(&cli, "nope", &[], &[]));
    assert!(unknown.contains("no target named \"nope\""), "{unknown}");
    let users = text(&upload_run(
        &cli,
        "dst",
        &["--users", "eve@x.test"],
        &[(SECRET_VAR, "x")],
    ));
    assert!(
        users.contains("eve@x.test is not a mailbox of batch"),
        "{users}"
    );
    let refused = text(&cli.upload(&["target", "remove", "dst"], &[]));
    assert!(
        refused.contains("removed"),
        "no uploads recorded yet: {refused}"
    );
    Ok(())
}

#[test]
fn target_user_name_picks_the_target_mailbox_and_status_shows_the_rate() -> Result<()> {
    let cli = Cli::new();
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..4 {
        source.write_message_at("alice", "INBOX", &[], T0 + i, &simple(i))?;
    }
    cli.endpoint_on("src", source.port());
    cli.batch_with_header(
        "b1",
        "src",
        "EmailAddress,UserName,Password,TargetUserName",
        &["alice@contoso.edu,alice,alice-pw,alice.smith@fabrikam.example"],
    );
    cli.ok(&["batch", "start", "b1", "--quiet"]);
    // Only the renamed mailbox exists on the target: a login as the EmailAddress would fail.
    let target = target_dovecot(&["alice.smith@fabrikam.example"])?;
    new_imap_target(&cli, target.port());
    let env = [(SECRET_VAR, ADMIN.1)];

    let run = upload_run(&cli, "dst", &["--quiet"], &env);
    let shown = text(&run);
    assert_eq!(run.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("alice@contoso.edu -> alice.smith@fabrikam.example: 4 uploaded"),
        "{shown}"
    );
    let mut p = target.connect()?;
    p.login(
        &format!("alice.smith@fabrikam.example*{}", ADMIN.0),
        ADMIN.1,
    )?
    .ok()?;
    p.examine("INBOX")?;
    assert_eq!(p.uids()?.len(), 4);

    // No --target: the batch went to one target only.
    let out = cli.upload(&["status", "--batch", "b1", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s: Value = serde_json::from_slice(&out.stdout)?;
    let s = &s[0];
    assert_eq!(s["target_mailbox"], "alice.smith@fabrikam.example", "{s}");
    assert_eq!(
        (s["run_messages"].as_u64(), s["done"].as_u64()),
        (Some(4), Some(4)),
        "{s}"
    );
    assert!(s["run_bytes"].as_u64() > Some(0), "{s}");
    assert!(s["run_started_at"].is_string(), "{s}");
    assert!(s["run_ms"].as_u64() > Some(0), "{s}");
    let table = text(&cli.upload(&["status", "--batch", "b1"], &[]));
    assert!(table.contains("LAST RUN"), "{table}");
    assert!(
        table.contains("alice@contoso.edu -> alice.smith@fabrikam.example"),
        "{table}"
    );
    // A second run confirms nothing new, and its own counts start from zero.
    let again = upload_run(&cli, "dst", &["--quiet"], &env);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(status(&cli)[0]["run_messages"], 0);

    // The CSV changes the target mailbox's case only: the same mailbox, nothing to send.
    let retarget = |target: &str| {
        let row = format!("alice@contoso.edu,alice,alice-pw,{target}");
        // batch b1's CSV is the file b1.csv: rewrite it and sync, which re-reads it.
        cli.write(
            "b1.csv",
            &format!("EmailAddress,UserName,Password,TargetUserName\n{row}\n"),
        );
        cli.ok(&["batch", "sync", "b1", "--quiet"]);
    };
    retarget("Alice.Smith@Fabrikam.example");
    let same = upload_run(&cli, "dst", &["--quiet"], &env);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    assert!(text(&same).contains(": 0 uploaded"), "{}", text(&same));
    // Another mailbox: refused, naming both, rather than split over two mailboxes.
    retarget("alice.jones@fabrikam.example");
    let moved = upload_run(&cli, "dst", &["--quiet"], &env);
    let shown = text(&moved);
    assert_eq!(moved.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(
            "went to alice.smith@fabrikam.example on this target, but the batch now \
             names alice.jones@fabrikam.example"
        ),
        "{shown}"
    );
    Ok(())
}

/// The limit the target of [`dry_run_predicts_what_is_over_the_targets_appendlimit`]
/// announces.
const APPENDLIMIT: usize = 200_000;

#[test]
fn dry_run_predicts_what_is_over_the_targets_appendlimit() -> Result<()> {
    let cli = Cli::new();
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    let inbox: [&[u8]; 4] = [
        &simple(0),
        &message_of_size(APPENDLIMIT - 1, 1),
        &message_of_size(APPENDLIMIT, 2),
        &message_of_size(APPENDLIMIT + 1, 3),
    ];
    for (i, m) in (0..).zip(inbox) {
        source.write_message_at("alice", "INBOX", &[], T0 + i, m)?;
    }
    source.create_folder("alice", "Projects")?;
    source.write_message_at("alice", "Projects", &[], T0 + 10, &long_line(20_000))?;
    source.write_message_at(
        "alice",
        "Projects",
        &[],
        T0 + 11,
        &message_of_size(300_000, 4),
    )?;
    cli.endpoint_on("src", source.port());
    cli.batch("b1", "src", &["alice@contoso.edu,alice,alice-pw"]);
    cli.ok(&["batch", "start", "b1", "--quiet"]);
    let limit = format!("imap_capability = +APPENDLIMIT={APPENDLIMIT}");
    let target = target_dovecot_with(&["alice@contoso.edu"], &[&limit])?;
    new_imap_target(&cli, target.port());
    let env = [(SECRET_VAR, ADMIN.1)];

    let dry = upload_run(&cli, "dst", &["--dry-run", "--quiet"], &env);
    let shown = text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{shown}");
    assert!(shown.contains("would upload 6 message(s)"), "{shown}");
    assert!(
        shown.contains("size limit: 200000 bytes (195.3 KiB, the target's APPENDLIMIT)"),
        "{shown}"
    );
    assert!(
        shown.contains("predicted skips: 2 over the size limit\n"),
        "not an Exchange target: long lines are not looked for\n{shown}"
    );
    assert!(
        shown.contains(
            "skip INBOX UID 4 -> INBOX (200001 bytes, 195.3 KiB): over the size limit of 200000 bytes"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("skip Projects UID 2 -> Projects (300000 bytes, 293.0 KiB)"),
        "{shown}"
    );
    assert_eq!(shown.matches("    skip ").count(), 2, "{shown}");

    let dry = upload_run(&cli, "dst", &["--dry-run", "--quiet", "--json"], &env);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let json: Value = serde_json::from_slice(&dry.stdout)?;
    let o = &json[0];
    assert_eq!(o["counts"]["predicted_refusals"], 2, "{o}");
    assert_eq!(o["counts"]["refused_before"], 0, "{o}");
    assert_eq!(o["size_limit"]["bytes"], APPENDLIMIT, "{o}");
    assert_eq!(o["size_limit"]["source"], "appendlimit", "{o}");
    let skips: Vec<(&str, u64, u64, &str)> = o["predicted_skips"]
        .as_array()
        .expect("predicted_skips is a list")
        .iter()
        .map(|s| {
            (
                s["folder"].as_str().unwrap_or_default(),
                s["uid"].as_u64().unwrap_or_default(),
                s["size"].as_u64().unwrap_or_default(),
                s["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        skips,
        [
            ("INBOX", 4, APPENDLIMIT as u64 + 1, "over_size_limit"),
            ("Projects", 2, 300_000, "over_size_limit")
        ]
    );

    // Nothing was created or sent, and the index still has everything pending.
    assert_eq!(status(&cli)[0]["pending"], 6, "a dry run sends nothing");
    let mut p = target.connect()?;
    p.login(&format!("alice@contoso.edu*{}", ADMIN.0), ADMIN.1)?
        .ok()?;
    let names: Vec<String> = p.list()?.into_iter().map(|l| l.name).collect();
    assert!(!names.iter().any(|n| n == "Projects"), "{names:?}");
    p.examine("INBOX")?;
    assert!(p.uids()?.is_empty(), "a dry run appended to INBOX");
    Ok(())
}

#[test]
fn a_target_keeps_its_private_ca_for_every_run() -> Result<()> {
    let cli = Cli::new();
    let _source = extracted(&cli)?;
    let target = Dovecot::builder()
        .tls(true)
        .master_user(ADMIN.0, ADMIN.1)
        .user("alice@contoso.edu", "pw")
        .start()?;
    let ca = target
        .ca_pem_path()
        .expect("TLS is on")
        .display()
        .to_string();
    let tls_port = target.tls_port().expect("TLS is on");
    new_imap_target_with(&cli, tls_port, &["--security", "ssl", "--ca-file", &ca]);
    let shown = text(&cli.upload(&["target", "show", "dst"], &[]));
    assert!(
        shown.contains("TrustedCaFile") && shown.contains(&ca),
        "{shown}"
    );
    let run = upload_run(&cli, "dst", &["--quiet"], &[(SECRET_VAR, ADMIN.1)]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert!(
        text(&run).contains("alice@contoso.edu: 5 uploaded"),
        "{}",
        text(&run)
    );
    Ok(())
}
