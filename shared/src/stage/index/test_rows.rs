//! Rows the index's unit tests start from: an index with endpoint `src`, a mailbox, its
//! INBOX and message rows in it.

use std::path::Path;

use super::{FolderInfo, Index, MessageState, NewMailbox, NewMessage};
use crate::catalog::{BatchSettings, EndpointSettings, Security};
use crate::stage::BlobHash;

/// A new index in `dir` with endpoint `src`.
pub(crate) fn index(dir: &Path) -> Index {
    let idx = Index::open(&dir.join("index.sqlite")).unwrap();
    idx.add_endpoint(&EndpointSettings::new(
        "src",
        "imap.example.com",
        993,
        Security::Ssl,
    ))
    .unwrap();
    idx
}

/// A mailbox `email`, logging in as the address's local part.
pub(crate) fn mailbox(email: &str) -> NewMailbox {
    NewMailbox {
        email: email.into(),
        login_name: email.split('@').next().unwrap().into(),
        user_root: None,
        target_user: None,
    }
}

/// Batch `b1` of endpoint `src` with the one mailbox `email`; returns the mailbox's id.
pub(crate) fn one_mailbox(idx: &mut Index, email: &str) -> i64 {
    idx.create_batch_with_mailboxes(&BatchSettings::new("b1", "src"), &[mailbox(email)])
        .unwrap();
    idx.mailboxes("b1").unwrap()[0].id
}

/// Folder INBOX, delimiter `/`.
pub(crate) fn inbox() -> FolderInfo {
    FolderInfo {
        wire_name: b"INBOX".to_vec(),
        name: "INBOX".into(),
        delimiter: Some('/'),
        special_use: None,
    }
}

/// Adds INBOX under `uidvalidity` to the mailbox and one message row per (state, size,
/// blob byte: the blob is that byte's two hex digits 32 times), UIDs from 1; returns the
/// folder's id.
pub(crate) fn messages(
    idx: &mut Index,
    mailbox_id: i64,
    uidvalidity: u32,
    rows: &[(MessageState, u64, Option<u8>)],
) -> i64 {
    let folder_id = idx
        .upsert_folder(mailbox_id, &inbox(), uidvalidity)
        .unwrap();
    let rows: Vec<NewMessage> = rows
        .iter()
        .enumerate()
        .map(|(i, (state, size, blob))| NewMessage {
            folder_id,
            uidvalidity,
            uid: i as u32 + 1,
            state: *state,
            reason: None,
            blob: blob.map(|b| BlobHash::parse(&format!("{b:02x}").repeat(32)).unwrap()),
            size: *size,
            internaldate: None,
            internaldate_unix: None,
            flags: String::new(),
            message_id: None,
        })
        .collect();
    idx.commit_messages(&rows).unwrap();
    folder_id
}
