//! Acceptance: a 34 MB message fetched through the framing layer into the blob writer grows
//! the process's peak RSS by less than 8 MB over its baseline.
//!
//! Measured in a child process (`imap-fetch-rss`), so the test harness's own memory (the
//! 34 MB message this test builds, other tests running in parallel) does not count.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use mailstage::stage::BlobHash;
use mailstage_tests::{Dovecot, fixtures, served_form};

const SIZE: usize = 34 * 1024 * 1024;
const MAX_GROWTH_KB: u64 = 8 * 1024;

#[test]
fn a_34_mb_message_is_fetched_in_bounded_memory() -> Result<()> {
    let d = Dovecot::builder().user("carol", "carol-pw").start()?;
    let message = fixtures::message_of_size(SIZE, 34);
    d.write_message_at("carol", "INBOX", &[], 1_700_000_000, &message)?;
    let served = served_form(&message);
    drop(message);
    let want_sha = BlobHash::of(&served).to_hex();
    let want_len = served.len() as u64;
    drop(served);

    for options in [&[][..], &["--current-thread"]] {
        let r = fetch_rss(&d, options)?;
        let growth = r.growth();
        eprintln!(
            "imap-fetch-rss {options:?}: {} bytes, VmHWM baseline {} kB, peak {} kB, \
             growth {growth} kB (limit {MAX_GROWTH_KB} kB)",
            r.bytes, r.baseline_kb, r.peak_kb
        );
        assert_eq!(r.bytes, SIZE as u64);
        assert_eq!(r.bytes, want_len);
        assert_eq!(r.sha256, want_sha);
        assert!(
            growth < MAX_GROWTH_KB,
            "{options:?}: peak RSS grew by {growth} kB while fetching {} bytes",
            r.bytes
        );
    }

    // Negative control: the same fetch held whole in memory must show up in the figure,
    // or the measurement above proves nothing.
    let control = fetch_rss(&d, &["--in-memory"])?;
    eprintln!(
        "imap-fetch-rss control (in memory): VmHWM baseline {} kB, peak {} kB, growth {} kB",
        control.baseline_kb,
        control.peak_kb,
        control.growth()
    );
    assert_eq!(control.sha256, want_sha);
    assert!(
        control.growth() > SIZE as u64 / 1024,
        "a message held in memory grew VmHWM by only {} kB",
        control.growth()
    );
    Ok(())
}

/// What `imap-fetch-rss` reported.
struct Report {
    baseline_kb: u64,
    peak_kb: u64,
    bytes: u64,
    sha256: String,
}

impl Report {
    fn growth(&self) -> u64 {
        self.peak_kb.saturating_sub(self.baseline_kb)
    }
}

/// Runs `imap-fetch-rss` as carol against `d` with a fresh stage and `options`.
fn fetch_rss(d: &Dovecot, options: &[&str]) -> Result<Report> {
    let stage = tempfile::tempdir()?;
    let out = Command::new(env!("CARGO_BIN_EXE_imap-fetch-rss"))
        .arg(d.port().to_string())
        .args(["carol", "carol-pw"])
        .arg(stage.path())
        .args(options)
        .output()
        .context("run imap-fetch-rss")?;
    ensure!(
        out.status.success(),
        "imap-fetch-rss {options:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout)?;
    let report: serde_json::Value =
        serde_json::from_str(line.trim()).with_context(|| format!("parse {line:?}"))?;
    let num = |key: &str| {
        report[key]
            .as_u64()
            .with_context(|| format!("{key} in {report}"))
    };
    Ok(Report {
        baseline_kb: num("baseline_kb")?,
        peak_kb: num("peak_kb")?,
        bytes: num("bytes")?,
        sha256: report["sha256"]
            .as_str()
            .with_context(|| format!("sha256 in {report}"))?
            .to_string(),
    })
}
