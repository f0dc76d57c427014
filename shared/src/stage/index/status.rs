//! `batch status`: what each mailbox of a batch holds, computed with SQL aggregates over the
//! folder and message rows at the moment of asking (no stored counters that could drift).

use std::collections::{BTreeMap, HashMap};
use std::ops::AddAssign;

use super::Index;
use super::batches::BatchInfo;
use super::states::MailboxState;
use crate::stage::error::Result;

/// Counts of folders and items, for one mailbox or a whole batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ItemCounts {
    /// Folders being copied (listed by the server and not excluded).
    pub folders: u64,
    /// Messages whose bytes are in the stage.
    pub staged: u64,
    /// The bytes of those messages.
    pub staged_bytes: u64,
    /// Messages left behind because they exceed the batch's size cap.
    pub skipped_size: u64,
    /// Messages left behind because they are older than the newest `max_items`.
    pub skipped_item_cap: u64,
    /// Messages that failed (retried on the next pass).
    pub failed: u64,
    /// Messages the source deleted after they were recorded (they stay in the stage).
    pub deleted_on_source: u64,
    /// Folders whose name on the server is not canonical modified UTF-7 (read by their
    /// bytes, shown as UTF-8 with invalid sequences replaced).
    pub folders_not_mutf7: u64,
}

impl ItemCounts {
    /// Items left behind, whatever the reason.
    pub fn skipped(&self) -> u64 {
        self.skipped_size + self.skipped_item_cap
    }
}

impl AddAssign for ItemCounts {
    fn add_assign(&mut self, o: Self) {
        self.folders += o.folders;
        self.staged += o.staged;
        self.staged_bytes += o.staged_bytes;
        self.skipped_size += o.skipped_size;
        self.skipped_item_cap += o.skipped_item_cap;
        self.failed += o.failed;
        self.deleted_on_source += o.deleted_on_source;
        self.folders_not_mutf7 += o.folders_not_mutf7;
    }
}

/// One mailbox's line in `batch status --users`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MailboxStatus {
    /// The Microsoft 365 address.
    pub email: String,
    /// Its state.
    pub state: MailboxState,
    /// Its folders and items.
    #[serde(flatten)]
    pub counts: ItemCounts,
    /// Why its last pass failed, if it did.
    pub last_error: Option<String>,
    /// When its last pass finished, if one has.
    pub last_sync_at: Option<String>,
    /// Folders of other users' or shared namespaces its last pass listed and left out (not
    /// this user's mail), by name.
    pub left_out_namespaces: Vec<String>,
}

/// A batch's totals over its mailboxes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusTotals {
    /// How many mailboxes.
    pub mailboxes: u64,
    /// How many mailboxes are in each state (every state is listed, zeros included).
    pub mailbox_states: BTreeMap<MailboxState, u64>,
    /// Folders and items over all mailboxes.
    #[serde(flatten)]
    pub counts: ItemCounts,
}

/// Everything `batch status B` shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BatchStatus {
    /// The batch's settings and state.
    pub batch: BatchInfo,
    /// Its totals.
    pub totals: StatusTotals,
    /// One entry per mailbox, by address.
    pub mailboxes: Vec<MailboxStatus>,
}

/// One line per mailbox, of one batch (`?1`) or of all (`?1` NULL), by batch and address.
const MAILBOX_STATUS: &str = "
    SELECT b.name, mb.email, mb.state, mb.last_error, mb.last_sync_at,
           (SELECT count(*) FROM folders af WHERE af.mailbox_id = mb.id AND af.state = 'active'),
           count(m.id) FILTER (WHERE m.state = 'staged'),
           coalesce(sum(m.size) FILTER (WHERE m.state = 'staged'), 0),
           count(m.id) FILTER (WHERE m.state = 'skipped_size'),
           count(m.id) FILTER (WHERE m.state = 'skipped_item_cap'),
           count(m.id) FILTER (WHERE m.state = 'failed'),
           count(m.id) FILTER (WHERE m.deleted_on_source IS NOT NULL AND m.state <> 'retired'),
           mb.id
    FROM mailboxes mb
    JOIN batches b ON b.id = mb.batch_id
    LEFT JOIN folders f ON f.mailbox_id = mb.id
    LEFT JOIN messages m ON m.folder_id = f.id
    WHERE ?1 IS NULL OR b.name = ?1
    GROUP BY mb.id
    ORDER BY b.name, mb.email";

/// The active folders' wire names with their mailbox, of one batch (`?1`) or of all.
const FOLDER_WIRES: &str = "
    SELECT f.mailbox_id, f.wire_name FROM folders f
    JOIN mailboxes mb ON mb.id = f.mailbox_id
    JOIN batches b ON b.id = mb.batch_id
    WHERE f.state = 'active' AND (?1 IS NULL OR b.name = ?1)";

/// The left-out namespace folders with their mailbox, of one batch (`?1`) or of all.
const NAMESPACE_FOLDERS: &str = "
    SELECT n.mailbox_id, n.name FROM namespace_folders n
    JOIN mailboxes mb ON mb.id = n.mailbox_id
    JOIN batches b ON b.id = mb.batch_id
    WHERE ?1 IS NULL OR b.name = ?1
    ORDER BY n.mailbox_id, n.name";

