//! What the migration report reads: the source's counts a pass records, and per folder and
//! per message the path through both phases, aggregated by SQL (a report over a large stage
//! never loads every message: only the folders' tallies and the messages that need
//! attention, or every message when asked).

use super::Index;
use super::catalog::FolderInfo;
use crate::stage::error::Result;

/// A number of messages and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    /// Messages.
    pub messages: u64,
    /// Their bytes (RFC822.SIZE as the source reported it).
    pub bytes: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Self) {
        self.messages += o.messages;
        self.bytes += o.bytes;
    }
}

/// One folder's tallies, as the index holds them (retired rows left out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderTally {
    /// The mailbox's address.
    pub email: String,
    /// The folder's decoded name; `None` for a mailbox without any folder recorded.
    pub folder: Option<String>,
    /// `active`, `gone` or `excluded`.
    pub folder_state: String,
    /// Why an excluded folder is left out.
    pub note: Option<String>,
    /// Messages the source reported at the last pass, if recorded.
    pub source_messages: Option<u64>,
    /// When it was recorded.
    pub source_checked_at: Option<String>,
    /// Staged.
    pub staged: Tally,
    /// Skipped over the size cap.
    pub skipped_size: Tally,
    /// Skipped beyond the item cap.
    pub skipped_item_cap: Tally,
    /// Failed on the source.
    pub failed: Tally,
    /// Confirmed by the target.
    pub uploaded: Tally,
    /// Refused by the target.
    pub refused: Tally,
    /// Sent without a confirmation recorded.
    pub in_flight: Tally,
    /// The target folders it went to (as `/`-joined paths), distinct.
    pub target_folders: Vec<String>,
    /// Recorded messages the source has deleted since (no longer in its count).
    pub deleted_on_source: u64,
}

/// One message's path through both phases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageTrail {
    /// The mailbox's address.
    pub email: String,
    /// The source folder.
    pub folder: String,
    /// Its UID there.
    pub uid: u32,
    /// Its Message-ID, when it has one.
    pub message_id: Option<String>,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE as the server sent it.
    pub internaldate: Option<String>,
    /// `staged`, `skipped_size`, `skipped_item_cap` or `failed`.
    pub state: String,
    /// Why it was skipped or failed (the server's words for a failure).
    pub reason: Option<String>,
    /// Its blob (hex SHA-256) when staged.
    pub blob: Option<String>,
    /// The upload's state for the target asked about (`pending` … `failed`), if recorded.
    pub upload_state: Option<String>,
    /// The target's words when it refused the message.
    pub upload_error: Option<String>,
    /// The target folder (`/`-joined).
    pub target_folder: Option<String>,
    /// APPENDUID (`uidvalidity:uid`) when the target gave one.
    pub target_id: Option<String>,
    /// When the upload record last changed.
    pub upload_at: Option<String>,
}

/// Messages and bytes done in one interval of time.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RatePoint {
    /// The interval's start (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub at: String,
    /// Messages.
    pub messages: u64,
    /// Bytes.
    pub bytes: u64,
}

/// The upper bounds (exclusive) of the message-size histogram's buckets; the last bucket
/// holds everything from the last bound up.
pub const SIZE_BOUNDS: &[u64] = &[
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
    64 << 20,
];

const FOLDER_TALLIES: &str = "
    SELECT mb.email, f.name, coalesce(f.state, 'active'), f.note, f.source_messages,
           f.source_checked_at,
           count(m.id) FILTER (WHERE m.state = 'staged'),
           coalesce(sum(m.size) FILTER (WHERE m.state = 'staged'), 0),
           count(m.id) FILTER (WHERE m.state = 'skipped_size'),
           coalesce(sum(m.size) FILTER (WHERE m.state = 'skipped_size'), 0),
           count(m.id) FILTER (WHERE m.state = 'skipped_item_cap'),
           coalesce(sum(m.size) FILTER (WHERE m.state = 'skipped_item_cap'), 0),
           count(m.id) FILTER (WHERE m.state = 'failed'),
           coalesce(sum(m.size) FILTER (WHERE m.state = 'failed'), 0),
           count(u.id) FILTER (WHERE m.state = 'staged' AND u.state = 'done'),
           coalesce(sum(m.size) FILTER (WHERE m.state = 'staged' AND u.state = 'done'), 0),
           count(u.id) FILTER (WHERE m.state = 'staged' AND u.state = 'failed'),
           coalesce(sum(m.size) FILTER (WHERE m.state = 'staged' AND u.state = 'failed'), 0),
           count(u.id) FILTER (WHERE m.state = 'staged' AND u.state = 'in_flight'),
           coalesce(sum(m.size) FILTER (WHERE m.state = 'staged' AND u.state = 'in_flight'), 0),
           json_group_array(DISTINCT u.folder) FILTER (WHERE u.state = 'done' AND u.folder IS NOT NULL),
           count(m.id) FILTER (WHERE m.deleted_on_source IS NOT NULL)
    FROM mailboxes mb
    JOIN batches b ON b.id = mb.batch_id
    LEFT JOIN folders f ON f.mailbox_id = mb.id
    LEFT JOIN messages m ON m.folder_id = f.id AND m.state <> 'retired'
    LEFT JOIN uploads u ON u.message_id = m.id AND u.target = ?2
    WHERE b.name = ?1
    GROUP BY mb.id, f.id
    ORDER BY mb.email, f.name";

