//! Upload bookkeeping (`uploads`, `upload_runs`): which staged message went to which target
//! mailbox and folder, in which state.
//!
//! A message is `in_flight` in the index *before* its APPEND is sent and `done` after the
//! server confirmed it, each group of state changes in one transaction. A message left
//! `in_flight` by a crash is looked for on the target before it is sent again.

use rusqlite::Row;

use super::{Index, sqlite, to_sql_int};
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
}

/// What became of one message sent to the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadResult {
    /// Confirmed; the target's id for it when it gave one (`uidvalidity:uid`).
    Done(Option<String>),
    /// Refused, with the server's words.
    Failed(String),
    /// Not sent after all, or found absent on the target: back in the queue.
    Pending,
}

/// A message the target refused in an earlier run (state `failed`), with its words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRefusal {
    /// The message's row.
    pub message_row: i64,
    /// What the server said.
    pub words: String,
    /// When the refusal was recorded (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub at: String,
}

/// A mailbox's upload state for one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxUploadStatus {
    /// The source mailbox (and target mailbox) address.
    pub email: String,
    /// The state of the last run (`Uploading`, `Uploaded`, `UploadedWithErrors`, `Failed`),
    /// or none before the first.
    pub state: Option<String>,
    /// Staged messages in all.
    pub staged: u64,
    /// Not sent yet.
    pub pending: u64,
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
    /// When the last run changed state.
    pub updated_at: Option<String>,
}

const QUEUE_SELECT: &str = "
    SELECT m.id, m.folder_id, m.uid, m.blob, m.size, m.internaldate, m.flags, m.message_id,
           u.state, u.folder, m.internaldate_unix
    FROM messages m
    JOIN folders f ON f.id = m.folder_id
    LEFT JOIN uploads u ON u.message_id = m.id AND u.target = ?1
    WHERE f.mailbox_id = ?2 AND f.state <> 'excluded' AND m.state = 'staged'
      AND (u.state IS NULL OR u.state <> 'done')
    ORDER BY m.folder_id, m.uidvalidity, m.uid";

fn item_from_row(r: &Row<'_>) -> rusqlite::Result<UploadItem> {
    let blob: String = r.get(3)?;
    let blob = BlobHash::parse(&blob).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let state: Option<String> = r.get(8)?;
    Ok(UploadItem {
        message_row: r.get(0)?,
        folder_id: r.get(1)?,
        uid: r.get(2)?,
        blob,
        size: r.get::<_, i64>(4)?.max(0) as u64,
        internaldate: r.get(5)?,
        internaldate_unix: r.get(10)?,
        flags: r.get(6)?,
        message_id: r.get(7)?,
        state: UploadState::parse(state.as_deref()),
        sent_to: r.get(9)?,
    })
}

impl Index {
    /// The folders of a mailbox that hold staged mail (any but excluded ones), by name.
    pub fn upload_folders(&self, mailbox_id: i64) -> Result<Vec<SourceFolder>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT f.id, f.name, f.delimiter, f.special_use FROM folders f
             WHERE f.mailbox_id = ?1 AND f.state <> 'excluded' AND EXISTS
                 (SELECT 1 FROM messages m WHERE m.folder_id = f.id AND m.state = 'staged')
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

    /// Every staged message of a mailbox the target has not confirmed, by folder and UID.
    pub fn upload_queue(&self, target: &str, mailbox_id: i64) -> Result<Vec<UploadItem>> {
        let mut stmt = self.sql(self.conn.prepare(QUEUE_SELECT))?;
        let rows = stmt.query_map((target, mailbox_id), item_from_row);
        self.sql(rows.and_then(Iterator::collect))
    }

