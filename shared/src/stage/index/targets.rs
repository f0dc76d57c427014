//! Upload targets in the index (`targets`): stored as JSON settings, never with a secret.

use rusqlite::OptionalExtension;

use super::Index;
use crate::catalog::TargetSettings;
use crate::stage::error::{Result, StageError};

impl Index {
    /// Stores a new target; refuses a name already in use.
    pub fn add_target(&self, t: &TargetSettings) -> Result<()> {
        if self.target_row(&t.name)?.is_some() {
            return Err(StageError::Refused(format!(
                "a target named {:?} already exists",
                t.name
            )));
        }
        let json = serde_json::to_string(t)
            .map_err(|e| StageError::Refused(format!("target {:?}: {e}", t.name)))?;
        self.sql(self.conn.execute(
            "INSERT INTO targets (name, kind, settings) VALUES (?1, ?2, ?3)",
            (&t.name, t.kind_name(), &json),
        ))?;
        self.record_event(None, None, "target.created", &t.name)
    }

    /// The target named `name`; [`StageError::NotFound`] when there is none.
    pub fn target(&self, name: &str) -> Result<TargetSettings> {
        let json = self.target_row(name)?.ok_or_else(|| StageError::NotFound {
            kind: "target",
            name: name.to_owned(),
        })?;
        parse_target(name, &json)
    }

    /// Every target, by name.
    pub fn targets(&self) -> Result<Vec<TargetSettings>> {
        let mut stmt = self.sql(
            self.conn
                .prepare("SELECT name, settings FROM targets ORDER BY name"),
        )?;
        let rows: Vec<(String, String)> = self.sql(
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(Iterator::collect),
        )?;
        rows.iter().map(|(n, j)| parse_target(n, j)).collect()
    }

    /// The targets a batch's mailboxes have upload runs to, by name.
    pub fn targets_of_batch(&self, batch: &str) -> Result<Vec<String>> {
        let batch_id = self.batch_id(batch)?;
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT DISTINCT r.target FROM upload_runs r
             JOIN mailboxes mb ON mb.id = r.mailbox_id
             WHERE mb.batch_id = ?1 ORDER BY r.target",
        ))?;
        self.sql(
            stmt.query_map([batch_id], |r| r.get(0))
                .and_then(Iterator::collect),
        )
    }

    /// Removes the target `name`; returns how many upload records were forgotten with it.
    /// Refused while the index records uploads to it (their history is what makes a later
    /// run upload nothing twice), unless `force`.
    pub fn remove_target(&mut self, name: &str, force: bool) -> Result<u64> {
        self.target(name)?;
        let uploads: i64 = self.sql(self.conn.query_row(
            "SELECT count(*) FROM uploads WHERE target = ?1",
            [name],
            |r| r.get(0),
        ))?;
        if uploads > 0 && !force {
            return Err(StageError::Refused(format!(
                "target {name:?} has {uploads} recorded uploads; removing it forgets which \
                 messages it already holds (use --force to remove it anyway)"
            )));
        }
        self.write_tx(|tx| {
            for table in ["uploads", "upload_runs"] {
                tx.execute(&format!("DELETE FROM {table} WHERE target = ?1"), [name])?;
            }
            tx.execute("DELETE FROM targets WHERE name = ?1", [name])?;
            super::insert_event(tx, None, None, "target.removed", name)
        })?;
        Ok(uploads.max(0) as u64)
    }

    fn target_row(&self, name: &str) -> Result<Option<String>> {
        self.sql(
            self.conn
                .query_row(
                    "SELECT settings FROM targets WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional(),
        )
    }
}

fn parse_target(name: &str, json: &str) -> Result<TargetSettings> {
    serde_json::from_str(json).map_err(|e| {
        StageError::Refused(format!(
            "target {name:?} in the index is unreadable ({e}); remove and recreate it"
        ))
    })
}
