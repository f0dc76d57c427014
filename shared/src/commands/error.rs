//! Why a command could not do its work, in words an admin can act on.

use std::path::PathBuf;

use crate::catalog::{BatchFileError, SecretError};
use crate::oauth2::TokenError;
use crate::stage::StageError;

/// A command's failure (per-mailbox failures are outcomes, not this).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The stage or its index.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// The batch CSV (every problem with its row and column).
    #[error(transparent)]
    BatchFile(#[from] BatchFileError),
    /// The request cannot be carried out as given; the text says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// A file the command needs.
    #[error("{action} {}: {source}", path.display())]
    File {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Writing the command's output failed (standard output closed, a full disk under a
    /// redirection).
    #[error("writing to standard output: {0}")]
    Output(#[source] std::io::Error),
    /// The server (source or target) cannot be reached at all: every mailbox would fail.
    #[error("cannot reach {what}: {message}\n  hint: {hint}")]
    Unreachable {
        /// `the source server`, or `the target "T" at H:P`.
        what: String,
        /// What happened.
        message: String,
        /// What to check.
        hint: String,
    },
    /// A target's secret cannot be read.
    #[error("target {target:?}: {source}")]
    Secret {
        /// The target.
        target: String,
        /// Why.
        source: SecretError,
    },
    /// No access token can be had (wrong secret, unknown tenant …).
    #[error("target {target:?}: {action}: {source}")]
    Token {
        /// The target.
        target: String,
        /// What was being done.
        action: &'static str,
        /// Entra ID's answer, with a hint.
        source: TokenError,
    },
    /// The async runtime could not start.
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// A command's result.
pub type Result<T> = std::result::Result<T, CommandError>;

/// The multi-threaded runtime a pipeline runs on (two workers: the work is I/O-bound and
/// hashing runs on rayon).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)
}
