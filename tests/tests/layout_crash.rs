//! A stage of the old two-level blob layout (`blobs/ab/cd/<sha256>`, before index v11) whose
//! move to one level is aborted after its first directory (crash point `layout-dir-moved`, in
//! a child process): the stage verifies clean for a reader meanwhile, and the next writer
//! completes the move with every row's blob in place.
//!
//! The aborted writer runs in a child process: this test binary again, running only
//! `child_open` with the stage in its environment.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use mailstage::crash_point;
use mailstage::stage::{Access, Stage, verify::verify};
use mailstage_tests::stage_check::{blob_files, check_completed};
use mailstage_tests::workload;

const CHILD_STAGE: &str = "MAILSTAGE_TEST_CHILD_STAGE";

/// Run by [`a_move_aborted_part_way_is_read_and_completed`] in a child process; does nothing
/// by itself.
#[test]
#[ignore = "a child process of another test"]
fn child_open() -> Result<()> {
    let Ok(dir) = std::env::var(CHILD_STAGE) else {
        return Ok(());
    };
    Stage::open(Path::new(&dir), Access::Write)?;
    Ok(())
}

/// Moves every blob of the stage at `dir` back to `blobs/ab/cd/<sha256>`, removes the empty
/// fan-out directories and records two levels: a stage as index v10 left it.
fn make_two_level(dir: &Path) -> Result<()> {
    let blobs = dir.join("blobs");
    for name in blob_files(dir)? {
        let old = blobs.join(&name[0..2]).join(&name[2..4]);
        std::fs::create_dir_all(&old)?;
        std::fs::rename(blobs.join(&name[0..2]).join(&name), old.join(&name))?;
    }
    for entry in std::fs::read_dir(&blobs)? {
        let _ = std::fs::remove_dir(entry?.path()); // the empty ones only
    }
    rusqlite::Connection::open(dir.join("index.sqlite"))?
        .execute("UPDATE stage_format SET blob_levels = 2", [])?;
    Ok(())
}

/// Blob files at depth 1 (`ab/<sha256>`) and at depth 2 (`ab/cd/<sha256>`).
fn depths(dir: &Path) -> Result<(usize, usize)> {
    let (mut one, mut two) = (0, 0);
    for top in std::fs::read_dir(dir.join("blobs"))? {
        for entry in std::fs::read_dir(top?.path())? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                two += std::fs::read_dir(entry.path())?.count();
            } else {
                one += 1;
            }
        }
    }
    Ok((one, two))
}

#[test]
fn a_move_aborted_part_way_is_read_and_completed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let stage = dir.path().join("stage");
    workload::run(&stage, 60, None)?;
    let expected = check_completed(&stage)?;
    let blobs = blob_files(&stage)?;
    make_two_level(&stage)?;
    assert_eq!(depths(&stage)?, (0, blobs.len()));

    let point = "layout-dir-moved";
    let out = Command::new(std::env::current_exe()?)
        .args(["child_open", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_STAGE, &stage)
        .env(crash_point::ENV, point)
        .output()
        .context("running the child writer")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.signal() == Some(libc::SIGABRT) && stderr.contains(point),
        "the child writer did not abort at {point}: {:?}\n{stderr}",
        out.status
    );
    let (one, two) = depths(&stage)?;
    ensure!(
        one > 0 && two > 0 && one + two == blobs.len(),
        "aborted part-way: {one} blobs moved, {two} not"
    );

    let reader = Stage::open(&stage, Access::Read)?;
    let report = verify(&reader)?;
    ensure!(report.is_clean(), "{}", report.render_text());
    assert_eq!(report.blobs_checked, blobs.len() as u64);
    drop(reader);

    let writer = Stage::open(&stage, Access::Write)?;
    assert_eq!(writer.index().blob_levels()?, 1);
    drop(writer);
    assert_eq!(depths(&stage)?, (blobs.len(), 0));
    assert_eq!(check_completed(&stage)?, expected);
    Ok(())
}
