//! Phase 3 of a mailbox's pass: the bodies of every folder, one folder after the other on
//! one connection, kept busy across folders.
//!
//! Each folder with a body to fetch is opened again (phase 1 may have left another one
//! selected) and must show the UIDVALIDITY its messages were listed under; otherwise the
//! listed UIDs may name other messages now, and the attempt stops
//! ([`ExtractError::UidValidityChanged`]) so the next one reads the folder again.
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

use super::bodies::{Decided, FolderTarget, Meta, fetch_folder};
use super::commits::Committer;
use super::context::Ctx;
use super::folders::FolderPlan;
use super::plan::Verdict;
use super::{ExtractError, Limits, MailboxCounts, MailboxJob};
use crate::imap::pipeline::OpenNext;
use crate::imap::{During as _, ImapError, SelectedMailbox, Session};
use crate::stage::index::MessageState;

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
    /// Its new messages, each to fetch or skip.
    pub decided: Vec<Decided>,
}

/// Fetches and commits the bodies of `folders`, in order; every folder's rows and
/// HIGHESTMODSEQ are committed when it returns, also when it fails (what arrived whole).
pub(super) async fn fetch_folders<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    mb: &MailboxJob,
    mut folders: Vec<FolderBodies>,
    counts: &mut MailboxCounts,
    finished: &mut HashSet<i64>,
) -> Result<(), ExtractError> {
    // Rows of many folders commit together; a folder is finished once its rows are.
    let mut committer = Committer::new(ctx, &mb.email, finished);
    let fetched: Result<(), ExtractError> = async {
        // The folder opened behind the previous folder's bodies, and the answer.
        let mut opened: Option<(usize, Result<SelectedMailbox, ImapError>)> = None;
        for at in 0..folders.len() {
            let decided = std::mem::take(&mut folders[at].decided);
            let f = &folders[at];
            if fetches(&decided) {
                let info = match opened.take() {
                    Some((k, answer)) if k == at => answer,
                    _ => s.examine(&f.plan.wire, false).await,
                }
                .during(|| format!("EXAMINE {:?}", f.plan.name))?;
                if info.uid_validity != f.uidvalidity {
                    return Err(ExtractError::UidValidityChanged {
                        mailbox: mb.email.clone(),
                        folder: f.plan.name.clone(),
                        listed: f.uidvalidity,
                        now: info.uid_validity,
                    });
                }
            }
            // The next folder with a body to fetch is opened behind this one's bodies.
            let next = (at + 1..folders.len()).find(|&k| fetches(&folders[k].decided));
            let open_next = next.map(|k| OpenNext {
                wire: &folders[k].plan.wire,
                condstore: false,
            });
            let target = FolderTarget {
                mailbox_id: mb.mailbox_id,
                folder_id: f.folder_id,
                uidvalidity: f.uidvalidity,
                name: &f.plan.name,
            };
            let answer =
                fetch_folder(ctx, s, &target, decided, counts, &mut committer, open_next).await?;
            if let (Some(k), Some(answer)) = (next, answer) {
                opened = Some((k, answer));
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

/// True when some of a folder's decided messages are to be fetched.
fn fetches(decided: &[Decided]) -> bool {
    decided.iter().any(|d| d.skip.is_none())
}

/// Decides each new message of a folder from its verdict: fetch it, or the skip and why.
pub(super) fn decide(
    limits: &Limits,
    new: Vec<Meta>,
    verdict_of: &mut impl Iterator<Item = Verdict>,
) -> Vec<Decided> {
    new.into_iter()
        .map(|meta| {
            let skip = match verdict_of.next() {
                Some(Verdict::SkipSize) => Some((
                    MessageState::SkippedSize,
                    format!(
                        "{} bytes, over the {}-byte size cap",
                        meta.size, limits.max_message_size
                    ),
                )),
                Some(Verdict::SkipItemCap) => Some((
                    MessageState::SkippedItemCap,
                    format!(
                        "beyond the newest {} items of the mailbox",
                        limits.max_items
                    ),
                )),
                _ => None,
            };
            Decided { meta, skip }
        })
        .collect()
}
