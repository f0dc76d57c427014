//! Upload bookkeeping (`uploads`, `upload_runs`): which staged message went to which target
//! mailbox and folder, in which state.
//!
//! A message is `in_flight` in the index *before* its APPEND is sent and `done` after the
//! server confirmed it, each group of state changes in one transaction. A message left
//! `in_flight` by a crash is looked for on the target before it is sent again, by its resume
//! key (its Message-ID, or INTERNALDATE and decoded Subject/Date/From; see
//! `upload::ResumeKey`); the copies on the target are compared with the uploads confirmed
//! with the same key ([`Index::done_with_message_id`], [`Index::done_blobs_at`]).

use rusqlite::{OptionalExtension, Row};

use super::{Index, to_sql_int};
use crate::stage::error::Result;
use crate::stage::hash::BlobHash;

/// Where an upload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Not sent yet (or found absent after a crash).
    Pending,
    /// Sent, or about to be, without a confirmation recorded.
    InFlight,
    /// The target confirmed it.
    Done,
    /// The target refused it; the reason is recorded.
    Failed,
}

impl UploadState {
    fn parse(s: Option<&str>) -> Self {
        match s {
            Some("in_flight") => UploadState::InFlight,
            Some("done") => UploadState::Done,
            Some("failed") => UploadState::Failed,
            _ => UploadState::Pending,
        }
    }
}

/// A source folder of a mailbox that holds staged mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFolder {
    /// Its row.
    pub id: i64,
    /// Decoded path, with the source's delimiter.
    pub name: String,
    /// The source's hierarchy delimiter.
    pub delimiter: Option<char>,
    /// Its SPECIAL-USE attribute, if any.
    pub special_use: Option<String>,
}

/// A staged message not yet confirmed on the target.
#[derive(Clone, Debug)]
pub struct UploadItem {
    /// The message's row.
    pub message_row: i64,
    /// Its source folder's row.
    pub folder_id: i64,
    /// Its UID in the source folder.
    pub uid: u32,
    /// The source folder's UIDVALIDITY it was staged under.
    pub uidvalidity: u32,
    /// Its blob.
    pub blob: BlobHash,
    /// Its size in bytes.
    pub size: u64,
    /// INTERNALDATE as the source server sent it.
    pub internaldate: Option<String>,
    /// INTERNALDATE as seconds since the epoch.
    pub internaldate_unix: Option<i64>,
    /// Its flags, space-separated.
    pub flags: String,
    /// Its Message-ID header, if any.
    pub message_id: Option<String>,
    /// Where its upload stands.
    pub state: UploadState,
    /// For an `in_flight` message: the target folder it was sent to.
    pub sent_to: Option<String>,
    /// Times the link broke while it was being sent (counted across runs until a run
    /// retries it after it was set aside).
    pub lost_sends: u32,
}

/// What became of one message sent to the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadResult {
    /// Confirmed; the target's id for it when it gave one (`uidvalidity:uid`).
    Done(Option<String>),
    /// Confirmed, but its `\Flagged` (set by a STORE after the APPEND) is not set yet: the
    /// next attempt sets it by this id without sending the message again.
    DoneFlagPending(String),
    /// Refused, with the server's words.
    Failed(String),
    /// Not sent after all, or found absent on the target: back in the queue.
    Pending,
    /// Being sent when the link broke: stays in flight (the next attempt looks for it on
    /// the target), one more lost send counted.
    Lost,
    /// Sent behind others when the link broke, before the server answered it: stays in
    /// flight (the next attempt looks for it) without a lost send, the link having broken
    /// over an earlier message.
    Unanswered,
}

