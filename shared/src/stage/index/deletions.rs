//! Messages expunged on the source after they were recorded: an incremental pass compares
//! what the server still holds with the rows of a folder and stamps the missing ones
//! `deleted_on_source`. They keep their rows and blobs (the stage is an audit record).

use std::collections::HashSet;

use super::Index;
use crate::stage::error::Result;

impl Index {
    /// Rows of a folder's current UIDVALIDITY up to `highest` that the source held at the
    /// last look: any state but retired, not yet noticed deleted.
    pub fn present_count(&self, folder_id: i64, uidvalidity: u32, highest: u32) -> Result<u64> {
        self.sql(self.conn.query_row(
            "SELECT count(*) FROM messages WHERE folder_id = ?1 AND uidvalidity = ?2
             AND uid <= ?3 AND state <> 'retired' AND deleted_on_source IS NULL",
            (folder_id, uidvalidity, highest),
            |r| r.get::<_, i64>(0),
        ))
        .map(|n| n.max(0) as u64)
    }

    /// Stamps `deleted_on_source` (now) on every row of the folder's UIDVALIDITY up to
    /// `highest` whose UID is not in `present` (what the source holds up to `highest`), in
    /// one transaction. Returns how many were newly stamped.
    pub fn mark_deleted_on_source(
        &mut self,
        folder_id: i64,
        uidvalidity: u32,
        highest: u32,
        present: &[u32],
    ) -> Result<u64> {
        let present: HashSet<u32> = present.iter().copied().collect();
        self.stamp_deleted(folder_id, uidvalidity, highest, |uid| {
            !present.contains(&uid)
        })
    }

    /// Stamps `deleted_on_source` (now) on every row of the folder's UIDVALIDITY up to
    /// `highest` whose UID the server reported expunged (QRESYNC's `VANISHED (EARLIER)`:
    /// `vanished` says whether a UID is in its set), in one transaction. Returns how many
    /// were newly stamped.
    pub fn mark_vanished(
        &mut self,
        folder_id: i64,
        uidvalidity: u32,
        highest: u32,
        vanished: impl Fn(u32) -> bool,
    ) -> Result<u64> {
        self.stamp_deleted(folder_id, uidvalidity, highest, vanished)
    }

    /// Stamps the rows up to `highest`, not yet stamped, whose UID `gone` says is gone.
    fn stamp_deleted(
        &mut self,
        folder_id: i64,
        uidvalidity: u32,
        highest: u32,
        gone: impl Fn(u32) -> bool,
    ) -> Result<u64> {
        self.write_tx(|tx| {
            let rows: Vec<(i64, u32)> = tx
                .prepare_cached(
                    "SELECT id, uid FROM messages WHERE folder_id = ?1 AND uidvalidity = ?2
                     AND uid <= ?3 AND state <> 'retired' AND deleted_on_source IS NULL",
                )?
                .query_map((folder_id, uidvalidity, highest), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut stamp = tx.prepare_cached(
                "UPDATE messages SET deleted_on_source = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
                 WHERE id = ?1",
            )?;
            let mut stamped = 0;
            for (id, uid) in rows {
                if gone(uid) {
                    stamped += stamp.execute([id])? as u64;
                }
            }
            Ok(stamped)
        })
    }

    /// Messages of a mailbox recorded deleted on the source.
    pub fn deleted_on_source_count(&self, mailbox_id: i64) -> Result<u64> {
        self.sql(self.conn.query_row(
            "SELECT count(*) FROM messages m JOIN folders f ON f.id = m.folder_id
             WHERE f.mailbox_id = ?1 AND m.deleted_on_source IS NOT NULL",
            [mailbox_id],
            |r| r.get::<_, i64>(0),
        ))
        .map(|n| n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::stage::index::MessageState;
    use crate::stage::index::test_rows::{index, messages, one_mailbox};

    #[test]
    fn stamped_once_kept_and_not_queued_for_upload() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = index(dir.path());
        let mailbox_id = one_mailbox(&mut idx, "a@example.com");
        let staged = |blob| (MessageState::Staged, 10, Some(blob));
        let folder_id = messages(&mut idx, mailbox_id, 7, &[staged(1), staged(2), staged(3)]);

        assert_eq!(idx.present_count(folder_id, 7, 3).unwrap(), 3);
        assert_eq!(
            idx.mark_deleted_on_source(folder_id, 7, 3, &[1, 3])
                .unwrap(),
            1
        );
        assert_eq!(
            idx.mark_deleted_on_source(folder_id, 7, 3, &[1, 3])
                .unwrap(),
            0
        );
        assert_eq!(idx.present_count(folder_id, 7, 3).unwrap(), 2);
        assert_eq!(idx.deleted_on_source_count(mailbox_id).unwrap(), 1);
        assert_eq!(
            idx.staged_count(mailbox_id).unwrap(),
            3,
            "the row stays staged"
        );
        let queued: Vec<u32> = idx
            .upload_queue("t", mailbox_id, true)
            .unwrap()
            .iter()
            .map(|i| i.uid)
            .collect();
        assert_eq!(queued, [1, 3], "not uploaded when it was not yet");
    }
}
