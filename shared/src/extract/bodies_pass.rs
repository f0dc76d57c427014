//! Phase 3 of a mailbox's pass: the bodies of every folder, one folder after the other on
//! one connection, kept busy across folders.
//!
//! Each folder with a body to fetch is opened again (phase 1 may have left another one
//! selected) and must show the UIDVALIDITY its messages were listed under; otherwise the
//! listed UIDs may name other messages now, and the attempt stops
//! ([`ExtractError::UidValidityChanged`]) so the next one reads the folder again. A folder
//! the server now refuses to open (deleted or made unreadable since its listing) is left for
//! the next pass, and the folders after it are read ([`super::refused::is_refused_open`]).
//!
//! Round trips: the EXAMINE of the next folder with a body to fetch goes out right behind
//! the current folder's last `UID FETCH` ([`crate::imap::pipeline::OpenNext`]), so its
//! answer is there when the bodies end and the next folder's fetch starts at once. The
//! server runs a connection's commands in order (RFC 3501 §5.5; a pipelined EXAMINE changes
//! the selected mailbox only when it runs), so every FETCH response before the last
//! `UID FETCH`'s completion belongs to the current folder, and the untagged data after it
//! to the EXAMINE. Rows of several folders commit together ([`super::commits`]), so small
//! folders do not each wait for a commit either.

use std::collections::HashSet;

use tokio::io::{AsyncRead, AsyncWrite};

use super::bodies::{FolderTarget, fetch_folder};
use super::commits::Committer;
use super::context::Ctx;
use super::folders::FolderPlan;
use super::plan::{FETCH_CHUNK, next_chunk};
use super::refused::is_refused_open;
use super::{ExtractError, MailboxCounts, MailboxJob};
use crate::imap::pipeline::OpenNext;
use crate::imap::{During as _, ImapError, SelectedMailbox, Session};

/// A folder's part of phase 3.
pub(super) struct FolderBodies {
    /// The folder.
    pub plan: FolderPlan,
    /// Its row in the index.
    pub folder_id: i64,
    /// The UIDVALIDITY its messages were listed under.
    pub uidvalidity: u32,
    /// The HIGHESTMODSEQ to record once its rows are committed.
    pub modseq: Option<u64>,
    /// Whether some of its listed messages are to be fetched (else only skips are
    /// recorded, and it is not opened again).
    pub fetches: bool,
}

/// Fetches and commits the bodies of `folders`, in order; every folder's rows and
/// HIGHESTMODSEQ are committed when it returns, also when it fails (what arrived whole).
/// The folders the server refused to open are added to `refused`, with its answer.
pub(super) async fn fetch_folders<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    mb: &MailboxJob,
    folders: Vec<FolderBodies>,
    counts: &mut MailboxCounts,
    finished: &mut HashSet<i64>,
    refused: &mut Vec<String>,
) -> Result<(), ExtractError> {
    // Rows of many folders commit together; a folder is finished once its rows are.
    let mut committer = Committer::new(ctx, &mb.email, finished);
    let fetched: Result<(), ExtractError> = async {
        // The folder opened behind the previous folder's bodies, and the answer.
        let mut opened: Option<(usize, Result<SelectedMailbox, ImapError>)> = None;
        for at in 0..folders.len() {
            let f = &folders[at];
            if f.fetches {
                let info = match opened.take() {
                    Some((k, answer)) if k == at => answer,
                    _ => s.examine(&f.plan.wire, false).await,
                }
                .during(|| format!("EXAMINE {:?}", f.plan.name))
                .map_err(ExtractError::from);
                let info = match info {
                    Err(e) if is_refused_open(&e) => {
                        tracing::warn!(mailbox = %mb.email, folder = %f.plan.name, "{e}; reading the other folders");
                        refused.push(e.to_string());
                        continue;
                    }
                    other => other?,
                };
                if info.uid_validity != f.uidvalidity {
                    return Err(ExtractError::UidValidityChanged {
                        mailbox: mb.email.clone(),
                        folder: f.plan.name.clone(),
                        listed: f.uidvalidity,
                        now: info.uid_validity,
                    });
                }
            }
            // The next folder with a body to fetch is opened behind this one's last bodies.
            let next = (at + 1..folders.len()).find(|&k| folders[k].fetches);
            let target = FolderTarget {
                mailbox_id: mb.mailbox_id,
                folder_id: f.folder_id,
                uidvalidity: f.uidvalidity,
                name: &f.plan.name,
                wire: &f.plan.wire,
                email: &mb.email,
            };
            // The folder's listed messages, read from the index a chunk at a time.
            let mut after = 0;
            loop {
                let chunk = next_chunk(ctx, f.folder_id, after)?;
                let Some(last) = chunk.last() else { break };
                after = last.meta.uid;
                let last_chunk = chunk.len() < FETCH_CHUNK;
                let open_next = next.filter(|_| last_chunk).map(|k| OpenNext {
                    wire: &folders[k].plan.wire,
                    condstore: false,
                });
                let answer =
                    fetch_folder(ctx, s, &target, chunk, counts, &mut committer, open_next).await?;
                if let (Some(k), Some(answer)) = (next, answer) {
                    opened = Some((k, answer));
                }
                if last_chunk {
                    break;
                }
            }
            committer.folder_done(f.folder_id, f.modseq);
        }
        Ok(())
    }
    .await;
    // Whatever stopped the loop, what arrived whole is committed.
    let flushed = committer.flush(counts).await;
    fetched?;
    flushed
}
