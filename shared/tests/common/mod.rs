//! A small populated stage for the stage's own tests.

use std::path::Path;

use mailstage::catalog::BatchSettings;
use mailstage::catalog::{EndpointSettings, Security};
use mailstage::stage::index::{FolderInfo, MessageState, NewMailbox, NewMessage};
use mailstage::stage::{Access, BlobHash, Stage};

/// Opens a writable stage with one endpoint, batch `b1` and mailbox `alice@example.com`.
/// Returns the stage and the mailbox id.
pub fn stage_with_mailbox(root: &Path) -> (Stage, i64) {
    let mut stage = Stage::open(root, Access::Write).unwrap();
    let idx = stage.index_mut();
    idx.add_endpoint(&EndpointSettings::new(
        "src",
        "127.0.0.1",
        143,
        Security::None,
    ))
    .unwrap();
    let alice = NewMailbox {
        email: "alice@example.com".into(),
        login_name: "alice".into(),
        user_root: None,
        target_user: None,
    };
    idx.create_batch_with_mailboxes(&BatchSettings::new("b1", "src"), &[alice])
        .unwrap();
    let mailbox = idx.mailboxes("b1").unwrap()[0].id;
    (stage, mailbox)
}

/// Creates a folder with UIDVALIDITY 7.
pub fn folder(stage: &Stage, mailbox: i64, name: &str) -> i64 {
    let info = FolderInfo {
        wire_name: name.as_bytes().to_vec(),
        name: name.into(),
        delimiter: Some('/'),
        special_use: None,
    };
    stage.index().upsert_folder(mailbox, &info, 7).unwrap()
}

/// Stores `bodies` durably and commits them as UIDs 1.. in `folder`.
pub fn stage_messages(stage: &mut Stage, folder: i64, bodies: &[Vec<u8>]) -> Vec<BlobHash> {
    let pending: Vec<_> = bodies
        .iter()
        .map(|b| {
            let mut w = stage.blobs().writer().unwrap();
            w.write_chunk(b).unwrap();
            w.finish().unwrap()
        })
        .collect();
    let stored = stage.blobs().persist(pending).unwrap();
    let rows: Vec<NewMessage> = stored
        .iter()
        .enumerate()
        .map(|(i, s)| NewMessage {
            folder_id: folder,
            uidvalidity: 7,
            uid: i as u32 + 1,
            state: MessageState::Staged,
            reason: None,
            blob: Some(s.hash),
            size: s.len,
            internaldate: Some("17-Jul-1996 02:44:25 -0700".into()),
            internaldate_unix: Some(837_596_665),
            flags: "\\Seen".into(),
            message_id: None,
        })
        .collect();
    stage.index_mut().commit_messages(&rows).unwrap();
    stored.iter().map(|s| s.hash).collect()
}

/// A small distinct message.
pub fn message(n: usize) -> Vec<u8> {
    format!("From: a@example.com\r\nSubject: {n}\r\n\r\nbody {n}\r\n").into_bytes()
}
