//! Phase 3 of a folder: bodies streamed into blobs, rows committed in UID order.
//!
//! The folder's decided messages are walked in ascending UID order in groups. A group's
//! bodies come through pipelined `UID FETCH … BODY.PEEK[]` straight into blob writers; then
//! its blobs are persisted and all its rows (staged, skipped, failed) committed in one
//! transaction on a blocking thread while the next group downloads. Groups commit strictly in
//! order, so every UID up to the folder's `highest_uid` always has a row, and a pass that
//! stops anywhere resumes after the last committed group. When the link drops part-way
//! through a group, the messages that arrived whole before the first missing one are
//! committed before the error is returned: a link that drops every few megabytes then still
//! makes progress with each connection, even when a group is larger than that.

use std::collections::HashMap;
use std::io::{self, Write};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use super::context::Ctx;
use super::{ExtractError, MailboxCounts};
use crate::imap::{During as _, LiteralStart, SequenceSet, Session, WriterSink};
use crate::stage::index::{MessageState, NewMessage};
use crate::stage::{BlobWriter, PendingBlob, StageError};

/// UIDs per group commit, and bytes: whichever fills first.
const GROUP_UIDS: usize = 200;
const GROUP_BYTES: u64 = 64 << 20;
/// UIDs per `UID FETCH` command, and commands in flight.
const FETCH_UIDS: u32 = 25;
const FETCH_IN_FLIGHT: usize = 4;
/// Finished blobs of a connection being fsynced (each holding a descriptor until it is).
const SYNC_AHEAD: usize = 4;
/// Bytes of a message's start kept to read its Message-ID.
const HEAD_MAX: usize = 64 * 1024;

/// What phase 1 learned of one message.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub uid: u32,
    pub size: u64,
    pub internaldate: Option<String>,
    pub unix: Option<i64>,
    pub flags: String,
}

/// One decided message of a folder.
#[derive(Clone, Debug)]
pub(crate) struct Decided {
    pub meta: Meta,
    /// `None` to fetch, or the skip state and its reason.
    pub skip: Option<(MessageState, String)>,
}

/// The folder being fetched.
pub(crate) struct FolderTarget<'a> {
    pub folder_id: i64,
    pub uidvalidity: u32,
    pub name: &'a str,
}

/// A blob writer that also keeps the message's first bytes (for its Message-ID).
struct TappedBlob {
    blob: BlobWriter,
    head: Vec<u8>,
    head_done: bool,
}

