//! Endpoints, batches, status and removal against a real index file.

use super::test_rows::{self, inbox, index, mailbox};
use super::*;
use crate::catalog::{BatchSettings, EndpointSettings, Security};
use crate::login::AuthChoice;

/// An index in `dir` with batch `b1` (see [`batch`]) of one mailbox, `a@example.com`, whose
/// INBOX holds a staged message of 10 bytes per blob byte; returns it and the mailbox's id.
fn staged(dir: &Path, blobs: &[u8]) -> (Index, i64) {
    let mut idx = index(dir);
    batch(&mut idx, "b1", &["a@example.com"]);
    let a = idx.mailboxes("b1").unwrap()[0].id;
    let rows: Vec<_> = blobs
        .iter()
        .map(|b| (MessageState::Staged, 10, Some(*b)))
        .collect();
    messages(&mut idx, a, &rows);
    (idx, a)
}

fn count(idx: &Index, table: &str) -> i64 {
    idx.conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn batch(idx: &mut Index, name: &str, emails: &[&str]) -> i64 {
    let mut b = BatchSettings::new(name, "src");
    b.auth = AuthChoice::Plain;
    b.exclude_folders = vec!["Calendar*".into()];
    let boxes: Vec<_> = emails.iter().map(|e| mailbox(e)).collect();
    idx.create_batch_with_mailboxes(&b, &boxes).unwrap()
}

/// Adds INBOX (UIDVALIDITY 1) to the mailbox with one message row per (state, size, blob
/// byte).
fn messages(idx: &mut Index, mailbox_id: i64, rows: &[(MessageState, u64, Option<u8>)]) {
    test_rows::messages(idx, mailbox_id, 1, rows);
}

#[test]
fn endpoints_read_back_and_removal_names_the_batches_using_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = index(dir.path());
    let mut other = EndpointSettings::new("lab", "10.0.0.1", 143, Security::Tls);
    other.max_concurrent_migrations = 3;
    idx.add_endpoint(&other).unwrap();
    assert_eq!(idx.endpoint("lab").unwrap(), other);
    let names: Vec<_> = idx
        .endpoints()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["lab", "src"]);
    batch(&mut idx, "b2", &["a@example.com"]);
    batch(&mut idx, "b1", &["a@example.com"]);
    let err = idx.remove_endpoint("src").unwrap_err().to_string();
    assert_eq!(
        err,
        "endpoint \"src\" is used by batch(es) b1, b2; remove them first"
    );
    idx.remove_endpoint("lab").unwrap();
    let err = idx.endpoint("lab").unwrap_err().to_string();
    assert!(err.starts_with("no endpoint named \"lab\""), "{err}");
    assert!(
        idx.events()
            .unwrap()
            .iter()
            .any(|e| e.kind == "endpoint.removed" && e.detail == "lab")
    );
}

#[test]
fn a_batch_and_its_mailboxes_are_created_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = index(dir.path());
    batch(&mut idx, "b1", &["a@example.com", "b@example.com"]);
    let info = idx.batch("b1").unwrap();
    assert_eq!(info.state, BatchState::Created);
    assert_eq!(info.mailboxes, 2);
    assert_eq!(info.settings.auth, AuthChoice::Plain);
    assert_eq!(info.settings.exclude_folders, ["Calendar*"]);
    assert_eq!(info.settings.max_message_size, 36_700_160);
    let boxes = idx.mailboxes("b1").unwrap();
    assert!(boxes.iter().all(|m| m.state == MailboxState::Queued));

    // Taken name, unknown endpoint, an address twice: refused, nothing written.
    let mut dup = BatchSettings::new("b1", "src");
    let err = idx.create_batch_with_mailboxes(&dup, &[mailbox("c@example.com")]);
    assert_eq!(
        err.unwrap_err().to_string(),
        "a batch named \"b1\" already exists"
    );
    dup.name = "b2".into();
    dup.endpoint = "nowhere".into();
    assert!(matches!(
        idx.create_batch_with_mailboxes(&dup, &[mailbox("c@example.com")]),
        Err(StageError::NotFound {
            kind: "endpoint",
            ..
        })
    ));
    dup.endpoint = "src".into();
    let twice = [mailbox("c@example.com"), mailbox("C@example.com")];
    let err = idx.create_batch_with_mailboxes(&dup, &twice).unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
    assert_eq!((count(&idx, "batches"), count(&idx, "mailboxes")), (1, 2));
}