/// Whether a folder's wire name is canonical modified UTF-7.
fn is_mutf7(wire: &[u8]) -> bool {
    std::str::from_utf8(wire).is_ok_and(|text| crate::imap::mutf7::decode(text).is_ok())
}

/// A batch's status from its settings and its mailboxes' lines (by address).
fn status_of(batch: BatchInfo, mailboxes: Vec<MailboxStatus>) -> BatchStatus {
    let mut totals = StatusTotals {
        mailbox_states: MailboxState::ALL.iter().map(|s| (*s, 0)).collect(),
        ..StatusTotals::default()
    };
    for m in &mailboxes {
        totals.mailboxes += 1;
        *totals.mailbox_states.entry(m.state).or_default() += 1;
        totals.counts += m.counts;
    }
    BatchStatus {
        batch,
        totals,
        mailboxes,
    }
}

impl Index {
    /// The status of the batch `name`: its settings and state, a line per mailbox and the
    /// totals. [`crate::stage::StageError::NotFound`] when there is no such batch.
    pub fn batch_status(&self, name: &str) -> Result<BatchStatus> {
        let batch = self.batch(name)?;
        let mailboxes = self.mailbox_statuses(Some(name))?;
        Ok(status_of(
            batch,
            mailboxes.into_iter().map(|(_, m)| m).collect(),
        ))
    }

    /// The status of every batch, by name (two queries, whatever the number of batches).
    pub fn batch_statuses(&self) -> Result<Vec<BatchStatus>> {
        let mut by_batch: HashMap<String, Vec<MailboxStatus>> = HashMap::new();
        for (batch, m) in self.mailbox_statuses(None)? {
            by_batch.entry(batch).or_default().push(m);
        }
        let batches = self.batches()?;
        Ok(batches
            .into_iter()
            .map(|b| {
                let mailboxes = by_batch.remove(&b.settings.name).unwrap_or_default();
                status_of(b, mailboxes)
            })
            .collect())
    }

    /// Each mailbox's line with its batch's name, of one batch or of all.
    fn mailbox_statuses(&self, batch: Option<&str>) -> Result<Vec<(String, MailboxStatus)>> {
        let mut not_mutf7: HashMap<i64, u64> = HashMap::new();
        let mut wires = self.sql(self.conn.prepare_cached(FOLDER_WIRES))?;
        let rows = wires.query_map([batch], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        });
        for (mailbox, wire) in
            self.sql(rows.and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>))?
        {
            if !is_mutf7(&wire) {
                *not_mutf7.entry(mailbox).or_default() += 1;
            }
        }
        let mut foreign: HashMap<i64, Vec<String>> = HashMap::new();
        let mut names = self.sql(self.conn.prepare_cached(NAMESPACE_FOLDERS))?;
        let rows = names.query_map([batch], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)));
        for (mailbox, name) in
            self.sql(rows.and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>))?
        {
            foreign.entry(mailbox).or_default().push(name);
        }
        let mut stmt = self.sql(self.conn.prepare_cached(MAILBOX_STATUS))?;
        let rows = stmt.query_map([batch], |r| {
            let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
            let line = MailboxStatus {
                email: r.get(1)?,
                state: r.get(2)?,
                last_error: r.get(3)?,
                last_sync_at: r.get(4)?,
                counts: ItemCounts {
                    folders: n(5)?,
                    staged: n(6)?,
                    staged_bytes: n(7)?,
                    skipped_size: n(8)?,
                    skipped_item_cap: n(9)?,
                    failed: n(10)?,
                    deleted_on_source: n(11)?,
                    folders_not_mutf7: not_mutf7.get(&r.get(12)?).copied().unwrap_or(0),
                },
                left_out_namespaces: foreign.remove(&r.get(12)?).unwrap_or_default(),
            };
            Ok((r.get(0)?, line))
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Records the folders of other users' or shared namespaces a mailbox's pass listed and
    /// left out, replacing what the previous pass recorded (one transaction; none when the
    /// same folders are recorded already, as on most passes: a write costs a sync of the log).
    pub fn set_namespace_folders(
        &mut self,
        mailbox_id: i64,
        folders: &[(String, crate::extract::namespaces::ForeignNamespace)],
    ) -> Result<()> {
        let mut stmt = self.sql(
            self.conn
                .prepare("SELECT name, namespace FROM namespace_folders WHERE mailbox_id = ?1"),
        )?;
        let rows = stmt.query_map([mailbox_id], |r| Ok((r.get(0)?, r.get(1)?)));
        let mut recorded: Vec<(String, String)> = self.sql(rows.and_then(Iterator::collect))?;
        drop(stmt);
        let mut now: Vec<(String, String)> = folders
            .iter()
            .map(|(name, whose)| (name.clone(), whose.as_str().to_owned()))
            .collect();
        recorded.sort();
        now.sort();
        now.dedup_by(|a, b| a.0 == b.0);
        if recorded == now {
            return Ok(());
        }
        self.write_tx(|tx| {
            tx.execute(
                "DELETE FROM namespace_folders WHERE mailbox_id = ?1",
                [mailbox_id],
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO namespace_folders (mailbox_id, name, namespace)
                 VALUES (?1, ?2, ?3)",
            )?;
            for (name, whose) in folders {
                insert.execute((mailbox_id, name, whose.as_str()))?;
            }
            Ok(())
        })
    }
}
