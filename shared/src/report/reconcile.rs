//! The migration report's model: per batch → mailbox → folder, what the source reported,
//! what was staged, skipped (and why), failed, excluded, uploaded, refused and pending, with
//! the source count reconciled and a data consistency grade; per message, those that need
//! attention (or all). Built from the index by [`BatchReport::build`].

use std::io::Read;

use super::grade::{Grade, GradeFacts, grade_mailbox};
use crate::stage::index::{FolderTally, MailboxState, MessageTrail, RatePoint, SIZE_BOUNDS, Tally};
use crate::stage::{BlobHash, Stage, StageError};

/// Counts and bytes by state, for a folder, a mailbox or a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Messages the source reported in the folders read, where recorded.
    pub source: u64,
    /// Staged.
    pub staged: Tally,
    /// Left behind over the batch's size cap.
    pub skipped_size: Tally,
    /// Left behind beyond the batch's item cap.
    pub skipped_item_cap: Tally,
    /// Failed on the source (retried by the next pass).
    pub failed: Tally,
    /// Messages in folders the batch's patterns exclude (the source's STATUS count).
    pub excluded: u64,
    /// Source messages not accounted for: source − staged − skipped − failed, summed over
    /// folders with a source count (negative: more recorded than the source now reports).
    pub unexplained: i64,
    /// Confirmed by the target.
    pub uploaded: Tally,
    /// Refused by the target.
    pub refused: Tally,
    /// Sent without a confirmation recorded.
    pub in_flight: Tally,
    /// Staged and not yet sent to the target (0 without a target).
    pub pending: Tally,
}

impl Counts {
    /// Messages the batch's caps left behind.
    pub fn skipped(&self) -> u64 {
        self.skipped_size.messages + self.skipped_item_cap.messages
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.source += o.source;
        self.staged += o.staged;
        self.skipped_size += o.skipped_size;
        self.skipped_item_cap += o.skipped_item_cap;
        self.failed += o.failed;
        self.excluded += o.excluded;
        self.unexplained += o.unexplained;
        self.uploaded += o.uploaded;
        self.refused += o.refused;
        self.in_flight += o.in_flight;
        self.pending += o.pending;
    }
}

/// One folder of a mailbox.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FolderReport {
    /// Its name on the source.
    pub name: String,
    /// `active` (read), `gone` (no longer on the source) or `excluded`.
    pub state: String,
    /// Why it is excluded.
    pub note: Option<String>,
    /// What the source reported at the last pass, if recorded.
    pub source_messages: Option<u64>,
    /// When.
    pub source_checked_at: Option<String>,
    /// Its counts.
    pub counts: Counts,
    /// The target folders its messages went to.
    pub target_folders: Vec<String>,
}

/// One message that needs attention (or any, with `--all`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ItemReport {
    /// The source folder.
    pub folder: String,
    /// Its UID there.
    pub uid: u32,
    /// Its Message-ID.
    pub message_id: Option<String>,
    /// Its Subject, decoded (only for staged messages: a skipped one was never read).
    pub subject: Option<String>,
    /// INTERNALDATE.
    pub date: Option<String>,
    /// RFC822.SIZE.
    pub size: u64,
    /// Where it stands: `staged`, `skipped_size`, `skipped_item_cap`, `failed`, `uploaded`,
    /// `refused`, `in_flight` or `pending`.
    pub state: String,
    /// Why, in words (the cap, or the failure).
    pub reason: Option<String>,
    /// The server's own words (the source's for a failure, the target's for a refusal).
    pub server_words: Option<String>,
    /// The target folder.
    pub target_folder: Option<String>,
    /// APPENDUID (`uidvalidity:uid`).
    pub target_id: Option<String>,
}

