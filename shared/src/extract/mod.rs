//! Extraction: whole mailboxes from an IMAP server into the stage, as Microsoft's IMAP
//! migration defines a pass (see the README's *Migrating a batch*).
//!
//! Per mailbox: log in, list its mail folders ([`folders`]), then three phases:
//! 1. per folder, EXAMINE and fetch the metadata (`UID RFC822.SIZE INTERNALDATE FLAGS`) of
//!    UIDs not yet recorded, written to the index as it arrives, plus flag changes since the
//!    last HIGHESTMODSEQ with CONDSTORE;
//! 2. apply the caps across the mailbox, in SQL (`plan`): over the size cap →
//!    `skipped_size`, beyond the newest N → `skipped_item_cap`;
//! 3. per folder, walking its listed messages in chunks, fetch the bodies with pipelined `UID FETCH … BODY.PEEK[]`, streamed into
//!    blobs, and commit rows in UID order in groups after their blobs are durable
//!    (`bodies`), so "every UID up to `highest_uid` has a row" holds at every instant and
//!    an interrupted pass resumes where it stopped; a body cut part-way is kept and
//!    continued from where it stopped (`resume`).
//!
//! Mailboxes run in parallel up to the endpoint's limit; transient failures reconnect with
//! backoff and resume.

mod attempt_progress;
mod bodies;
mod bodies_pass;
mod commits;
#[cfg(feature = "fuzzing")]
pub(crate) use bodies::message_id;
mod context;
mod deletions;
mod flags;
pub mod folders;
pub(crate) mod listing;
mod mailbox;
pub mod namespaces;
mod plan;
mod prefetch;
mod refused;
mod resume;
mod run;
pub mod sizing;
mod summary;
mod unchanged;

use std::time::Duration;

use secrecy::SecretString;

pub use crate::retry::RetryPolicy;
pub use run::run_pass;

use crate::imap::ImapStepError;
use crate::imap::transport::ConnectOptions;
use crate::login::AuthChoice;

/// First pass or incremental pass (they differ only in the concurrency limit that applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `batch start`: MaxConcurrentMigrations.
    Full,
    /// `batch sync`: MaxConcurrentIncrementalSyncs.
    Incremental,
}

/// What a pass may take from each mailbox.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Larger messages are recorded `skipped_size` and never downloaded.
    pub max_message_size: u64,
    /// At most this many messages staged per mailbox, the newest by INTERNALDATE.
    pub max_items: u64,
    /// Only folders matching one of these (decoded path, `*` and `?` wildcards), if any.
    pub include: Vec<String>,
    /// Folders matching any of these are left out.
    pub exclude: Vec<String>,
    /// Other users' or shared namespaces read besides the personal one, each staged under
    /// its subtree ([`namespaces::ForeignNamespace::subtree`]).
    pub include_namespaces: Vec<namespaces::ForeignNamespace>,
}

/// One mailbox to extract (a CSV row joined with its index row).
#[derive(Debug)]
pub struct MailboxJob {
    /// The mailbox's row in the index.
    pub mailbox_id: i64,
    /// Its EmailAddress (for messages and progress).
    pub email: String,
    /// The login (`UserName`, possibly an admin format).
    pub user_name: String,
    /// Its password, read from the CSV for this run only.
    pub password: SecretString,
    /// The Courier-style subtree this user's folders start at.
    pub user_root: Option<String>,
}

/// Everything a pass needs.
#[derive(Debug)]
pub struct PassJob {
    /// The batch's name (for events).
    pub batch: String,
    /// How to reach the server.
    pub connect: ConnectOptions,
    /// How to log in.
    pub auth: AuthChoice,
    /// The batch's caps and folder filters.
    pub limits: Limits,
    /// Reconnections after transient failures.
    pub retry: RetryPolicy,
    /// Mailboxes at once.
    pub concurrency: usize,
    /// The mailboxes.
    pub mailboxes: Vec<MailboxJob>,
}

