//! What an extraction pass reads and records besides message rows: a folder's sync state,
//! UIDVALIDITY changes, folders that disappeared, flag changes.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension};

use super::catalog::upsert_folder_on;
use super::{FolderInfo, Index};
use crate::stage::error::Result;

/// A folder's state as the last pass left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderSync {
    /// Its row id.
    pub id: i64,
    /// UIDVALIDITY at the last pass.
    pub uidvalidity: Option<u32>,
    /// Every UID up to this one has a row (in some state).
    pub highest_uid: u32,
    /// HIGHESTMODSEQ after the last complete pass, with CONDSTORE.
    pub highest_modseq: Option<u64>,
    /// The source's message count when the folder was last opened (EXAMINE's EXISTS).
    pub source_messages: Option<u32>,
    /// `active`, `gone` (no longer listed) or `excluded` (left out by the batch's patterns).
    pub state: String,
}

/// Where a folder's pass starts, from [`Index::open_folder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedFolder {
    /// Its row id.
    pub id: i64,
    /// Its UIDVALIDITY changed: the old rows were retired and it is read again from UID 1.
    pub restarted: bool,
    /// Rows retired by that change.
    pub retired: u64,
    /// Every UID up to this one has a row (0 for a new or restarted folder).
    pub highest_uid: u32,
    /// HIGHESTMODSEQ after the last complete pass (`None` for a new or restarted folder).
    pub highest_modseq: Option<u64>,
}

const FOLDER_SYNC_COLUMNS: &str =
    "id, uidvalidity, highest_uid, highest_modseq, source_messages, state";

fn folder_sync_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<FolderSync> {
    Ok(FolderSync {
        id: r.get(0)?,
        uidvalidity: r.get(1)?,
        highest_uid: r.get(2)?,
        highest_modseq: r.get::<_, Option<i64>>(3)?.map(|m| m as u64),
        source_messages: r.get(4)?,
        state: r.get(5)?,
    })
}

fn folder_sync_on(
    conn: &Connection,
    mailbox_id: i64,
    wire_name: &[u8],
) -> rusqlite::Result<Option<FolderSync>> {
    conn.query_row(
        &format!(
            "SELECT {FOLDER_SYNC_COLUMNS} FROM folders WHERE mailbox_id = ?1 AND wire_name = ?2"
        ),
        (mailbox_id, wire_name),
        folder_sync_of,
    )
    .optional()
}

/// Records a folder as EXAMINE found it (see [`Index::open_folder`]) inside a transaction.
fn open_folder_on(
    tx: &rusqlite::Transaction<'_>,
    mailbox_id: i64,
    f: &FolderInfo,
    uidvalidity: u32,
) -> rusqlite::Result<OpenedFolder> {
    let before = folder_sync_on(tx, mailbox_id, &f.wire_name)?;
    let id = upsert_folder_on(tx, mailbox_id, f, uidvalidity)?;
    let stale: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE folder_id = ?1
             AND uidvalidity <> ?2 AND state <> 'retired')",
        (id, uidvalidity),
        |r| r.get(0),
    )?;
    let changed = before
        .as_ref()
        .is_some_and(|b| b.uidvalidity.is_some_and(|old| old != uidvalidity));
    let retired = if changed || stale {
        let retired = tx.execute(
            "UPDATE messages SET state = 'retired', reason = 'UIDVALIDITY changed'
                 WHERE folder_id = ?1 AND uidvalidity <> ?2 AND state <> 'retired'",
            (id, uidvalidity),
        )?;
        tx.execute(
            "UPDATE folders SET highest_uid = 0, highest_modseq = NULL WHERE id = ?1",
            [id],
        )?;
        crate::crash_point::hit("uidvalidity-uncommitted");
        Some(retired as u64)
    } else {
        None
    };
    let kept = before.filter(|_| retired.is_none());
    Ok(OpenedFolder {
        id,
        restarted: retired.is_some(),
        retired: retired.unwrap_or(0),
        highest_uid: kept.as_ref().map_or(0, |b| b.highest_uid),
        highest_modseq: kept.and_then(|b| b.highest_modseq),
    })
}

impl Index {
    /// The recorded state of a mailbox's folder, by its wire name.
    pub fn folder_sync(&self, mailbox_id: i64, wire_name: &[u8]) -> Result<Option<FolderSync>> {
        self.sql(folder_sync_on(&self.conn, mailbox_id, wire_name))
    }

