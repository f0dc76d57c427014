//! The column lists of `stage merge`'s statements, read from the schema rather than written
//! out: every column of a table but its row id, in schema order, from `PRAGMA table_info`.
//! Both indexes were opened (so migrated) by this build before a merge, and each table's
//! columns are checked to be the same on both sides, so a migration's new column merges with
//! no edit to the merge. The columns a merge must not copy as they are — ids that name rows
//! of another table (remapped through the `map_*` tables), states a scope resets, the keys
//! rows are matched by — are named by the statements themselves.

use std::path::Path;

use rusqlite::Transaction;

use super::sqlite;
use crate::stage::error::{Result, StageError};

/// The columns of one table a merge copies.
#[derive(Debug)]
pub(super) struct Columns {
    table: &'static str,
    names: Vec<String>,
}

impl Columns {
    /// Reads `table`'s columns (but `id`) from `main`, refusing when `src` has others.
    pub(super) fn read(tx: &Transaction<'_>, path: &Path, table: &'static str) -> Result<Self> {
        let of = |schema: &str| -> rusqlite::Result<Vec<String>> {
            let mut stmt = tx.prepare(&format!(
                "SELECT name FROM pragma_table_info(?1, '{schema}') WHERE name <> 'id' ORDER BY cid"
            ))?;
            let names = stmt.query_map([table], |r| r.get(0))?;
            names.collect()
        };
        let names = of("main").map_err(|e| sqlite(path, e))?;
        let theirs = of("src").map_err(|e| sqlite(path, e))?;
        if names.is_empty() || names != theirs {
            return Err(StageError::Refused(format!(
                "table {table} has columns ({}) in the index merged from but ({}) here: the two \
                 indexes are not at the same schema version",
                theirs.join(", "),
                names.join(", ")
            )));
        }
        Ok(Self { table, names })
    }

    /// `INSERT INTO main.TABLE (every column) SELECT …` with each column taken as `s.column`
    /// unless `exprs` gives its expression (a remapped id, a reset state), then `rest` (the
    /// `FROM src.TABLE s …` clause and its conditions).
    pub(super) fn insert(&self, or: &str, exprs: &[(&str, &str)], rest: &str) -> String {
        debug_assert!(
            exprs.iter().all(|(c, _)| self.has(c)),
            "{exprs:?} names a column {} lacks",
            self.table
        );
        let select: Vec<String> = self
            .names
            .iter()
            .map(|c| match exprs.iter().find(|(name, _)| name == c) {
                Some((_, expr)) => (*expr).to_owned(),
                None => format!("s.\"{c}\""),
            })
            .collect();
        format!(
            "INSERT {or} INTO main.{} ({}) SELECT {} {rest}",
            self.table,
            self.quoted().join(", "),
            select.join(", ")
        )
    }

    /// `column = FROM.column, …` for every column but `except` (the keys, and what other
    /// statements bring forward by their own rule).
    pub(super) fn assign(&self, except: &[&str], from: &str) -> String {
        assignments(self.others(except).map(String::as_str), from)
    }

    /// `column = FROM.column, …` for the named columns only.
    pub(super) fn assign_only(columns: &[&str], from: &str) -> String {
        assignments(columns.iter().copied(), from)
    }

    /// `s.column IS t.column AND …` for every column but `except`: whether bringing the
    /// row forward would change nothing.
    pub(super) fn same(&self, except: &[&str]) -> String {
        self.others(except)
            .map(|c| format!("s.\"{c}\" IS t.\"{c}\""))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn has(&self, column: &str) -> bool {
        self.names.iter().any(|c| c == column)
    }

    fn quoted(&self) -> Vec<String> {
        self.names.iter().map(|c| format!("\"{c}\"")).collect()
    }

    fn others<'a>(&'a self, except: &'a [&str]) -> impl Iterator<Item = &'a String> + 'a {
        debug_assert!(except.iter().all(|c| self.has(c)));
        self.names
            .iter()
            .filter(move |c| !except.contains(&c.as_str()))
    }
}

/// `column = FROM.column, …`.
fn assignments<'a>(columns: impl Iterator<Item = &'a str>, from: &str) -> String {
    columns
        .map(|c| format!("\"{c}\" = {from}.\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