impl Write for TappedBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.blob.write_chunk(buf).map_err(io::Error::other)?;
        if !self.head_done {
            let take = buf.len().min(HEAD_MAX - self.head.len());
            self.head.extend_from_slice(&buf[..take]);
            let ends = |sep: &[u8]| self.head.windows(sep.len()).any(|w| w == sep);
            self.head_done = self.head.len() >= HEAD_MAX || ends(b"\r\n\r\n") || ends(b"\n\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The Message-ID of a message from its first bytes (mail-parser reads the header).
pub(crate) fn message_id(head: &[u8]) -> Option<String> {
    mail_parser::MessageParser::default()
        .parse_headers(head)?
        .message_id()
        .map(str::to_owned)
}

/// Fetches and commits a folder's decided messages; the folder must be selected.
pub(crate) async fn fetch_folder<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    session: &mut Session<S>,
    target: &FolderTarget<'_>,
    email: &str,
    mut decided: Vec<Decided>,
    counts: &mut MailboxCounts,
) -> Result<(), ExtractError> {
    decided.sort_by_key(|d| d.meta.uid);
    let mut inflight: Option<JoinHandle<Result<GroupDone, StageError>>> = None;
    let mut rest = &decided[..];
    while !rest.is_empty() {
        let take = group_len(rest);
        let (group, tail) = rest.split_at(take);
        rest = tail;
        let (fetched, result) = fetch_group(ctx, session, group, target).await;
        // Whatever happened to this group, the one before it is committed first.
        if let Some(handle) = inflight.take() {
            add(counts, await_group(handle).await?, ctx, email);
        }
        if let Err(e) = result {
            // Keep what arrived whole: the group's messages before the first one missing.
            let whole = group
                .iter()
                .take_while(|d| d.skip.is_some() || fetched.contains_key(&d.meta.uid))
                .count();
            if whole > 0 {
                let (pending, rows) = rows_for(&group[..whole], fetched, target);
                add(
                    counts,
                    await_group(commit(ctx, pending, rows)).await?,
                    ctx,
                    email,
                );
            }
            return Err(match group.get(whole) {
                Some(d) => e.stopped_at(d.meta.uid, d.meta.size),
                None => e,
            });
        }
        let (pending, rows) = rows_for(group, fetched, target);
        inflight = Some(commit(ctx, pending, rows));
    }
    if let Some(handle) = inflight {
        add(counts, await_group(handle).await?, ctx, email);
    }
    Ok(())
}

/// Persists a group's blobs, then commits its rows, on a blocking thread.
fn commit(
    ctx: &Ctx,
    pending: Vec<PendingBlob>,
    rows: Vec<NewMessage>,
) -> JoinHandle<Result<GroupDone, StageError>> {
    let (blobs, index) = (ctx.stage.blobs.clone(), ctx.stage.index.clone());
    tokio::task::spawn_blocking(move || {
        let stored = blobs.persist(pending)?;
        crate::stage::with_index(&index, |i| i.commit_messages(&rows))?;
        Ok(GroupDone::tally(
            &rows,
            stored.iter().filter(|s| s.deduplicated).count() as u64,
        ))
    })
}

/// How many of the next messages make one group.
fn group_len(rest: &[Decided]) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for d in rest.iter().take(GROUP_UIDS) {
        if d.skip.is_none() {
            bytes += d.meta.size;
        }
        n += 1;
        if bytes >= GROUP_BYTES {
            break;
        }
    }
    n
}

/// A finished blob being fsynced on a blocking thread.
type Syncing = JoinHandle<Result<PendingBlob, StageError>>;

/// A fetched body: its blob, or why there is none.
type Fetched = HashMap<u32, Result<(PendingBlob, Option<String>), String>>;