#[test]
fn the_schema_refuses_unknown_states() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = index(dir.path());
    batch(&mut idx, "b1", &["a@example.com"]);
    for sql in [
        "UPDATE batches SET state = 'Done'",
        "UPDATE mailboxes SET state = 'synced'",
        "UPDATE batches SET auth = 'kerberos'",
    ] {
        assert!(idx.conn.execute(sql, []).is_err(), "{sql}");
    }
    idx.set_batch_state("b1", BatchState::SyncedWithErrors)
        .unwrap();
    let info = idx.batch("b1").unwrap();
    assert_eq!(info.state, BatchState::SyncedWithErrors);
    assert!(info.last_sync_at.is_some());
}

#[test]
fn status_counts_come_from_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = index(dir.path());
    batch(&mut idx, "b1", &["a@example.com", "b@example.com"]);
    let a = idx.mailboxes("b1").unwrap()[0].id;
    use MessageState::*;
    let rows = [
        (Staged, 100, Some(1)),
        (Staged, 50, Some(2)),
        (SkippedSize, 40_000_000, None),
        (SkippedItemCap, 7, None),
        (Failed, 9, None),
        (Retired, 11, Some(3)),
    ];
    messages(&mut idx, a, &rows);
    idx.set_mailbox_state(
        "b1",
        "b@example.com",
        MailboxState::Failed,
        Some("LOGIN refused"),
    )
    .unwrap();
    let s = idx.batch_status("b1").unwrap();
    let want = ItemCounts {
        folders: 1,
        staged: 2,
        staged_bytes: 150,
        skipped_size: 1,
        skipped_item_cap: 1,
        failed: 1,
        deleted_on_source: 0,
        folders_not_mutf7: 0,
    };
    assert_eq!(s.mailboxes[0].counts, want);
    assert_eq!(s.mailboxes[1].counts, ItemCounts::default());
    assert_eq!(s.mailboxes[1].last_error.as_deref(), Some("LOGIN refused"));
    assert_eq!(s.totals.counts, want);
    assert_eq!(s.totals.mailbox_states[&MailboxState::Queued], 1);
    assert_eq!(s.totals.mailbox_states[&MailboxState::Failed], 1);
    assert_eq!(s.totals.mailbox_states[&MailboxState::Synced], 0);
}

#[test]
fn removal_waits_for_uploads_unless_forced_and_keeps_events() {
    let dir = tempfile::tempdir().unwrap();
    let (mut idx, _) = staged(dir.path(), &[1, 2]);
    idx.conn
        .execute_batch(
            "INSERT INTO uploads (message_id, target) SELECT id, 'imap' FROM messages;
             UPDATE uploads SET state = 'in_flight';
             UPDATE uploads SET state = 'done' WHERE message_id = (SELECT min(id) FROM messages);",
        )
        .unwrap();
    let err = idx.remove_batch("b1", false).unwrap_err().to_string();
    assert!(
        err.contains("batch \"b1\" has 1 staged message(s) not uploaded yet"),
        "{err}"
    );
    assert_eq!(idx.batch("b1").unwrap().state, BatchState::Created);

    idx.conn
        .execute("UPDATE uploads SET state = 'done'", [])
        .unwrap();
    let removed = idx.remove_batch("b1", false).unwrap();
    assert_eq!(
        (removed.mailboxes, removed.folders, removed.messages),
        (1, 1, 2)
    );
    for table in ["batches", "mailboxes", "folders", "messages", "uploads"] {
        assert_eq!(count(&idx, table), 0, "{table}");
    }
    let kinds: Vec<_> = idx.events().unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["batch.created", "batch.state", "batch.removed"]);
    assert!(matches!(
        idx.remove_batch("b1", true),
        Err(StageError::NotFound { kind: "batch", .. })
    ));
}

