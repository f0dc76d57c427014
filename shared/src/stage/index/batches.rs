//! Batches as `batch new`, `batch status` and `batch remove` see them: created with their
//! mailboxes in one transaction, read back with every setting, removed with their rows.

use std::collections::HashSet;
use std::path::PathBuf;

use rusqlite::{OptionalExtension, Row};

use super::catalog::NewMailbox;
use super::states::{BatchState, MailboxState};
use super::{Index, insert_event, not_found_batch, to_sql_int};
use crate::catalog::BatchSettings;
use crate::stage::error::{Result, StageError};

/// A stored batch: its settings and where it is in its life.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BatchInfo {
    /// What `batch new` recorded.
    #[serde(flatten)]
    pub settings: BatchSettings,
    /// Its state.
    pub state: BatchState,
    /// When it was created (UTC, RFC 3339).
    pub created_at: String,
    /// When its last pass finished, if one has.
    pub last_sync_at: Option<String>,
    /// How many mailboxes it has.
    pub mailboxes: u64,
}

/// A stored mailbox of a batch (never its password).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MailboxInfo {
    /// The row's id (what folders hang from).
    #[serde(skip)]
    pub id: i64,
    /// The Microsoft 365 address (`EmailAddress`).
    pub email: String,
    /// The login on the IMAP server (`UserName`).
    pub login_name: String,
    /// Where the user's tree starts for Courier-style admin logins (`UserRoot`).
    pub user_root: Option<String>,
    /// The mailbox to upload into when it is not `email` (`TargetUserName`).
    pub target_user: Option<String>,
    /// Its state.
    pub state: MailboxState,
    /// Why its last pass failed, if it did.
    pub last_error: Option<String>,
    /// When its last pass finished, if one has.
    pub last_sync_at: Option<String>,
}

/// What [`Index::remove_batch`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RemovedBatch {
    /// The batch's name.
    pub name: String,
    /// Mailbox rows deleted.
    pub mailboxes: u64,
    /// Folder rows deleted.
    pub folders: u64,
    /// Message rows deleted (in every state).
    pub messages: u64,
    /// Of those, staged messages without a `done` upload (non-zero only when forced).
    pub not_uploaded: u64,
}

const BATCH_SELECT: &str = "
    SELECT b.name, e.name, b.csv_path, b.auth, b.include_folders, b.exclude_folders,
           b.max_message_size, b.max_items, b.state, b.created_at, b.last_sync_at,
           (SELECT count(*) FROM mailboxes mb WHERE mb.batch_id = b.id), b.include_namespaces
    FROM batches b JOIN endpoints e ON e.id = b.endpoint_id";

fn conversion(
    column: usize,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into())
}

fn patterns(r: &Row<'_>, column: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = r.get(column)?;
    serde_json::from_str(&text).map_err(|e| conversion(column, e))
}

fn batch_from_row(r: &Row<'_>) -> rusqlite::Result<BatchInfo> {
    let csv_path: Option<String> = r.get(2)?;
    Ok(BatchInfo {
        settings: BatchSettings {
            name: r.get(0)?,
            endpoint: r.get(1)?,
            csv_path: csv_path.map(PathBuf::from),
            auth: r.get(3)?,
            include_folders: patterns(r, 4)?,
            exclude_folders: patterns(r, 5)?,
            include_namespaces: {
                let text: String = r.get(12)?;
                serde_json::from_str(&text).map_err(|e| conversion(12, e))?
            },
            max_message_size: r.get::<_, i64>(6)?.max(0) as u64,
            max_items: r.get::<_, i64>(7)?.max(0) as u64,
        },
        state: r.get(8)?,
        created_at: r.get(9)?,
        last_sync_at: r.get(10)?,
        mailboxes: r.get::<_, i64>(11)?.max(0) as u64,
    })
}

