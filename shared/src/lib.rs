//! mailstage: the library shared by `mailstage-extract` and `mailstage-upload`.
//!
//! Layers, lowest first (a layer imports only those above it in this list):
//! - [`imap`]: the IMAP client, its own crate (`mailstage-imap`), re-exported here.
//! - [`catalog`]: what the admin defines (endpoints, batches and their CSV files, targets,
//!   TLS trust, where secrets come from); [`login`]: the CSV's admin login formats on an
//!   IMAP session; [`folders`]: folder-name patterns; [`oauth2`]: app-only tokens.
//! - [`stage`]: the content-addressed blob store and the SQLite index that stores the
//!   catalog and every message's state; verify, gc and the maildir audit view.
//! - [`extract`] and [`upload`]: the two pipelines (IMAP into the stage, the stage into
//!   Microsoft 365 or another IMAP server), with [`retry`], [`parallel`] and [`report`].
//! - [`commands`]: the use cases the binaries run, one module each; the binaries add only
//!   argument parsing, printing and exit codes ([`cli`] holds the options they share).

pub use mailstage_imap as imap;

pub mod catalog;
#[cfg(feature = "cli")]
pub mod cli;
pub mod commands;
pub mod crash_point;
pub mod extract;
pub mod folders;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod login;
pub mod oauth2;
pub mod parallel;
pub mod report;
pub mod retry;
pub mod shard;
pub mod stage;
pub mod upload;
