//! `stage merge` with column lists read from the schema: a column a migration adds to any
//! table merges with no edit to the merge, on insert and where a row is brought forward;
//! indexes whose columns differ are refused; every table of the schema is merged.

use std::path::Path;

use super::{Index, MergeScope};
use crate::stage::error::StageError;

/// The tables `merge_in` copies, which with their rows in [`fill`] is every table of the schema.
const TABLES: &[&str] = &[
    "endpoints",
    "targets",
    "batches",
    "mailboxes",
    "folders",
    "messages",
    "uploads",
    "upload_runs",
    "upload_left_out",
    "namespace_folders",
    "events",
];

/// Tables the merge leaves out, on purpose: `listed_messages` holds one pass's working
/// rows (metadata listed before the bodies), cleared when a pass starts and ends, no record;
/// `stage_format` describes the stage's own blob directory, not the rows.
const NOT_MERGED: &[&str] = &["listed_messages", "stage_format"];

fn open(dir: &Path) -> Index {
    Index::open(&dir.join("index.sqlite")).unwrap()
}

/// A column `extra` on every table, as a later migration might add.
fn add_extra_column(idx: &Index) {
    for table in TABLES {
        idx.conn
            .execute(&format!("ALTER TABLE {table} ADD COLUMN extra TEXT"), [])
            .unwrap();
    }
}

/// One row in every table, each with `extra = 'x'`.
fn fill(idx: &Index) {
    idx.conn
        .execute_batch(
            "INSERT INTO endpoints (name, server, port, security, extra)
                 VALUES ('src', 'imap.example.com', 993, 'ssl', 'x');
             INSERT INTO targets (name, kind, settings, extra) VALUES ('t', 'imap', '{}', 'x');
             INSERT INTO batches (name, endpoint_id, state, extra) VALUES ('b', 1, 'Synced', 'x');
             INSERT INTO mailboxes (batch_id, email, login_name, state, last_sync_at, extra)
                 VALUES (1, 'a@b.c', 'a', 'Synced', '2026-01-01T00:00:00Z', 'x');
             INSERT INTO folders (mailbox_id, wire_name, name, uidvalidity, highest_uid,
                     source_checked_at, extra)
                 VALUES (1, x'494E424F58', 'INBOX', 7, 1, '2026-01-01T00:00:00Z', 'x');
             INSERT INTO messages (folder_id, uidvalidity, uid, state, size, extra)
                 VALUES (1, 7, 1, 'failed', 10, 'x');
             INSERT INTO uploads (message_id, target, extra) VALUES (1, 't', 'x');
             INSERT INTO upload_runs (mailbox_id, target, state, updated_at, extra)
                 VALUES (1, 't', 'Uploading', '2026-01-01T00:00:00Z', 'x');
             INSERT INTO upload_left_out (mailbox_id, target, folder_id, extra)
                 VALUES (1, 't', 1, 'x');
             INSERT INTO namespace_folders (mailbox_id, name, namespace, extra)
                 VALUES (1, 'Public', 'shared', 'x');
             INSERT INTO events (kind, detail, extra) VALUES ('sync', 'a pass', 'x');",
        )
        .unwrap();
}

/// Index `a` with its `extra` column and rows, and an empty one, `b` (with that column
/// too when `b_has_extra`), with the directories that hold them.
fn filled_and_empty(b_has_extra: bool) -> ([tempfile::TempDir; 2], Index, Index) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = (open(dirs[0].path()), open(dirs[1].path()));
    add_extra_column(&a);
    if b_has_extra {
        add_extra_column(&b);
    }
    fill(&a);
    (dirs, a, b)
}

/// How many rows of `table` have `extra` set to `value` (any row when `value` is `None`).
fn rows(idx: &Index, table: &str, value: Option<&str>) -> i64 {
    let filter = match value {
        Some(_) => "extra = ?1",
        None => "?1 IS NULL",
    };
    let sql = format!("SELECT count(*) FROM {table} WHERE {filter}");
    idx.conn.query_row(&sql, [value], |r| r.get(0)).unwrap()
}

#[test]
fn every_table_of_the_schema_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(dir.path());
    let mut stmt = idx
        .conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let mut tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut merged: Vec<String> = TABLES
        .iter()
        .chain(NOT_MERGED)
        .map(|t| (*t).to_owned())
        .collect();
    tables.sort();
    merged.sort();
    assert_eq!(
        tables, merged,
        "a migration added or removed a table: merge it in stage/index/merge.rs (or leave it \
         out there, saying why) and list it here"
    );
}

#[test]
fn a_column_a_migration_adds_merges_with_no_edit_to_the_merge() {
    let (_dirs, a, mut b) = filled_and_empty(true);
    b.merge_rows_from(a.path(), MergeScope::Everything).unwrap();
    for table in TABLES {
        assert_eq!(rows(&b, table, Some("x")), 1, "{table}");
    }

    // Rows that win the second time bring their new column forward.
    a.conn
        .execute_batch(
            "UPDATE mailboxes SET last_sync_at = '2026-02-01T00:00:00Z', extra = 'y';
             UPDATE folders SET source_checked_at = '2026-02-01T00:00:00Z', extra = 'y';
             UPDATE messages SET state = 'staged', blob = printf('%064d', 0), extra = 'y';
             UPDATE uploads SET state = 'in_flight';
             UPDATE uploads SET state = 'done', extra = 'y';
             UPDATE upload_runs SET updated_at = '2026-02-01T00:00:00Z', extra = 'y';",
        )
        .unwrap();
    let merged = b.merge_rows_from(a.path(), MergeScope::Everything).unwrap();
    assert_eq!(
        (merged.mailboxes, merged.folders, merged.messages),
        (1, 1, 1)
    );
    for table in ["mailboxes", "folders", "messages", "uploads", "upload_runs"] {
        assert_eq!(rows(&b, table, Some("y")), 1, "{table}");
    }
    let again = b.merge_rows_from(a.path(), MergeScope::Everything).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn indexes_whose_columns_differ_are_refused_and_nothing_is_written() {
    let (_dirs, a, mut b) = filled_and_empty(false);
    let err = b
        .merge_rows_from(a.path(), MergeScope::Everything)
        .unwrap_err();
    assert!(
        matches!(&err, StageError::Refused(why) if why.contains("table endpoints")
            && why.contains("not at the same schema version")),
        "{err}"
    );
    for table in TABLES {
        assert_eq!(rows(&b, table, None), 0, "{table}");
    }
}