/// Refuses settings no pass could run with, before anything is written.
fn check_new_batch(b: &BatchSettings, mailboxes: &[NewMailbox]) -> Result<()> {
    let refuse = |why: String| Err(StageError::Refused(why));
    if b.name.trim().is_empty() || b.name.chars().any(char::is_control) {
        return refuse(format!("{:?} is not a usable batch name", b.name));
    }
    if b.max_message_size == 0 || b.max_items == 0 {
        return refuse("the maximum message size and item count must be above 0".into());
    }
    if let Some(p) = b
        .include_folders
        .iter()
        .chain(&b.exclude_folders)
        .find(|p| p.is_empty())
    {
        return refuse(format!("empty folder pattern {p:?}"));
    }
    if mailboxes.is_empty() {
        return refuse(format!("batch {:?} would have no mailboxes", b.name));
    }
    let mut seen = HashSet::new();
    match mailboxes
        .iter()
        .find(|m| !seen.insert(m.email.to_lowercase()))
    {
        Some(m) => refuse(format!("mailbox {} is listed twice", m.email)),
        None => Ok(()),
    }
}

impl Index {
    /// Creates a batch (state `Created`) and its mailboxes (state `Queued`) in one transaction,
    /// and records `batch.created`; on any error nothing is written.
    ///
    /// Refused when the name is taken, the settings are unusable or an address is listed twice;
    /// [`StageError::NotFound`] when the endpoint does not exist. Returns the batch's id.
    pub fn create_batch_with_mailboxes(
        &mut self,
        b: &BatchSettings,
        mailboxes: &[NewMailbox],
    ) -> Result<i64> {
        check_new_batch(b, mailboxes)?;
        let endpoint = self.id_of(
            "endpoint",
            "SELECT id FROM endpoints WHERE name = ?1",
            &b.endpoint,
        )?;
        let csv_path = match &b.csv_path {
            Some(p) => Some(p.to_str().ok_or_else(|| {
                StageError::Refused(format!("the CSV path {} is not UTF-8", p.display()))
            })?),
            None => None,
        };
        // A taken name returns before anything is written (the transaction holds nothing).
        let created = self.write_tx(|tx| {
            let taken = tx
                .query_row("SELECT 1 FROM batches WHERE name = ?1", [&b.name], |_| {
                    Ok(())
                })
                .optional()?;
            if taken.is_some() {
                return Ok(None);
            }
            let to_json = |v: &Vec<String>| serde_json::Value::from(v.clone()).to_string();
            tx.execute(
                "INSERT INTO batches (name, endpoint_id, state, max_message_size, max_items,
                     include_folders, exclude_folders, csv_path, auth, include_namespaces)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                (
                    &b.name,
                    endpoint,
                    BatchState::Created,
                    to_sql_int(b.max_message_size),
                    to_sql_int(b.max_items),
                    to_json(&b.include_folders),
                    to_json(&b.exclude_folders),
                    csv_path,
                    b.auth,
                    serde_json::to_string(&b.include_namespaces).unwrap_or_else(|_| "[]".into()),
                ),
            )?;
            let id = tx.last_insert_rowid();
            let mut insert = tx.prepare(
                "INSERT INTO mailboxes (batch_id, email, login_name, user_root, state,
                     target_user)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for m in mailboxes {
                insert.execute((
                    id,
                    &m.email,
                    &m.login_name,
                    &m.user_root,
                    MailboxState::Queued,
                    &m.target_user,
                ))?;
            }
            let detail = format!(
                "endpoint {}, {} mailbox(es), csv {}",
                b.endpoint,
                mailboxes.len(),
                csv_path.unwrap_or("-")
            );
            insert_event(tx, Some(&b.name), None, "batch.created", &detail)?;
            Ok(Some(id))
        })?;
        created.ok_or_else(|| {
            StageError::Refused(format!("a batch named {:?} already exists", b.name))
        })
    }

    /// The batch named `name` with all its settings; [`StageError::NotFound`] when there is
    /// none.
    pub fn batch(&self, name: &str) -> Result<BatchInfo> {
        let sql = format!("{BATCH_SELECT} WHERE b.name = ?1");
        self.sql(self.conn.query_row(&sql, [name], batch_from_row).optional())?
            .ok_or_else(|| not_found_batch(name))
    }

    /// Every batch, by name.
    pub fn batches(&self) -> Result<Vec<BatchInfo>> {
        let mut stmt = self.sql(
            self.conn
                .prepare(&format!("{BATCH_SELECT} ORDER BY b.name")),
        )?;
        let rows = stmt.query_map([], batch_from_row);
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The mailboxes of a batch, by address; [`StageError::NotFound`] for an unknown batch.
    pub fn mailboxes(&self, batch: &str) -> Result<Vec<MailboxInfo>> {
        let batch_id = self.batch_id(batch)?;
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT id, email, login_name, user_root, state, last_error, last_sync_at,
                 target_user
             FROM mailboxes WHERE batch_id = ?1 ORDER BY email",
        ))?;
        let rows = stmt.query_map([batch_id], |r| {
            Ok(MailboxInfo {
                id: r.get(0)?,
                email: r.get(1)?,
                login_name: r.get(2)?,
                user_root: r.get(3)?,
                state: r.get(4)?,
                last_error: r.get(5)?,
                last_sync_at: r.get(6)?,
                target_user: r.get(7)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Removes a batch's rows (mailboxes, folders, messages and uploads go with it; events
    /// stay) and records `batch.removed`. The caller then runs [`crate::stage::Stage::gc`] to
    /// free the blobs no other batch references.
    ///
    /// Refused while the batch has staged messages without a `done` upload, unless `force`.
    /// The state becomes `Removing` in its own commit first, so a removal interrupted by a
    /// crash shows as such and a second `remove_batch` finishes it without `force`.
    pub fn remove_batch(&mut self, name: &str, force: bool) -> Result<RemovedBatch> {
        let info = self.batch(name)?;
        let removed = self.removal_counts(name)?;
        if removed.not_uploaded > 0 && !force && info.state != BatchState::Removing {
            return Err(StageError::Refused(format!(
                "batch {name:?} has {} staged message(s) not uploaded yet (no upload marked \
                 done); upload them first, or remove the batch anyway with --force",
                removed.not_uploaded
            )));
        }
        self.set_batch_state(name, BatchState::Removing)?;
        let detail = format!(
            "{} mailbox(es), {} folder(s), {} message row(s), {} not uploaded{}",
            removed.mailboxes,
            removed.folders,
            removed.messages,
            removed.not_uploaded,
            if force { " (forced)" } else { "" }
        );
        self.write_tx(|tx| {
            tx.execute("DELETE FROM batches WHERE name = ?1", [name])?;
            insert_event(tx, Some(name), None, "batch.removed", &detail)
        })?;
        Ok(removed)
    }

    /// The rows a removal of `name` would delete.
    fn removal_counts(&self, name: &str) -> Result<RemovedBatch> {
        let counts = self.sql(self.conn.query_row(
            "SELECT count(DISTINCT mb.id), count(DISTINCT f.id), count(m.id),
                    count(m.id) FILTER (WHERE m.state = 'staged' AND NOT EXISTS
                        (SELECT 1 FROM uploads u WHERE u.message_id = m.id AND u.state = 'done'))
             FROM batches b
             LEFT JOIN mailboxes mb ON mb.batch_id = b.id
             LEFT JOIN folders f ON f.mailbox_id = mb.id
             LEFT JOIN messages m ON m.folder_id = f.id
             WHERE b.name = ?1",
            [name],
            |r| {
                let n = |i| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok((n(0)?, n(1)?, n(2)?, n(3)?))
            },
        ))?;
        Ok(RemovedBatch {
            name: name.to_owned(),
            mailboxes: counts.0,
            folders: counts.1,
            messages: counts.2,
            not_uploaded: counts.3,
        })
    }
}
