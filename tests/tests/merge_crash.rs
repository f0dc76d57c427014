//! `stage merge` interrupted: aborted at the named crash point between durable blobs and the
//! rows' commit, and killed with SIGKILL at random instants; each time a second merge
//! completes, the merged stage holds every row of the source once with exactly the blobs
//! they name, and `verify` is clean.
//!
//! The aborted merge runs in a child process: this test binary again, running only
//! `child_merge` with the stages in its environment.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use mailstage::commands::merge::merge_stages;
use mailstage::crash_point;
use mailstage_tests::bins;
use mailstage_tests::fixtures::Rng;
use mailstage_tests::stage_check::{blob_files, check_completed, message_rows};
use mailstage_tests::workload;

const CHILD_INTO: &str = "MAILSTAGE_TEST_CHILD_INTO";
const CHILD_FROM: &str = "MAILSTAGE_TEST_CHILD_FROM";

/// Run by [`merge_aborted_after_the_blobs`] in a child process; does nothing by itself.
#[test]
#[ignore = "a child process of another test"]
fn child_merge() -> Result<()> {
    let (Ok(into), Ok(from)) = (std::env::var(CHILD_INTO), std::env::var(CHILD_FROM)) else {
        return Ok(());
    };
    merge_stages(Path::new(&into), &[from.into()])?;
    Ok(())
}

#[test]
fn merge_aborted_after_the_blobs_is_completed_by_the_next() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (from, into) = (dir.path().join("from"), dir.path().join("into"));
    workload::run(&from, 60, None)?;
    let expected = check_completed(&from)?;

    let point = "merge-blobs-durable";
    let out = Command::new(std::env::current_exe()?)
        .args(["child_merge", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_INTO, &into)
        .env(CHILD_FROM, &from)
        .env(crash_point::ENV, point)
        .output()
        .context("running the child merge")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.signal() == Some(libc::SIGABRT) && stderr.contains(point),
        "the child merge did not abort at {point}: {:?}\n{stderr}",
        out.status
    );
    // Blobs are durable, no row names them yet.
    assert_eq!(blob_files(&into)?, blob_files(&from)?);
    assert!(message_rows(&into)?.is_empty());

    merge_stages(&into, std::slice::from_ref(&from))?;
    assert_eq!(check_completed(&into)?, expected);
    Ok(())
}

#[test]
fn merge_killed_at_random_instants_then_run_again_ends_complete() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let from = dir.path().join("from");
    workload::run(&from, 150, Some(60_000))?;
    let expected = check_completed(&from)?;
    let extract = bins::mailstage_extract();
    let mut rng = Rng::new(16);
    let mut killed_midway = 0;
    for trial in 0..6 {
        let into = dir.path().join(format!("into-{trial}"));
        let mut child = Command::new(&extract)
            .env_remove("MAILSTAGE_DIR")
            .arg("stage")
            .arg("merge")
            .arg("--into")
            .arg(&into)
            .arg(&from)
            .stdout(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 400));
        let done = child.try_wait()?.is_some();
        child.kill()?;
        child.wait()?;
        if !done && message_rows(&into).map_or(true, |r| r.len() < expected.len()) {
            killed_midway += 1;
        }
        let again = Command::new(&extract)
            .arg("stage")
            .arg("merge")
            .arg("--into")
            .arg(&into)
            .arg(&from)
            .output()?;
        assert!(again.status.success(), "trial {trial}: {again:?}");
        assert_eq!(check_completed(&into)?, expected, "trial {trial}");
    }
    assert!(killed_midway > 0, "no trial interrupted a merge");
    Ok(())
}
