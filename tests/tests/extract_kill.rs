//! SIGKILL of the real `mailstage-extract batch start` at random moments of a full pass,
//! then a re-run: the finished stage must equal one uninterrupted pass row for row, with no
//! duplicate, no `tmp/` leftover, exactly the blobs the rows name, and `verify` clean.
//!
//! `MAILSTAGE_KILL_TRIALS` sets the number of trials (20 by default; `scripts/kill-trials.sh
//! N` runs more), `MAILSTAGE_KILL_SEED` replays a run (the seed is printed).

mod cli_support;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cli_support::{Cli, text};
use mailstage::stage::verify::verify;
use mailstage::stage::{Access, Stage};
use mailstage_tests::Dovecot;
use mailstage_tests::fixtures::Rng;
use mailstage_tests::stage_check::{check_completed, message_rows};

const USERS: [&str; 3] = ["ann", "ben", "cat"];
const START: [&str; 4] = ["batch", "start", "b1", "--quiet"];

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

/// Copies the stage directory `from` (files and subdirectories) to `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Runs `batch start` to the end and returns how long it took.
fn complete(cli: &Cli) -> Duration {
    let started = Instant::now();
    let out = cli.run(&START);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    started.elapsed()
}

/// Starts `batch start` and SIGKILLs it after `delay`; true when it was still running.
fn kill_after(cli: &Cli, delay: Duration) -> bool {
    let mut child = cli
        .command(&START)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mailstage-extract starts");
    std::thread::sleep(delay);
    child.kill().expect("kill the extractor");
    let status = child.wait().expect("reap the extractor");
    status.signal() == Some(libc::SIGKILL)
}

#[test]
fn sigkill_during_batch_start_then_a_rerun_equals_an_uninterrupted_pass() -> Result<()> {
    let trials = env_number("MAILSTAGE_KILL_TRIALS").unwrap_or(20);
    let seed = env_number("MAILSTAGE_KILL_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("kill test: {trials} trials, MAILSTAGE_KILL_SEED={seed}");
    let mut rng = Rng::new(seed);

    let mut builder = Dovecot::builder();
    for u in USERS {
        builder = builder.user(u, &format!("{u}-pw"));
    }
    let d = builder.start()?;
    let mut bytes = 0;
    for (k, u) in USERS.iter().enumerate() {
        // A tenth of the messages 200–600 KB, the rest 1–40 KB.
        let sizes: Vec<usize> = (0..100)
            .map(|i| match i % 10 {
                0 => 200_000 + (i * 40_009 + k * 7) % 400_000,
                _ => 1_000 + (i * 3_911 + k * 13) % 39_000,
            })
            .collect();
        bytes += d.write_sized(u, &["INBOX", "Sent", "Archive/2024"], &sizes, k as u64)?;
    }
    let template = Cli::new();
    template.endpoint_on("src", d.port());
    let rows: Vec<String> = USERS
        .iter()
        .map(|u| format!("{u}@contoso.edu,{u},{u}-pw"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    template.batch("b1", "src", &rows);

    // The reference; the first pass also warms Dovecot's own index, so a second one gives
    // the time scale to kill within.
    let reference = Cli::new();
    copy_dir(&template.stage(), &reference.stage())?;
    let cold = complete(&reference);
    let expected = check_completed(&reference.stage())?;
    assert_eq!(expected.len(), 300);
    let warm = Cli::new();
    copy_dir(&template.stage(), &warm.stage())?;
    let full = complete(&warm).min(cold);
    eprintln!(
        "uninterrupted pass: {} rows, {bytes} bytes, {cold:?} cold, kills within {full:?}",
        expected.len()
    );

    let (mut kills, mut killed_mid_way) = (0, 0);
    for trial in 0..trials {
        let cli = Cli::new();
        copy_dir(&template.stage(), &cli.stage())?;
        let runs = if rng.next_u64().is_multiple_of(3) {
            2
        } else {
            1
        };
        let mut delays = Vec::new();
        for _ in 0..runs {
            // Somewhere within the work left, so that most kills land mid-way.
            let left = 1.0 - message_rows(&cli.stage())?.len() as f64 / expected.len() as f64;
            let delay = full.mul_f64(rng.unit() * left.max(0.05));
            delays.push(delay);
            kills += 1;
            if kill_after(&cli, delay) {
                killed_mid_way += 1;
            }
            // Invariant 1 after each kill: no row names a missing or damaged blob.
            let report = verify(&Stage::open(&cli.stage(), Access::Read)?)?;
            assert!(
                report.damaged.is_empty(),
                "seed {seed} trial {trial} killed after {delays:?}: {}",
                report.render_text()
            );
        }
        complete(&cli);
        let context = format!("seed {seed} trial {trial} killed after {delays:?}");
        let rows = check_completed(&cli.stage()).context(context.clone())?;
        assert!(
            rows == expected,
            "{context}: rows differ from the reference"
        );
        let verified = cli.ok(&["verify"]);
        assert!(verified.contains("result: clean"), "{context}: {verified}");
    }
    eprintln!("{kills} kills, {killed_mid_way} of them mid-way");
    assert!(
        killed_mid_way * 3 >= kills,
        "only {killed_mid_way} of {kills} runs were killed mid-way"
    );
    Ok(())
}
