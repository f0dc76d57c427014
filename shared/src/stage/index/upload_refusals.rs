//! Messages not sent, and why: the folder they go to was refused (its CREATE, or an APPEND
//! into it, answered NO), so each would be refused alike: they are recorded `failed` with
//! the server's words, as a message refused by its own APPEND is, and the next run tries
//! them again. Or the mapping left their folder out: recorded per run, so `status` counts
//! them as excluded rather than pending.

use super::Index;
use crate::stage::error::Result;

impl Index {
    /// Records messages as refused (`failed`, with `words`) for `mailbox`'s target folder
    /// `folder` (its JSON path) without their having been sent, in one transaction.
    pub fn refuse_unsent(
        &mut self,
        target: &str,
        mailbox: &str,
        folder: &str,
        message_rows: &[i64],
        words: &str,
    ) -> Result<()> {
        self.write_tx(|tx| {
            // The state machine allows pending -> in_flight -> failed; both steps are taken
            // here, in the same transaction, so no one ever sees the middle one.
            let mut begin = tx.prepare_cached(
                "INSERT INTO uploads (message_id, target, state, mailbox, folder)
                     VALUES (?1, ?2, 'in_flight', ?3, ?4)
                     ON CONFLICT (message_id, target) DO UPDATE SET
                         state = 'in_flight', mailbox = excluded.mailbox,
                         folder = excluded.folder",
            )?;
            let mut fail = tx.prepare_cached(
                "UPDATE uploads SET state = 'failed', last_error = ?3,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
                 WHERE message_id = ?1 AND target = ?2",
            )?;
            for row in message_rows {
                begin.execute((row, target, mailbox, folder))?;
                fail.execute((row, target, words))?;
            }
            Ok(())
        })
    }
}

impl Index {
    /// Records the source folders a run to `target` left out by its mapping (replacing what
    /// the previous run recorded), so `status` counts their messages as excluded.
    pub fn set_left_out(
        &mut self,
        target: &str,
        mailbox_id: i64,
        folder_ids: &[i64],
    ) -> Result<()> {
        self.write_tx(|tx| {
            tx.execute(
                "DELETE FROM upload_left_out WHERE mailbox_id = ?1 AND target = ?2",
                (mailbox_id, target),
            )?;
            let mut add = tx.prepare_cached(
                "INSERT OR IGNORE INTO upload_left_out (mailbox_id, target, folder_id)
                 VALUES (?1, ?2, ?3)",
            )?;
            for folder in folder_ids {
                add.execute((mailbox_id, target, folder))?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::upload_flags::tests::staged_index;
    use crate::stage::index::UploadState;

    #[test]
    fn unsent_messages_of_a_refused_folder_are_failed_and_retried_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, mailbox_id, rows) = staged_index(dir.path(), 3);
        // One was sent and is in flight, two never were.
        index
            .begin_uploads("t", "alice@x", "[\"Shared\"]", &rows[..1])
            .unwrap();
        let words = "the target refused folder \"Shared\": NO Access denied";
        index
            .refuse_unsent("t", "alice@x", "[\"Shared\"]", &rows, words)
            .unwrap();
        let folder_id = index.upload_queue_folders("t", mailbox_id, true).unwrap()[0].folder_id;
        let planned = index
            .planned_queue_after("t", mailbox_id, folder_id, (0, 0), 10)
            .unwrap();
        assert_eq!(planned.len(), 3);
        assert!(
            planned
                .iter()
                .all(|p| p.refused_with.as_deref() == Some(words))
        );
        let folders = std::collections::HashSet::from([folder_id]);
        assert_eq!(
            index
                .latest_refusal("t", mailbox_id, &folders)
                .unwrap()
                .as_deref(),
            Some(words)
        );
        assert_eq!(
            index
                .latest_refusal("t", mailbox_id, &Default::default())
                .unwrap(),
            None,
            "only refusals in the folders asked for"
        );
        assert!(
            index
                .upload_queue("t", mailbox_id, false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(index.retry_failed_uploads("t", mailbox_id).unwrap(), 3);
        let queue = index.upload_queue("t", mailbox_id, false).unwrap();
        assert!(queue.iter().all(|i| i.state == UploadState::Pending));
        assert_eq!(queue.len(), 3);
    }
}
