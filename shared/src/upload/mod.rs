//! Upload: staged mail into the target mailboxes (Microsoft 365 over IMAP with app-only
//! OAuth2, or any IMAP server), exactly once.
//!
//! Per mailbox: log in to the target as that mailbox, list its folders, map the source
//! folders ([`mapping`]), create what is missing, resolve messages a previous run left
//! `in_flight` (looked for on the target by their [`ResumeKey`] — the Message-ID, or without
//! a usable one the INTERNALDATE to the second and the decoded Subject, Date and From — and
//! re-sent only if absent), then APPEND the queue in groups: a group is marked `in_flight`
//! in one transaction before the first byte is sent and its results are recorded in one
//! transaction after. The target sits behind the small
//! [`Destination`] trait ([`imap_target`] implements it) so other transports slot in.
//!
//! A dry run stops after the mapping and predicts what the target will not store: messages
//! over its size limit (APPENDLIMIT, or Exchange Online's default), lines Exchange refuses
//! ([`long_lines`]), and messages refused last time.

mod case_merge;
mod context;
mod create;
mod destination;
pub(crate) mod fingerprint;
mod flag_atoms;
mod flags;
mod home;
mod imap_append;
pub mod imap_target;
pub(crate) mod key;
pub mod long_lines;
mod mailbox;
pub mod mapping;
mod pace;
mod pipeline;
mod plan;
mod predict;
mod refusal;
mod run;
mod send;
mod setbacks;
mod summary;

use std::sync::Arc;

pub use destination::{Credentials, Destination, Outgoing};
pub use fingerprint::HeaderFingerprint;
pub use key::ResumeKey;
pub use mapping::{MappedFolder, MappingRules};
pub use pace::{Pace, RateLimits};
pub use plan::TargetView;
pub(crate) use plan::plan_offline;
pub use predict::{EXCHANGE_DEFAULT_MAX_SIZE, LimitSource, PredictedSkip, SizeLimit, SkipReason};
pub use run::run_upload;

use crate::catalog::TargetSettings;
use crate::imap::transport::ConnectOptions;

/// One source mailbox to upload, and the target mailbox it goes into.
#[derive(Clone, Debug)]
pub struct MailboxUpload {
    /// The mailbox's row in the index.
    pub mailbox_id: i64,
    /// Its EmailAddress (how it is named in reports).
    pub email: String,
    /// The target mailbox: the CSV's `TargetUserName` when given, else the EmailAddress.
    pub target_mailbox: String,
}

impl MailboxUpload {
    /// The upload of a batch's mailbox as the index records it.
    pub fn of(m: crate::stage::index::MailboxInfo) -> Self {
        Self {
            mailbox_id: m.id,
            target_mailbox: m.target_user.unwrap_or_else(|| m.email.clone()),
            email: m.email,
        }
    }

    /// The target mailbox as upload records name it: lower-cased, so `Alice@X` and
    /// `alice@x` are one mailbox (as they are on Microsoft 365).
    pub fn record_key(&self) -> String {
        self.target_mailbox.to_ascii_lowercase()
    }

    /// How messages name it: see [`mailbox_label`].
    pub fn label(&self) -> String {
        mailbox_label(&self.email, &self.target_mailbox)
    }
}

/// `email`, or `email -> target` when the target mailbox differs.
pub fn mailbox_label(email: &str, target_mailbox: &str) -> String {
    if target_mailbox.eq_ignore_ascii_case(email) {
        email.to_owned()
    } else {
        format!("{email} -> {target_mailbox}")
    }
}

