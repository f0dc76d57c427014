//! `batch start` / `batch sync` as an admin runs them, against a real Dovecot.

mod cli_support;

use std::time::{Duration, Instant};

use anyhow::Result;
use cli_support::{Cli, text};
use mailstage_tests::Dovecot;
use mailstage_tests::fault_proxy::{FaultProxy, Faults};
use mailstage_tests::fixtures::simple;

const T0: u64 = 1_695_000_000;

#[test]
fn autostart_then_sync_then_a_mailbox_that_cannot_log_in() -> Result<()> {
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .master_user("mailadmin", "master-pw")
        .start()?;
    d.write_message_at("alice", "INBOX", &[], T0, &simple(1))?;
    d.write_message_at("alice", "INBOX", &[], T0 + 1, &simple(2))?;
    d.write_message_at("bob", "INBOX", &[], T0 + 2, &simple(3))?;
    let cli = Cli::new();
    cli.endpoint_on("src", d.port());
    let csv = cli.write(
        "users.csv",
        "EmailAddress,UserName,Password\nalice@contoso.edu,alice,alice-pw\nbob@contoso.edu,bob*mailadmin,master-pw\n",
    );
    let csv = csv.to_str().expect("UTF-8 path");
    let out = cli.run(&[
        "batch",
        "new",
        "--name",
        "b1",
        "--endpoint",
        "src",
        "--csv",
        csv,
        "--autostart",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("alice@contoso.edu: 2 staged")
            && shown.contains("bob@contoso.edu: 1 staged"),
        "{shown}"
    );
    assert!(shown.contains("batch \"b1\": Synced"), "{shown}");

    d.write_message_at("alice", "INBOX", &[], T0 + 3, &simple(4))?;
    let out = cli.run(&["batch", "sync", "b1", "--quiet"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("alice@contoso.edu: 1 staged")
            && shown.contains("bob@contoso.edu: 0 staged"),
        "{shown}"
    );
    let verified = cli.ok(&["verify"]);
    assert!(verified.contains("result: clean"), "{verified}");

    let wrong = cli.write(
        "wrong.csv",
        "EmailAddress,UserName,Password\nalice@contoso.edu,alice,alice-pw\nbob@contoso.edu,bob*mailadmin,not-the-master-pw\n",
    );
    let out = cli.run(&[
        "batch",
        "sync",
        "b1",
        "--csv",
        wrong.to_str().expect("UTF-8 path"),
        "--quiet",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "done with errors: {shown}");
    assert!(
        shown.contains("bob@contoso.edu: 0 staged")
            && shown.contains("FAILED: logging in as bob*mailadmin"),
        "{shown}"
    );
    assert!(
        shown.contains("AUTHENTICATIONFAILED") && !shown.contains("not-the-master-pw"),
        "{shown}"
    );
    assert!(shown.contains("batch \"b1\": SyncedWithErrors"), "{shown}");
    let status = cli.ok(&["batch", "status", "b1", "--users"]);
    assert!(
        status.contains("SyncedWithErrors") && status.contains("Failed"),
        "{status}"
    );
    Ok(())
}

#[test]
fn an_unreachable_server_fails_fast_and_a_csv_must_match_its_batch() -> Result<()> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cli = Cli::new();
    cli.endpoint_on("src", closed);
    cli.batch("b1", "src", &["alice@contoso.edu,alice,alice-pw"]);
    let started = Instant::now();
    let err = cli.fails(&["batch", "start", "b1", "--quiet"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("cannot reach the source server") && err.contains("check the port"),
        "{err}"
    );
    let status = cli.ok(&["batch", "status", "b1"]);
    assert!(status.contains("Failed"), "{status}");

    let more = cli.write(
        "more.csv",
        "EmailAddress,UserName,Password\nalice@contoso.edu,alice,a\ncarol@contoso.edu,carol,c\n",
    );
    let err = cli.fails(&[
        "batch",
        "start",
        "b1",
        "--csv",
        more.to_str().expect("UTF-8 path"),
    ]);
    assert!(
        err.contains("not in batch \"b1\": carol@contoso.edu"),
        "{err}"
    );
    let other = cli.write(
        "other.csv",
        "EmailAddress,UserName,Password\ndave@contoso.edu,dave,d\n",
    );
    let err = cli.fails(&[
        "batch",
        "start",
        "b1",
        "--csv",
        other.to_str().expect("UTF-8 path"),
    ]);
    assert!(err.contains("not in batch"), "{err}");
    Ok(())
}

/// The reachability check runs beside the pass, on the first connection: here a balancer
/// holds that one without a greeting and then drops it, while the mailboxes' connections go
/// through to a Dovecot behind a slow link. The pass is stopped part-way (mid-body: the
/// next run continues from partial bodies) with the check's diagnosis,
/// and the index says so truthfully: no mailbox left `Syncing`, the batch `Failed`, the stage
/// verified; the next run completes.
#[test]
fn a_failed_check_stops_a_started_pass_and_leaves_a_truthful_index() -> Result<()> {
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .start()?;
    let folders = ["INBOX", "F1", "F2", "F3"];
    for (user, seed) in [("alice", 5), ("bob", 6)] {
        d.write_sized(user, &folders, &[20_000; 80], seed)?;
    }
    // Each mailbox's 1.6 MB take 1.6 s at 1 MB/s; the check's connection is dropped after
    // 0.6 s without a greeting.
    let proxy = FaultProxy::start(
        d.port(),
        Faults {
            down_limit: Some(0),
            stall: Some(Duration::from_millis(600)),
            first_only: true,
            rate: Some(1_000_000),
            ..Faults::rtt(Duration::from_millis(20))
        },
    )?;
    let cli = Cli::new();
    cli.endpoint_on("src", proxy.port());
    let rows = [
        "alice@contoso.edu,alice,alice-pw",
        "bob@contoso.edu,bob,bob-pw",
    ];
    cli.batch("b", "src", &rows);
    let err = cli.fails(&["batch", "start", "b", "--quiet"]);
    assert!(
        err.contains("cannot reach the source server") && err.contains("hint:"),
        "{err}"
    );
    assert!(proxy.connections() >= 3, "the mailboxes had connected");
    let status = cli.json(&["batch", "status", "b", "--users"]);
    assert_eq!(status["batch"]["state"], "Failed", "{status}");
    for m in status["mailboxes"].as_array().expect("mailboxes") {
        assert_eq!(m["state"], "Failed", "{status}");
        let why = m["last_error"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("the pass stopped: cannot reach"),
            "{status}"
        );
    }
    let verified = cli.ok(&["verify"]);
    assert!(verified.contains("result: clean"), "{verified}");

    // The balancer lets every later connection through.
    let done = cli.ok(&["batch", "start", "b", "--quiet"]);
    eprintln!("{done}");
    assert!(done.contains("batch \"b\": Synced"), "{done}");
    let again = cli.ok(&["batch", "sync", "b", "--quiet"]);
    assert!(
        again.contains("alice@contoso.edu: 0 staged")
            && again.contains("bob@contoso.edu: 0 staged"),
        "{again}"
    );
    let status = cli.json(&["batch", "status", "b", "--users"]);
    assert_eq!(status["totals"]["staged"], 160, "{status}");
    assert!(cli.ok(&["verify"]).contains("result: clean"));
    Ok(())
}

#[test]
fn an_endpoint_keeps_its_private_ca_for_every_pass() -> Result<()> {
    let d = Dovecot::builder()
        .tls(true)
        .user("alice", "alice-pw")
        .start()?;
    d.write_message_at("alice", "INBOX", &[], 1_690_000_000, &simple(1))?;
    let ca = d.ca_pem_path().expect("TLS is on").display().to_string();
    let tls_port = d.tls_port().expect("TLS is on").to_string();
    let cli = Cli::new();
    let endpoint = |name: &str, extra: &[&str]| {
        let args = [
            &["endpoint", "new", "--name", name, "--server", "localhost"][..],
            &["--port", &tls_port, "--security", "ssl"],
            extra,
        ];
        cli.ok(&args.concat())
    };
    endpoint("trusted", &["--ca-file", &ca]);
    endpoint("plain", &[]);
    let shown = cli.ok(&["endpoint", "show", "trusted"]);
    assert!(
        shown.contains("TrustedCaFile") && shown.contains(&ca),
        "{shown}"
    );
    assert!(
        shown.contains("CertificateCheck") && shown.contains("on"),
        "{shown}"
    );

    // No --ca-file on the run: the endpoint's is used, for the first pass and the next.
    cli.batch("b1", "trusted", &["alice@contoso.edu,alice,alice-pw"]);
    let first = cli.ok(&["batch", "start", "b1", "--quiet"]);
    assert!(first.contains("1 staged"), "{first}");
    cli.ok(&["batch", "sync", "b1", "--quiet"]);
    // An endpoint without it refuses the private CA's certificate and says what to do.
    cli.batch("b2", "plain", &["alice@contoso.edu,alice,alice-pw"]);
    let refused = cli.fails(&["batch", "start", "b2", "--quiet"]);
    assert!(refused.contains("--ca-file"), "{refused}");
    let missing = text(&cli.run(&[
        "endpoint",
        "new",
        "--name",
        "x",
        "--server",
        "localhost",
        "--security",
        "ssl",
        "--ca-file",
        "/nonexistent/ca.pem",
    ]));
    assert!(
        missing.contains("--ca-file /nonexistent/ca.pem: cannot read it"),
        "{missing}"
    );
    Ok(())
}