    /// The recorded state of every folder of a mailbox, by wire name (one query for a pass
    /// over many folders).
    pub fn folder_syncs(&self, mailbox_id: i64) -> Result<HashMap<Vec<u8>, FolderSync>> {
        let mut stmt = self.sql(self.conn.prepare(&format!(
            "SELECT {FOLDER_SYNC_COLUMNS}, wire_name FROM folders WHERE mailbox_id = ?1"
        )))?;
        let rows = stmt.query_map([mailbox_id], |r| Ok((r.get(6)?, folder_sync_of(r)?)));
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The folders of a mailbox holding messages whose last attempt failed under the
    /// folder's current UIDVALIDITY (and that the source still has).
    pub fn folders_with_failed(&self, mailbox_id: i64) -> Result<HashSet<i64>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT DISTINCT f.id FROM folders f JOIN messages m ON m.folder_id = f.id
             WHERE f.mailbox_id = ?1 AND m.uidvalidity = f.uidvalidity
             AND m.state = 'failed' AND m.deleted_on_source IS NULL",
        ))?;
        let rows = stmt.query_map([mailbox_id], |r| r.get(0));
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Records the source's message counts of several folders (as STATUS gave them) in one
    /// transaction.
    pub fn set_folder_source_counts(&mut self, counts: &[(i64, u32)]) -> Result<()> {
        self.write_tx(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE folders SET source_messages = ?2,
                     source_checked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1",
            )?;
            for (id, messages) in counts {
                stmt.execute((id, messages))?;
            }
            Ok(())
        })
    }

    /// Records a folder as EXAMINE found it and returns where its pass starts.
    ///
    /// When its UIDVALIDITY changed, the new value, the retiring of the old rows (kept for the
    /// record, their blobs stay) and the reset of `highest_uid` commit in one transaction, so
    /// a crash can never leave the new UIDVALIDITY next to the old `highest_uid`. Rows of
    /// another UIDVALIDITY still active (a stage an older version left half-way through that
    /// change) are retired the same way.
    pub fn open_folder(
        &mut self,
        mailbox_id: i64,
        f: &FolderInfo,
        uidvalidity: u32,
    ) -> Result<OpenedFolder> {
        self.write_tx(|tx| open_folder_on(tx, mailbox_id, f, uidvalidity))
    }

    /// [`Index::open_folder`] for several folders in one transaction (one commit for a
    /// pass opening many folders at once), each with the message count EXAMINE gave
    /// ([`Index::set_folder_source_count`]): `(folder, UIDVALIDITY, EXISTS)`.
    pub fn open_folders(
        &mut self,
        mailbox_id: i64,
        folders: &[(FolderInfo, u32, u32)],
    ) -> Result<Vec<OpenedFolder>> {
        self.write_tx(|tx| {
            let mut count = tx.prepare_cached(
                "UPDATE folders SET source_messages = ?2,
                     source_checked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?1",
            )?;
            let mut opened = Vec::with_capacity(folders.len());
            for (f, uidvalidity, exists) in folders {
                let o = open_folder_on(tx, mailbox_id, f, *uidvalidity)?;
                count.execute((o.id, exists))?;
                opened.push(o);
            }
            Ok(opened)
        })
    }

    /// Records HIGHESTMODSEQ once a folder's pass completed.
    pub fn set_folder_modseq(&self, folder_id: i64, modseq: Option<u64>) -> Result<()> {
        self.sql(self.conn.execute(
            "UPDATE folders SET highest_modseq = ?2 WHERE id = ?1",
            (folder_id, modseq.map(|m| m as i64)),
        ))?;
        Ok(())
    }

    /// Records the HIGHESTMODSEQ of several folders whose pass completed, in one
    /// transaction.
    pub fn set_folder_modseqs(&mut self, folders: &[(i64, Option<u64>)]) -> Result<()> {
        if folders.is_empty() {
            return Ok(());
        }
        self.write_tx(|tx| {
            let mut stmt =
                tx.prepare_cached("UPDATE folders SET highest_modseq = ?2 WHERE id = ?1")?;
            for (id, modseq) in folders {
                stmt.execute((id, modseq.map(|m| m as i64)))?;
            }
            Ok(())
        })
    }

    /// Marks a folder with a state (`active`, `gone`, `excluded`).
    pub fn set_folder_state(&self, folder_id: i64, state: &str) -> Result<()> {
        self.sql(self.conn.execute(
            "UPDATE folders SET state = ?2 WHERE id = ?1",
            (folder_id, state),
        ))?;
        Ok(())
    }

    /// Marks the mailbox's folders that the server no longer lists as `gone`; returns their
    /// names.
    pub fn mark_gone_folders(&self, mailbox_id: i64, listed: &[Vec<u8>]) -> Result<Vec<String>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT id, wire_name, name FROM folders WHERE mailbox_id = ?1 AND state = 'active'",
        ))?;
        let rows: Vec<(i64, Vec<u8>, String)> = self.sql(
            stmt.query_map([mailbox_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(Iterator::collect),
        )?;
        let mut gone = Vec::new();
        for (id, wire, name) in rows {
            if !listed.contains(&wire) {
                self.set_folder_state(id, "gone")?;
                gone.push(name);
            }
        }
        Ok(gone)
    }

    /// UIDs of a folder whose last attempt failed (retried on the next pass), unless the
    /// source has deleted them since.
    pub fn failed_uids(&self, folder_id: i64, uidvalidity: u32) -> Result<Vec<u32>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT uid FROM messages WHERE folder_id = ?1 AND uidvalidity = ?2
             AND state = 'failed' AND deleted_on_source IS NULL ORDER BY uid",
        ))?;
        let rows = stmt.query_map((folder_id, uidvalidity), |r| r.get(0));
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Messages of a mailbox staged so far (for the item cap).
    pub fn staged_count(&self, mailbox_id: i64) -> Result<u64> {
        self.sql(self.conn.query_row(
            "SELECT count(*) FROM messages m JOIN folders f ON f.id = m.folder_id
             WHERE f.mailbox_id = ?1 AND m.state = 'staged'",
            [mailbox_id],
            |r| r.get::<_, i64>(0),
        ))
        .map(|n| n as u64)
    }

    /// New flags for messages already recorded (CONDSTORE changes); returns rows changed.
    pub fn update_flags(
        &mut self,
        folder_id: i64,
        uidvalidity: u32,
        changes: &[(u32, String)],
    ) -> Result<u64> {
        self.write_tx(|tx| {
            let mut stmt = tx.prepare_cached(
                "UPDATE messages SET flags = ?4 WHERE folder_id = ?1 AND uidvalidity = ?2
                 AND uid = ?3 AND flags <> ?4",
            )?;
            let mut changed = 0;
            for (uid, flags) in changes {
                changed += stmt.execute((folder_id, uidvalidity, uid, flags))? as u64;
            }
            Ok(changed)
        })
    }
}
