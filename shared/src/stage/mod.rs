//! The stage: everything the two binaries share on disk.
//!
//! ```text
//! STAGE/lock            advisory lock: one writing process, or any number of readers
//! STAGE/index.sqlite    the index (WAL)
//! STAGE/blobs/ab/<sha256>   raw messages, read-only, stored once (`ab/cd/<sha256>` in stages
//!                          not yet moved to one level: see `layout`)
//! STAGE/tmp/            blobs being written; leftovers are garbage
//! STAGE/tmp/partial/    bodies cut part-way, kept to be resumed (see `partial`)
//! ```
//! Invariants (README, *The stage*): no index row names a blob that is not durable; a crash at any
//! instant leaves a stage that a re-run completes with nothing lost and nothing duplicated;
//! nothing from a server chooses a path.

mod blobs;
pub mod durable;
mod error;
mod gc;
mod hash;
pub mod index;
mod layout;
mod lock;
pub mod maildir;
mod merge;
#[cfg(test)]
mod merge_tests;
mod partial;
mod rename;
mod safe_name;
mod schema;
pub mod verify;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use blobs::{BlobStore, BlobWriter, PendingBlob, StoredBlob};
pub use error::{Result, StageError};
pub use gc::GcReport;
pub use hash::BlobHash;
pub use index::Index;
pub use lock::Access;
pub use merge::MergedStage;
pub use partial::{OVERLAP, PartialKey, PartialWriter};
pub use safe_name::{safe_component, safe_file_name};
pub use schema::SCHEMA_VERSION;

use error::IoContext;
use lock::StageLock;

/// An open stage: its lock, blob store and index.
#[derive(Debug)]
pub struct Stage {
    root: PathBuf,
    access: Access,
    blobs: Arc<BlobStore>,
    index: Index,
    _lock: StageLock,
}

/// A stage opened for writing, in the form a concurrent pipeline shares across tasks:
/// blobs are written from any task, the index is used under a mutex (one writer).
#[derive(Debug)]
pub struct SharedStage {
    /// The blob store.
    pub blobs: Arc<BlobStore>,
    /// The index.
    pub index: Arc<Mutex<Index>>,
    _lock: StageLock,
}

/// What the tasks of a pipeline share of a [`SharedStage`] (cheap to clone): the blob store
/// and the index under its mutex.
#[derive(Clone, Debug)]
pub struct StageHandle {
    /// The blob store.
    pub blobs: Arc<BlobStore>,
    /// The index, one writer at a time.
    pub index: Arc<Mutex<Index>>,
}

impl StageHandle {
    /// Runs `f` on the index (one writer at a time).
    pub fn index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        with_index(&self.index, f)
    }
}

impl SharedStage {
    /// A handle for the pipeline's tasks.
    pub fn handle(&self) -> StageHandle {
        StageHandle {
            blobs: self.blobs.clone(),
            index: self.index.clone(),
        }
    }
}

impl Stage {
    /// Opens the stage at `root`.
    ///
    /// For [`Access::Write`] the directory is created when missing, the lock is exclusive, and
    /// leftovers of an interrupted run in `tmp/` are removed; a stage whose blobs are still in
    /// two fan-out levels is moved to one (`layout`). For [`Access::Read`] the stage must exist
    /// and other readers may share it.
    pub fn open(root: &Path, access: Access) -> Result<Self> {
        match access {
            Access::Write => fs::create_dir_all(root).at("create stage directory", root)?,
            Access::Read if !root.join("index.sqlite").is_file() => {
                return Err(StageError::Refused(format!(
                    "no stage at {} (no index.sqlite there); give --stage or set MAILSTAGE_DIR",
                    root.display()
                )));
            }
            Access::Read => {}
        }
        let lock = StageLock::acquire(root, access)?;
        let mut blobs = BlobStore::open(root)?;
        let index = Index::open(&root.join("index.sqlite"))?;
        layout::settle(&mut blobs, &index, access)?;
        let stage = Self {
            root: root.to_path_buf(),
            access,
            blobs: Arc::new(blobs),
            index,
            _lock: lock,
        };
        if access == Access::Write {
            tracing::debug!(durability = %stage.blobs.durability().describe(), "stage opened");
            let removed = gc::clear_tmp(&stage.blobs)?;
            if removed.files > 0 {
                tracing::info!(
                    files = removed.files,
                    bytes = removed.bytes,
                    "removed leftovers of an interrupted run from tmp/"
                );
            }
        }
        Ok(stage)
    }

    /// The stage directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The index, for writing.
    pub fn index_mut(&mut self) -> &mut Index {
        &mut self.index
    }

    /// Hands the stage to a concurrent pipeline; the lock goes with it. Needs [`Access::Write`].
    pub fn into_shared(self) -> Result<SharedStage> {
        if self.access != Access::Write {
            return Err(StageError::Refused(
                "sharing the stage with writers needs it opened for writing".into(),
            ));
        }
        Ok(SharedStage {
            blobs: self.blobs,
            index: Arc::new(Mutex::new(self.index)),
            _lock: self._lock,
        })
    }

    /// Removes `tmp/` leftovers and blobs no row names. Needs [`Access::Write`].
    pub fn gc(&self) -> Result<GcReport> {
        if self.access != Access::Write {
            return Err(StageError::Refused(
                "gc needs the stage opened for writing".into(),
            ));
        }
        gc::collect(&self.blobs, &self.index)
    }
}

/// Runs `f` on an index shared between tasks (one writer at a time); a lock poisoned by a
/// panic is refused rather than trusted.
pub fn with_index<T>(
    index: &std::sync::Mutex<Index>,
    f: impl FnOnce(&mut Index) -> Result<T>,
) -> Result<T> {
    let mut guard = index
        .lock()
        .map_err(|_| StageError::Refused("the index lock was poisoned by a panic".into()))?;
    f(&mut guard)
}
