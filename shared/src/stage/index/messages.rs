//! Message rows: group commits from the extractor, and the reads verify, gc and maildir need.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rusqlite::Row;

use super::{Index, to_sql_int};
use crate::stage::error::Result;
use crate::stage::hash::BlobHash;

/// What became of a message the server listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageState {
    /// Its bytes are in a durable blob.
    Staged,
    /// Larger than the batch's size cap: left behind, never downloaded.
    SkippedSize,
    /// Beyond the mailbox's item cap (older than the newest N): left behind.
    SkippedItemCap,
    /// The server or the transfer failed for it; retried on the next pass.
    Failed,
    /// Its folder's UIDVALIDITY changed; kept for the record, superseded by a re-read.
    Retired,
}

impl MessageState {
    /// The name stored in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Staged => "staged",
            MessageState::SkippedSize => "skipped_size",
            MessageState::SkippedItemCap => "skipped_item_cap",
            MessageState::Failed => "failed",
            MessageState::Retired => "retired",
        }
    }
}

/// One message row to commit.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// The folder it was listed in.
    pub folder_id: i64,
    /// The folder's UIDVALIDITY when it was read.
    pub uidvalidity: u32,
    /// Its UID in that folder.
    pub uid: u32,
    /// What became of it.
    pub state: MessageState,
    /// Why it was skipped or failed, in words an admin understands.
    pub reason: Option<String>,
    /// Its blob; required when `state` is `Staged` (and durable before the commit).
    pub blob: Option<BlobHash>,
    /// Its size in bytes (of the blob when staged, else RFC822.SIZE as the server reported it).
    pub size: u64,
    /// INTERNALDATE exactly as the server sent it.
    pub internaldate: Option<String>,
    /// INTERNALDATE as seconds since the epoch (for newest-first ordering).
    pub internaldate_unix: Option<i64>,
    /// The flags, space separated, as the server sent them.
    pub flags: String,
    /// The Message-ID header, when it has one.
    pub message_id: Option<String>,
}

/// Where a staged message came from, for messages that name a problem.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BlobRef {
    /// The row's id.
    pub message_row: i64,
    /// The batch it belongs to.
    pub batch: String,
    /// The mailbox's address.
    pub email: String,
    /// The folder's decoded name.
    pub folder: String,
    /// The folder's UIDVALIDITY.
    pub uidvalidity: u32,
    /// The message's UID.
    pub uid: u32,
    /// The blob the row names.
    #[serde(serialize_with = "serialize_hash")]
    pub blob: BlobHash,
    /// The size the row records.
    pub size: u64,
}

impl fmt::Display for BlobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / {} / UID {} (UIDVALIDITY {}, batch {})",
            self.email, self.folder, self.uid, self.uidvalidity, self.batch
        )
    }
}

fn serialize_hash<S: serde::Serializer>(h: &BlobHash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&h.to_hex())
}

/// A staged message with what the maildir view needs.
#[derive(Clone, Debug)]
pub struct StagedMessage {
    /// Where it came from and which blob holds it.
    pub origin: BlobRef,
    /// The folder's hierarchy delimiter.
    pub delimiter: Option<char>,
    /// Its flags as the server sent them.
    pub flags: String,
    /// INTERNALDATE as seconds since the epoch.
    pub internaldate_unix: Option<i64>,
}

const STAGED_SELECT: &str = "
    SELECT m.id, b.name, mb.email, f.name, m.uidvalidity, m.uid, m.blob, m.size,
           f.delimiter, m.flags, m.internaldate_unix
    FROM messages m
    JOIN folders f ON f.id = m.folder_id
    JOIN mailboxes mb ON mb.id = f.mailbox_id
    JOIN batches b ON b.id = mb.batch_id
    WHERE m.state = 'staged' AND (?1 IS NULL OR b.name = ?1)
    ORDER BY mb.email, f.name, m.uidvalidity, m.uid";

