//! Folding another index's rows into this one (`stage merge`, a shard's catalog export, a
//! combined view of several stages), matched by what names them rather than by row ids:
//! endpoints, targets and batches by name, mailboxes by (batch, address), folders by
//! (mailbox, wire name), messages by (folder, UIDVALIDITY, UID), uploads by (message,
//! target). Rows already present are not duplicated, so merging twice changes nothing; the
//! whole merge is one transaction, so a crash leaves the index as it was before.
//!
//! Where both sides hold a row, the one further along wins: a mailbox that was synced over
//! one still queued (or synced later), a folder examined later, a staged message over a
//! failed or skipped one, a `done` upload over any other. A batch's state becomes the worse
//! of the two (a shard with errors makes the merged batch one with errors). Two plans that
//! put one mailbox in different shards, or one batch name on different endpoints, are
//! refused. Not merged: `listed_messages` (one pass's working rows, no record) and
//! `stage_format` (the layout of each stage's own blob directory).

use std::path::Path;

use rusqlite::{OptionalExtension, Transaction};

use super::merge_columns::Columns;
use super::{Index, insert_event, sqlite};
use crate::stage::error::{Result, StageError};

/// What to take from the other index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeScope {
    /// Endpoints, targets, batches and mailboxes (with their shard plan), not their states:
    /// what a shard's own stage starts from.
    Catalog,
    /// Every row: folders, messages, uploads and the audit log too.
    Everything,
}

/// How many rows a merge added or brought forward, per table.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowsMerged {
    /// Endpoints added.
    pub endpoints: u64,
    /// Upload targets added.
    pub targets: u64,
    /// Batches added.
    pub batches: u64,
    /// Mailboxes added or brought forward.
    pub mailboxes: u64,
    /// Folders added or brought forward.
    pub folders: u64,
    /// Messages added or brought forward.
    pub messages: u64,
    /// Uploads added or brought forward, with the upload runs and left-out folders.
    pub uploads: u64,
    /// Audit log entries copied.
    pub events: u64,
}

