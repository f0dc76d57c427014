//! A mailbox's upload queue read in parts, so a run holds no list of a whole mailbox: what
//! each source folder holds to send (counts and bytes), the messages a previous attempt
//! left in flight, and a folder's next messages after a cursor (for a plan, with the words
//! of the target's refusal of each one it refused before).

use std::collections::HashSet;

use rusqlite::Row;

use super::uploads::{QUEUE_COLUMNS, QUEUE_FROM, QUEUE_ORDER, item_from_row};
use super::{Index, to_sql_int};
use crate::stage::error::Result;
use crate::stage::index::UploadItem;

/// What a queue read after a cursor takes: target, mailbox, with the refused ones, folder,
/// cursor (UIDVALIDITY, UID) and limit.
type AfterParams<'a> = (&'a str, i64, bool, i64, (u32, u32), usize);

/// The parameters of [`queue_after_sql`] in SQL's types.
fn after_params(
    (target, mailbox_id, with_refused, folder_id, after, limit): AfterParams<'_>,
) -> (&str, i64, bool, i64, u32, u32, i64) {
    let limit = to_sql_int(limit as u64);
    (
        target,
        mailbox_id,
        with_refused,
        folder_id,
        after.0,
        after.1,
        limit,
    )
}

/// A message of a plan's queue ([`Index::planned_queue_after`]).
#[derive(Clone, Debug)]
pub struct PlanItem {
    /// The message as a run would send it.
    pub item: UploadItem,
    /// The server's words when the target refused it in an earlier run (a real run sends
    /// it again).
    pub refused_with: Option<String>,
}

/// The queue of one folder after a cursor: `?4` the folder, `?5`/`?6` the UIDVALIDITY and
/// UID to start after, `?7` how many at most; `extra` adds columns after [`QUEUE_COLUMNS`].
fn queue_after_sql(extra: &str) -> String {
    format!(
        "{QUEUE_COLUMNS}{extra}{QUEUE_FROM} AND m.folder_id = ?4
           AND (m.uidvalidity, m.uid) > (?5, ?6)
         {QUEUE_ORDER} LIMIT ?7"
    )
}