const MESSAGE_TRAILS: &str = "
    SELECT mb.email, f.name, m.uid, m.message_id, m.size, m.internaldate, m.state, m.reason,
           m.blob, u.state, u.last_error, u.folder, u.target_id, u.updated_at
    FROM messages m
    JOIN folders f ON f.id = m.folder_id
    JOIN mailboxes mb ON mb.id = f.mailbox_id
    JOIN batches b ON b.id = mb.batch_id
    LEFT JOIN uploads u ON u.message_id = m.id AND u.target = ?2
    WHERE b.name = ?1 AND m.state <> 'retired'
      AND (?3 OR m.state <> 'staged' OR u.state = 'failed')
    ORDER BY mb.email, f.name, m.uidvalidity, m.uid";

/// A stored target folder (a JSON list of path parts) as one `/`-joined path.
fn folder_path(stored: &str) -> String {
    serde_json::from_str::<Vec<String>>(stored).map_or_else(|_| stored.to_owned(), |p| p.join("/"))
}

impl Index {
    /// Records how many messages the source reported in a folder that is read (EXAMINE's
    /// EXISTS), now.
    pub fn set_folder_source_count(&self, folder_id: i64, messages: u32) -> Result<()> {
        self.sql(self.conn.execute(
            "UPDATE folders SET source_messages = ?2,
                 source_checked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1",
            (folder_id, messages),
        ))?;
        Ok(())
    }

    /// Records a folder the batch's own patterns leave out (state `excluded`, with the
    /// reason and, when the source answered STATUS, how many messages it holds).
    pub fn record_excluded_folder(
        &self,
        mailbox_id: i64,
        f: &FolderInfo,
        reason: &str,
        messages: Option<u32>,
    ) -> Result<()> {
        self.sql(self.conn.execute(
            "INSERT INTO folders (mailbox_id, wire_name, name, delimiter, special_use, state,
                                  note, source_messages, source_checked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'excluded', ?6, ?7, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
             ON CONFLICT (mailbox_id, wire_name) DO UPDATE
                 SET name = excluded.name, state = 'excluded', note = excluded.note,
                     source_messages = excluded.source_messages,
                     source_checked_at = excluded.source_checked_at",
            (
                mailbox_id,
                &f.wire_name,
                &f.name,
                f.delimiter.map(String::from),
                &f.special_use,
                reason,
                messages,
            ),
        ))?;
        Ok(())
    }

