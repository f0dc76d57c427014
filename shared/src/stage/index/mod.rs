//! The SQLite index (`index.sqlite`): what the stage holds and where it came from.
//!
//! One connection per process writes (the stage lock guarantees one writing process); rows
//! that name blobs are committed in groups, after those blobs are durable (invariant 1).

mod batches;
mod catalog;
#[cfg(test)]
mod catalog_tests;
mod deletions;
mod listed;
mod merge;
mod merge_columns;
#[cfg(test)]
mod merge_columns_tests;
mod messages;
#[cfg(test)]
mod migration_tests;
mod partials;
mod report;
mod shards;
mod states;
mod status;
mod sync;
mod targets;
#[cfg(test)]
pub(crate) mod test_rows;
mod upload_flags;
mod upload_queue;
mod upload_refusals;
mod uploads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

pub use batches::{BatchInfo, MailboxInfo, RemovedBatch};
pub use catalog::{FolderInfo, NewMailbox};
pub use listed::{ListedMessage, ListedTotals, ListedVerdict};
pub use merge::{MergeScope, RowsMerged};
pub use messages::{BlobRef, MessageState, NewMessage, StagedMessage};
pub use report::{FolderTally, MessageTrail, RatePoint, SIZE_BOUNDS, Tally};
pub use shards::{Placement, PlannedMailbox};
pub use states::{BatchState, MailboxState};
pub use status::{BatchStatus, ItemCounts, MailboxStatus, StatusTotals};

pub use sync::{FolderSync, OpenedFolder};
pub use upload_flags::PendingFlag;
pub use upload_queue::{PlanItem, QueuedFolder};
pub use uploads::{MailboxUploadStatus, SourceFolder, UploadItem, UploadResult, UploadState};

use super::error::{Result, StageError};
use super::schema::{MIGRATIONS, SCHEMA_VERSION};

/// One entry of the append-only audit log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// When (UTC, RFC 3339 with milliseconds).
    pub at: String,
    /// The batch concerned, if any.
    pub batch: Option<String>,
    /// The mailbox concerned, if any.
    pub mailbox: Option<String>,
    /// What happened, one word (`sync`, `skip`, `error`, …).
    pub kind: String,
    /// The details, in words.
    pub detail: String,
}

/// An open index.
#[derive(Debug)]
pub struct Index {
    conn: Connection,
    path: PathBuf,
}

impl Index {
    /// Opens (creating when missing) the index file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| sqlite(path, e))?;
        let mut index = Self {
            conn,
            path: path.to_path_buf(),
        };
        index.configure()?;
        index.migrate()?;
        Ok(index)
    }

    /// The index file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64> {
        self.sql(
            self.conn
                .query_row("PRAGMA user_version", [], |row| row.get(0)),
        )
    }

    /// Appends an entry to the audit log (`events`, which refuses updates and deletes).
    pub fn record_event(
        &self,
        batch: Option<&str>,
        mailbox: Option<&str>,
        kind: &str,
        detail: &str,
    ) -> Result<()> {
        self.sql(insert_event(&self.conn, batch, mailbox, kind, detail))
    }

    /// The audit log, oldest first.
    pub fn events(&self) -> Result<Vec<Event>> {
        let mut stmt = self.sql(
            self.conn
                .prepare("SELECT at, batch, mailbox, kind, detail FROM events ORDER BY id"),
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Event {
                at: r.get(0)?,
                batch: r.get(1)?,
                mailbox: r.get(2)?,
                kind: r.get(3)?,
                detail: r.get(4)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The fan-out levels of the stage's blob directory (index v12): 2 while blobs may still
    /// be at `blobs/ab/cd/<sha256>` (a stage made before v12, not yet opened for writing), 1
    /// once every blob is at `blobs/ab/<sha256>`.
    pub fn blob_levels(&self) -> Result<u8> {
        self.sql(self.conn.query_row(
            "SELECT blob_levels FROM stage_format WHERE id = 1",
            [],
            |r| r.get(0),
        ))
    }

    /// Records the blob directory's fan-out levels (after the blobs were moved and synced).
    pub(crate) fn set_blob_levels(&self, levels: u8) -> Result<()> {
        self.sql(self.conn.execute(
            "UPDATE stage_format SET blob_levels = ?1 WHERE id = 1",
            [levels],
        ))
        .map(drop)
    }

    /// WAL, full synchronous commits (a committed row survives power loss), foreign keys.
    fn configure(&self) -> Result<()> {
        self.sql(self.conn.busy_timeout(Duration::from_secs(10)))?;
        self.sql(self.conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        ))
    }

    /// Applies the missing migrations, each in one transaction with the version bump.
    fn migrate(&mut self) -> Result<()> {
        let path = &self.path;
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| sqlite(path, e))?;
            let version: i64 = tx
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .map_err(|e| sqlite(path, e))?;
            if version > SCHEMA_VERSION {
                return Err(StageError::SchemaTooNew {
                    path: path.clone(),
                    found: version,
                    supported: SCHEMA_VERSION,
                });
            }
            let Some(step) = MIGRATIONS.get(version as usize) else {
                return Ok(());
            };
            tx.execute_batch(step)
                .and_then(|()| tx.pragma_update(None, "user_version", version + 1))
                .and_then(|()| tx.commit())
                .map_err(|e| sqlite(path, e))?;
            tracing::debug!(path = %path.display(), version = version + 1, "index migrated");
        }
    }

    /// Runs `f` in one write transaction: begins it, commits it when `f` returns `Ok` (rolls
    /// it back otherwise), and names the index file in any error. Everything `f` writes
    /// commits together or not at all; that is what the group commits rely on.
    fn write_tx<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let result = self.conn.transaction().and_then(|tx| {
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        });
        result.map_err(|e| sqlite(&self.path, e))
    }

    /// Maps a rusqlite result into the stage's error, naming the index file.
    fn sql<T>(&self, result: rusqlite::Result<T>) -> Result<T> {
        result.map_err(|e| sqlite(&self.path, e))
    }

    /// Looks up one integer id; `NotFound` names what was missing.
    fn id_of(&self, kind: &'static str, sql: &str, name: &str) -> Result<i64> {
        self.sql(self.conn.query_row(sql, [name], |r| r.get(0)).optional())?
            .ok_or_else(|| StageError::NotFound {
                kind,
                name: name.to_owned(),
            })
    }
}

/// Appends to the audit log; inside a transaction, the entry commits with the change it
/// describes.
fn insert_event(
    conn: &Connection,
    batch: Option<&str>,
    mailbox: Option<&str>,
    kind: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO events (batch, mailbox, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        (batch, mailbox, kind, detail),
    )
    .map(drop)
}

/// SQLite stores signed 64-bit integers; sizes and counts above `i64::MAX` cannot occur.
fn to_sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn sqlite(path: &Path, source: rusqlite::Error) -> StageError {
    StageError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// "no batch named …" (the index's readers and state changes say it alike).
fn not_found_batch(name: &str) -> StageError {
    StageError::NotFound {
        kind: "batch",
        name: name.to_owned(),
    }
}