#[test]
fn a_group_with_one_bad_row_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut idx, a) = staged(dir.path(), &[1]);
    let folder = idx.folder_sync(a, b"INBOX").unwrap().unwrap();
    let row = |uid, blob: Option<u8>| NewMessage {
        folder_id: folder.id,
        uidvalidity: 1,
        uid,
        state: MessageState::Staged,
        reason: None,
        blob: blob.map(|b| crate::stage::BlobHash::of(&[b])),
        size: 1,
        internaldate: None,
        internaldate_unix: None,
        flags: String::new(),
        message_id: None,
    };
    // The second row breaks the schema (staged without a blob): the first must not stay.
    let err = idx.commit_messages(&[row(2, Some(2)), row(3, None)]);
    assert!(matches!(err, Err(StageError::Sqlite { .. })), "{err:?}");
    assert_eq!(count(&idx, "messages"), 1);
    assert_eq!(idx.highest_uid(folder.id).unwrap(), 1);
}

#[test]
fn a_malformed_blob_in_the_index_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (idx, a) = staged(dir.path(), &[1]);
    let bad = "Z".repeat(64);
    idx.conn
        .execute("UPDATE messages SET blob = ?1", [&bad])
        .unwrap();
    let want = format!("not a blob name (64 lowercase hex digits): \"{bad}\"");
    let err = idx.referenced_blobs().unwrap_err().to_string();
    assert!(err.contains(&want), "{err}");
    let err = idx.staged_messages(None).unwrap_err().to_string();
    assert!(err.contains(&want), "{err}");
    let err = idx.upload_queue("t", a, true).unwrap_err().to_string();
    assert!(err.contains(&want), "{err}");
}

#[test]
fn all_statuses_at_once_match_each_batch_asked_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = index(dir.path());
    batch(&mut idx, "b2", &["c@example.com"]);
    batch(&mut idx, "b1", &["b@example.com", "a@example.com"]);
    batch(&mut idx, "b3", &["d@example.com"]);
    let a = idx.mailboxes("b1").unwrap()[0].id;
    messages(
        &mut idx,
        a,
        &[
            (MessageState::Staged, 100, Some(1)),
            (MessageState::Failed, 9, None),
        ],
    );
    let c = idx.mailboxes("b2").unwrap()[0].id;
    messages(&mut idx, c, &[(MessageState::SkippedSize, 5, None)]);
    // A batch whose mailbox rows are gone still has a (zero) status.
    idx.conn
        .execute("DELETE FROM mailboxes WHERE email = 'd@example.com'", [])
        .unwrap();
    let all = idx.batch_statuses().unwrap();
    let alone: Vec<_> = ["b1", "b2", "b3"]
        .iter()
        .map(|b| idx.batch_status(b).unwrap())
        .collect();
    assert_eq!(all, alone);
    let emails: Vec<_> = all[0].mailboxes.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(emails, ["a@example.com", "b@example.com"]);
    assert_eq!(
        (all[0].totals.counts.staged, all[0].totals.counts.failed),
        (1, 1)
    );
    assert_eq!(all[1].totals.counts.skipped_size, 1);
    assert_eq!((all[2].totals.mailboxes, all[2].mailboxes.len()), (0, 0));
}

#[test]
fn a_mailbox_state_commits_with_its_events_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut idx = index(dir.path());
    batch(&mut idx, "b1", &["a@example.com"]);
    idx.set_mailbox_state_with_event(
        "b1",
        "a@example.com",
        MailboxState::Failed,
        Some("LOGIN refused"),
        "mailbox.failed",
        "LOGIN refused",
    )
    .unwrap();
    let events = idx.events().unwrap();
    let tail: Vec<_> = events[1..]
        .iter()
        .map(|e| (e.mailbox.as_deref(), e.kind.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        tail,
        [
            (
                Some("a@example.com"),
                "mailbox.state",
                "Failed: LOGIN refused"
            ),
            (Some("a@example.com"), "mailbox.failed", "LOGIN refused"),
        ]
    );
    assert_eq!(idx.mailboxes("b1").unwrap()[0].state, MailboxState::Failed);
    let err = idx.set_mailbox_state("b9", "a@example.com", MailboxState::Synced, None);
    assert!(
        matches!(err, Err(StageError::NotFound { kind: "batch", .. })),
        "{err:?}"
    );
    let err = idx.set_mailbox_state("b1", "z@example.com", MailboxState::Synced, None);
    assert!(
        matches!(
            err,
            Err(StageError::NotFound {
                kind: "mailbox",
                ..
            })
        ),
        "{err:?}"
    );
    let err = idx.set_batch_state("b9", BatchState::Synced);
    assert!(
        matches!(err, Err(StageError::NotFound { kind: "batch", .. })),
        "{err:?}"
    );
    assert_eq!(idx.events().unwrap().len(), events.len());
}