impl RowsMerged {
    /// Whether the merge changed nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Rank of a batch state when two are merged: the higher one is kept.
const BATCH_RANK: &str = "CASE {} WHEN 'Created' THEN 0 WHEN 'Synced' THEN 1 WHEN 'Syncing' THEN 2
    WHEN 'SyncedWithErrors' THEN 3 WHEN 'Failed' THEN 4 ELSE 5 END";

fn rank(column: &str) -> String {
    BATCH_RANK.replace("{}", column)
}

impl Index {
    /// The distinct blob names the index's message rows hold.
    pub fn blob_names(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .sql(self.conn.prepare(
                "SELECT DISTINCT blob FROM messages WHERE blob IS NOT NULL ORDER BY blob",
            ))?;
        let rows = stmt.query_map([], |r| r.get(0));
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Merges the rows of the index file `other` into this one, in one transaction; see the
    /// module's documentation for which row wins. The caller makes sure the blobs those rows
    /// name are durable here first (invariant 1) and that nothing writes `other` meanwhile.
    pub fn merge_rows_from(&mut self, other: &Path, scope: MergeScope) -> Result<RowsMerged> {
        let name = other.to_str().ok_or_else(|| {
            StageError::Refused(format!("the index path {} is not UTF-8", other.display()))
        })?;
        let path = self.path.clone();
        self.conn
            .execute("ATTACH DATABASE ?1 AS src", [name])
            .map_err(|e| sqlite(other, e))?;
        let merged = self
            .conn
            .transaction()
            .map_err(|e| sqlite(&path, e))
            .and_then(|tx| {
                let merged = merge_in(&tx, &path, scope)?;
                tx.commit().map_err(|e| sqlite(&path, e))?;
                Ok(merged)
            });
        let detached = self.conn.execute("DETACH DATABASE src", []);
        let merged = merged?;
        detached.map_err(|e| sqlite(other, e))?;
        Ok(merged)
    }
}

/// The merge's statements, inside its transaction. Column lists come from the schema
/// ([`Columns`]); what is written out is how rows are matched, which ids are remapped and
/// which row wins.
fn merge_in(tx: &Transaction<'_>, path: &Path, scope: MergeScope) -> Result<RowsMerged> {
    let fail = |e| sqlite(path, e);
    refuse_conflicts(tx).map_err(|e| match e {
        Conflict::Sql(e) => fail(e),
        Conflict::Refused(why) => StageError::Refused(why),
    })?;
    let cols = |table| Columns::read(tx, path, table);
    let mut m = RowsMerged::default();
    let n = |sql: &str| tx.execute(sql, []).map(|n| n as u64).map_err(fail);
    m.endpoints = n(&cols("endpoints")?.insert(
        "",
        &[],
        "FROM src.endpoints s WHERE NOT EXISTS (SELECT 1 FROM main.endpoints t WHERE t.name = s.name)",
    ))?;
    m.targets = n(&cols("targets")?.insert(
        "",
        &[],
        "FROM src.targets s WHERE NOT EXISTS (SELECT 1 FROM main.targets t WHERE t.name = s.name)",
    ))?;
    let (state, last_sync) = match scope {
        MergeScope::Catalog => ("'Created'", "NULL"),
        MergeScope::Everything => ("s.state", "s.last_sync_at"),
    };
    m.batches = n(&cols("batches")?.insert(
        "",
        &[
            ("endpoint_id", "te.id"),
            ("state", state),
            ("last_sync_at", last_sync),
        ],
        "FROM src.batches s JOIN src.endpoints se ON se.id = s.endpoint_id
         JOIN main.endpoints te ON te.name = se.name
         WHERE NOT EXISTS (SELECT 1 FROM main.batches t WHERE t.name = s.name)",
    ))?;
    n(
        "UPDATE main.batches AS t SET shards = coalesce(t.shards, s.shards)
       FROM src.batches s WHERE s.name = t.name AND t.shards IS NULL AND s.shards IS NOT NULL",
    )?;
    if scope == MergeScope::Everything {
        n(&format!(
            "UPDATE main.batches AS t SET state = s.state FROM src.batches s
             WHERE s.name = t.name AND {} > {}",
            rank("s.state"),
            rank("t.state")
        ))?;
        n(
            "UPDATE main.batches AS t SET last_sync_at = s.last_sync_at FROM src.batches s
           WHERE s.name = t.name AND s.last_sync_at > coalesce(t.last_sync_at, '')",
        )?;
    }
    let (state, error, last_sync) = match scope {
        MergeScope::Catalog => ("'Queued'", "NULL", "NULL"),
        MergeScope::Everything => ("s.state", "s.last_error", "s.last_sync_at"),
    };
    let mailboxes = cols("mailboxes")?;
    m.mailboxes = n(&mailboxes.insert(
        "",
        &[
            ("batch_id", "tb.id"),
            ("state", state),
            ("last_error", error),
            ("last_sync_at", last_sync),
        ],
        "FROM src.mailboxes s JOIN src.batches sb ON sb.id = s.batch_id
         JOIN main.batches tb ON tb.name = sb.name
         WHERE NOT EXISTS (SELECT 1 FROM main.mailboxes t
                           WHERE t.batch_id = tb.id AND t.email = s.email)",
    ))?;
    map_ids(
        tx,
        "map_mailbox",
        "SELECT s.id, t.id FROM src.mailboxes s JOIN src.batches sb ON sb.id = s.batch_id
         JOIN main.batches tb ON tb.name = sb.name
         JOIN main.mailboxes t ON t.batch_id = tb.id AND t.email = s.email",
    )
    .map_err(fail)?;
    n(&format!(
        "UPDATE main.mailboxes AS t SET {}
       FROM src.mailboxes s JOIN map_mailbox mm ON mm.src = s.id
       WHERE t.id = mm.dst AND t.shard IS NULL AND s.shard IS NOT NULL",
        Columns::assign_only(MAILBOX_PLAN, "s")
    ))?;
    if scope == MergeScope::Catalog {
        return Ok(m);
    }
    // A mailbox's pass state: every column but its keys, its catalog columns and its plan.
    let not_pass: Vec<&str> = [MAILBOX_KEYS, MAILBOX_PLAN].concat();
    m.mailboxes += n(&format!(
        "UPDATE main.mailboxes AS t SET {}
         FROM src.mailboxes s JOIN map_mailbox mm ON mm.src = s.id
         WHERE t.id = mm.dst AND s.state <> 'Queued'
           AND (t.state = 'Queued' OR coalesce(s.last_sync_at, '') > coalesce(t.last_sync_at, ''))
           AND NOT ({})",
        mailboxes.assign(&not_pass, "s"),
        mailboxes.same(&not_pass)
    ))?;
    merge_folders_and_messages(tx, path, &mut m)?;
    merge_uploads(tx, path, &mut m)?;
    // What the shard's last pass left out of other namespaces (its own rows win).
    n(&cols("namespace_folders")?.insert(
        "OR IGNORE",
        &[("mailbox_id", "mm.dst")],
        "FROM src.namespace_folders s JOIN map_mailbox mm ON mm.src = s.mailbox_id",
    ))?;
    m.events = n(&cols("events")?.insert(
        "",
        &[],
        "FROM src.events s
         WHERE NOT EXISTS (SELECT 1 FROM main.events t WHERE t.at = s.at
             AND t.batch IS s.batch AND t.mailbox IS s.mailbox AND t.kind = s.kind
             AND t.detail = s.detail)
         ORDER BY s.id",
    ))?;
    if !m.is_empty() {
        let detail = serde_json::to_string(&m).unwrap_or_default();
        insert_event(tx, None, None, "stage.merged", &detail).map_err(fail)?;
    }
    Ok(m)
}

/// A mailbox's keys and what its batch's CSV says of it: never brought forward by a pass.
const MAILBOX_KEYS: &[&str] = &[
    "batch_id",
    "email",
    "login_name",
    "user_root",
    "target_user",
];
/// A mailbox's shard plan: set once, taken from the other side only where this one has none.
const MAILBOX_PLAN: &[&str] = &["shard", "planned_bytes", "planned_messages"];

/// Folders (the one examined later wins) and messages (a staged row over any other but a
/// retired one; a retirement is final).
fn merge_folders_and_messages(tx: &Transaction<'_>, path: &Path, m: &mut RowsMerged) -> Result<()> {
    let fail = |e| sqlite(path, e);
    let n = |sql: &str| tx.execute(sql, []).map(|n| n as u64).map_err(fail);
    let folders = Columns::read(tx, path, "folders")?;
    m.folders = n(&folders.insert(
        "",
        &[("mailbox_id", "mm.dst")],
        "FROM src.folders s JOIN map_mailbox mm ON mm.src = s.mailbox_id
         WHERE NOT EXISTS (SELECT 1 FROM main.folders t
                           WHERE t.mailbox_id = mm.dst AND t.wire_name = s.wire_name)",
    ))?;
    map_ids(
        tx,
        "map_folder",
        "SELECT s.id, t.id FROM src.folders s JOIN map_mailbox mm ON mm.src = s.mailbox_id
         JOIN main.folders t ON t.mailbox_id = mm.dst AND t.wire_name = s.wire_name",
    )
    .map_err(fail)?;
    m.folders += n(&format!(
        "UPDATE main.folders AS t SET {}
         FROM src.folders s JOIN map_folder mf ON mf.src = s.id
         WHERE t.id = mf.dst AND (coalesce(s.source_checked_at, '') > coalesce(t.source_checked_at, '')
             OR (s.source_checked_at IS t.source_checked_at AND s.uidvalidity IS t.uidvalidity
                 AND s.highest_uid > t.highest_uid))",
        folders.assign(&["mailbox_id", "wire_name"], "s")
    ))?;
    let messages = Columns::read(tx, path, "messages")?;
    m.messages = n(&messages.insert(
        "",
        &[("folder_id", "mf.dst")],
        "FROM src.messages s JOIN map_folder mf ON mf.src = s.folder_id
         WHERE NOT EXISTS (SELECT 1 FROM main.messages t WHERE t.folder_id = mf.dst
                           AND t.uidvalidity = s.uidvalidity AND t.uid = s.uid)
         ORDER BY s.id",
    ))?;
    map_ids(
        tx,
        "map_message",
        "SELECT s.id, t.id FROM src.messages s JOIN map_folder mf ON mf.src = s.folder_id
         JOIN main.messages t ON t.folder_id = mf.dst AND t.uidvalidity = s.uidvalidity
             AND t.uid = s.uid",
    )
    .map_err(fail)?;
    // The keys, and the deletion noticed on the source, which has its own rule below.
    let not_state = ["folder_id", "uidvalidity", "uid", "deleted_on_source"];
    m.messages += n(&format!(
        "UPDATE main.messages AS t SET {}
         FROM src.messages s JOIN map_message mg ON mg.src = s.id
         WHERE t.id = mg.dst AND t.state <> 'retired' AND t.state <> s.state
             AND (s.state = 'staged' OR s.state = 'retired')",
        messages.assign(&not_state, "s")
    ))?;
    m.messages += n(
        "UPDATE main.messages AS t SET deleted_on_source = s.deleted_on_source
         FROM src.messages s JOIN map_message mg ON mg.src = s.id
         WHERE t.id = mg.dst AND t.deleted_on_source IS NULL AND s.deleted_on_source IS NOT NULL",
    )?;
    Ok(())
}

/// Uploads (a `done` one over any other: the other is replaced, since the upload state
/// machine allows no direct step to `done`), upload runs (the later one) and the folders a
/// run left out.
fn merge_uploads(tx: &Transaction<'_>, path: &Path, m: &mut RowsMerged) -> Result<()> {
    let fail = |e| sqlite(path, e);
    let n = |sql: &str| tx.execute(sql, []).map(|n| n as u64).map_err(fail);
    n("DELETE FROM main.uploads WHERE id IN (
           SELECT t.id FROM main.uploads t JOIN map_message mg ON mg.dst = t.message_id
           JOIN src.uploads s ON s.message_id = mg.src AND s.target = t.target
           WHERE t.state <> 'done' AND s.state = 'done')")?;
    m.uploads = n(&Columns::read(tx, path, "uploads")?.insert(
        "",
        &[("message_id", "mg.dst")],
        "FROM src.uploads s JOIN map_message mg ON mg.src = s.message_id
         WHERE NOT EXISTS (SELECT 1 FROM main.uploads t
                           WHERE t.message_id = mg.dst AND t.target = s.target)",
    ))?;
    let runs = Columns::read(tx, path, "upload_runs")?;
    m.uploads += n(&format!(
        "{} WHERE true
         ON CONFLICT (mailbox_id, target) DO UPDATE SET {}
         WHERE excluded.updated_at > upload_runs.updated_at",
        runs.insert(
            "",
            &[("mailbox_id", "mm.dst")],
            "FROM src.upload_runs s JOIN map_mailbox mm ON mm.src = s.mailbox_id",
        ),
        runs.assign(&["mailbox_id", "target"], "excluded")
    ))?;
    m.uploads += n(&Columns::read(tx, path, "upload_left_out")?.insert(
        "OR IGNORE",
        &[("mailbox_id", "mm.dst"), ("folder_id", "mf.dst")],
        "FROM src.upload_left_out s
         JOIN map_mailbox mm ON mm.src = s.mailbox_id JOIN map_folder mf ON mf.src = s.folder_id",
    ))?;
    Ok(())
}

/// Fills the temporary table `map` with the (source row id, row id here) pairs `select`
/// yields: how rows of the other index that name a row of this table are remapped.
fn map_ids(tx: &Transaction<'_>, map: &str, select: &str) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.{map};
         CREATE TEMP TABLE {map} (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);
         INSERT INTO {map} {select};"
    ))
}

