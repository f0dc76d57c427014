//! The index: schema, constraints and the rules the database itself enforces.

mod common;

use mailstage::stage::index::{MessageState, NewMessage};
use mailstage::stage::{Access, SCHEMA_VERSION, Stage};

#[test]
fn schema_is_versioned_and_reopening_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let stage = Stage::open(dir.path(), Access::Write).unwrap();
    assert_eq!(stage.index().schema_version().unwrap(), SCHEMA_VERSION);
    drop(stage);
    let stage = Stage::open(dir.path(), Access::Write).unwrap();
    assert_eq!(stage.index().schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Stage::open(dir.path(), Access::Write).unwrap());
    raw(dir.path())
        .pragma_update(None, "user_version", SCHEMA_VERSION + 5)
        .unwrap();
    let err = Stage::open(dir.path(), Access::Write).unwrap_err();
    assert!(err.to_string().contains("newer than"), "{err}");
}

/// A second, independent connection to the stage's index file.
fn raw(stage_dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(stage_dir.join("index.sqlite")).unwrap()
}

#[test]
fn no_column_can_hold_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let _stage = Stage::open(dir.path(), Access::Write).unwrap();
    let conn = raw(dir.path());
    let mut columns = Vec::new();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap();
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        columns.extend(names.into_iter().map(|c| format!("{t}.{c}")));
    }
    assert!(columns.iter().any(|c| c == "mailboxes.login_name"));
    assert!(
        !columns
            .iter()
            .any(|c| c.contains("pass") || c.contains("secret") || c.contains("token")),
        "{columns:?}"
    );
}

#[test]
fn a_staged_row_is_never_overwritten_but_a_failed_one_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(dir.path());
    let folder = common::folder(&stage, mailbox, "INBOX");
    let failed = NewMessage {
        folder_id: folder,
        uidvalidity: 7,
        uid: 5,
        state: MessageState::Failed,
        reason: Some("server said NO".into()),
        blob: None,
        size: 10,
        internaldate: None,
        internaldate_unix: None,
        flags: String::new(),
        message_id: None,
    };
    stage
        .index_mut()
        .commit_messages(std::slice::from_ref(&failed))
        .unwrap();
    assert_eq!(stage.index().highest_uid(folder).unwrap(), 5);
    let staged = common::stage_messages(&mut stage, folder, &vec![common::message(1); 5]);
    // UID 5 was failed and is now staged; committing "failed" again must not undo it.
    stage.index_mut().commit_messages(&[failed]).unwrap();
    let rows = stage.index().staged_messages(None).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.origin.blob == staged[0]));
    assert_eq!(
        stage.index().known_uids(folder, 7).unwrap(),
        vec![1, 2, 3, 4, 5]
    );
}

#[test]
fn a_staged_row_without_a_blob_is_refused_by_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(dir.path());
    let folder = common::folder(&stage, mailbox, "INBOX");
    let bad = NewMessage {
        folder_id: folder,
        uidvalidity: 7,
        uid: 1,
        state: MessageState::Staged,
        reason: None,
        blob: None,
        size: 1,
        internaldate: None,
        internaldate_unix: None,
        flags: String::new(),
        message_id: None,
    };
    assert!(stage.index_mut().commit_messages(&[bad]).is_err());
    assert!(
        stage.index().staged_messages(None).unwrap().is_empty(),
        "nothing half-committed"
    );
}

#[test]
fn uploads_follow_their_state_machine_and_events_are_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = common::stage_with_mailbox(dir.path());
    let folder = common::folder(&stage, mailbox, "INBOX");
    common::stage_messages(&mut stage, folder, &[common::message(1)]);
    let idx = stage.index();
    let msg = idx.staged_messages(None).unwrap()[0].origin.message_row;
    let conn = raw(dir.path());
    conn.execute(
        "INSERT INTO uploads (message_id, target) VALUES (?1, 'm365')",
        [msg],
    )
    .unwrap();
    let set = |state: &str| conn.execute("UPDATE uploads SET state = ?1", [state]);
    assert!(set("done").is_err(), "pending -> done skips in_flight");
    for next in ["in_flight", "failed", "pending", "in_flight", "done"] {
        set(next).unwrap_or_else(|e| panic!("-> {next}: {e}"));
    }
    assert!(set("pending").is_err(), "done is final");

    idx.record_event(Some("b1"), Some("alice@example.com"), "sync", "3 new")
        .unwrap();
    // The batch's creation is the first event, ours the second.
    let events = idx.events().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].kind.as_str(), events[1].kind.as_str()),
        ("batch.created", "sync")
    );
    assert!(conn.execute("UPDATE events SET detail = 'x'", []).is_err());
    assert!(conn.execute("DELETE FROM events", []).is_err());
    assert_eq!(idx.events().unwrap().len(), 2);
}