/// Records a mailbox's run state; `Uploading` starts a new run (clock and counts from zero).
const UPSERT_RUN: &str = "
    INSERT INTO upload_runs (mailbox_id, target, state, last_error, started_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
            strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    ON CONFLICT (mailbox_id, target) DO UPDATE SET state = excluded.state,
        last_error = excluded.last_error,
        updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
        started_at = CASE WHEN excluded.state = 'Uploading'
            THEN excluded.started_at ELSE started_at END,
        run_messages = CASE WHEN excluded.state = 'Uploading' THEN 0 ELSE run_messages END,
        run_bytes = CASE WHEN excluded.state = 'Uploading' THEN 0 ELSE run_bytes END";

/// A mailbox's upload state for one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxUploadStatus {
    /// The source mailbox's address.
    pub email: String,
    /// The target mailbox (the CSV's `TargetUserName`, else the same address).
    pub target_mailbox: String,
    /// The state of the last run (`Uploading`, `Uploaded`, `UploadedWithErrors`, `Failed`),
    /// or none before the first; `Pending` instead of `Uploaded` when messages were staged
    /// since (or are in flight).
    pub state: Option<String>,
    /// Staged messages in all.
    pub staged: u64,
    /// Not sent yet (and not in a folder the last run left out, nor deleted on the source).
    pub pending: u64,
    /// Not sent because the last run's mapping left their folder out (`--exclude` …).
    pub excluded: u64,
    /// Not sent, and never to be: deleted on the source after they were staged.
    pub deleted_on_source: u64,
    /// Sent without a confirmation recorded (resolved by the next run).
    pub in_flight: u64,
    /// Confirmed by the target.
    pub done: u64,
    /// Refused by the target.
    pub failed: u64,
    /// Bytes staged.
    pub staged_bytes: u64,
    /// Bytes confirmed.
    pub done_bytes: u64,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// The most recent refusal of a single message.
    pub last_refusal: Option<String>,
    /// When the last run changed state or confirmed a group (to the millisecond).
    pub updated_at: Option<String>,
    /// When the last run began.
    pub run_started_at: Option<String>,
    /// Messages the last run confirmed.
    pub run_messages: u64,
    /// Bytes the last run confirmed.
    pub run_bytes: u64,
    /// Milliseconds from the last run's start to its last confirmed group or state change
    /// (a run that was killed keeps its real rate rather than one that decays forever).
    pub run_ms: u64,
}

impl MailboxUploadStatus {
    /// The last run's rate in messages and bytes per second (once it has lasted a second,
    /// so a short run shows no rate rather than a wild one).
    pub fn rate(&self) -> Option<(f64, f64)> {
        (self.run_ms >= 1000).then(|| {
            let s = self.run_ms as f64 / 1000.0;
            (self.run_messages as f64 / s, self.run_bytes as f64 / s)
        })
    }
}

/// A finished run's state as `status` shows it: `Uploaded` only while nothing is left to
/// send; with messages staged since (or left in flight), `Pending`.
fn settled_state(state: String, unsent: u64) -> String {
    if state == "Uploaded" && unsent > 0 {
        "Pending".into()
    } else {
        state
    }
}

/// The columns [`item_from_row`] reads.
pub(super) const QUEUE_COLUMNS: &str = "
    SELECT m.id, m.folder_id, m.uid, m.blob, m.size, m.internaldate, m.flags, m.message_id,
           u.state, u.folder, m.internaldate_unix, coalesce(u.lost_sends, 0), m.uidvalidity";

/// A mailbox's upload queue (`?1` the target, `?2` the mailbox, `?3` with the refused ones).
pub(super) const QUEUE_FROM: &str = "
    FROM messages m
    JOIN folders f ON f.id = m.folder_id
    LEFT JOIN uploads u ON u.message_id = m.id AND u.target = ?1
    WHERE f.mailbox_id = ?2 AND f.state <> 'excluded' AND m.state = 'staged'
      AND (u.state IS NULL OR u.state <> 'done') AND (?3 OR u.state IS NOT 'failed')
      AND (m.deleted_on_source IS NULL OR u.state IS 'in_flight')";

/// The queue's order: by folder, UIDVALIDITY and UID.
pub(super) const QUEUE_ORDER: &str = " ORDER BY m.folder_id, m.uidvalidity, m.uid";

pub(super) fn item_from_row(r: &Row<'_>) -> rusqlite::Result<UploadItem> {
    let state: Option<String> = r.get(8)?;
    Ok(UploadItem {
        message_row: r.get(0)?,
        folder_id: r.get(1)?,
        uid: r.get(2)?,
        blob: r.get(3)?,
        size: r.get::<_, i64>(4)?.max(0) as u64,
        internaldate: r.get(5)?,
        internaldate_unix: r.get(10)?,
        flags: r.get(6)?,
        message_id: r.get(7)?,
        state: UploadState::parse(state.as_deref()),
        sent_to: r.get(9)?,
        lost_sends: r.get(11)?,
        uidvalidity: r.get(12)?,
    })
}

