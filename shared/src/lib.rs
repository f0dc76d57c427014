//! mailstage: the library shared by `mailstage-extract` and `mailstage-upload`.
//!
//! - [`stage`]: the content-addressed blob store, the SQLite index, verify, gc and the
//!   maildir audit view — everything both binaries read or write on disk.
//! - [`imap`]: the project's own IMAP client (framing with streamed literals on top of
//!   imap-proto, transports, authentication, commands).
//! - [`commands`]: command bodies both binaries share (`verify`).
//! - [`extract`]: a pass over a batch's mailboxes from IMAP into the stage.
//! - [`batch`]: endpoints and batches of mailboxes.
//! - [`folders`]: folder names (modified UTF-7).
//! - [`upload`]: staged mail into Microsoft 365 or another IMAP server, exactly once.
//! - [`report`]: tables and live progress the binaries show.
//! - [`retry`]: reconnecting with backoff, counting only attempts without progress.
//! - [`parallel`]: one task per mailbox, a bounded number at once.
//! - [`oauth2`]: app-only OAuth2 tokens (client credentials) for Microsoft 365's XOAUTH2.

pub mod batch;
#[cfg(feature = "cli")]
pub mod cli;
pub mod commands;
pub mod extract;
pub mod folders;
pub mod imap;
pub mod oauth2;
pub mod parallel;
pub mod report;
pub mod retry;
pub mod stage;
pub mod upload;