    /// Per mailbox and folder of a batch, by address and name: its tallies through both
    /// phases (the upload columns count `target`'s records; none when it is `None`).
    pub fn folder_tallies(&self, batch: &str, target: Option<&str>) -> Result<Vec<FolderTally>> {
        self.batch_id(batch)?;
        let mut stmt = self.sql(self.conn.prepare(FOLDER_TALLIES))?;
        let rows = stmt.query_map((batch, target), |r| {
            let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
            let t = |i: usize| -> rusqlite::Result<Tally> {
                Ok(Tally {
                    messages: n(i)?,
                    bytes: n(i + 1)?,
                })
            };
            let folders: Option<String> = r.get(20)?;
            let stored: Vec<String> = folders
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            let mut target_folders: Vec<String> = stored.iter().map(|s| folder_path(s)).collect();
            target_folders.sort();
            target_folders.dedup();
            Ok(FolderTally {
                email: r.get(0)?,
                folder: r.get(1)?,
                folder_state: r.get(2)?,
                note: r.get(3)?,
                source_messages: r.get::<_, Option<i64>>(4)?.map(|v| v.max(0) as u64),
                source_checked_at: r.get(5)?,
                staged: t(6)?,
                skipped_size: t(8)?,
                skipped_item_cap: t(10)?,
                failed: t(12)?,
                uploaded: t(14)?,
                refused: t(16)?,
                in_flight: t(18)?,
                target_folders,
                deleted_on_source: r.get::<_, i64>(21)?.max(0) as u64,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The messages of a batch that need attention (skipped, failed, or refused by
    /// `target`), or with `all` every message, by mailbox, folder and UID.
    pub fn message_trails(
        &self,
        batch: &str,
        target: Option<&str>,
        all: bool,
    ) -> Result<Vec<MessageTrail>> {
        self.batch_id(batch)?;
        let mut stmt = self.sql(self.conn.prepare(MESSAGE_TRAILS))?;
        let rows = stmt.query_map((batch, target, all), |r| {
            let folder: Option<String> = r.get(11)?;
            Ok(MessageTrail {
                email: r.get(0)?,
                folder: r.get(1)?,
                uid: r.get(2)?,
                message_id: r.get(3)?,
                size: r.get::<_, i64>(4)?.max(0) as u64,
                internaldate: r.get(5)?,
                state: r.get(6)?,
                reason: r.get(7)?,
                blob: r.get(8)?,
                upload_state: r.get(9)?,
                upload_error: r.get(10)?,
                target_folder: folder.as_deref().map(folder_path),
                target_id: r.get(12)?,
                upload_at: r.get(13)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// How many of a batch's messages (any state but retired) fall in each bucket of
    /// [`SIZE_BOUNDS`] (one count more than bounds).
    pub fn size_histogram(&self, batch: &str) -> Result<Vec<u64>> {
        let bucket: String = SIZE_BOUNDS
            .iter()
            .enumerate()
            .map(|(i, b)| format!("WHEN m.size < {b} THEN {i} "))
            .collect();
        let sql = format!(
            "SELECT CASE {bucket} ELSE {} END AS k, count(*) FROM messages m
             JOIN folders f ON f.id = m.folder_id JOIN mailboxes mb ON mb.id = f.mailbox_id
             JOIN batches b ON b.id = mb.batch_id
             WHERE b.name = ?1 AND m.state <> 'retired' GROUP BY k",
            SIZE_BOUNDS.len()
        );
        let mut counts = vec![0; SIZE_BOUNDS.len() + 1];
        let mut stmt = self.sql(self.conn.prepare(&sql))?;
        let rows: Vec<(i64, i64)> = self.sql(
            stmt.query_map([batch], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(Iterator::collect),
        )?;
        for (k, n) in rows {
            if let Some(c) = counts.get_mut(k.max(0) as usize) {
                *c = n.max(0) as u64;
            }
        }
        Ok(counts)
    }

    /// Messages staged (`target` `None`) or confirmed by `target`, per interval of
    /// `seconds`, oldest first.
    pub fn throughput(
        &self,
        batch: &str,
        target: Option<&str>,
        seconds: u64,
    ) -> Result<Vec<RatePoint>> {
        let (time, join, cond) = match target {
            None => ("m.staged_at", "", "m.state = 'staged'"),
            Some(_) => (
                "u.updated_at",
                "JOIN uploads u ON u.message_id = m.id AND u.target = ?3",
                "u.state = 'done'",
            ),
        };
        let sql = format!(
            "SELECT strftime('%Y-%m-%dT%H:%M:%SZ',
                        (CAST(strftime('%s', {time}) AS INTEGER) / ?2) * ?2, 'unixepoch') AS t,
                    count(*), coalesce(sum(m.size), 0)
             FROM messages m {join}
             JOIN folders f ON f.id = m.folder_id JOIN mailboxes mb ON mb.id = f.mailbox_id
             JOIN batches b ON b.id = mb.batch_id
             WHERE b.name = ?1 AND {cond} GROUP BY t ORDER BY t"
        );
        let mut stmt = self.sql(self.conn.prepare(&sql))?;
        let seconds = seconds.max(1) as i64;
        let map = |r: &rusqlite::Row<'_>| {
            Ok(RatePoint {
                at: r.get(0)?,
                messages: r.get::<_, i64>(1)?.max(0) as u64,
                bytes: r.get::<_, i64>(2)?.max(0) as u64,
            })
        };
        let rows = match target {
            None => stmt.query_map((batch, seconds), map),
            Some(t) => stmt.query_map((batch, seconds, t), map),
        };
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The first and last instant (UTC) at which a batch's messages were staged, or
    /// confirmed by `target`.
    pub fn activity_span(
        &self,
        batch: &str,
        target: Option<&str>,
    ) -> Result<Option<(String, String)>> {
        let sql = match target {
            None => {
                "SELECT min(m.staged_at), max(m.staged_at) FROM messages m
                 JOIN folders f ON f.id = m.folder_id JOIN mailboxes mb ON mb.id = f.mailbox_id
                 JOIN batches b ON b.id = mb.batch_id
                 WHERE b.name = ?1 AND m.state = 'staged' AND ?2 IS NULL"
            }
            Some(_) => {
                "SELECT min(u.updated_at), max(u.updated_at) FROM uploads u
                 JOIN messages m ON m.id = u.message_id
                 JOIN folders f ON f.id = m.folder_id JOIN mailboxes mb ON mb.id = f.mailbox_id
                 JOIN batches b ON b.id = mb.batch_id
                 WHERE b.name = ?1 AND u.target = ?2 AND u.state = 'done'"
            }
        };
        let (a, b): (Option<String>, Option<String>) = self.sql(self.conn.query_row(
            sql,
            (batch, target),
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))?;
        Ok(a.zip(b))
    }
}