fn staged_from_row(r: &Row<'_>) -> rusqlite::Result<StagedMessage> {
    let delimiter: Option<String> = r.get(8)?;
    Ok(StagedMessage {
        origin: BlobRef {
            message_row: r.get(0)?,
            batch: r.get(1)?,
            email: r.get(2)?,
            folder: r.get(3)?,
            uidvalidity: r.get(4)?,
            uid: r.get(5)?,
            blob: r.get(6)?,
            size: r.get::<_, i64>(7)?.max(0) as u64,
        },
        delimiter: delimiter.and_then(|d| d.chars().next()),
        flags: r.get(9)?,
        internaldate_unix: r.get(10)?,
    })
}

impl Index {
    /// Commits a group of rows in one transaction; call only after their blobs are durable.
    ///
    /// A row already `staged` is never overwritten (its blob is fixed); any other row with
    /// the same folder, UIDVALIDITY and UID is replaced (a failed message retried, say).
    /// Each folder's highest UID seen moves up with the rows.
    pub fn commit_messages(&mut self, rows: &[NewMessage]) -> Result<()> {
        self.write_tx(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (folder_id, uidvalidity, uid, state, reason, blob, size,
                     internaldate, internaldate_unix, flags, message_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (folder_id, uidvalidity, uid) DO UPDATE SET
                     state = excluded.state, reason = excluded.reason, blob = excluded.blob,
                     size = excluded.size, internaldate = excluded.internaldate,
                     internaldate_unix = excluded.internaldate_unix, flags = excluded.flags,
                     message_id = excluded.message_id
                 WHERE messages.state <> 'staged'",
            )?;
            let mut bump = tx.prepare_cached(
                "UPDATE folders SET highest_uid = max(highest_uid, ?2) WHERE id = ?1",
            )?;
            for m in rows {
                insert.execute((
                    m.folder_id,
                    m.uidvalidity,
                    m.uid,
                    m.state.as_str(),
                    &m.reason,
                    m.blob.map(|b| b.to_hex()),
                    to_sql_int(m.size),
                    &m.internaldate,
                    m.internaldate_unix,
                    &m.flags,
                    &m.message_id,
                ))?;
            }
            // One bump per folder (a group usually holds one folder's UIDs).
            let mut highest: HashMap<i64, u32> = HashMap::new();
            for m in rows {
                let h = highest.entry(m.folder_id).or_default();
                *h = (*h).max(m.uid);
            }
            for (folder, uid) in highest {
                bump.execute((folder, uid))?;
            }
            Ok(())
        })
    }

    /// Every staged message, optionally of one batch, ordered by mailbox, folder and UID.
    pub fn staged_messages(&self, batch: Option<&str>) -> Result<Vec<StagedMessage>> {
        let mut stmt = self.sql(self.conn.prepare(STAGED_SELECT))?;
        let rows = stmt.query_map([batch], staged_from_row);
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Every blob a row names (whatever the row's state): what gc must keep.
    pub fn referenced_blobs(&self) -> Result<HashSet<BlobHash>> {
        let mut stmt = self.sql(
            self.conn
                .prepare("SELECT DISTINCT blob FROM messages WHERE blob IS NOT NULL"),
        )?;
        self.sql(stmt.query_map([], |r| r.get(0)).and_then(Iterator::collect))
    }

    /// How many messages of the mailbox `mailbox_id` are recorded failed: distinct messages,
    /// so a retry that fails the same message again does not raise it.
    pub fn failed_messages(&self, mailbox_id: i64) -> Result<u64> {
        let count: i64 = self.sql(self.conn.query_row(
            "SELECT count(*) FROM messages m JOIN folders f ON f.id = m.folder_id
             WHERE f.mailbox_id = ?1 AND m.state = 'failed'",
            [mailbox_id],
            |r| r.get(0),
        ))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// The UIDs recorded for a folder under one UIDVALIDITY, in any state.
    pub fn known_uids(&self, folder_id: i64, uidvalidity: u32) -> Result<Vec<u32>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT uid FROM messages WHERE folder_id = ?1 AND uidvalidity = ?2 ORDER BY uid",
        ))?;
        let rows = stmt.query_map((folder_id, uidvalidity), |r| r.get(0));
        self.sql(rows.and_then(Iterator::collect))
    }
}