    /// A mailbox's messages the target refused (state `failed`), oldest refusal first.
    pub fn refused_uploads(&self, target: &str, mailbox_id: i64) -> Result<Vec<RecordedRefusal>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT u.message_id, coalesce(u.last_error, ''), u.updated_at
             FROM uploads u JOIN messages m ON m.id = u.message_id
             JOIN folders f ON f.id = m.folder_id
             WHERE u.target = ?1 AND u.state = 'failed' AND f.mailbox_id = ?2
             ORDER BY u.updated_at, u.id",
        ))?;
        let rows = stmt.query_map((target, mailbox_id), |r| {
            Ok(RecordedRefusal {
                message_row: r.get(0)?,
                words: r.get(1)?,
                at: r.get(2)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Puts a mailbox's refused messages back in the queue (a new run retries them).
    pub fn retry_failed_uploads(&self, target: &str, mailbox_id: i64) -> Result<u64> {
        let n = self.sql(self.conn.execute(
            "UPDATE uploads SET state = 'pending', updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE target = ?1 AND state = 'failed' AND message_id IN
                 (SELECT m.id FROM messages m JOIN folders f ON f.id = m.folder_id
                  WHERE f.mailbox_id = ?2)",
            (target, mailbox_id),
        ))?;
        Ok(n as u64)
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
        let path = &self.path;
        let sql = |e| sqlite(path, e);
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO uploads (message_id, target, state, mailbox, folder, attempts)
                     VALUES (?1, ?2, 'in_flight', ?3, ?4, 1)
                     ON CONFLICT (message_id, target) DO UPDATE SET
                         state = 'in_flight', attempts = attempts + 1, mailbox = excluded.mailbox,
                         folder = excluded.folder,
                         updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                )
                .map_err(sql)?;
            for row in message_rows {
                stmt.execute((row, target, mailbox, folder)).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Records what became of sent messages, in one transaction.
    pub fn finish_uploads(&mut self, target: &str, results: &[(i64, UploadResult)]) -> Result<()> {
        let path = &self.path;
        let sql = |e| sqlite(path, e);
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE uploads SET state = ?3, target_id = coalesce(?4, target_id),
                         last_error = ?5, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
                     WHERE message_id = ?1 AND target = ?2",
                )
                .map_err(sql)?;
            for (row, result) in results {
                let (state, id, error) = match result {
                    UploadResult::Done(id) => ("done", id.as_deref(), None),
                    UploadResult::Failed(e) => ("failed", None, Some(e.as_str())),
                    UploadResult::Pending => ("pending", None, None),
                };
                stmt.execute((row, target, state, id, error)).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// How many messages of a mailbox are confirmed in a target folder with this
    /// Message-ID (or, for `None`, with no Message-ID and this INTERNALDATE and size).
    pub fn done_with_key(
        &self,
        target: &str,
        mailbox: &str,
        folder: &str,
        item: &UploadItem,
    ) -> Result<u64> {
        let n: i64 = self.sql(self.conn.query_row(
            "SELECT count(*) FROM uploads u JOIN messages m ON m.id = u.message_id
             WHERE u.target = ?1 AND u.mailbox = ?2 AND u.folder = ?3 AND u.state = 'done'
               AND ((?4 IS NOT NULL AND m.message_id = ?4)
                 OR (?4 IS NULL AND m.message_id IS NULL AND m.internaldate IS ?5
                     AND m.size = ?6))",
            (
                target,
                mailbox,
                folder,
                item.message_id.as_deref(),
                item.internaldate.as_deref(),
                to_sql_int(item.size),
            ),
            |r| r.get(0),
        ))?;
        Ok(n.max(0) as u64)
    }

    /// Records the state of a mailbox's upload run (and its error, if it failed).
    pub fn set_upload_run(
        &self,
        mailbox_id: i64,
        target: &str,
        state: &str,
        error: Option<&str>,
    ) -> Result<()> {
        self.sql(self.conn.execute(
            "INSERT INTO upload_runs (mailbox_id, target, state, last_error) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (mailbox_id, target) DO UPDATE SET state = excluded.state,
                 last_error = excluded.last_error,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (mailbox_id, target, state, error),
        ))?;
        Ok(())
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
                  ORDER BY u2.updated_at DESC, u2.id DESC LIMIT 1)
             FROM mailboxes mb
             JOIN batches b ON b.id = mb.batch_id
             LEFT JOIN upload_runs r ON r.mailbox_id = mb.id AND r.target = ?2
             LEFT JOIN folders f ON f.mailbox_id = mb.id AND f.state <> 'excluded'
             LEFT JOIN messages m ON m.folder_id = f.id AND m.state = 'staged'
             LEFT JOIN uploads u ON u.message_id = m.id AND u.target = ?2
             WHERE b.name = ?1
             GROUP BY mb.id ORDER BY mb.email",
        ))?;
        let rows = stmt.query_map((batch, target), |r| {
            let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
            let staged = n(4)?;
            let (in_flight, done, failed) = (n(6)?, n(7)?, n(8)?);
            Ok(MailboxUploadStatus {
                email: r.get(0)?,
                state: r.get(1)?,
                last_error: r.get(2)?,
                updated_at: r.get(3)?,
                staged,
                staged_bytes: n(5)?,
                pending: staged.saturating_sub(in_flight + done + failed),
                in_flight,
                done,
                failed,
                done_bytes: n(9)?,
                last_refusal: r.get(10)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }
}
