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
#[derive(Debug)]
pub enum Delivery {
    /// Stored; the target's id for it when it gave one.
    Stored(Option<String>),
    /// Stored, but its `\Flagged` is still to be set by [`Destination::set_flagged`] with
    /// this id (`uidvalidity:uid`) once no answer is outstanding: Microsoft 365 drops it
    /// from the APPEND.
    StoredToFlag(String),
    /// Refused for this message only (too large, malformed …), with the target's words.
    Refused(String),
    /// Refused because of the folder (it does not exist, no permission …): its other
    /// messages would be refused alike. The target's words.
    FolderRefused(String),
    /// Refused because the folder does not exist (`[TRYCREATE]`: deleted on the target while
    /// the run sends to it). The target's words.
    FolderMissing(String),
    /// Refused because the whole target mailbox is full (over quota). The target's words.
    MailboxFull(String),
}

/// The copies of a message a target folder holds, found by its resume key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matching {
    /// The folder's UIDVALIDITY (0 when the folder is gone).
    pub uid_validity: u32,
    /// Their UIDs, ascending.
    pub uids: Vec<u32>,
}

/// A live connection to one target mailbox.
///
/// Errors are per connection: a transient one (see [`UploadError::is_transient`]) means
/// reconnect and go on; per-message refusals come back as `Delivery::Refused`.
pub trait Destination: Send {
    /// The target mailbox's folders, their roles and its delimiter.
    fn folders(&mut self) -> impl Future<Output = Result<TargetFolders, UploadError>> + Send;
    /// Creates a folder (its parent exists). `Ok(Some(words))` when the target refused it
    /// (its messages then fail with those words; the rest of the mailbox goes on); a full
    /// mailbox is [`UploadError::TargetFull`].
    fn create_folder(
        &mut self,
        path: &[String],
    ) -> impl Future<Output = Result<Option<String>, UploadError>> + Send;
    /// Starts storing a message in a folder; its answer comes later from
    /// [`Destination::answer`] with `ticket`. An error means the link failed: no answer will
    /// come for this message, but answers to those sent before it may still come from
    /// [`Destination::answer`] until it fails.
    fn start_append(
        &mut self,
        folder: &[String],
        message: Outgoing,
        ticket: u64,
    ) -> impl Future<Output = Result<(), UploadError>> + Send;
    /// True when a message of `size` bytes may be started while others are still
    /// unanswered (IMAP: LITERAL+); otherwise every answer is awaited before it starts.
    fn sends_ahead(&self, size: u64) -> bool;
    /// The answer to one of the started messages: its ticket, and what became of it (an
    /// error inside, such as a throttle, is the target's answer for that message only).
    /// An error outside means the link failed: no more answers will come. Call it only
    /// while a started message is unanswered.
    fn answer(
        &mut self,
    ) -> impl Future<Output = Result<(u64, Result<Delivery, UploadError>), UploadError>> + Send;
    /// The messages in a folder that carry a resume key: the Message-ID, or the
    /// INTERNALDATE to the second with a Subject, Date and From that match decoded (see
    /// [`HeaderFingerprint::matches`](super::HeaderFingerprint::matches)). A folder that no
    /// longer exists holds none; any other failure is an error (a guess of "none" would
    /// make the message be sent twice).
    fn matching(
        &mut self,
        folder: &[String],
        key: &ResumeKey,
    ) -> impl Future<Output = Result<Matching, UploadError>> + Send;
    /// Sets `\Flagged` on a message the target stored earlier, by the id it gave
    /// (`uidvalidity:uid`). `Ok(None)`: set; `Ok(Some(words))`: the target refused it, or
    /// the message can no longer be named by that id (the folder is gone or its UIDVALIDITY
    /// changed); an error when the conversation failed (throttled, link broken).
    fn set_flagged(
        &mut self,
        folder: &[String],
        id: &str,
    ) -> impl Future<Output = Result<Option<String>, UploadError>> + Send;
    /// What each folder shows of the messages it holds, in order, to tell when they stop
    /// growing (IMAP: STATUS UIDNEXT and MESSAGES, pipelined: one round trip for them all).
    /// `None` for a folder the target will not say of (gone, or STATUS refused there); an
    /// error when the conversation failed.
    fn folder_marks(
        &mut self,
        folders: &[Vec<String>],
    ) -> impl Future<Output = Result<Vec<Option<(u32, u32)>>, UploadError>> + Send;
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
    /// admin is given, else as the mailbox's address; with a user root, as the admin itself.
    Password {
        /// The admin (master user), if any.
        admin: Option<String>,
        /// Where an admin that cannot log in as another user finds each mailbox (Courier:
        /// `/#shared/{user}`, levels separated by `/`; `{user}` is the target mailbox): the
        /// admin logs in as itself, the root is the mailbox's INBOX and its folders are
        /// beneath it.
        user_root: Option<String>,
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
            Credentials::Password {
                admin,
                auth,
                user_root,
                ..
            } => f
                .debug_struct("Password")
                .field("admin", admin)
                .field("user_root", user_root)
                .field("auth", auth)
                .finish_non_exhaustive(),
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
        }
    }
}
