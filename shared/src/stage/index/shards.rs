//! A batch's shard plan: how many shards, and each mailbox's shard and planned size.

use rusqlite::OptionalExtension;

use super::{Index, insert_event, not_found_batch, to_sql_int};
use crate::stage::error::{Result, StageError};

/// One mailbox's place in a plan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PlannedMailbox {
    /// The mailbox's address.
    pub email: String,
    /// Its shard (from 0); `None` while not planned.
    pub shard: Option<u32>,
    /// The bytes the source reported when it was planned (`None`: unknown, hashed).
    pub bytes: Option<u64>,
    /// The messages the source reported when it was planned.
    pub messages: Option<u64>,
}

/// A mailbox's new place, to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The mailbox's address.
    pub email: String,
    /// Its shard.
    pub shard: u32,
    /// The bytes the source reported (`None`: unknown).
    pub bytes: Option<u64>,
    /// The messages the source reported.
    pub messages: Option<u64>,
}

impl Index {
    /// How many shards the batch is planned in (`None` before a plan).
    pub fn shard_count(&self, batch: &str) -> Result<Option<u32>> {
        self.sql(
            self.conn
                .query_row("SELECT shards FROM batches WHERE name = ?1", [batch], |r| {
                    r.get::<_, Option<u32>>(0)
                })
                .optional(),
        )?
        .ok_or_else(|| not_found_batch(batch))
    }

    /// Every mailbox of the batch with its place in the plan, by address.
    pub fn shard_plan(&self, batch: &str) -> Result<Vec<PlannedMailbox>> {
        let batch_id = self.batch_id(batch)?;
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT email, shard, planned_bytes, planned_messages FROM mailboxes
             WHERE batch_id = ?1 ORDER BY email",
        ))?;
        let rows = stmt.query_map([batch_id], |r| {
            let n = |i| {
                r.get::<_, Option<i64>>(i)
                    .map(|v| v.map(|v| v.max(0) as u64))
            };
            Ok(PlannedMailbox {
                email: r.get(0)?,
                shard: r.get(1)?,
                bytes: n(2)?,
                messages: n(3)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Records a plan of `count` shards: the count on the batch and each placement on its
    /// mailbox, in one transaction with a `batch.planned` event.
    ///
    /// Refused when the batch is planned in another count, or when a placement would move a
    /// mailbox that already has a shard (a plan only ever adds).
    pub fn record_shard_plan(
        &mut self,
        batch: &str,
        count: u32,
        placements: &[Placement],
    ) -> Result<()> {
        if let Some(existing) = self.shard_count(batch)?
            && existing != count
        {
            return Err(StageError::Refused(format!(
                "batch {batch:?} is planned in {existing} shard(s), not {count}: a plan keeps \
                 every mailbox where it is"
            )));
        }
        let current = self.shard_plan(batch)?;
        for p in placements {
            match current.iter().find(|m| m.email == p.email) {
                None => {
                    return Err(StageError::Refused(format!(
                        "mailbox {} is not in batch {batch:?}",
                        p.email
                    )));
                }
                Some(m) if m.shard.is_some() => {
                    return Err(StageError::Refused(format!(
                        "mailbox {} of batch {batch:?} already has a shard: a plan keeps \
                         every mailbox where it is",
                        p.email
                    )));
                }
                Some(_) if p.shard >= count => {
                    return Err(StageError::Refused(format!(
                        "shard {} of mailbox {} is not below {count}",
                        p.shard, p.email
                    )));
                }
                Some(_) => {}
            }
        }
        let batch_id = self.batch_id(batch)?;
        self.write_tx(|tx| {
            tx.execute(
                "UPDATE batches SET shards = ?2 WHERE id = ?1",
                (batch_id, count),
            )?;
            let mut set = tx.prepare(
                "UPDATE mailboxes SET shard = ?3, planned_bytes = ?4, planned_messages = ?5
                 WHERE batch_id = ?1 AND email = ?2 AND shard IS NULL",
            )?;
            for p in placements {
                set.execute((
                    batch_id,
                    &p.email,
                    p.shard,
                    p.bytes.map(to_sql_int),
                    p.messages.map(to_sql_int),
                ))?;
            }
            let detail = format!("{count} shard(s), {} mailbox(es) placed", placements.len());
            insert_event(tx, Some(batch), None, "batch.planned", &detail)
        })
    }
}
