//! Kill -9 `mailstage-upload run` at random moments and run it again: every staged message
//! ends on the target exactly once — none missing, none duplicated, including messages
//! without a Message-ID — and the index agrees.
//!
//! `MAILSTAGE_UPLOAD_KILL_TRIALS` sets the number of trials (default 20; `scripts/kill-trials.sh`
//! runs more), `MAILSTAGE_KILL_SEED` replays a run's random instants.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use mailstage::extract::Pass;
use mailstage::stage::{Access, Stage};
use mailstage_tests::extraction::{TestMailbox, default_limits};
use mailstage_tests::fixtures::{Rng, message_of_size, simple};
use mailstage_tests::upload::{
    ADMIN, dst_target, staged_contents, target_contents, target_dovecot,
};
use mailstage_tests::{Dovecot, bins};

const EMAILS: [&str; 2] = ["alice@contoso.edu", "bob@contoso.edu"];
const SECRET_VAR: &str = "MAILSTAGE_TEST_TARGET_PASSWORD";
const T0: u64 = 1_690_000_000;
/// Trials run at once.
const WORKERS: u64 = 2;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// A message without a Message-ID, distinct by its body and date.
fn without_message_id(n: u64) -> Vec<u8> {
    format!("From: a@example.test\r\nSubject: no id {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Stages the source's mail into `dir` (batch `b1`).
fn stage_template(dir: &Path) -> Result<Dovecot> {
    let d = Dovecot::builder()
        .user("alice", "a-pw")
        .user("bob", "b-pw")
        .start()?;
    for i in 0..60u64 {
        let bytes = match i % 6 {
            0 => without_message_id(i),
            1 => message_of_size(60_000, i),
            _ => simple(i),
        };
        d.write_message_at("alice", "INBOX", &["\\Seen"], T0 + i, &bytes)?;
        d.write_message_at(
            "bob",
            if i % 2 == 0 { "INBOX" } else { "Sent" },
            &[],
            T0 + i,
            &bytes,
        )?;
    }
    let mailboxes = [
        TestMailbox::own(EMAILS[0], "alice", "a-pw"),
        TestMailbox::own(EMAILS[1], "bob", "b-pw"),
    ];
    let outcomes =
        mailstage_tests::extraction::run(dir, &d, &mailboxes, default_limits(), Pass::Full)?;
    ensure!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");
    Ok(d)
}

/// A copy of the template stage with target `dst` pointing at `port`.
fn trial_stage(template: &Path, dir: &Path, port: u16) -> Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(template)
        .arg(dir)
        .status()?;
    ensure!(status.success(), "cp -a failed");
    let stage = Stage::open(dir, Access::Write)?;
    stage.index().add_target(&dst_target(port, SECRET_VAR))?;
    Ok(())
}

fn upload(dir: &Path) -> Command {
    let mut cmd = Command::new(bins::mailstage_upload());
    cmd.env_remove("MAILSTAGE_DIR")
        .env(SECRET_VAR, ADMIN.1)
        .arg("--stage")
        .arg(dir)
        .args([
            "run",
            "--batch",
            "b1",
            "--target",
            "dst",
            "--quiet",
            "--concurrency",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Prints, per folder that differs, how many messages the stage and the target hold.
fn print_differences(
    staged: &mailstage_tests::upload::Contents,
    uploaded: &mailstage_tests::upload::Contents,
) {
    for (folder, messages) in staged {
        let on_target = uploaded.get(folder).map_or(0, Vec::len);
        if uploaded.get(folder) != Some(messages) {
            eprintln!(
                "{folder:?}: staged {} on the target {on_target}",
                messages.len()
            );
        }
    }
}

/// Runs the upload to completion and checks the target against the stage.
fn finish_and_check(dir: &Path, target: &Dovecot, context: &str) -> Result<()> {
    let out = upload(dir).output()?;
    ensure!(
        out.status.success(),
        "{context}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let staged = staged_contents(dir)?;
    let mut uploaded = mailstage_tests::upload::Contents::new();
    for e in EMAILS {
        uploaded.extend(target_contents(target, e)?);
    }
    if uploaded != staged {
        print_differences(&staged, &uploaded);
    }
    ensure!(
        uploaded == staged,
        "{context}: the target differs from the stage"
    );
    let stage = Stage::open(dir, Access::Read)?;
    for s in stage.index().upload_status("b1", "dst")? {
        ensure!(
            s.done == s.staged && s.in_flight + s.pending + s.failed == 0,
            "{context}: {s:?}"
        );
    }
    Ok(())
}

/// One trial: a fresh target and stage, the upload killed once or twice at random instants
/// within `window`, then run to the end and checked. Returns the messages left in flight.
fn run_trial(template: &Path, work: &Path, window: Duration, seed: u64, trial: u64) -> Result<u64> {
    let mut rng = Rng::new(seed ^ trial.wrapping_mul(0x9E37_79B9));
    let target = target_dovecot(&EMAILS)?;
    let dir = work.join(format!("trial-{trial}"));
    trial_stage(template, &dir, target.port())?;
    let kills = 1 + rng.next_u64() % 2;
    for _ in 0..kills {
        let mut child = upload(&dir).spawn()?;
        std::thread::sleep(window.mul_f64(rng.unit()));
        let _ = child.kill(); // SIGKILL
        child.wait()?;
    }
    let stage = Stage::open(&dir, Access::Read)?;
    let in_flight = stage
        .index()
        .upload_status("b1", "dst")?
        .iter()
        .map(|s| s.in_flight)
        .sum::<u64>();
    drop(stage);
    finish_and_check(&dir, &target, &format!("trial {trial} (seed {seed})"))?;
    std::fs::remove_dir_all(&dir)?;
    Ok(in_flight)
}

#[test]
fn kill_9_at_random_moments_then_resume_uploads_every_message_exactly_once() -> Result<()> {
    bins::mailstage_upload();
    let trials = env_number("MAILSTAGE_UPLOAD_KILL_TRIALS").unwrap_or(20);
    let seed = env_number("MAILSTAGE_KILL_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    println!("seed {seed} (MAILSTAGE_KILL_SEED={seed} replays it), {trials} trials");
    let work = tempfile::tempdir()?;
    let template = work.path().join("template");
    let _source = stage_template(&template)?;

    // An uninterrupted run sets the window the kills are drawn from.
    let target = target_dovecot(&EMAILS)?;
    let dir = work.path().join("reference");
    trial_stage(&template, &dir, target.port())?;
    let started = Instant::now();
    finish_and_check(&dir, &target, "uninterrupted run")?;
    let window = started.elapsed();
    println!("an uninterrupted run takes {window:?}");

    // The trials run on two threads: each mostly waits (a server starting, a kill's
    // instant, the target settling), and each has its own target, stage and random draws
    // (`seed` and its number), so the split changes nothing of what a trial does.
    let (template, work) = (template.as_path(), work.path());
    let outcomes = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                scope.spawn(move || {
                    (1..=trials)
                        .filter(|trial| trial % WORKERS == worker)
                        .map(|trial| run_trial(template, work, window, seed, trial))
                        .collect::<Result<Vec<u64>>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a trial thread panicked"))
            .collect::<Result<Vec<_>>>()
    })?;
    let in_flight: Vec<u64> = outcomes.into_iter().flatten().collect();
    let trials_in_flight = in_flight.iter().filter(|&&n| n > 0).count();
    let killed_in_flight: u64 = in_flight.iter().sum();
    println!(
        "{trials} trials, {trials_in_flight} with messages in flight at a kill; \
         {killed_in_flight} message(s) in flight, all resolved"
    );
    // Kills that never land between an APPEND and its record would test nothing of the
    // in-flight path: with enough trials, some must.
    if trials >= 10 {
        assert!(
            trials_in_flight > 0,
            "no kill of {trials} left a message in flight (seed {seed})"
        );
    }
    Ok(())
}
