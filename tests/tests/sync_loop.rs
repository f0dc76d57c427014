//! `batch sync B --every X` as an admin leaves it running: the source goes down for several
//! cycles and comes back; the loop keeps going, records the failed cycles, stages the mail
//! that arrived meanwhile, refuses a second loop on the same batch and ends cleanly on SIGTERM.

mod cli_support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use cli_support::{Cli, text};
use mailstage_tests::Dovecot;
use mailstage_tests::fixtures::simple;

const T0: u64 = 1_695_000_000;

/// Staged messages in the stage at `stage` (read while the loop runs: WAL allows it).
fn staged(stage: &Path) -> Result<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        stage.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    Ok(conn.query_row(
        "SELECT count(*) FROM messages WHERE state = 'staged'",
        [],
        |r| r.get(0),
    )?)
}

/// Events of `kind` so far.
fn events(stage: &Path, kind: &str) -> Result<Vec<String>> {
    let conn = rusqlite::Connection::open_with_flags(
        stage.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut stmt = conn.prepare("SELECT detail FROM events WHERE kind = ?1 ORDER BY id")?;
    let rows = stmt.query_map([kind], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
fn wait_for(limit: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().unwrap_or(false) {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

#[test]
fn the_sync_loop_rides_out_an_outage_and_stages_what_arrived_during_it() -> Result<()> {
    let mut d = Dovecot::builder().user("olga", "olga-pw").start()?;
    for i in 0..3 {
        d.write_message_at("olga", "INBOX", &[], T0 + i, &simple(i))?;
    }
    let cli = Cli::new();
    cli.endpoint_on("src", d.port());
    cli.batch("b1", "src", &["olga@contoso.edu,olga,olga-pw"]);
    let stage = cli.stage();
    let log = tempfile::NamedTempFile::new()?;
    // One open file for both streams, so they share its offset.
    let file = log.reopen()?;
    let mut sync = cli
        .command(&["batch", "sync", "b1", "--every", "2s", "--quiet"])
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .spawn()?;
    let shown = || std::fs::read_to_string(log.path()).unwrap_or_default();

    ensure!(
        wait_for(Duration::from_secs(30), || Ok(staged(&stage)? == 3))?,
        "the first cycle stages 3 messages:\n{}",
        shown()
    );
    let second = cli.run(&["batch", "sync", "b1", "--every", "1m"]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let refused = text(&second);
    assert!(
        refused.contains(
            "batch \"b1\" is already synced on a schedule by another `batch sync --every` (pid"
        ) && refused.contains(&format!("pid {}", sync.id())),
        "{refused}"
    );

    // The outage: the server is down for several cycles; mail arrives meanwhile.
    d.stop();
    for i in 3..5 {
        d.write_message_at("olga", "INBOX", &[], T0 + i, &simple(i))?;
    }
    ensure!(
        wait_for(Duration::from_secs(30), || Ok(events(
            &stage,
            "sync.cycle_failed"
        )?
        .len()
            >= 3))?,
        "three failed cycles recorded:\n{}",
        shown()
    );
    assert!(
        sync.try_wait()?.is_none(),
        "the loop outlives the outage:\n{}",
        shown()
    );
    let failed = events(&stage, "sync.cycle_failed")?;
    assert!(
        failed[0].contains("cannot reach the source server") && failed[2].contains("(3 in a row)"),
        "{failed:?}"
    );
    assert_eq!(staged(&stage)?, 3);

    d.restart()?;
    ensure!(
        wait_for(Duration::from_secs(30), || Ok(staged(&stage)? == 5))?,
        "the mail that arrived during the outage is staged once the server is back:\n{}",
        shown()
    );
    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(sync.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = sync.try_wait()? {
            break status;
        }
        ensure!(
            Instant::now() < deadline,
            "the loop ends on SIGTERM:\n{}",
            shown()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = shown();
    eprintln!("{out}");
    assert_eq!(status.code(), Some(0), "the last cycle succeeded:\n{out}");
    assert!(
        out.contains("failed: cannot reach the source server")
            && out.contains("retrying in")
            && out.contains("sync loop stopped by a signal after"),
        "{out}"
    );
    let stopped = events(&stage, "sync.loop_stopped")?;
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    let verified = cli.ok(&["verify"]);
    assert!(!verified.is_empty());
    Ok(())
}

#[test]
fn the_sync_loop_stops_after_max_failed_cycles_with_status_1() -> Result<()> {
    let mut d = Dovecot::builder().user("pete", "pete-pw").start()?;
    let cli = Cli::new();
    cli.endpoint_on("src", d.port());
    cli.batch("b1", "src", &["pete@contoso.edu,pete,pete-pw"]);
    d.stop();
    let started = Instant::now();
    let out = cli.run(&[
        "batch",
        "sync",
        "b1",
        "--every",
        "16s",
        "--max-failed-cycles",
        "2",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("retrying in ")
            && shown.contains(
                "sync loop 2 failed cycles in a row after 2 cycle(s); the last one's exit status: 1"
            ),
        "{shown}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "the retry came before the next tick: {:?}",
        started.elapsed()
    );
    Ok(())
}