impl Index {
    /// The folders of a mailbox to upload, by name: every folder the source still has
    /// (empty ones too, so they are created on the target) and those gone from it that hold
    /// staged mail; never excluded ones.
    pub fn upload_folders(&self, mailbox_id: i64) -> Result<Vec<SourceFolder>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT f.id, f.name, f.delimiter, f.special_use FROM folders f
             WHERE f.mailbox_id = ?1 AND (f.state = 'active' OR (f.state = 'gone' AND EXISTS
                 (SELECT 1 FROM messages m WHERE m.folder_id = f.id AND m.state = 'staged')))
             ORDER BY f.name",
        ))?;
        let rows = stmt.query_map([mailbox_id], |r| {
            let delimiter: Option<String> = r.get(2)?;
            Ok(SourceFolder {
                id: r.get(0)?,
                name: r.get(1)?,
                delimiter: delimiter.and_then(|d| d.chars().next()),
                special_use: r.get(3)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Every staged message of a mailbox the target has not confirmed, by folder and UID;
    /// the ones it refused only `with_refused`. (A run first puts the refused ones back
    /// with [`Index::retry_failed_uploads`] and then leaves out those refused again, so a
    /// reconnect does not send them a second time; a dry run, which changes nothing, asks
    /// for them.)
    pub fn upload_queue(
        &self,
        target: &str,
        mailbox_id: i64,
        with_refused: bool,
    ) -> Result<Vec<UploadItem>> {
        let sql = format!("{QUEUE_COLUMNS}{QUEUE_FROM}{QUEUE_ORDER}");
        let mut stmt = self.sql(self.conn.prepare(&sql))?;
        let rows = stmt.query_map((target, mailbox_id, with_refused), item_from_row);
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Puts a mailbox's refused messages back in the queue (a new run retries them).
    pub fn retry_failed_uploads(&self, target: &str, mailbox_id: i64) -> Result<u64> {
        let n = self.sql(self.conn.execute(
            "UPDATE uploads SET state = 'pending', lost_sends = 0,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE target = ?1 AND state = 'failed' AND message_id IN
                 (SELECT m.id FROM messages m JOIN folders f ON f.id = m.folder_id
                  WHERE f.mailbox_id = ?2)",
            (target, mailbox_id),
        ))?;
        Ok(n as u64)
    }

    /// Carries the upload records of a mailbox's retired messages (their folder was read
    /// again after a UIDVALIDITY change) over to the re-read copies with the same bytes in
    /// the same folder, one copy per record, so what the target already holds is not sent
    /// twice. Only `done` and `in_flight` records move (an in-flight one is then looked for
    /// on the target as before). Returns how many moved.
    pub fn adopt_retired_uploads(&mut self, target: &str, mailbox_id: i64) -> Result<u64> {
        self.write_tx(|tx| {
            let mut moved = 0;
            let mut records = tx.prepare(
                // From the mailbox's folders down (CROSS JOIN fixes the order), so
                // the cost is the mailbox's size, not the target's upload count.
                "SELECT u.id, m.folder_id, m.blob FROM folders f
                     CROSS JOIN messages m ON m.folder_id = f.id
                     CROSS JOIN uploads u ON u.message_id = m.id AND u.target = ?2
                     WHERE f.mailbox_id = ?1 AND m.state = 'retired'
                       AND u.state IN ('done', 'in_flight')
                     ORDER BY m.folder_id, m.uidvalidity, m.uid",
            )?;
            let rows: Vec<(i64, i64, String)> = records
                .query_map((mailbox_id, target), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .and_then(Iterator::collect)?;
            let mut copy = tx.prepare(
                "SELECT s.id FROM messages s
                     WHERE s.folder_id = ?1 AND s.blob = ?2 AND s.state = 'staged'
                       AND NOT EXISTS (SELECT 1 FROM uploads x
                                       WHERE x.message_id = s.id AND x.target = ?3)
                     ORDER BY s.uidvalidity, s.uid LIMIT 1",
            )?;
            let mut adopt = tx.prepare("UPDATE uploads SET message_id = ?2 WHERE id = ?1")?;
            for (record, folder_id, blob) in rows {
                let found: Option<i64> = copy
                    .query_row((folder_id, &blob, target), |r| r.get(0))
                    .optional()?;
                if let Some(message) = found {
                    adopt.execute((record, message))?;
                    moved += 1;
                }
            }
            Ok(moved)
        })
    }

    /// The target mailboxes a mailbox's messages were sent to (or are in flight to) on
    /// `target`.
    pub fn upload_mailboxes(&self, target: &str, mailbox_id: i64) -> Result<Vec<String>> {
        let mut stmt = self.sql(self.conn.prepare(
            // From the mailbox's folders down, as in adopt_retired_uploads.
            "SELECT DISTINCT u.mailbox FROM folders f
             CROSS JOIN messages m ON m.folder_id = f.id
             CROSS JOIN uploads u ON u.message_id = m.id AND u.target = ?2
             WHERE f.mailbox_id = ?1 AND u.state IN ('done', 'in_flight')
               AND u.mailbox IS NOT NULL",
        ))?;
        let rows = stmt.query_map((mailbox_id, target), |r| r.get(0));
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Marks messages `in_flight` to a target mailbox and folder, in one transaction,
    /// before they are sent.
    pub fn begin_uploads(
        &mut self,
        target: &str,
        mailbox: &str,
        folder: &str,
        message_rows: &[i64],
    ) -> Result<()> {
        self.write_tx(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO uploads (message_id, target, state, mailbox, folder, attempts)
                     VALUES (?1, ?2, 'in_flight', ?3, ?4, 1)
                     ON CONFLICT (message_id, target) DO UPDATE SET
                         state = 'in_flight', attempts = attempts + 1, mailbox = excluded.mailbox,
                         folder = excluded.folder,
                         updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            )?;
            for row in message_rows {
                stmt.execute((row, target, mailbox, folder))?;
            }
            Ok(())
        })
    }

    /// Records what became of sent messages, in one transaction.
    pub fn finish_uploads(&mut self, target: &str, results: &[(i64, UploadResult)]) -> Result<()> {
        self.finish_group(target, results, None)
    }

    /// Records what became of a group of sent messages and adds what the target confirmed
    /// (`(mailbox_id, messages, bytes)`) to the mailbox's run, in one transaction.
    pub fn finish_group(
        &mut self,
        target: &str,
        results: &[(i64, UploadResult)],
        confirmed: Option<(i64, u64, u64)>,
    ) -> Result<()> {
        self.write_tx(|tx| {
            if let Some((mailbox_id, messages, bytes)) = confirmed {
                tx.execute(
                    "UPDATE upload_runs SET run_messages = run_messages + ?3,
                     run_bytes = run_bytes + ?4,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE mailbox_id = ?1 AND target = ?2",
                    (mailbox_id, target, to_sql_int(messages), to_sql_int(bytes)),
                )?;
            }
            let mut stmt = tx.prepare_cached(
                "UPDATE uploads SET state = ?3, target_id = coalesce(?4, target_id),
                     last_error = ?5, lost_sends = lost_sends + ?6, flag_pending = ?7,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
                 WHERE message_id = ?1 AND target = ?2",
            )?;
            for (row, result) in results {
                let (state, id, error, lost) = match result {
                    UploadResult::Done(id) => ("done", id.as_deref(), None, 0),
                    UploadResult::DoneFlagPending(id) => ("done", Some(id.as_str()), None, 0),
                    UploadResult::Failed(e) => ("failed", None, Some(e.as_str()), 0),
                    UploadResult::Pending => ("pending", None, None, 0),
                    UploadResult::Lost => ("in_flight", None, None, 1),
                    UploadResult::Unanswered => ("in_flight", None, None, 0),
                };
                let flag_pending = matches!(result, UploadResult::DoneFlagPending(_));
                stmt.execute((row, target, state, id, error, lost, flag_pending))?;
            }
            Ok(())
        })
    }

    /// How many messages of a mailbox are confirmed in a target folder with this Message-ID
    /// (the resume key of a message that has a usable one).
    pub fn done_with_message_id(
        &self,
        target: &str,
        mailbox: &str,
        folder: &str,
        message_id: &str,
    ) -> Result<u64> {
        let n: i64 = self.sql(self.conn.query_row(
            "SELECT count(*) FROM uploads u JOIN messages m ON m.id = u.message_id
             WHERE u.target = ?1 AND u.mailbox = ?2 AND u.folder = ?3 AND u.state = 'done'
               AND m.message_id = ?4",
            (target, mailbox, folder, message_id),
            |r| r.get(0),
        ))?;
        Ok(n.max(0) as u64)
    }

    /// The blobs of a mailbox's messages confirmed in a target folder with this INTERNALDATE
    /// (seconds since the epoch), whatever their Message-ID: the candidates a header resume
    /// key is compared with (the target side counts every copy with that date and header).
    pub fn done_blobs_at(
        &self,
        target: &str,
        mailbox: &str,
        folder: &str,
        internaldate_unix: i64,
    ) -> Result<Vec<BlobHash>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT m.blob FROM uploads u JOIN messages m ON m.id = u.message_id
             WHERE u.target = ?1 AND u.mailbox = ?2 AND u.folder = ?3 AND u.state = 'done'
               AND m.internaldate_unix = ?4
             ORDER BY m.id",
        ))?;
        let rows = stmt.query_map((target, mailbox, folder, internaldate_unix), |r| r.get(0));
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Records the state of a mailbox's upload run (and its error, if it failed);
    /// `Uploading` starts a new run (its clock and counts start from zero).
    pub fn set_upload_run(
        &self,
        mailbox_id: i64,
        target: &str,
        state: &str,
        error: Option<&str>,
    ) -> Result<()> {
        self.sql(
            self.conn
                .execute(UPSERT_RUN, (mailbox_id, target, state, error)),
        )?;
        Ok(())
    }

    /// Records how a mailbox's upload run ended and its event (`upload.{state}` with
    /// `detail`), in one transaction.
    pub fn finish_upload_run(
        &mut self,
        run: (i64, &str),
        state: &str,
        error: Option<&str>,
        event: (&str, &str, &str),
    ) -> Result<()> {
        let ((mailbox_id, target), (batch, email, detail)) = (run, event);
        self.write_tx(|tx| {
            tx.execute(UPSERT_RUN, (mailbox_id, target, state, error))?;
            let kind = format!("upload.{state}");
            super::insert_event(tx, Some(batch), Some(email), &kind, detail)
        })
    }

    /// Per mailbox of a batch: what is staged and where its upload to `target` stands.
    pub fn upload_status(&self, batch: &str, target: &str) -> Result<Vec<MailboxUploadStatus>> {
        self.batch_id(batch)?;
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT mb.email, r.state, r.last_error, r.updated_at,
                 count(m.id),
                 coalesce(sum(m.size), 0),
                 count(m.id) FILTER (WHERE u.state = 'in_flight'),
                 count(m.id) FILTER (WHERE u.state = 'done'),
                 count(m.id) FILTER (WHERE u.state = 'failed'),
                 coalesce(sum(m.size) FILTER (WHERE u.state = 'done'), 0),
                 (SELECT u2.last_error FROM uploads u2 JOIN messages m2 ON m2.id = u2.message_id
                  JOIN folders f2 ON f2.id = m2.folder_id
                  WHERE f2.mailbox_id = mb.id AND u2.target = ?2 AND u2.state = 'failed'
                  ORDER BY u2.updated_at DESC, u2.id DESC LIMIT 1),
                 coalesce(mb.target_user, mb.email), r.started_at,
                 coalesce(r.run_messages, 0), coalesce(r.run_bytes, 0),
                 coalesce(CAST(round((julianday(r.updated_at) - julianday(r.started_at))
                     * 86400000) AS INTEGER), 0),
                 count(m.id) FILTER (WHERE lo.folder_id IS NOT NULL
                     AND (u.state IS NULL OR u.state = 'pending')),
                 count(m.id) FILTER (WHERE lo.folder_id IS NULL
                     AND m.deleted_on_source IS NOT NULL
                     AND (u.state IS NULL OR u.state = 'pending'))
             FROM mailboxes mb
             JOIN batches b ON b.id = mb.batch_id
             LEFT JOIN upload_runs r ON r.mailbox_id = mb.id AND r.target = ?2
             LEFT JOIN folders f ON f.mailbox_id = mb.id AND f.state <> 'excluded'
             LEFT JOIN messages m ON m.folder_id = f.id AND m.state = 'staged'
             LEFT JOIN uploads u ON u.message_id = m.id AND u.target = ?2
             LEFT JOIN upload_left_out lo
                 ON lo.mailbox_id = mb.id AND lo.target = ?2 AND lo.folder_id = f.id
             WHERE b.name = ?1
             GROUP BY mb.id ORDER BY mb.email",
        ))?;
        let rows = stmt.query_map((batch, target), |r| {
            let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
            let staged = n(4)?;
            let (in_flight, done, failed, excluded) = (n(6)?, n(7)?, n(8)?, n(16)?);
            let deleted_on_source = n(17)?;
            let settled = in_flight + done + failed + excluded + deleted_on_source;
            let pending = staged.saturating_sub(settled);
            let state: Option<String> = r.get(1)?;
            Ok(MailboxUploadStatus {
                email: r.get(0)?,
                state: state.map(|s| settled_state(s, pending + in_flight)),
                last_error: r.get(2)?,
                updated_at: r.get(3)?,
                staged,
                staged_bytes: n(5)?,
                pending,
                excluded,
                deleted_on_source,
                in_flight,
                done,
                failed,
                done_bytes: n(9)?,
                last_refusal: r.get(10)?,
                target_mailbox: r.get(11)?,
                run_started_at: r.get(12)?,
                run_messages: n(13)?,
                run_bytes: n(14)?,
                run_ms: n(15)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }
}
