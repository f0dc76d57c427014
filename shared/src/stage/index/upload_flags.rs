//! Flags the target has still to be given for messages it stored: on Microsoft 365
//! `\Flagged` is set by a STORE after the APPEND, and when that STORE (or its SELECT) is
//! throttled, cut or refused, the message stays `done` with `flag_pending` set, so the next
//! attempt sets the flag by the recorded APPENDUID instead of sending the message again.

use super::Index;
use crate::stage::error::Result;

/// A stored message whose `\Flagged` is not set on the target yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingFlag {
    /// The message's row.
    pub message_row: i64,
    /// The target folder it is in (the JSON path recorded when it was sent).
    pub folder: String,
    /// The target's id for it (`uidvalidity:uid`).
    pub target_id: String,
    /// The server's words when it refused the STORE last time.
    pub refused: Option<String>,
}

impl Index {
    /// A mailbox's stored messages whose `\Flagged` is still to be set on `target`, by row.
    pub fn pending_flags(&self, target: &str, mailbox_id: i64) -> Result<Vec<PendingFlag>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT u.message_id, coalesce(u.folder, ''), u.target_id, u.last_error
             FROM folders f
             CROSS JOIN messages m ON m.folder_id = f.id
             CROSS JOIN uploads u ON u.message_id = m.id AND u.target = ?1
             WHERE f.mailbox_id = ?2 AND u.state = 'done' AND u.flag_pending = 1
               AND u.target_id IS NOT NULL
             ORDER BY u.message_id",
        ))?;
        let rows = stmt.query_map((target, mailbox_id), |r| {
            Ok(PendingFlag {
                message_row: r.get(0)?,
                folder: r.get(1)?,
                target_id: r.get(2)?,
                refused: r.get(3)?,
            })
        });
        self.sql(rows.and_then(Iterator::collect))
    }

    /// The target ids (`uidvalidity:uid`) of the confirmed uploads of target `mailbox`'s
    /// `folder` (its JSON path).
    pub fn done_target_ids(
        &self,
        target: &str,
        mailbox: &str,
        folder: &str,
    ) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self.sql(self.conn.prepare(
            "SELECT target_id FROM uploads
             WHERE target = ?1 AND mailbox = ?2 AND folder = ?3 AND state = 'done'
               AND target_id IS NOT NULL",
        ))?;
        let rows = stmt.query_map((target, mailbox, folder), |r| r.get(0));
        self.sql(rows.and_then(Iterator::collect))
    }

    /// Records the outcome of setting a stored message's `\Flagged`: set (`refused` none),
    /// or refused with the server's words (it stays pending for the next run).
    pub fn flag_settled(
        &self,
        target: &str,
        message_row: i64,
        refused: Option<&str>,
    ) -> Result<()> {
        self.sql(self.conn.execute(
            "UPDATE uploads SET flag_pending = ?3 IS NOT NULL, last_error = ?3,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
             WHERE message_id = ?1 AND target = ?2 AND state = 'done'",
            (message_row, target, refused),
        ))?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stage::index::test_rows::{index, messages, one_mailbox};
    use crate::stage::index::{MessageState, UploadResult};

    /// An index in `dir` with batch `b1` of one mailbox whose INBOX holds `n` staged
    /// messages; returns it, the mailbox's id and the messages' rows.
    pub(crate) fn staged_index(dir: &std::path::Path, n: u32) -> (Index, i64, Vec<i64>) {
        let mut idx = index(dir);
        let mailbox_id = one_mailbox(&mut idx, "alice@x");
        let rows = vec![(MessageState::Staged, 10, Some(0xab)); n as usize];
        messages(&mut idx, mailbox_id, 1, &rows);
        let queue = idx.upload_queue("t", mailbox_id, false).unwrap();
        let rows = queue.iter().map(|i| i.message_row).collect();
        (idx, mailbox_id, rows)
    }

    #[test]
    fn a_flag_left_pending_is_listed_until_it_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, mailbox_id, rows) = staged_index(dir.path(), 2);
        index
            .begin_uploads("t", "alice@x", "[\"INBOX\"]", &rows)
            .unwrap();
        let results = [
            (rows[0], UploadResult::DoneFlagPending("7:1".into())),
            (rows[1], UploadResult::Done(Some("7:2".into()))),
        ];
        index.finish_uploads("t", &results).unwrap();
        let pending = index.pending_flags("t", mailbox_id).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].message_row, pending[0].folder.as_str()),
            (rows[0], "[\"INBOX\"]")
        );
        assert_eq!(pending[0].target_id, "7:1");
        let claimed = index
            .done_target_ids("t", "alice@x", "[\"INBOX\"]")
            .unwrap();
        assert_eq!(claimed, ["7:1".to_owned(), "7:2".to_owned()].into());
        index
            .flag_settled("t", rows[0], Some("NO read-only"))
            .unwrap();
        let again = index.pending_flags("t", mailbox_id).unwrap();
        assert_eq!(again[0].refused.as_deref(), Some("NO read-only"));
        index.flag_settled("t", rows[0], None).unwrap();
        assert!(index.pending_flags("t", mailbox_id).unwrap().is_empty());
        assert!(index.pending_flags("other", mailbox_id).unwrap().is_empty());
    }
}