/// What one source folder holds in a mailbox's upload queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueuedFolder {
    /// The source folder's row.
    pub folder_id: i64,
    /// Its messages in the queue.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Index {
    /// Per source folder, the messages of a mailbox's upload queue (the rows
    /// [`Index::upload_queue`] returns, refused ones only `with_refused`) and their bytes,
    /// by folder row.
    pub fn upload_queue_folders(
        &self,
        target: &str,
        mailbox_id: i64,
        with_refused: bool,
    ) -> Result<Vec<QueuedFolder>> {
        let sql = format!(
            "SELECT m.folder_id, count(*), total(m.size) {QUEUE_FROM}
             GROUP BY m.folder_id ORDER BY m.folder_id"
        );
        let mut stmt = self.sql(self.conn.prepare_cached(&sql))?;
        let rows = stmt.query_map((target, mailbox_id, with_refused), |r| {
            Ok(QueuedFolder {
                folder_id: r.get(0)?,
                messages: r.get::<_, i64>(1)?.max(0) as u64,
                bytes: r.get::<_, f64>(2)?.max(0.0) as u64,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The messages of a mailbox's upload queue a previous attempt or run left in flight.
    pub fn upload_in_flight(&self, target: &str, mailbox_id: i64) -> Result<Vec<UploadItem>> {
        let sql = format!("{QUEUE_COLUMNS}{QUEUE_FROM} AND u.state = 'in_flight'{QUEUE_ORDER}");
        let mut stmt = self.sql(self.conn.prepare_cached(&sql))?;
        let rows = stmt.query_map((target, mailbox_id, false), item_from_row);
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The next messages of one source folder in a mailbox's upload queue (refused ones
    /// left out) after `after` (UIDVALIDITY, UID), at most `limit`, in queue order.
    pub fn upload_queue_after(
        &self,
        target: &str,
        mailbox_id: i64,
        folder_id: i64,
        after: (u32, u32),
        limit: usize,
    ) -> Result<Vec<UploadItem>> {
        let params = (target, mailbox_id, false, folder_id, after, limit);
        self.queue_after("", params, item_from_row)
    }

    /// As [`Index::upload_queue_after`] for a plan, which changes nothing: the messages the
    /// target refused before are in the queue too, each with the server's words.
    pub fn planned_queue_after(
        &self,
        target: &str,
        mailbox_id: i64,
        folder_id: i64,
        after: (u32, u32),
        limit: usize,
    ) -> Result<Vec<PlanItem>> {
        let refused = ", CASE WHEN u.state = 'failed' THEN coalesce(u.last_error, '') END";
        let params = (target, mailbox_id, true, folder_id, after, limit);
        self.queue_after(refused, params, |r| {
            Ok(PlanItem {
                item: item_from_row(r)?,
                refused_with: r.get(13)?,
            })
        })
    }

    /// One folder's queue after a cursor ([`queue_after_sql`] with `extra` columns), each
    /// row read by `row`.
    fn queue_after<T>(
        &self,
        extra: &str,
        params: AfterParams<'_>,
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.sql(self.conn.prepare_cached(&queue_after_sql(extra)))?;
        let rows = stmt.query_map(after_params(params), row);
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The server's words at the most recent refusal of a message of a mailbox's queue in
    /// one of `folders` (a message a real run would send again), if any.
    pub fn latest_refusal(
        &self,
        target: &str,
        mailbox_id: i64,
        folders: &HashSet<i64>,
    ) -> Result<Option<String>> {
        let sql = format!(
            "SELECT m.folder_id, coalesce(u.last_error, '') {QUEUE_FROM} AND u.state = 'failed'
             ORDER BY u.updated_at DESC, u.id DESC"
        );
        let mut stmt = self.sql(self.conn.prepare_cached(&sql))?;
        let rows = stmt.query_map((target, mailbox_id, true), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        });
        for row in self.sql(rows)? {
            let (folder, words) = self.sql(row)?;
            if folders.contains(&folder) {
                return Ok(Some(words));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::super::upload_flags::tests::staged_index;
    use crate::stage::index::{MessageState, NewMessage, UploadResult};

    #[test]
    fn the_queue_read_in_parts_is_the_queue_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, mailbox_id, rows) = staged_index(dir.path(), 10);
        let folder_id = index.upload_queue("t", mailbox_id, false).unwrap()[0].folder_id;
        // Re-read under a new UIDVALIDITY: lower UIDs that come after the old ones.
        let blob = crate::stage::BlobHash::parse(&"cd".repeat(32)).unwrap();
        let later: Vec<NewMessage> = (1..=4)
            .map(|uid| NewMessage {
                folder_id,
                uidvalidity: 2,
                uid,
                state: MessageState::Staged,
                reason: None,
                blob: Some(blob),
                size: 100,
                internaldate: None,
                internaldate_unix: None,
                flags: String::new(),
                message_id: None,
            })
            .collect();
        index.commit_messages(&later).unwrap();
        index
            .begin_uploads("t", "alice@x", "[\"INBOX\"]", &rows[..3])
            .unwrap();
        index
            .finish_uploads("t", &[(rows[2], UploadResult::Done(None))])
            .unwrap();
        index
            .refuse_unsent("t", "alice@x", "[\"INBOX\"]", &rows[3..4], "NO")
            .unwrap();

        let whole = index.upload_queue("t", mailbox_id, false).unwrap();
        assert_eq!(whole.len(), 10 + 4 - 2);
        let mut parts = Vec::new();
        let mut after = (0, 0);
        loop {
            let chunk = index
                .upload_queue_after("t", mailbox_id, folder_id, after, 3)
                .unwrap();
            let Some(last) = chunk.last() else { break };
            after = (last.uidvalidity, last.uid);
            parts.extend(chunk);
        }
        let ids = |items: &[crate::stage::index::UploadItem]| {
            items.iter().map(|i| i.message_row).collect::<Vec<_>>()
        };
        assert_eq!(ids(&parts), ids(&whole));
        let tally = index.upload_queue_folders("t", mailbox_id, false).unwrap();
        assert_eq!(tally.len(), 1);
        assert_eq!(
            (tally[0].folder_id, tally[0].messages, tally[0].bytes),
            (folder_id, 12, 8 * 10 + 4 * 100)
        );
        let with_refused = index.upload_queue_folders("t", mailbox_id, true).unwrap();
        assert_eq!(with_refused[0].messages, 13);
        assert_eq!(
            ids(&index.upload_in_flight("t", mailbox_id).unwrap()),
            rows[..2]
        );
    }
}