/// One mailbox.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MailboxReport {
    /// The source address.
    pub email: String,
    /// The extraction state.
    pub state: MailboxState,
    /// The last pass's error.
    pub last_error: Option<String>,
    /// When its last pass finished.
    pub last_sync_at: Option<String>,
    /// The target mailbox (with a target).
    pub target_mailbox: Option<String>,
    /// The last upload run's state (with a target).
    pub upload_state: Option<String>,
    /// The last upload run's error.
    pub upload_error: Option<String>,
    /// Its grade.
    pub grade: Grade,
    /// What to read, in words (unexplained differences, failures, …).
    pub findings: Vec<String>,
    /// Its totals.
    pub counts: Counts,
    /// Its folders, by name.
    pub folders: Vec<FolderReport>,
    /// Its messages that need attention (every message with `--all`).
    pub items: Vec<ItemReport>,
}

/// An admin's approval of a batch's skipped items (`batch approve-skipped`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Approval {
    /// When.
    pub at: String,
    /// What was approved, in words.
    pub detail: String,
}

/// The whole report of one batch, for one phase or both.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BatchReport {
    /// The batch.
    pub batch: String,
    /// The target (for the upload report), if any.
    pub target: Option<String>,
    /// When the report was made (UTC).
    pub generated_at: String,
    /// The batch's size cap in bytes.
    pub max_message_size: u64,
    /// The batch's item cap per mailbox.
    pub max_items: u64,
    /// The batch's grade (its worst mailbox's).
    pub grade: Grade,
    /// Its totals.
    pub counts: Counts,
    /// Mailboxes by grade.
    pub grades: std::collections::BTreeMap<Grade, u64>,
    /// Approvals of skipped items, oldest first.
    pub approvals: Vec<Approval>,
    /// Its mailboxes, by address.
    pub mailboxes: Vec<MailboxReport>,
    /// Messages per size bucket: `size_bounds[i]` is bucket `i`'s exclusive upper bound.
    pub size_histogram: Vec<u64>,
    /// The histogram's bounds (bytes).
    pub size_bounds: Vec<u64>,
    /// Messages staged (or, with a target, confirmed) per interval, oldest first.
    pub throughput: Vec<RatePoint>,
    /// The interval of `throughput`, in seconds.
    pub throughput_seconds: u64,
}

/// What a report is asked for.
#[derive(Clone, Debug, Default)]
pub struct ReportRequest {
    /// The batch.
    pub batch: String,
    /// The target, for the upload report.
    pub target: Option<String>,
    /// Every message, not only those that need attention.
    pub all: bool,
}

/// The event kind `batch approve-skipped` records.
pub const APPROVAL_EVENT: &str = "batch.approve_skipped";

/// How many points the throughput chart has at most.
const THROUGHPUT_POINTS: u64 = 60;

impl BatchReport {
    /// Builds the report of `req.batch` from the stage's index (and, for subjects, the
    /// headers of the staged blobs that need attention).
    pub fn build(stage: &Stage, req: &ReportRequest) -> Result<Self, StageError> {
        let index = stage.index();
        let info = index.batch(&req.batch)?;
        let target = req.target.as_deref();
        let tallies = index.folder_tallies(&req.batch, target)?;
        let trails = index.message_trails(&req.batch, target, req.all)?;
        let runs = match target {
            Some(t) => index.upload_status(&req.batch, t)?,
            None => Vec::new(),
        };
        let approvals = index
            .events()?
            .into_iter()
            .filter(|e| e.kind == APPROVAL_EVENT && e.batch.as_deref() == Some(&req.batch))
            .map(|e| Approval {
                at: e.at,
                detail: e.detail,
            })
            .collect();
        let mut mailboxes = Vec::new();
        for mb in index.mailboxes(&req.batch)? {
            let folders: Vec<&FolderTally> =
                tallies.iter().filter(|t| t.email == mb.email).collect();
            let items: Vec<ItemReport> = trails
                .iter()
                .filter(|t| t.email == mb.email)
                .map(|t| item_of(stage, t, target.is_some()))
                .collect();
            let run = runs.iter().find(|r| r.email == mb.email);
            let mut m = MailboxReport {
                email: mb.email.clone(),
                state: mb.state,
                last_error: mb.last_error.clone(),
                last_sync_at: mb.last_sync_at.clone(),
                target_mailbox: run.map(|r| r.target_mailbox.clone()),
                upload_state: run.and_then(|r| r.state.clone()),
                upload_error: run.and_then(|r| r.last_error.clone()),
                grade: Grade::Perfect,
                findings: Vec::new(),
                counts: Counts::default(),
                folders: folders
                    .iter()
                    .filter_map(|f| folder_of(f, target.is_some()))
                    .collect(),
                items,
            };
            grade(&mut m, target.is_some());
            mailboxes.push(m);
        }
        let mut counts = Counts::default();
        let mut grades: std::collections::BTreeMap<Grade, u64> =
            [Grade::Perfect, Grade::Good, Grade::Investigate, Grade::Poor]
                .into_iter()
                .map(|g| (g, 0))
                .collect();
        for m in &mailboxes {
            counts += m.counts;
            *grades.entry(m.grade).or_default() += 1;
        }
        let throughput_seconds = match index.activity_span(&req.batch, target)? {
            Some((a, b)) => span_seconds(&a, &b).div_ceil(THROUGHPUT_POINTS).max(1),
            None => 1,
        };
        Ok(BatchReport {
            batch: req.batch.clone(),
            target: req.target.clone(),
            generated_at: now_utc(),
            max_message_size: info.settings.max_message_size,
            max_items: info.settings.max_items,
            grade: mailboxes
                .iter()
                .map(|m| m.grade)
                .max()
                .unwrap_or(Grade::Perfect),
            counts,
            grades,
            approvals,
            mailboxes,
            size_histogram: index.size_histogram(&req.batch)?,
            size_bounds: SIZE_BOUNDS.to_vec(),
            throughput: index.throughput(&req.batch, target, throughput_seconds)?,
            throughput_seconds,
        })
    }

