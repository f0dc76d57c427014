//! The small interface every upload transport implements, and how it logs in.

use std::future::Future;

use secrecy::SecretString;

use super::UploadError;
use super::key::ResumeKey;
use super::mapping::TargetFolders;
use crate::login::AuthChoice;
use crate::oauth2::TokenSource;

/// A message as the target receives it.
#[derive(Debug)]
pub struct Outgoing {
    /// The blob holding its bytes, open for reading.
    pub blob: std::fs::File,
    /// Its size in bytes.
    pub size: u64,
    /// Flags to set (system flags and keywords; `\Recent` is never sent).
    pub flags: Vec<String>,
    /// INTERNALDATE in IMAP's `date-time` form, as the source sent it.
    pub internaldate: Option<String>,
}

/// What the target said about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Stored; the target's id for it when it gave one.
    Stored(Option<String>),
    /// Refused for this message only (too large, malformed …), with the target's words.
    Refused(String),
}

/// A live connection to one target mailbox.
///
/// Errors are per connection: a transient one (see [`UploadError::is_transient`]) means
/// reconnect and go on; per-message refusals come back as [`Delivery::Refused`].
pub trait Destination: Send {
    /// The target mailbox's folders, their roles and its delimiter.
    fn folders(&mut self) -> impl Future<Output = Result<TargetFolders, UploadError>> + Send;
    /// Creates a folder (its parent exists).
    fn create_folder(
        &mut self,
        path: &[String],
    ) -> impl Future<Output = Result<(), UploadError>> + Send;
    /// Stores a message in a folder.
    fn append(
        &mut self,
        folder: &[String],
        message: Outgoing,
    ) -> impl Future<Output = Result<Delivery, UploadError>> + Send;
    /// How many messages in a folder carry a resume key: the Message-ID, or the
    /// INTERNALDATE to the second with a Subject, Date and From that match decoded (see
    /// [`HeaderFingerprint::matches`](super::HeaderFingerprint::matches)). A folder that no
    /// longer exists holds none; any other failure is an error (a guess of "none" would
    /// make the message be sent twice).
    fn count_matching(
        &mut self,
        folder: &[String],
        key: &ResumeKey,
    ) -> impl Future<Output = Result<u64, UploadError>> + Send;
    /// The largest message the target accepts in every folder, when it says so (IMAP:
    /// `APPENDLIMIT=N`).
    fn append_limit(&self) -> Option<u64> {
        None
    }
    /// Ends the session politely.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// How to log in to each target mailbox.
#[derive(Clone)]
pub enum Credentials {
    /// A password login: as `mailbox*admin` (SASL PLAIN with authzid where offered) when an
    /// admin is given, else as the mailbox's address.
    Password {
        /// The admin (master user), if any.
        admin: Option<String>,
        /// The admin's or the shared password, read at run time.
        secret: SecretString,
        /// LOGIN, PLAIN or auto.
        auth: AuthChoice,
    },
    /// XOAUTH2 as the mailbox with the app-only token all connections share.
    Bearer(TokenSource),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Password { admin, auth, .. } => f
                .debug_struct("Password")
                .field("admin", admin)
                .field("auth", auth)
                .finish_non_exhaustive(),
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
        }
    }
}
