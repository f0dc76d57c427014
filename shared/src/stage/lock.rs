//! The stage lock: one writing process at a time, readers alongside each other.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::{IoContext, Result, StageError};

/// How a process uses the stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads only (verify, status, maildir view); shares the stage with other readers.
    Read,
    /// Writes blobs and rows (extract, upload, gc); excludes every other process.
    Write,
}

/// How long opening a stage waits for the lock before giving up.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(2);

/// An advisory lock on `root/lock`, held for as long as the value lives.
#[derive(Debug)]
pub struct StageLock {
    _file: File,
}

impl StageLock {
    /// Takes the lock, waiting up to [`LOCK_PATIENCE`] for a holder that is just letting go
    /// (a process exiting, or a child forked by this one that has not yet exec'ed and still
    /// shares the descriptor); [`StageError::Busy`] after that.
    pub fn acquire(root: &Path, access: Access) -> Result<Self> {
        let path = root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at("open lock file", &path)?;
        let deadline = Instant::now() + LOCK_PATIENCE;
        loop {
            let taken = match access {
                Access::Read => file.try_lock_shared(),
                Access::Write => file.try_lock(),
            };
            match taken {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => return Err(StageError::Busy(root.to_path_buf())),
                Err(TryLockError::Error(e)) => return Err(e).at("lock", path),
            }
        }
    }
}