    /// Every item of every mailbox, with its mailbox's address.
    pub fn items(&self) -> impl Iterator<Item = (&str, &ItemReport)> {
        self.mailboxes
            .iter()
            .flat_map(|m| m.items.iter().map(move |i| (m.email.as_str(), i)))
    }
}

/// A folder's report from its tallies (`None` for a mailbox's placeholder row without one).
fn folder_of(t: &FolderTally, with_target: bool) -> Option<FolderReport> {
    let name = t.folder.clone()?;
    let mut c = Counts {
        staged: t.staged,
        skipped_size: t.skipped_size,
        skipped_item_cap: t.skipped_item_cap,
        failed: t.failed,
        ..Counts::default()
    };
    match (t.folder_state.as_str(), t.source_messages) {
        ("excluded", n) => c.excluded = n.unwrap_or(0),
        ("active", Some(n)) => {
            c.source = n;
            let accounted = t.staged.messages
                + t.skipped_size.messages
                + t.skipped_item_cap.messages
                + t.failed.messages;
            // Messages the source deleted since they were recorded are in the stage but no
            // longer in the source's count.
            let accounted = accounted.saturating_sub(t.deleted_on_source);
            c.unexplained = n as i64 - accounted as i64;
        }
        _ => {}
    }
    if with_target && t.folder_state != "excluded" {
        c.uploaded = t.uploaded;
        c.refused = t.refused;
        c.in_flight = t.in_flight;
        let sum = |f: fn(&Tally) -> u64| {
            f(&t.staged).saturating_sub(f(&t.uploaded) + f(&t.refused) + f(&t.in_flight))
        };
        c.pending = Tally {
            messages: sum(|x| x.messages),
            bytes: sum(|x| x.bytes),
        };
    }
    Some(FolderReport {
        name,
        state: t.folder_state.clone(),
        note: t.note.clone(),
        source_messages: t.source_messages,
        source_checked_at: t.source_checked_at.clone(),
        counts: c,
        target_folders: t.target_folders.clone(),
    })
}