#[test]
fn a_new_uidvalidity_retires_the_old_rows_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (mut idx, a) = staged(dir.path(), &[1, 2]);
    let inbox = inbox();
    let same = idx.open_folder(a, &inbox, 1).unwrap();
    assert_eq!((same.restarted, same.highest_uid), (false, 2));

    let changed = idx.open_folder(a, &inbox, 7).unwrap();
    assert_eq!(
        (changed.restarted, changed.retired, changed.highest_uid),
        (true, 2, 0)
    );
    let after = idx.folder_sync(a, b"INBOX").unwrap().unwrap();
    assert_eq!((after.uidvalidity, after.highest_uid), (Some(7), 0));
    // Seen again with the same UIDVALIDITY (a pass killed before the re-read): it starts
    // from UID 1, nothing more to retire.
    let again = idx.open_folder(a, &inbox, 7).unwrap();
    assert_eq!((again.restarted, again.highest_uid), (false, 0));

    // A stage an older version left half-way: the new UIDVALIDITY stored, the old rows
    // active and the old highest UID kept. Opening the folder finishes the change.
    idx.conn
        .execute(
            "UPDATE messages SET state = 'staged', reason = NULL WHERE state = 'retired'",
            [],
        )
        .unwrap();
    idx.conn
        .execute("UPDATE folders SET highest_uid = 2", [])
        .unwrap();
    let repaired = idx.open_folder(a, &inbox, 7).unwrap();
    assert_eq!(
        (repaired.restarted, repaired.retired, repaired.highest_uid),
        (true, 2, 0)
    );
    assert_eq!(idx.highest_uid(repaired.id).unwrap(), 0);
}

#[test]
fn namespaces_of_a_batch_and_what_its_passes_left_out_survive_a_merge() {
    use crate::extract::namespaces::ForeignNamespace::{OtherUsers, Shared};
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = index(a_dir.path());
    let mut settings = BatchSettings::new("b", "src");
    settings.include_namespaces = vec![Shared];
    a.create_batch_with_mailboxes(&settings, &[mailbox("x@y.z")])
        .unwrap();
    let id = a.mailboxes("b").unwrap()[0].id;
    let left = [
        ("Other Users/bob/Sent".to_owned(), OtherUsers),
        ("Public".to_owned(), Shared),
    ];
    a.set_namespace_folders(id, &left).unwrap();
    a.set_namespace_folders(id, &left[..1]).unwrap(); // a later pass replaces the list
    assert_eq!(a.batch("b").unwrap().settings.include_namespaces, [Shared]);
    let names = |idx: &Index| {
        idx.batch_status("b").unwrap().mailboxes[0]
            .left_out_namespaces
            .clone()
    };
    assert_eq!(names(&a), ["Other Users/bob/Sent"]);
    // The same list again (most passes) writes nothing; an empty one clears it.
    let writes = a.conn.total_changes();
    a.set_namespace_folders(id, &left[..1]).unwrap();
    assert_eq!(a.conn.total_changes(), writes);
    a.set_namespace_folders(id, &[]).unwrap();
    assert!(names(&a).is_empty());
    a.set_namespace_folders(id, &left[..1]).unwrap();

    let mut b = Index::open(&b_dir.path().join("index.sqlite")).unwrap();
    b.merge_rows_from(a.path(), MergeScope::Everything).unwrap();
    assert_eq!(b.batch("b").unwrap().settings.include_namespaces, [Shared]);
    assert_eq!(names(&b), ["Other Users/bob/Sent"]);
}