enum Conflict {
    Sql(rusqlite::Error),
    Refused(String),
}

impl From<rusqlite::Error> for Conflict {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

/// Refuses to merge a batch that reads another endpoint here, or a mailbox another plan
/// put in another shard.
fn refuse_conflicts(tx: &Transaction<'_>) -> std::result::Result<(), Conflict> {
    let endpoint: Option<(String, String, String)> = tx
        .query_row(
            "SELECT sb.name, se.name, te.name FROM src.batches sb
             JOIN src.endpoints se ON se.id = sb.endpoint_id
             JOIN main.batches tb ON tb.name = sb.name
             JOIN main.endpoints te ON te.id = tb.endpoint_id
             WHERE se.name <> te.name LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((batch, theirs, ours)) = endpoint {
        return Err(Conflict::Refused(format!(
            "batch {batch:?} reads endpoint {theirs:?} there but {ours:?} here: not the same batch"
        )));
    }
    let shard: Option<(String, String, u32, u32)> = tx
        .query_row(
            "SELECT sb.name, s.email, s.shard, t.shard FROM src.mailboxes s
             JOIN src.batches sb ON sb.id = s.batch_id JOIN main.batches tb ON tb.name = sb.name
             JOIN main.mailboxes t ON t.batch_id = tb.id AND t.email = s.email
             WHERE s.shard <> t.shard LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    if let Some((batch, email, theirs, ours)) = shard {
        return Err(Conflict::Refused(format!(
            "mailbox {email} of batch {batch:?} is in shard {theirs} there but shard {ours} \
             here: the stages come from different plans"
        )));
    }
    Ok(())
}
