//! What `gc` asks the index about partial bodies kept in `tmp/partial/`.

use super::{Index, Result};

impl Index {
    /// Whether a partial body of (`folder_id`, `uidvalidity`, `uid`) may still be resumed:
    /// the folder is active under that UIDVALIDITY and the message has no row yet, or a
    /// failed one (the next pass fetches it again).
    pub fn partial_is_live(&self, folder_id: i64, uidvalidity: u32, uid: u32) -> Result<bool> {
        self.sql(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM folders
                            WHERE id = ?1 AND uidvalidity = ?2 AND state = 'active')
                AND NOT EXISTS (SELECT 1 FROM messages
                                WHERE folder_id = ?1 AND uidvalidity = ?2 AND uid = ?3
                                AND state <> 'failed')",
            (folder_id, uidvalidity, uid),
            |r| r.get(0),
        ))
    }
}