/// Everything an upload run needs.
pub struct UploadJob {
    /// The batch's name (for events).
    pub batch: String,
    /// The target as the catalog holds it: its name is the key of its upload records, its
    /// kind says whether Microsoft 365's folder names and quirks apply.
    pub target: TargetSettings,
    /// How to reach the target's IMAP server.
    pub connect: ConnectOptions,
    /// How to log in as each mailbox.
    pub credentials: Credentials,
    /// Folder renames and exclusions.
    pub rules: MappingRules,
    /// Mailboxes at once.
    pub concurrency: usize,
    /// Connections per mailbox, each sending groups from the mailbox's queue. The most
    /// APPENDs in flight across the run is `concurrency × connections`, lowered while the
    /// target throttles.
    pub connections: usize,
    /// The admin's ceilings on messages and bytes per second.
    pub rates: RateLimits,
    /// Plan only: list the target's folders, map, count and predict the skips; create and
    /// send nothing.
    pub dry_run: bool,
    /// Reconnecting after transient failures (backoff, attempts without progress, read
    /// timeout).
    pub retry: crate::retry::RetryPolicy,
    /// The mailboxes.
    pub mailboxes: Vec<MailboxUpload>,
}

/// What one mailbox's run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UploadCounts {
    /// Target folders created.
    pub folders_created: u64,
    /// Messages confirmed by the target in this run.
    pub uploaded: u64,
    /// Their bytes.
    pub uploaded_bytes: u64,
    /// Messages a crash left in flight that were found on the target (not re-sent).
    pub found_present: u64,
    /// Messages a crash left in flight that were absent and sent again.
    pub resent: u64,
    /// Messages of folders re-read after a UIDVALIDITY change whose upload records carried
    /// over from their retired copies: confirmed ones are not sent again, in-flight ones are
    /// looked for on the target like any other.
    pub adopted: u64,
    /// Messages the target refused (recorded with its words).
    pub refused: u64,
    /// Messages set aside because the link broke while each was being sent, or the target
    /// answered "not now" to each, again and again (recorded as failed with that reason;
    /// the next run tries them again).
    pub set_aside: u64,
    /// Messages stored earlier whose `\Flagged` (a STORE after the APPEND on Microsoft 365)
    /// was throttled, cut or refused then, and was set in this run without sending them
    /// again.
    pub flags_set_later: u64,
    /// Stored messages whose `\Flagged` is still not set at the end of the run (the target
    /// refused the STORE; recorded with its words, tried again by the next run).
    pub flags_pending: u64,
    /// Messages in folders left out by the mapping.
    pub left_out: u64,
    /// Reconnections after transient failures.
    pub reconnects: u64,
    /// Times the target asked to back off, and the milliseconds waited for it.
    pub throttled: u64,
    /// Milliseconds waited because the target throttled.
    pub throttle_wait_ms: u64,
    /// For a dry run: messages and bytes that would be sent.
    pub planned: u64,
    /// Bytes that would be sent.
    pub planned_bytes: u64,
    /// For a dry run: messages the target is expected to refuse (over its size limit, or
    /// lines Exchange refuses).
    pub predicted_refusals: u64,
    /// For a dry run: messages the target refused last time, which a real run retries.
    pub refused_before: u64,
}

/// The result of one mailbox's run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UploadOutcome {
    /// The mailbox's address.
    pub email: String,
    /// The target mailbox it went into.
    pub target_mailbox: String,
    /// What was done.
    pub counts: UploadCounts,
    /// Where each source folder goes.
    pub folders: Vec<MappedFolder>,
    /// Target folders the target refused in this run, with its words.
    pub refused_folders: Vec<RefusedFolder>,
    /// Why the run failed, naming the mailbox's step.
    pub error: Option<String>,
    /// For a dry run: the target's size limit, when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<SizeLimit>,
    /// For a dry run: messages expected not to arrive (or refused last time), by source
    /// folder name, then UID.
    pub predicted_skips: Vec<PredictedSkip>,
    /// For a dry run: the server's words at the most recent refusal of a message a real run
    /// sends again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<String>,
    /// Whether this was a dry run (its line tells the plan, not what was sent).
    #[serde(skip)]
    pub dry_run: bool,
}