/// What one mailbox's pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxCounts {
    /// Folders read.
    pub folders: u64,
    /// Messages newly staged.
    pub staged: u64,
    /// Their bytes.
    pub staged_bytes: u64,
    /// Of those, identical to a blob already stored.
    pub deduplicated: u64,
    /// Newly recorded as over the size cap.
    pub skipped_size: u64,
    /// Newly recorded as beyond the item cap.
    pub skipped_item_cap: u64,
    /// Messages that failed this time (retried next pass).
    pub failed: u64,
    /// Messages whose flags changed on the server.
    pub flags_updated: u64,
    /// Folders whose UIDVALIDITY changed (re-read).
    pub folders_restarted: u64,
    /// Folders the server no longer lists.
    pub folders_gone: u64,
    /// Messages noticed expunged on the source since the last pass (kept in the stage,
    /// stamped `deleted_on_source`).
    pub deleted_on_source: u64,
    /// Folders read whose name is not canonical modified UTF-7 (staged by their wire bytes,
    /// named lossily).
    pub folders_not_mutf7: u64,
    /// Reconnections after transient failures.
    pub reconnects: u64,
    /// Folders of other users' and shared namespaces that were seen and left out (not this
    /// user's own mail), as the server names them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out_namespaces: Vec<String>,
    /// Messages whose literal was not as long as their RFC822.SIZE said (some Exchange
    /// versions announce the stored size): staged as sent, since the literal is the message.
    pub size_mismatches: u64,
    /// Messages continued from a partial body kept when a link broke, instead of from
    /// byte 0 (a ranged fetch).
    pub resumed: u64,
    /// Bytes of bodies cut part-way that were kept to resume from (progress for the retry
    /// rule, like a committed message).
    pub partial_bytes: u64,
}

/// The result of one mailbox's pass.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MailboxOutcome {
    /// The mailbox's address.
    pub email: String,
    /// What was done (also when it failed part-way).
    pub counts: MailboxCounts,
    /// Why it failed, naming the folder when there is one.
    pub error: Option<String>,
}

/// Where a pass reports: bodies to fetch once the caps are applied, then messages and bytes
/// durably staged.
pub type SharedProgress = std::sync::Arc<dyn crate::report::RunProgress<MailboxOutcome>>;

/// Why a mailbox's pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The IMAP conversation failed; the context names the step and folder ("login as x",
    /// "EXAMINE \"INBOX\"", …).
    #[error(transparent)]
    Imap(#[from] ImapStepError),
    /// The stage refused a write.
    #[error(transparent)]
    Stage(#[from] crate::stage::StageError),
    /// The login sees no folder to read (a UserRoot that matches nothing, an admin login into
    /// a user that does not exist): nothing to migrate is not a success.
    #[error("{mailbox}: nothing to migrate: {hint}")]
    NothingToMigrate {
        /// The mailbox's address.
        mailbox: String,
        /// What to check, naming the login or the UserRoot.
        hint: String,
    },
    /// A folder's UIDVALIDITY changed between its listing and its bodies' fetch in the same
    /// pass: the UIDs listed name other messages now, so nothing of it is fetched; the next
    /// attempt reads the folder again.
    #[error(
        "{mailbox}: folder {folder:?} changed UIDVALIDITY during the pass ({listed} when listed, {now} now); reading it again"
    )]
    UidValidityChanged {
        /// The mailbox's address.
        mailbox: String,
        /// The folder's name.
        folder: String,
        /// UIDVALIDITY when its messages were listed.
        listed: u32,
        /// UIDVALIDITY when it was opened for the bodies.
        now: u32,
    },
    /// Folders the server refused to open or list (EXAMINE or their metadata FETCH answered
    /// NO): the pass read the others, and the mailbox is not done until these are read or
    /// excluded.
    #[error(
        "{mailbox}: {} folder(s) could not be read (the other folders were staged): {}; the next pass tries again, or leave such a folder out with --exclude-folder",
        refused.len(), refused.join("; ")
    )]
    FoldersNotOpened {
        /// The mailbox's address.
        mailbox: String,
        /// Each folder's name and the server's answer.
        refused: Vec<String>,
    },
    /// Transient failures went on without any progress until the retries ran out.
    #[error(
        "{mailbox}: gave up after {attempts} attempts in a row without progress; the last one failed at {last}"
    )]
    GaveUp {
        /// The mailbox's address.
        mailbox: String,
        /// Attempts in a row that made no progress.
        attempts: u32,
        /// The last attempt's failure.
        last: Box<ExtractError>,
    },
}

impl ExtractError {
    /// True when reconnecting may help (connection lost, timeout, BYE, throttling).
    pub fn is_transient(&self) -> bool {
        match self {
            ExtractError::Imap(e) => e.is_transient(),
            ExtractError::UidValidityChanged { .. } => true,
            _ => false,
        }
    }

    /// The wait the server asked for, when it throttled.
    pub fn throttle_backoff(&self) -> Option<Duration> {
        match self {
            ExtractError::Imap(e) => e.throttle_backoff(),
            _ => None,
        }
    }

    /// Names the message a fetch stopped at in the context of an IMAP error.
    pub(crate) fn stopped_at(self, uid: u32, size: u64) -> Self {
        match self {
            ExtractError::Imap(mut e) => {
                e.context = format!("{} (stopped at UID {uid}, {size} bytes)", e.context);
                ExtractError::Imap(e)
            }
            other => other,
        }
    }
}