/// Sums a mailbox's folders, writes its findings and grades it.
fn grade(m: &mut MailboxReport, with_target: bool) {
    let mut facts = GradeFacts {
        with_target,
        never_extracted: m.state == MailboxState::Queued && m.last_sync_at.is_none(),
        failed_run: m.state == MailboxState::Failed || m.upload_state.as_deref() == Some("Failed"),
        ..GradeFacts::default()
    };
    let mut findings = Vec::new();
    for f in &m.folders {
        m.counts += f.counts;
        match f.state.as_str() {
            "active" if f.source_messages.is_none() => {
                facts.source_unknown = true;
                findings.push(format!(
                    "{}: no source count recorded (run batch sync to record it)",
                    f.name
                ));
            }
            "active" if f.counts.unexplained != 0 => {
                facts.unexplained = true;
                let accounted = f.source_messages.unwrap_or(0) as i64 - f.counts.unexplained;
                findings.push(format!(
                    "{}: the source reports {}, {} accounted for: {} unexplained",
                    f.name,
                    f.source_messages.unwrap_or(0),
                    accounted,
                    f.counts.unexplained
                ));
            }
            "gone" => findings.push(format!(
                "{}: no longer on the source; its {} staged message(s) stay staged",
                f.name, f.counts.staged.messages
            )),
            _ => {}
        }
    }
    if facts.never_extracted {
        findings.push("never extracted (run batch start)".into());
    }
    if let Some(e) = &m.last_error {
        findings.push(format!("last pass failed: {e}"));
    }
    if let Some(e) = &m.upload_error {
        findings.push(format!("last upload run failed: {e}"));
    }
    let c = &m.counts;
    for (n, what) in [
        (c.failed.messages, "failed on the source"),
        (c.refused.messages, "refused by the target"),
        (c.skipped_size.messages, "over the size cap"),
        (c.skipped_item_cap.messages, "beyond the item cap"),
        (if with_target { c.pending.messages } else { 0 }, "pending"),
        (
            if with_target { c.in_flight.messages } else { 0 },
            "in flight",
        ),
    ] {
        if n > 0 {
            findings.push(format!("{n} message(s) {what}"));
        }
    }
    m.grade = grade_mailbox(&m.counts, &facts);
    m.findings = findings;
}

/// A message's line in the report.
fn item_of(stage: &Stage, t: &MessageTrail, with_target: bool) -> ItemReport {
    let (state, server_words) = match (t.state.as_str(), t.upload_state.as_deref()) {
        ("staged", Some("done")) if with_target => ("uploaded", None),
        ("staged", Some("failed")) if with_target => ("refused", t.upload_error.clone()),
        ("staged", Some("in_flight")) if with_target => ("in_flight", None),
        ("staged", _) if with_target => ("pending", None),
        ("failed", _) => ("failed", t.reason.clone()),
        (s, _) => (s, None),
    };
    let reason = match state {
        "refused" => Some("refused by the target".to_owned()),
        "failed" => Some("failed on the source".to_owned()),
        _ => t.reason.clone(),
    };
    ItemReport {
        folder: t.folder.clone(),
        uid: t.uid,
        message_id: t.message_id.clone(),
        subject: t.blob.as_deref().and_then(|b| subject_of(stage, b)),
        date: t.internaldate.clone(),
        size: t.size,
        state: state.to_owned(),
        reason,
        server_words,
        target_folder: t.target_folder.clone(),
        target_id: t.target_id.clone(),
    }
}

/// The decoded Subject of a staged message, from the first 64 KiB of its blob.
fn subject_of(stage: &Stage, blob: &str) -> Option<String> {
    let hash = BlobHash::parse(blob).ok()?;
    let mut head = Vec::with_capacity(64 << 10);
    stage
        .blobs()
        .open_blob(&hash)
        .ok()?
        .take(64 << 10)
        .read_to_end(&mut head)
        .ok()?;
    let parsed = mail_parser::MessageParser::default().parse_headers(&head[..])?;
    parsed
        .subject()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Seconds from one `…Z` instant to another (0 when either does not parse).
fn span_seconds(a: &str, b: &str) -> u64 {
    match (unix_of(a), unix_of(b)) {
        (Some(a), Some(b)) => (b - a).max(0) as u64,
        _ => 0,
    }
}

/// An RFC 3339 UTC instant (`YYYY-MM-DDTHH:MM:SS[.fff]Z`) as seconds since the epoch.
fn unix_of(s: &str) -> Option<i64> {
    let dt = mail_parser::DateTime::parse_rfc3339(s)?;
    Some(dt.to_timestamp())
}

/// Now, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    mail_parser::DateTime::from_timestamp(secs).to_rfc3339()
}