/// A target folder the target refused (its CREATE, or an APPEND into it, answered NO):
/// its messages failed with the server's words and are tried again by the next run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RefusedFolder {
    /// The target folder, its parts joined by `/`.
    pub folder: String,
    /// Its path.
    #[serde(skip)]
    pub path: Vec<String>,
    /// What the target said.
    pub words: String,
    /// Messages refused with it in this run.
    pub messages: u64,
}

/// Why a mailbox's run stopped.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The IMAP conversation failed; the context names the step.
    #[error(transparent)]
    Imap(#[from] crate::imap::ImapStepError),
    /// No token could be had for XOAUTH2.
    #[error("getting an access token: {0}")]
    Token(String),
    /// No token could be had for now (the token endpoint down, throttling, a timeout):
    /// reconnect later, as after a dropped link.
    #[error("getting an access token (for now): {0}")]
    TokenForNow(String),
    /// Upload records of this target say the mailbox's messages went to another target
    /// mailbox than the batch names now (its `TargetUserName` changed).
    #[error(
        "its messages went to {recorded} on this target, but the batch now names {now} as its \
         target mailbox; put the CSV's TargetUserName back, or create another target (mailstage-upload \
         target new) to upload into {now} so the records of what {recorded} holds are kept"
    )]
    TargetMoved {
        /// The target mailbox the records name.
        recorded: String,
        /// The one the batch names now.
        now: String,
    },
    /// Attempts in a row failed without progress (transient failures that never let a
    /// message through).
    #[error(
        "gave up after {attempts} attempts in a row without progress; the last one failed at {last}"
    )]
    GaveUp {
        /// Attempts in a row that made no progress.
        attempts: u32,
        /// The last attempt's failure.
        last: Box<UploadError>,
    },
    /// The stage refused a read or write.
    #[error(transparent)]
    Stage(#[from] crate::stage::StageError),
    /// The target refused a command for a passing reason (RFC 5530 `UNAVAILABLE`, `INUSE`;
    /// Dovecot's `ALREADYEXISTS` when two connections create a new mailbox's INBOX at once):
    /// reconnect and send again.
    #[error("the target asked to try again: {0}")]
    TryAgain(String),
    /// The target refused a message because the whole target mailbox is full (over its
    /// quota): nothing more can go in until an admin makes room.
    #[error(
        "target mailbox full after {messages} message(s) / {} in this run: raise its quota or \
         enable its archive, then run again (the rest stays pending; the server said: {words})",
        megabytes(*bytes)
    )]
    TargetFull {
        /// The server's words.
        words: String,
        /// Messages the target took in this run before it was full.
        messages: u64,
        /// Their bytes.
        bytes: u64,
    },
}

/// Bytes as megabytes with one decimal (`5.2 MB`).
fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl UploadError {
    /// True when reconnecting may help (connection lost, timeout, BYE, throttling).
    pub fn is_transient(&self) -> bool {
        matches!(self, UploadError::TryAgain(_) | UploadError::TokenForNow(_))
            || matches!(self, UploadError::Imap(e) if e.is_transient())
    }

    /// True when the server answered the command (a tagged NO or BAD, a throttle among
    /// them): whatever was being sent was certainly not stored.
    pub fn was_answered(&self) -> bool {
        matches!(self, UploadError::TryAgain(_))
            || matches!(self, UploadError::Imap(e) if matches!(e.source, crate::imap::ImapError::Rejected { .. }))
    }

    /// The wait the target asked for, when it throttled.
    pub fn throttle_backoff(&self) -> Option<std::time::Duration> {
        match self {
            UploadError::Imap(e) => e.throttle_backoff(),
            _ => None,
        }
    }
}

/// Where a run reports: messages and bytes to send, then those the target confirmed.
pub type SharedProgress = Arc<dyn crate::report::RunProgress<UploadOutcome>>;

/// True when the flags include `\Flagged`.
pub(crate) fn is_flagged(flags: &[String]) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case("\\Flagged"))
}