/// Fetches a group's bodies; what arrived whole is returned also when the fetch failed.
async fn fetch_group<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    session: &mut Session<S>,
    group: &[Decided],
    target: &FolderTarget<'_>,
) -> (Fetched, Result<(), ExtractError>) {
    let uids: Vec<u32> = group
        .iter()
        .filter(|d| d.skip.is_none())
        .map(|d| d.meta.uid)
        .collect();
    let mut fetched = Fetched::new();
    // Finished blobs being fsynced on blocking threads, which close their descriptors: a
    // group waiting for its commit holds none.
    let mut syncing: Vec<(u32, Syncing, Option<String>)> = Vec::new();
    if uids.is_empty() {
        return (fetched, Ok(()));
    }
    let sets = SequenceSet::from_uids(uids.iter().copied()).chunks(FETCH_UIDS);
    let store = ctx.stage.blobs.clone();
    let mut sink = WriterSink::new(|_: &LiteralStart| {
        Ok(TappedBlob {
            blob: store.writer().map_err(io::Error::other)?,
            head: Vec::new(),
            head_done: false,
        })
    });
    let result = session
        .uid_fetch(
            &sets,
            "(UID BODY.PEEK[])",
            FETCH_IN_FLIGHT,
            &mut sink,
            |m| {
                let Some(uid) = m.fetch.uid else {
                    return Ok(()); // an unsolicited FETCH (a flag change): nothing to store
                };
                let Some(body) = m.body else {
                    fetched.insert(uid, Err("the server sent no body for it".to_owned()));
                    return Ok(());
                };
                let id = message_id(&body.output.head);
                let running = syncing.iter().filter(|s| !s.1.is_finished()).count();
                let outcome = match body.output.blob.finish() {
                    Ok(pending) if running < SYNC_AHEAD => {
                        syncing.push((uid, tokio::task::spawn_blocking(|| pending.sync()), id));
                        return Ok(());
                    }
                    // The disk is behind: wait for it here rather than hold more descriptors.
                    Ok(pending) => pending.sync().map(|p| (p, id)),
                    Err(e) => Err(e),
                };
                let outcome = outcome.map_err(|e| format!("writing its blob failed: {e}"));
                fetched.insert(uid, outcome);
                Ok(())
            },
        )
        .await
        .during(|| format!("fetching messages of folder {:?}", target.name))
        .map_err(ExtractError::from);
    for (uid, sync, id) in syncing {
        let outcome = match sync.await {
            Ok(synced) => synced
                .map(|pending| (pending, id))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        fetched.insert(
            uid,
            outcome.map_err(|e| format!("writing its blob failed: {e}")),
        );
    }
    (fetched, result)
}

/// Builds the group's rows in UID order; staged rows' blobs go to persist.
fn rows_for(
    group: &[Decided],
    mut fetched: Fetched,
    target: &FolderTarget<'_>,
) -> (Vec<PendingBlob>, Vec<NewMessage>) {
    let mut pending = Vec::new();
    let mut rows = Vec::with_capacity(group.len());
    for d in group {
        let m = &d.meta;
        let mut row = NewMessage {
            folder_id: target.folder_id,
            uidvalidity: target.uidvalidity,
            uid: m.uid,
            state: MessageState::Staged,
            reason: None,
            blob: None,
            size: m.size,
            internaldate: m.internaldate.clone(),
            internaldate_unix: m.unix,
            flags: m.flags.clone(),
            message_id: None,
        };
        let failure = match (&d.skip, fetched.remove(&m.uid)) {
            (Some((state, reason)), _) => Some((*state, reason.clone())),
            (None, None) => Some((
                MessageState::Failed,
                "the server returned nothing for this UID (deleted meanwhile?)".into(),
            )),
            (None, Some(Err(why))) => Some((MessageState::Failed, why)),
            (None, Some(Ok((blob, _)))) if blob.len() != m.size => Some((
                MessageState::Failed,
                format!(
                    "the server announced {} bytes (RFC822.SIZE) but sent {}",
                    m.size,
                    blob.len()
                ),
            )),
            (None, Some(Ok((blob, id)))) => {
                row.blob = Some(blob.hash());
                row.message_id = id;
                pending.push(blob);
                None
            }
        };
        if let Some((state, reason)) = failure {
            row.state = state;
            row.reason = Some(reason);
        }
        rows.push(row);
    }
    (pending, rows)
}

/// What one committed group added.
struct GroupDone {
    staged: u64,
    bytes: u64,
    deduplicated: u64,
    skipped_size: u64,
    skipped_item_cap: u64,
    failed: u64,
}

impl GroupDone {
    fn tally(rows: &[NewMessage], deduplicated: u64) -> Self {
        let count = |s: MessageState| rows.iter().filter(|r| r.state == s).count() as u64;
        GroupDone {
            staged: count(MessageState::Staged),
            bytes: rows
                .iter()
                .filter(|r| r.state == MessageState::Staged)
                .map(|r| r.size)
                .sum(),
            deduplicated,
            skipped_size: count(MessageState::SkippedSize),
            skipped_item_cap: count(MessageState::SkippedItemCap),
            failed: count(MessageState::Failed),
        }
    }
}

async fn await_group(
    handle: JoinHandle<Result<GroupDone, StageError>>,
) -> Result<GroupDone, ExtractError> {
    handle
        .await
        .map_err(|e| StageError::Refused(format!("the stage writer stopped: {e}")))?
        .map_err(ExtractError::from)
}

fn add(counts: &mut MailboxCounts, g: GroupDone, ctx: &Ctx, email: &str) {
    counts.staged += g.staged;
    counts.staged_bytes += g.bytes;
    counts.deduplicated += g.deduplicated;
    counts.skipped_size += g.skipped_size;
    counts.skipped_item_cap += g.skipped_item_cap;
    counts.failed += g.failed;
    ctx.progress.advanced(email, g.staged, g.bytes);
}
