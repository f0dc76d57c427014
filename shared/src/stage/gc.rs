//! Garbage collection: `tmp/` leftovers and blobs that no index row names.
//!
//! Only safe while no other process writes, which the stage's exclusive lock guarantees.

use std::fs;
use std::path::PathBuf;

use super::blobs::{BlobStore, fsync_dir};
use super::error::{IoContext, Result};
use super::hash::BlobHash;
use super::index::Index;

/// What a gc run removed, and what it found but left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Files removed from `tmp/`.
    pub tmp_files: u64,
    /// Bytes those held.
    pub tmp_bytes: u64,
    /// Partial bodies in `tmp/partial/` no pass can resume any more (folder gone or re-read
    /// under a new UIDVALIDITY, message staged or skipped since) and files there that are
    /// not partials: removed.
    pub stale_partials: u64,
    /// Bytes those held.
    pub stale_partial_bytes: u64,
    /// Unreferenced blobs removed.
    pub orphan_blobs: u64,
    /// Bytes those held.
    pub orphan_bytes: u64,
    /// Files under `blobs/` whose names are not blob names: reported, never touched.
    pub foreign_files: Vec<PathBuf>,
}

/// Files and bytes removed from `tmp/`.
pub(crate) struct Cleared {
    pub files: u64,
    pub bytes: u64,
}

/// Empties `tmp/` but for its subdirectories (`tmp/partial/` keeps bodies to resume).
pub(crate) fn clear_tmp(store: &BlobStore) -> Result<Cleared> {
    let dir = store.tmp_dir();
    let mut cleared = Cleared { files: 0, bytes: 0 };
    for entry in fs::read_dir(dir).at("read directory", dir)? {
        let entry = entry.at("read directory", dir)?;
        let path = entry.path();
        let meta = entry.metadata().at("stat", &path)?;
        if meta.is_dir() {
            continue;
        }
        let len = meta.len();
        fs::remove_file(&path).at("remove", &path)?;
        cleared.files += 1;
        cleared.bytes += len;
    }
    Ok(cleared)
}

/// One file found under `blobs/ab/` (or `blobs/ab/cd/` in a stage not yet moved to one level).
pub(crate) struct BlobFile {
    /// Its path.
    pub path: PathBuf,
    /// Its name parsed as a hash, or `None` for a file that is not a blob.
    pub hash: Option<BlobHash>,
    /// Its length.
    pub len: u64,
}

/// Lists every file in the fan-out under `blobs/` (a directory deeper than the fan-out is
/// listed as a file that is not a blob).
pub(crate) fn list_blob_files(store: &BlobStore) -> Result<Vec<BlobFile>> {
    let mut out = Vec::new();
    let depth_of_blobs = store.fan_out_depth();
    let mut stack = vec![(store.blobs_dir().to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        for entry in fs::read_dir(&dir).at("read directory", &dir)? {
            let entry = entry.at("read directory", &dir)?;
            let path = entry.path();
            let meta = entry.metadata().at("stat", &path)?;
            if meta.is_dir() && depth < depth_of_blobs {
                stack.push((path, depth + 1));
                continue;
            }
            let hash = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| BlobHash::parse(n).ok())
                .filter(|h| store.is_place_of(h, &path));
            out.push(BlobFile {
                path,
                hash,
                len: meta.len(),
            });
        }
    }
    Ok(out)
}

/// Removes `tmp/` leftovers and unreferenced blobs.
pub(crate) fn collect(store: &BlobStore, index: &Index) -> Result<GcReport> {
    let cleared = clear_tmp(store)?;
    let mut report = GcReport {
        tmp_files: cleared.files,
        tmp_bytes: cleared.bytes,
        ..GcReport::default()
    };
    for p in store.partials()? {
        let live = match p.of {
            Some(of) => index.partial_is_live(of.folder_id, of.uidvalidity, of.uid)?,
            None => false,
        };
        if !live {
            fs::remove_file(&p.path).at("remove stale partial", &p.path)?;
            report.stale_partials += 1;
            report.stale_partial_bytes += p.len;
        }
    }
    let live = index.referenced_blobs()?;
    let mut touched = std::collections::BTreeSet::new();
    for file in list_blob_files(store)? {
        match file.hash {
            Some(hash) if live.contains(&hash) => {}
            Some(_) => {
                fs::remove_file(&file.path).at("remove orphan blob", &file.path)?;
                report.orphan_blobs += 1;
                report.orphan_bytes += file.len;
                if let Some(parent) = file.path.parent() {
                    touched.insert(parent.to_path_buf());
                }
            }
            None => report.foreign_files.push(file.path),
        }
    }
    for dir in &touched {
        fsync_dir(dir)?;
    }
    Ok(report)
}
