//! A small, deterministic, restartable write workload on a stage, for the crash test:
//! `stage-workload STAGE_DIR MESSAGES [SIZE]` stages UIDs 1..=MESSAGES of one folder in groups,
//! exactly as the extractor does (stream blobs, persist the group, commit its rows), skipping
//! UIDs already recorded. Killed at any instant and run again, it must end with every UID
//! staged once with the right bytes.

use std::path::PathBuf;
use std::process::ExitCode;

use mailstage::catalog::BatchSettings;
use mailstage::catalog::{EndpointSettings, Security};
use mailstage::stage::index::{FolderInfo, MessageState, NewMailbox, NewMessage};
use mailstage::stage::{Access, Stage, StageError};
use mailstage_tests::workload::{GROUP, UIDVALIDITY, message_bytes_sized};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(Ok(count))) = (args.get(1), args.get(2).map(|n| n.parse::<u32>())) else {
        eprintln!("usage: stage-workload STAGE_DIR MESSAGES [SIZE]");
        return ExitCode::from(2);
    };
    let size = args.get(3).and_then(|s| s.parse::<usize>().ok());
    match run(&PathBuf::from(dir), count, size) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stage-workload: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(dir: &std::path::Path, count: u32, size: Option<usize>) -> Result<(), StageError> {
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
