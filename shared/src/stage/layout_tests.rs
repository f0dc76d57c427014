//! Stages from before index v12 (blobs at `blobs/ab/cd/<sha256>`), made from real stages in
//! temporary directories: read in place (verify, the maildir view, a merge), moved to one level
//! by the first writer, and a move interrupted part-way completed by the next one.

use std::fs;
use std::path::{Path, PathBuf};

use crate::stage::maildir::build_maildir;
use crate::stage::merge_tests::stage_with;
use crate::stage::verify::verify;
use crate::stage::{Access, BlobHash, Stage};

const BODIES: [&[u8]; 6] = [b"one", b"two", b"three", b"four", b"five", b"six"];

/// Puts the first `count` blobs of `bodies` back at their two-level path, removes the fan-out
/// directories left empty and records the stage as one of two levels, as before v12.
fn make_two_level(dir: &Path, bodies: &[&[u8]], count: usize) {
    let blobs = dir.join("blobs");
    for body in &bodies[..count] {
        let hash = BlobHash::of(body);
        let old = blobs.join(hash.two_level_path());
        fs::create_dir_all(old.parent().unwrap()).unwrap();
        fs::rename(blobs.join(hash.relative_path()), old).unwrap();
    }
    for entry in fs::read_dir(&blobs).unwrap() {
        let _ = fs::remove_dir(entry.unwrap().path()); // only the empty ones go
    }
    rusqlite::Connection::open(dir.join("index.sqlite"))
        .unwrap()
        .execute("UPDATE stage_format SET blob_levels = 2", [])
        .unwrap();
}

/// Every file under `dir/blobs`, relative to it.
fn blob_tree(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("blobs"), &dir.join("blobs"), &mut out);
    out.sort();
    out
}

/// Opens the stage for reading and checks that every message is found whole: verify is
/// clean, each blob reads back, and the maildir view links every message.
fn readable(dir: &Path, view: &Path) -> Stage {
    let stage = Stage::open(dir, Access::Read).unwrap();
    let report = verify(&stage).unwrap();
    assert!(report.is_clean(), "{}", report.render_text());
    assert_eq!(report.blobs_checked, BODIES.len() as u64);
    for body in BODIES {
        let mut read = Vec::new();
        std::io::Read::read_to_end(
            &mut stage.blobs().open_blob(&BlobHash::of(body)).unwrap(),
            &mut read,
        )
        .unwrap();
        assert_eq!(read, body);
    }
    let maildir = build_maildir(&stage, view, None).unwrap();
    assert_eq!(maildir.messages, BODIES.len() as u64);
    stage
}

/// Opens the stage for writing and checks that every blob is at its one-level path, nothing
/// is left at two levels, the record says 1 and the stage verifies clean with nothing for gc.
fn moved_by_a_writer(dir: &Path) {
    let stage = Stage::open(dir, Access::Write).unwrap();
    assert_eq!(stage.index().blob_levels().unwrap(), 1);
    let mut want: Vec<PathBuf> = BODIES
        .iter()
        .map(|b| BlobHash::of(b).relative_path())
        .collect();
    want.sort();
    assert_eq!(blob_tree(dir), want);
    let dirs = fs::read_dir(dir.join("blobs")).unwrap().count();
    assert_eq!(dirs, 256, "every fan-out directory exists, no other");
    let report = verify(&stage).unwrap();
    assert!(report.is_clean(), "{}", report.render_text());
    let gc = stage.gc().unwrap();
    assert_eq!((gc.orphan_blobs, gc.foreign_files.len()), (0, 0));
}

#[test]
fn a_new_stage_has_one_level_and_its_fan_out_directories() {
    let dir = tempfile::tempdir().unwrap();
    let stage = stage_with(dir.path(), &["x@e"], &BODIES);
    assert_eq!(stage.index().blob_levels().unwrap(), 1);
    drop(stage);
    moved_by_a_writer(dir.path());
}

#[test]
fn a_two_level_stage_is_read_in_place_and_moved_by_its_first_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (old, view) = (dir.path().join("old"), dir.path().join("view"));
    drop(stage_with(&old, &["x@e"], &BODIES));
    make_two_level(&old, &BODIES, BODIES.len());
    let before = blob_tree(&old);
    assert!(before.iter().all(|p| p.components().count() == 3));

    drop(readable(&old, &view));
    assert_eq!(blob_tree(&old), before, "a reader moves nothing");
    let mut merged = Stage::open(&dir.path().join("merged"), Access::Write).unwrap();
    assert_eq!(merged.merge_from(&old).unwrap().blobs_copied, 6);
    assert!(verify(&merged).unwrap().is_clean());

    moved_by_a_writer(&old);
}

#[test]
fn a_move_interrupted_part_way_is_readable_and_the_next_writer_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (old, view) = (dir.path().join("old"), dir.path().join("view"));
    drop(stage_with(&old, &["x@e"], &BODIES));
    // Killed after three blobs were moved: three at two levels, three at one.
    make_two_level(&old, &BODIES, 3);
    drop(readable(&old, &view));
    moved_by_a_writer(&old);
}

#[test]
fn a_file_that_is_not_a_blob_stays_with_its_directory_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    drop(stage_with(dir.path(), &["x@e"], &BODIES));
    make_two_level(dir.path(), &BODIES, BODIES.len());
    let hash = BlobHash::of(BODIES[0]).two_level_path();
    let foreign = dir.path().join("blobs").join(hash.parent().unwrap());
    fs::write(foreign.join("notes.txt"), b"kept").unwrap();

    let stage = Stage::open(dir.path(), Access::Write).unwrap();
    assert_eq!(stage.index().blob_levels().unwrap(), 1);
    assert_eq!(fs::read(foreign.join("notes.txt")).unwrap(), b"kept");
    let report = verify(&stage).unwrap();
    assert_eq!(report.foreign_files, [foreign]);
    assert!(report.damaged.is_empty() && report.orphans.is_empty());
    assert_eq!(report.blobs_checked, BODIES.len() as u64);
}
