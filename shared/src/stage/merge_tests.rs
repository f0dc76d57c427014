//! `Stage::merge_from` against real stages in temporary directories: rows and blobs arrive
//! once, a second merge changes nothing, a damaged or missing blob and a plan that disagrees
//! are refused with nothing written, and the row-wins rules hold.

use std::path::Path;

use super::index::test_rows::inbox;
use super::index::{MessageState, NewMailbox, NewMessage, Placement};
use super::{Access, BlobHash, Stage};
use crate::catalog::{BatchSettings, EndpointSettings, Security};

/// A stage with endpoint `src`, batch `b` of `emails`, and for the first mailbox one INBOX
/// message per body (UIDs from 1) whose blobs are stored.
pub(super) fn stage_with(dir: &Path, emails: &[&str], bodies: &[&[u8]]) -> Stage {
    let mut stage = Stage::open(dir, Access::Write).unwrap();
    let index = stage.index_mut();
    index
        .add_endpoint(&EndpointSettings::new(
            "src",
            "imap.example.com",
            993,
            Security::Ssl,
        ))
        .unwrap();
    let boxes: Vec<NewMailbox> = emails
        .iter()
        .map(|e| NewMailbox {
            email: (*e).into(),
            login_name: (*e).into(),
            user_root: None,
            target_user: None,
        })
        .collect();
    index
        .create_batch_with_mailboxes(&BatchSettings::new("b", "src"), &boxes)
        .unwrap();
    add_messages(&mut stage, emails[0], 1, bodies);
    stage
}

fn add_messages(stage: &mut Stage, email: &str, first_uid: u32, bodies: &[&[u8]]) {
    let mailbox = stage
        .index()
        .mailboxes("b")
        .unwrap()
        .into_iter()
        .find(|m| m.email == email)
        .unwrap()
        .id;
    let folder_id = stage.index().upsert_folder(mailbox, &inbox(), 7).unwrap();
    let rows: Vec<NewMessage> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| NewMessage {
            folder_id,
            uidvalidity: 7,
            uid: first_uid + i as u32,
            state: MessageState::Staged,
            reason: None,
            blob: Some(stage.blobs().put(body).unwrap().hash),
            size: body.len() as u64,
            internaldate: None,
            internaldate_unix: None,
            flags: String::new(),
            message_id: None,
        })
        .collect();
    stage.index_mut().commit_messages(&rows).unwrap();
}

fn count(stage: &Stage, table: &str) -> i64 {
    rusqlite::Connection::open(stage.root().join("index.sqlite"))
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn rows_and_blobs_arrive_once_and_a_second_merge_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    drop(stage_with(&a, &["x@e", "y@e"], &[b"one", b"two"]));
    let mut other = stage_with(&b, &["x@e", "y@e"], &[b"two"]);
    add_messages(&mut other, "y@e", 1, &[b"three"]);
    drop(other);

    let mut into = Stage::open(&dir.path().join("m"), Access::Write).unwrap();
    let first = into.merge_from(&a).unwrap();
    assert_eq!((first.blobs_copied, first.rows.messages), (2, 2));
    let second = into.merge_from(&b).unwrap();
    // x's UID 1 ("two" in b) is already there from a: only y's message and blob are new.
    assert_eq!((second.blobs_copied, second.blobs_present), (1, 1));
    assert_eq!(second.rows.messages, 1);
    assert_eq!(count(&into, "messages"), 3);
    assert_eq!(count(&into, "mailboxes"), 2);
    let events = count(&into, "events");
    for again in [&a, &b] {
        let m = into.merge_from(again).unwrap();
        assert_eq!(m.blobs_copied, 0);
        assert!(m.rows.is_empty(), "{:?}", m.rows);
    }
    assert_eq!(
        count(&into, "events"),
        events,
        "an empty merge records nothing"
    );
    assert_eq!(count(&into, "messages"), 3);
    let report = super::verify::verify(&into).unwrap();
    assert!(report.is_clean(), "{}", report.render_text());
}

#[test]
fn a_damaged_or_missing_blob_is_refused_and_nothing_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let stage = stage_with(&a, &["x@e"], &[b"good", b"bad"]);
    let bad = stage.blobs().path_of(&BlobHash::of(b"bad"));
    drop(stage);
    let mut perms = std::fs::metadata(&bad).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&bad, perms).unwrap();
    std::fs::write(&bad, b"bXd").unwrap();

    let mut into = Stage::open(&dir.path().join("m"), Access::Write).unwrap();
    let err = into.merge_from(&a).unwrap_err().to_string();
    assert!(err.contains("does not hash to its name"), "{err}");
    assert_eq!(count(&into, "messages"), 0, "no row without its blob");

    std::fs::remove_file(&bad).unwrap();
    let err = into.merge_from(&a).unwrap_err().to_string();
    assert!(err.contains("does not hold it"), "{err}");
    assert_eq!(count(&into, "messages"), 0);
    // What was copied before the refusal is garbage gc removes.
    assert!(into.gc().unwrap().orphan_blobs <= 1);
}

#[test]
fn plans_that_disagree_are_refused_and_a_synced_mailbox_wins_over_a_queued_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let place = |stage: &mut Stage, shard| {
        let p = Placement {
            email: "x@e".into(),
            shard,
            bytes: Some(3),
            messages: Some(1),
        };
        stage.index_mut().record_shard_plan("b", 2, &[p]).unwrap();
    };
    let mut sa = stage_with(&a, &["x@e"], &[b"one"]);
    place(&mut sa, 0);
    sa.index_mut()
        .set_mailbox_state("b", "x@e", super::index::MailboxState::Synced, None)
        .unwrap();
    drop(sa);
    let mut sb = stage_with(&b, &["x@e"], &[]);
    place(&mut sb, 1);
    drop(sb);

    let mut into = Stage::open(&dir.path().join("m"), Access::Write).unwrap();
    into.merge_from(&a).unwrap();
    let err = into.merge_from(&b).unwrap_err().to_string();
    assert!(err.contains("different plans"), "{err}");
    let x = &into.index().mailboxes("b").unwrap()[0];
    assert_eq!(x.state, super::index::MailboxState::Synced);
    assert_eq!(into.index().shard_plan("b").unwrap()[0].shard, Some(0));
}
