//! Creating the target folders a mailbox needs, and what a refused one means: its messages
//! fail with the server's words, unsent (recorded, reported, tried again by the next run),
//! and the rest of the mailbox goes on.

use std::collections::HashMap;

use super::context::Ctx;
use super::destination::Destination;
use super::mapping::{MappedFolder, TargetFolders, folders_to_create};
use super::send::{Lane, REFUSE_CHUNK};
use super::{MailboxUpload, RefusedFolder, UploadCounts, UploadError};
use crate::stage::index::UploadState;

/// Creates the missing target folders (parents first). A folder the target refuses, and
/// every folder under it, joins `refused` (with the server's words); one refused earlier in
/// this run is not asked for again.
pub(crate) async fn create_folders<D: Destination>(
    dest: &mut D,
    mb: &MailboxUpload,
    mapped: &[MappedFolder],
    target: &TargetFolders,
    counts: &mut UploadCounts,
    refused: &mut Vec<RefusedFolder>,
) -> Result<(), UploadError> {
    for path in folders_to_create(mapped, target) {
        if refused_words(refused, &path).is_some() {
            continue;
        }
        match dest.create_folder(&path).await? {
            None => counts.folders_created += 1,
            Some(words) => {
                let words = format!(
                    "the target refused to create folder {:?}: {words}",
                    path.join("/")
                );
                tracing::warn!(mailbox = %mb.label(), "{words}");
                refused.push(RefusedFolder {
                    folder: path.join("/"),
                    path,
                    words,
                    messages: 0,
                });
            }
        }
    }
    Ok(())
}

/// The words a folder (or one of its parents) was refused with in this run.
fn refused_words<'a>(refused: &'a [RefusedFolder], path: &[String]) -> Option<&'a str> {
    refused
        .iter()
        .find(|r| path.starts_with(&r.path))
        .map(|r| r.words.as_str())
}

/// Records the queued messages bound for a refused folder (except those a previous attempt
/// left in flight, which are looked for first) refused with its words, unsent, reading each
/// folder's queue in chunks; counts them in `counts.refused` and in their folder's report.
pub(crate) fn refuse_queued(
    ctx: &Ctx,
    mb: &MailboxUpload,
    dest_of: &HashMap<i64, &Vec<String>>,
    counts: &mut UploadCounts,
    refused: &mut [RefusedFolder],
) -> Result<(), UploadError> {
    for (&folder_id, &path) in dest_of {
        let Some(r) = refused.iter_mut().find(|r| path.starts_with(&r.path)) else {
            continue;
        };
        let key = serde_json::to_string(path).unwrap_or_default();
        let mut lane = Lane::new(folder_id, path.clone());
        loop {
            let items = lane.next(ctx, mb, REFUSE_CHUNK)?;
            if items.is_empty() {
                break;
            }
            let rows: Vec<i64> = items
                .iter()
                .filter(|i| i.state != UploadState::InFlight)
                .map(|i| i.message_row)
                .collect();
            let words = &r.words;
            ctx.stage
                .index(|i| i.refuse_unsent(&ctx.target, &mb.record_key(), &key, &rows, words))?;
            r.messages += rows.len() as u64;
            counts.refused += rows.len() as u64;
        }
    }
    Ok(())
}
