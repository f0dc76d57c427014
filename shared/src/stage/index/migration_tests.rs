//! Migrating an index that already holds a batch, its mail and uploads: every statement of
//! a later version must work on populated tables, not only on empty ones.

use rusqlite::Connection;

use super::Index;
use crate::stage::schema::MIGRATIONS;

const BLOB: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// An index at version 3 with one endpoint, batch, mailbox, folder, staged message, a
/// confirmed upload recorded under a mixed-case mailbox, and its run.
fn populated_v3(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    for (n, step) in MIGRATIONS[..3].iter().enumerate() {
        conn.execute_batch(step).unwrap();
        conn.pragma_update(None, "user_version", n as i64 + 1)
            .unwrap();
    }
    conn.execute_batch(&format!(
        "INSERT INTO endpoints (name, server, port, security) VALUES ('e', 'imap.x', 993, 'ssl');
         INSERT INTO batches (name, endpoint_id) VALUES ('b', 1);
         INSERT INTO mailboxes (batch_id, email, login_name) VALUES (1, 'Alice@X.test', 'alice');
         INSERT INTO folders (mailbox_id, wire_name, name, uidvalidity) VALUES (1, X'494E424F58', 'INBOX', 7);
         INSERT INTO messages (folder_id, uidvalidity, uid, state, blob, size, flags)
             VALUES (1, 7, 1, 'staged', '{BLOB}', 10, '');
         INSERT INTO uploads (message_id, target, state, mailbox, folder)
             VALUES (1, 'dst', 'pending', 'Alice@X.test', '[\"INBOX\"]');
         UPDATE uploads SET state = 'in_flight';
         UPDATE uploads SET state = 'done';
         INSERT INTO upload_runs (mailbox_id, target, state) VALUES (1, 'dst', 'Uploaded');"
    ))
    .unwrap();
}

#[test]
fn a_populated_v3_index_migrates_to_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.sqlite");
    populated_v3(&path);
    let index = Index::open(&path).unwrap();
    assert_eq!(index.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let endpoint = index.endpoint("e").unwrap();
    assert_eq!(endpoint.tls, crate::catalog::TlsTrust::default());
    let mailboxes = index.mailboxes("b").unwrap();
    assert_eq!(mailboxes[0].target_user, None);
    assert_eq!(
        index.upload_mailboxes("dst", mailboxes[0].id).unwrap(),
        ["alice@x.test"],
        "the target mailbox as records name it: lower-cased"
    );
    assert!(
        index
            .upload_queue("dst", mailboxes[0].id, false)
            .unwrap()
            .is_empty(),
        "the confirmed upload stays confirmed"
    );
    let status = index.upload_status("b", "dst").unwrap();
    assert_eq!((status[0].done, status[0].run_messages), (1, 0));
}
