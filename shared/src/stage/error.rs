//! The error type of the stage (blob store, index, verify, gc, maildir view).

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing the stage.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A filesystem operation failed; `path` says on what.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("create", "fsync", "rename", …).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The SQLite index refused an operation.
    #[error("index {path}: {source}")]
    Sqlite {
        /// The index file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Another process holds the stage's lock.
    #[error(
        "stage {0} is in use by another mailstage process (lock file {0}/lock); wait for it to finish"
    )]
    Busy(PathBuf),
    /// The index was written by a newer mailstage than this one.
    #[error(
        "index {path} has schema version {found}, newer than the {supported} this mailstage knows; upgrade mailstage"
    )]
    SchemaTooNew {
        /// The index file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build can read.
        supported: i64,
    },
    /// A string that should be a SHA-256 hex digest is not one.
    #[error("not a blob name (64 lowercase hex digits): {0:?}")]
    BadBlobName(String),
    /// A named object (batch, endpoint, …) does not exist.
    #[error("no {kind} named {name:?} in this stage")]
    NotFound {
        /// What kind of object ("batch", "endpoint", …).
        kind: &'static str,
        /// The name that was asked for.
        name: String,
    },
    /// The request cannot be carried out as asked; the text says why.
    #[error("{0}")]
    Refused(String),
}

/// Short alias used throughout the stage.
pub type Result<T, E = StageError> = std::result::Result<T, E>;

/// Adds the path and the action to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Wraps the error as [`StageError::Io`].
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StageError::Io {
            action,
            path: path.into(),
            source,
        })
    }
}
