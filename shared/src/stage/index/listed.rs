//! Messages a pass listed and has not yet stored (`listed_messages`, index v11): their
//! metadata goes to the index as the FETCH responses arrive, the caps are decided there in
//! two statements, and the bodies are then fetched walking the rows in chunks, so a pass
//! holds no list of a whole mailbox in memory. Scratch space of one pass: `messages` stays
//! the record, and nothing but the pass reads these rows.

use super::{Index, to_sql_int};
use crate::stage::error::Result;

/// One listed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedMessage {
    /// The folder it is in.
    pub folder_id: i64,
    /// The folder's place among the pass's folders (breaks ties on date before the UID).
    pub folder_pos: u32,
    /// Its UID there.
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE as the server sent it.
    pub internaldate: Option<String>,
    /// INTERNALDATE as seconds since the epoch (`None` counts as the oldest).
    pub internaldate_unix: Option<i64>,
    /// Its flags, space separated.
    pub flags: String,
}

/// What the caps made of a listed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListedVerdict {
    /// Download and stage it.
    Fetch,
    /// Larger than the size cap.
    SkippedSize,
    /// Beyond the item cap.
    SkippedItemCap,
}

impl ListedVerdict {
    fn parse(word: &str) -> Self {
        match word {
            "skipped_size" => ListedVerdict::SkippedSize,
            "skipped_item_cap" => ListedVerdict::SkippedItemCap,
            _ => ListedVerdict::Fetch,
        }
    }
}

/// What the caps decided for a mailbox's listed messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListedTotals {
    /// Messages to download.
    pub fetch: u64,
    /// Their bytes (RFC822.SIZE).
    pub fetch_bytes: u64,
    /// Messages over the size cap.
    pub skipped_size: u64,
    /// Messages beyond the item cap.
    pub skipped_item_cap: u64,
}

impl Index {
    /// Forgets every listed message of a mailbox (a pass starting, or done).
    pub fn clear_listed(&mut self, mailbox_id: i64) -> Result<()> {
        self.write_tx(|tx| {
            tx.prepare_cached("DELETE FROM listed_messages WHERE mailbox_id = ?1")?
                .execute([mailbox_id])
                .map(drop)
        })
    }

    /// Records listed messages of a mailbox in one transaction; a message listed again
    /// replaces its row.
    pub fn record_listed(&mut self, mailbox_id: i64, rows: &[ListedMessage]) -> Result<()> {
        self.write_tx(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO listed_messages (mailbox_id, folder_id, folder_pos, uid,
                     size, internaldate, internaldate_unix, sort_date, flags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for m in rows {
                insert.execute((
                    mailbox_id,
                    m.folder_id,
                    m.folder_pos,
                    m.uid,
                    to_sql_int(m.size),
                    &m.internaldate,
                    m.internaldate_unix,
                    m.internaldate_unix.unwrap_or(i64::MIN),
                    &m.flags,
                ))?;
            }
            Ok(())
        })
    }

    /// Decides the caps for a mailbox's listed messages, in one transaction: those over
    /// `max_size` (inclusive: a message of exactly `max_size` bytes fits) are skipped; of the
    /// rest, room is left for `max_items` less the `already_staged` messages of earlier
    /// passes (which keep their place: new mail beyond the cap is skipped, not swapped in),
    /// and the newest by INTERNALDATE across the folders are kept, ties broken by the
    /// folder's place in the pass and the UID (a resumed pass decides the same).
    pub fn decide_listed_caps(
        &mut self,
        mailbox_id: i64,
        max_size: u64,
        max_items: u64,
        already_staged: u64,
    ) -> Result<ListedTotals> {
        let room = to_sql_int(max_items.saturating_sub(already_staged));
        self.write_tx(|tx| {
            tx.execute(
                "UPDATE listed_messages SET verdict = CASE WHEN size > ?2 THEN 'skipped_size'
                     ELSE 'fetch' END
                 WHERE mailbox_id = ?1",
                (mailbox_id, to_sql_int(max_size)),
            )?;
            tx.execute(
                "UPDATE listed_messages SET verdict = 'skipped_item_cap' WHERE id IN (
                     SELECT id FROM listed_messages
                     WHERE mailbox_id = ?1 AND verdict = 'fetch'
                     ORDER BY sort_date DESC, folder_pos, uid
                     LIMIT -1 OFFSET ?2)",
                (mailbox_id, room),
            )?;
            let mut totals = ListedTotals::default();
            let mut stmt = tx.prepare(
                "SELECT verdict, count(*), total(size) FROM listed_messages
                 WHERE mailbox_id = ?1 GROUP BY verdict",
            )?;
            let mut rows = stmt.query([mailbox_id])?;
            while let Some(r) = rows.next()? {
                let n = r.get::<_, i64>(1)?.max(0) as u64;
                match ListedVerdict::parse(&r.get::<_, String>(0)?) {
                    ListedVerdict::Fetch => {
                        totals.fetch = n;
                        totals.fetch_bytes = r.get::<_, f64>(2)?.max(0.0) as u64;
                    }
                    ListedVerdict::SkippedSize => totals.skipped_size = n,
                    ListedVerdict::SkippedItemCap => totals.skipped_item_cap = n,
                }
            }
            Ok(totals)
        })
    }

    /// The next listed messages of a folder after UID `after`, at most `limit`, in UID order,
    /// with their verdicts.
    pub fn listed_after(
        &self,
        folder_id: i64,
        after: u32,
        limit: usize,
    ) -> Result<Vec<(ListedMessage, ListedVerdict)>> {
        let mut stmt = self.sql(self.conn.prepare_cached(
            "SELECT folder_pos, uid, size, internaldate, internaldate_unix, flags, verdict
             FROM listed_messages WHERE folder_id = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3",
        ))?;
        let rows = stmt.query_map((folder_id, after, to_sql_int(limit as u64)), |r| {
            let row = ListedMessage {
                folder_id,
                folder_pos: r.get(0)?,
                uid: r.get(1)?,
                size: r.get::<_, i64>(2)?.max(0) as u64,
                internaldate: r.get(3)?,
                internaldate_unix: r.get(4)?,
                flags: r.get(5)?,
            };
            Ok((row, ListedVerdict::parse(&r.get::<_, String>(6)?)))
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Whether a folder has a listed message to download.
    pub fn listed_to_fetch(&self, folder_id: i64) -> Result<bool> {
        self.sql(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM listed_messages
                 WHERE folder_id = ?1 AND verdict = 'fetch')",
            [folder_id],
            |r| r.get(0),
        ))
    }
}

#[cfg(test)]
#[path = "listed_tests.rs"]
mod tests;
