//! The blob directory's layout: one fan-out level, `blobs/ab/<sha256>`, in 256 directories
//! created with the stage.
//!
//! Stages made before index v12 kept two levels, `blobs/ab/cd/<sha256>`: 100,000 small
//! messages then cost ~51,000 `mkdir`s, more than the writes themselves. Such a stage is moved
//! to one level the first time it is opened for writing ([`settle`]): every blob is renamed
//! from `ab/cd/` to `ab/`, the emptied `ab/cd/` directories removed, the names made durable,
//! and only then is `stage_format.blob_levels` set to 1. A crash at any point leaves the
//! record at 2, each blob whole at one of its two paths (a rename is atomic), and the next
//! writer does the rest (moving is idempotent). While the record is 2, readers look in both
//! places ([`BlobStore::path_of`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::blobs::{BlobStore, fsync_dir};
use super::durable::Durability;
use super::error::{IoContext, Result};
use super::hash::BlobHash;
use super::index::Index;
use super::lock::Access;

/// Brings the blob directory to one fan-out level when the stage is opened for writing (and
/// creates the fan-out directories), or tells a reader of a stage not moved yet to look in
/// both places.
pub(crate) fn settle(store: &mut BlobStore, index: &Index, access: Access) -> Result<()> {
    let two_levels = index.blob_levels()? == 2;
    match access {
        Access::Read => store.set_two_levels(two_levels),
        Access::Write => {
            if two_levels {
                let moved = move_to_one_level(store)?;
                index.set_blob_levels(1)?;
                if moved > 0 {
                    tracing::info!(
                        blobs = moved,
                        "moved the stage's blobs from blobs/ab/cd/ to blobs/ab/"
                    );
                }
            }
            store.set_two_levels(false);
            store.create_fan_out()?;
        }
    }
    Ok(())
}

/// Renames every `blobs/ab/cd/<sha256>` to `blobs/ab/<sha256>`, removes the emptied `ab/cd`
/// directories, creates the missing fan-out directories and makes all of it durable. Files
/// that are not blobs in their place stay where they are (with their directory), for
/// `verify` to report. Returns how many blobs were moved.
fn move_to_one_level(store: &BlobStore) -> Result<u64> {
    let mut moved = 0;
    let mut touched = Vec::new();
    for top in fan_out_dirs(store.blobs_dir())? {
        for mid in fan_out_dirs(&top)? {
            for entry in fs::read_dir(&mid).at("read directory", &mid)? {
                let path = entry.at("read directory", &mid)?.path();
                let Some(hash) = blob_name(&path) else {
                    continue;
                };
                if path != store.blobs_dir().join(hash.two_level_path()) {
                    continue;
                }
                let to = store.blobs_dir().join(hash.relative_path());
                fs::rename(&path, &to).at("move blob to one level", &to)?;
                moved += 1;
            }
            crate::crash_point::hit("layout-dir-moved");
            match fs::remove_dir(&mid) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {
                    tracing::warn!(dir = %mid.display(), "left in place: holds files that are not blobs");
                    touched.push(mid.clone());
                }
                Err(e) => return Err(e).at("remove emptied directory", &mid),
            }
        }
        touched.push(top);
    }
    store.create_fan_out()?;
    match store.durability() {
        Durability::Syncfs(fs) => fs.sync().at("sync the moved blobs", store.blobs_dir())?,
        Durability::PerFile(_) => {
            for dir in &touched {
                fsync_dir(dir)?;
            }
            fsync_dir(store.blobs_dir())?;
        }
    }
    Ok(moved)
}

/// The subdirectories of `dir` named by two lowercase hex digits (fan-out directories).
fn fan_out_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).at("read directory", dir)? {
        let entry = entry.at("read directory", dir)?;
        let name = entry.file_name();
        let fan_out = name.to_str().is_some_and(|n| {
            n.len() == 2 && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if fan_out && entry.file_type().at("stat", entry.path())?.is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// The blob a file's name names, if it is one.
fn blob_name(path: &Path) -> Option<BlobHash> {
    BlobHash::parse(path.file_name()?.to_str()?).ok()
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
