//! Resume inside a message, as an admin meets it: `batch start` killed with SIGKILL while a
//! large body streams in; the re-run continues that body from its partial (a ranged fetch,
//! logged with its offset), and the stage ends verified with no partial left behind.

mod cli_support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use cli_support::{Cli, text};
use mailstage::stage::BlobHash;
use mailstage_tests::Dovecot;
use mailstage_tests::fault_proxy::{FaultProxy, Faults};
use mailstage_tests::stage_check::{check_completed, served};

/// The largest file in the stage's `tmp/partial/` (0 when none).
fn largest_partial(stage: &Path) -> u64 {
    std::fs::read_dir(stage.join("tmp").join("partial"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The text without terminal colour sequences (`ESC [ … m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn a_kill_during_a_large_body_then_a_rerun_completes_it_from_its_partial() -> Result<()> {
    let d = Dovecot::builder().user("rita", "rita-pw").start()?;
    d.write_sized("rita", &["INBOX"], &[4_000, 30_000_000, 5_000], 37)?;
    // 8 MB/s: the 30 MB body takes about 4 s, time to kill the run in the middle of it.
    let faults = Faults {
        rate: Some(8_000_000),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(d.port(), faults)?;
    let cli = Cli::new();
    cli.endpoint_on("src", proxy.port());
    cli.batch("b1", "src", &["rita@contoso.edu,rita,rita-pw"]);
    let stage = cli.stage();

    let mut first = cli
        .command(&["batch", "start", "b1", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while largest_partial(&stage) < 8_000_000 {
        ensure!(
            Instant::now() < deadline && first.try_wait()?.is_none(),
            "the body never got 8 MB in before the run ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill()?; // SIGKILL
    first.wait()?;
    let kept = largest_partial(&stage);
    assert!(kept >= 8_000_000, "the partial survives the kill: {kept}");

    let out = cli.run(&["batch", "start", "b1"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let plain = strip_ansi(&shown);
    let resumed = plain
        .lines()
        .find(|l| l.contains("resuming a message from its partial body") && l.contains(" uid=2 "))
        .unwrap_or_else(|| panic!("the re-run logs the resumed offset of UID 2:\n{plain}"));
    let offset: u64 = resumed
        .split("offset=")
        .nth(1)
        .and_then(|o| o.split_whitespace().next())
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("an offset in {resumed:?}"));
    assert!(
        offset + 1024 >= 8_000_000 && offset <= kept,
        "resumed at {offset}, {kept} kept"
    );
    let rows = check_completed(&stage)?; // no partial left, verify clean
    let staged: std::collections::BTreeSet<BlobHash> = rows
        .iter()
        .filter_map(|r| BlobHash::parse(r.4.as_deref()?).ok())
        .collect();
    assert_eq!(staged, served(&d, "rita", "INBOX")?, "byte for byte");
    cli.ok(&["verify"]); // exit status 0: clean
    Ok(())
}
