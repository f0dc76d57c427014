//! The deterministic message set shared by the `stage-workload` binary and the crash test,
//! and the staging loop that binary runs ([`run`]).

use mailstage::catalog::BatchSettings;
use mailstage::catalog::{EndpointSettings, Security};
use mailstage::stage::index::{FolderInfo, MessageState, NewMailbox, NewMessage};
use mailstage::stage::{Access, Stage, StageError};

/// Messages committed per group (one persist, one transaction).
pub const GROUP: usize = 10;

/// The UIDVALIDITY the workload's folder uses.
pub const UIDVALIDITY: u32 = 1;

/// The bytes of the message with this UID: 1–40 KB, every fifth a duplicate of the one before
/// it (so the dedup path runs under the crash test too).
pub fn message_bytes(uid: u32) -> Vec<u8> {
    message_bytes_sized(uid, None)
}

/// Like [`message_bytes`], with every message about `size` bytes when given (benchmarks).
pub fn message_bytes_sized(uid: u32, size: Option<usize>) -> Vec<u8> {
    let source = if uid.is_multiple_of(5) { uid - 1 } else { uid };
    let size = size.unwrap_or(1_000 + (source as usize * 7_919) % 40_000);
    let mut out = format!(
        "From: workload@example.com\r\nMessage-ID: <{source}@workload>\r\nSubject: {source}\r\n\r\n"
    )
    .into_bytes();
    let mut x = u64::from(source) | 1;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(b'a' + (x % 26) as u8);
        if out.len().is_multiple_of(76) {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Stages UIDs 1..=`count` of the workload's folder (messages of about `size` bytes when
/// given) into the stage at `dir` in groups, as the extractor does (stream the blobs, persist
/// the group, commit its rows), skipping UIDs already recorded: what `stage-workload` runs.
pub fn run(dir: &std::path::Path, count: u32, size: Option<usize>) -> Result<(), StageError> {
    let mut stage = Stage::open(dir, Access::Write)?;
    let folder = ensure_folder(&mut stage)?;
    let known = stage.index().known_uids(folder, UIDVALIDITY)?;
    let todo: Vec<u32> = (1..=count)
        .filter(|u| known.binary_search(u).is_err())
        .collect();
    for group in todo.chunks(GROUP) {
        let mut pending = Vec::with_capacity(group.len());
        for &uid in group {
            let bytes = message_bytes_sized(uid, size);
            let mut writer = stage.blobs().writer()?;
            for chunk in bytes.chunks(4096) {
                writer.write_chunk(chunk)?;
            }
            pending.push(writer.finish()?);
        }
        let stored = stage.blobs().persist(pending)?;
        let rows: Vec<NewMessage> = group
            .iter()
            .zip(&stored)
            .map(|(&uid, blob)| NewMessage {
                folder_id: folder,
                uidvalidity: UIDVALIDITY,
                uid,
                state: MessageState::Staged,
                reason: None,
                blob: Some(blob.hash),
                size: blob.len,
                internaldate: None,
                internaldate_unix: Some(1_700_000_000 + i64::from(uid)),
                flags: String::new(),
                message_id: None,
            })
            .collect();
        stage.index_mut().commit_messages(&rows)?;
    }
    Ok(())
}

/// Creates (or finds) endpoint `e`, batch `crash`, mailbox `crash@example.com`, folder INBOX.
fn ensure_folder(stage: &mut Stage) -> Result<i64, StageError> {
    let index = stage.index_mut();
    let crash = NewMailbox {
        email: "crash@example.com".into(),
        login_name: "crash".into(),
        user_root: None,
        target_user: None,
    };
    let batch = match index.batch_id("crash") {
        Ok(id) => id,
        Err(StageError::NotFound { .. }) => {
            match index.add_endpoint(&EndpointSettings::new(
                "e",
                "127.0.0.1",
                143,
                Security::None,
            )) {
                Ok(_) | Err(StageError::Refused(_)) => {}
                Err(e) => return Err(e),
            }
            let batch = BatchSettings::new("crash", "e");
            index.create_batch_with_mailboxes(&batch, std::slice::from_ref(&crash))?
        }
        Err(e) => return Err(e),
    };
    let mailbox = index.add_mailbox(batch, &crash)?;
    let inbox = FolderInfo {
        wire_name: b"INBOX".to_vec(),
        name: "INBOX".into(),
        delimiter: Some('/'),
        special_use: None,
    };
    index.upsert_folder(mailbox, &inbox, UIDVALIDITY)
}
