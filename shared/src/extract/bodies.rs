//! Phase 3 of a folder: bodies streamed into blobs, rows committed in UID order.
//!
//! The folder's decided messages are walked in ascending UID order in groups. A group's
//! bodies come through pipelined `UID FETCH … BODY.PEEK[]` straight into blob writers; then
//! its blobs are persisted and all its rows (staged, skipped, failed) committed in one
//! transaction on a blocking thread while the next group downloads ([`super::commits`]: the
//! small groups of several folders commit together). Groups commit strictly in order, so
//! every UID up to the folder's `highest_uid` always has a row, and a pass that stops
//! anywhere resumes after the last committed group. The last group's fetch carries the
//! EXAMINE of the next folder to read right behind it ([`OpenNext`]), so the connection goes
//! from one folder's bodies to the next folder without waiting a round trip for it. When the link drops part-way
//! through a group, the messages that arrived whole before the first missing one are
//! committed before the error is returned: a link that drops every few megabytes then still
//! makes progress with each connection, even when a group is larger than that.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use super::commits::Committer;
use super::context::Ctx;
use super::refused::{fetch_in_parts, is_refusal};
use super::resume::{Body, Keys};
use super::{ExtractError, MailboxCounts};
use crate::imap::pipeline::OpenNext;
use crate::imap::{
    During as _, FetchedMessage, ImapError, LiteralStart, SelectedMailbox, SequenceSet, Session,
    WriterSink,
};
use crate::stage::index::{MessageState, NewMessage};
use crate::stage::{PendingBlob, StageError};

/// UIDs per group commit, and bytes: whichever fills first. A group pays for durability
/// once (two `syncfs`, or an fsync per blob and directory) and for one index transaction, so
/// small messages come in large groups; a crash costs at most one group's downloads.
pub(super) const GROUP_UIDS: usize = 1000;
pub(super) const GROUP_BYTES: u64 = 64 << 20;
/// UIDs per `UID FETCH` command, and commands in flight.
const FETCH_UIDS: u32 = 25;
const FETCH_IN_FLIGHT: usize = 4;

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
    pub mailbox_id: i64,
    pub folder_id: i64,
    pub uidvalidity: u32,
    pub name: &'a str,
    /// Its name as the server spells it.
    pub wire: &'a [u8],
    /// The mailbox's address.
    pub email: &'a str,
}

/// The Message-ID of a message from its first bytes (mail-parser reads the header).
pub(crate) fn message_id(head: &[u8]) -> Option<String> {
    mail_parser::MessageParser::default()
        .parse_headers(head)?
        .message_id()
        .map(str::to_owned)
}

/// The answer to an EXAMINE sent behind a fetch (`None`: it was not sent).
pub(crate) type OpenedNext = Option<Result<SelectedMailbox, ImapError>>;

/// Fetches a folder's decided messages and hands their rows to `committer`; the folder must
/// be selected. `next`, if any, is opened right behind the last body fetch: its answer is
/// returned (`None` when it was not sent: no body to fetch, or the fetch failed first).
pub(crate) async fn fetch_folder<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    session: &mut Session<S>,
    target: &FolderTarget<'_>,
    mut decided: Vec<Decided>,
    counts: &mut MailboxCounts,
    committer: &mut Committer<'_>,
    mut next: Option<OpenNext<'_>>,
) -> Result<OpenedNext, ExtractError> {
    decided.sort_by_key(|d| d.meta.uid);
    let mut opened = None;
    let mut rest = &decided[..];
    while !rest.is_empty() {
        let take = group_len(rest);
        let (group, tail) = rest.split_at(take);
        rest = tail;
        let then = if rest.is_empty() { next.take() } else { None };
        let (mut fetched, result) = fetch_group(ctx, session, group, target, counts, then).await;
        let result = match result {
            Err(refusal) if is_refusal(&refusal) => {
                fetch_in_parts(ctx, session, group, target, counts, &mut fetched, &refusal)
                    .await
                    .map(|()| None)
            }
            other => other,
        };
        if let Err(e) = result {
            // Keep what arrived whole: the group's messages before the first one missing.
            let whole = group
                .iter()
                .take_while(|d| d.skip.is_some() || fetched.contains_key(&d.meta.uid))
                .count();
            if whole > 0 {
                let rows = rows_for(
                    &group[..whole],
                    fetched,
                    target,
                    ctx.limits.max_message_size,
                );
                committer.add(rows, counts).await?;
            }
            committer.flush(counts).await?;
            return Err(match group.get(whole) {
                Some(d) => e.stopped_at(d.meta.uid, d.meta.size),
                None => e,
            });
        }
        if let Ok(o) = result {
            opened = o;
        }
        let rows = rows_for(group, fetched, target, ctx.limits.max_message_size);
        committer.add(rows, counts).await?;
    }
    Ok(opened)
}

/// Persists a group's blobs, then commits its rows and the HIGHESTMODSEQ of the folders it
/// finishes (`modseqs`), on a blocking thread.
pub(super) fn commit(
    ctx: &Ctx,
    rows: GroupRows,
    modseqs: Vec<(i64, Option<u64>)>,
) -> JoinHandle<Result<GroupDone, StageError>> {
    let (blobs, index) = (ctx.stage.blobs.clone(), ctx.stage.index.clone());
    tokio::task::spawn_blocking(move || {
        let stored = blobs.persist(rows.pending)?;
        crate::stage::with_index(&index, |i| {
            i.commit_messages(&rows.rows)?;
            // A crash here loses only these HIGHESTMODSEQs: those folders' flags are all
            // read again by the next pass.
            i.set_folder_modseqs(&modseqs)
        })?;
        let mut done = GroupDone::tally(
            &rows.rows,
            stored.iter().filter(|s| s.deduplicated).count() as u64,
        );
        done.size_mismatches = rows.size_mismatches;
        Ok(done)
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

/// A fetched body: its blob, or why there is none.
pub(super) type Fetched = HashMap<u32, Result<(PendingBlob, Option<String>), String>>;

/// Fetches a group's bodies; what arrived whole is returned also when the fetch failed.
///
/// Messages with a partial body kept from an earlier attempt go first, each continued from
/// where it stopped (`BODY.PEEK[]<origin.length>`); the rest come through pipelined
/// `UID FETCH … BODY.PEEK[]`, each into its own partial until it is whole.
pub(super) async fn fetch_group<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    session: &mut Session<S>,
    group: &[Decided],
    target: &FolderTarget<'_>,
    counts: &mut MailboxCounts,
    then: Option<OpenNext<'_>>,
) -> (Fetched, Result<OpenedNext, ExtractError>) {
    let mut fetched = Fetched::new();
    let keys = Keys::new(ctx, target, group);
    let gained = Arc::new(AtomicU64::new(0));
    let at = Place {
        group,
        target,
        keys: &keys,
        then,
    };
    let result = fetch_bodies(ctx, session, at, &gained, &mut fetched, counts)
        .await
        .during(|| format!("fetching messages of folder {:?}", target.name))
        .map_err(ExtractError::from);
    counts.partial_bytes += gained.load(Ordering::Relaxed);
    (fetched, result)
}

/// A group being fetched: its messages, folder, partials' keys, and the folder to open
/// behind it.
struct Place<'a, 'n> {
    group: &'a [Decided],
    target: &'a FolderTarget<'a>,
    keys: &'a Keys,
    then: Option<OpenNext<'n>>,
}

async fn fetch_bodies<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    session: &mut Session<S>,
    at: Place<'_, '_>,
    gained: &Arc<AtomicU64>,
    fetched: &mut Fetched,
    counts: &mut MailboxCounts,
) -> Result<OpenedNext, ImapError> {
    let keys = at.keys;
    // A server repeating a body answer: the repeat must not write over the partial of the
    // first, finished and waiting for its commit; it goes to a blob of its own, dropped.
    let mut begun = HashSet::new();
    let mut sink = WriterSink::new(|start: &LiteralStart| {
        let repeat = start.uid_hint.is_some_and(|uid| !begun.insert(uid));
        let start = &LiteralStart {
            uid_hint: start.uid_hint.filter(|_| !repeat),
            ..start.clone()
        };
        Ok(Body::open(ctx, keys, start, gained))
    });
    let mut syncer = Syncer::default();
    let result = {
        let mut on_message = |m: FetchedMessage<Body>| {
            let Some(uid) = m.fetch.uid else {
                return Ok(()); // an unsolicited FETCH (a flag change): nothing to store
            };
            let outcome = match m.body {
                // Another session's flag change (RFC 3501 7.4.2) after the body came: not
                // an answer, and no reason to drop the body.
                None if syncer.holds(uid, fetched, false) => return Ok(()),
                None => Err(match m.oversized {
                    Some(len) => format!(
                        "the server sent a body of {len} bytes, far over its RFC822.SIZE and the size cap: read and dropped"
                    ),
                    None => "the server sent no body for it".to_owned(),
                }),
                // The same body again: the first is kept.
                Some(_) if syncer.holds(uid, fetched, true) => return Ok(()),
                Some(body) => body.output.finish(),
            };
            syncer.take(uid, outcome, fetched);
            Ok(())
        };
        request_bodies(ctx, session, at, counts, &mut sink, &mut on_message).await
    };
    syncer.drain(fetched).await;
    result
}

/// Asks for the group's bodies: each one kept in part by an earlier attempt from where it
/// stopped (`BODY.PEEK[]<origin.length>`), the others whole, pipelined, with the EXAMINE of
/// `at.then` behind them.
async fn request_bodies<S, F>(
    ctx: &Ctx,
    session: &mut Session<S>,
    at: Place<'_, '_>,
    counts: &mut MailboxCounts,
    sink: &mut WriterSink<impl FnMut(&LiteralStart) -> std::io::Result<Body>, Body>,
    on_message: &mut F,
) -> Result<OpenedNext, ImapError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(FetchedMessage<Body>) -> Result<(), ImapError>,
{
    // The longest literal a body may come in (the framing's bound for streamed bodies).
    let span = ctx.limits.max_message_size + (1 << 20);
    let Place {
        group,
        target,
        keys,
        then,
    } = at;
    let mut whole = Vec::new();
    for d in group.iter().filter(|d| d.skip.is_none()) {
        let uid = d.meta.uid;
        let origin = keys
            .key(uid)
            .map_or(0, |k| ctx.stage.blobs.resume_origin(&k));
        if origin == 0 {
            whole.push(uid);
            continue;
        }
        tracing::info!(
            folder = target.name,
            uid,
            offset = origin,
            size = d.meta.size,
            "resuming a message from its partial body"
        );
        counts.resumed += 1;
        let items = format!(
            "(UID BODY.PEEK[]<{origin}.{}>)",
            span.saturating_sub(origin).max(1)
        );
        let set = SequenceSet::from_uids([uid]);
        session
            .uid_fetch(&[set], &items, 1, &mut *sink, &mut *on_message)
            .await?;
    }
    if whole.is_empty() {
        return Ok(None);
    }
    let sets = SequenceSet::from_uids(whole).chunks(FETCH_UIDS);
    let items = "(UID BODY.PEEK[])";
    match then {
        Some(next) => {
            session
                .uid_fetch_then_examine(&sets, items, FETCH_IN_FLIGHT, sink, on_message, next)
                .await
        }
        None => session
            .uid_fetch(&sets, items, FETCH_IN_FLIGHT, sink, on_message)
            .await
            .map(|()| None),
    }
}

/// Under per-file durability, finished blobs of a connection being fsynced on blocking
/// threads, which then close their descriptors: a group waiting for its commit holds none (a
/// batch of many mailboxes at once stays within a small `ulimit -n`). At most [`SYNC_AHEAD`]
/// run ahead; past that the fsync runs inline, pacing the download to the disk. When the
/// stage syncs whole groups at once, a finished blob holds no descriptor and goes straight
/// to its group.
#[derive(Default)]
struct Syncer {
    syncing: Vec<(u32, Syncing, Option<String>)>,
}

/// A finished blob being fsynced on a blocking thread.
type Syncing = JoinHandle<Result<PendingBlob, StageError>>;

/// Finished blobs of one connection being fsynced at once.
const SYNC_AHEAD: usize = 4;

impl Syncer {
    /// Takes a finished body: starts its fsync, or records why there is no blob.
    fn take(
        &mut self,
        uid: u32,
        outcome: Result<(PendingBlob, Option<String>), String>,
        fetched: &mut Fetched,
    ) {
        let running = self.syncing.iter().filter(|s| !s.1.is_finished()).count();
        let outcome = match outcome {
            Ok((pending, id)) if !pending.needs_sync() => Ok((pending, id)),
            Ok((pending, id)) if running < SYNC_AHEAD => {
                let sync = tokio::task::spawn_blocking(|| pending.sync());
                self.syncing.push((uid, sync, id));
                return;
            }
            Ok((pending, id)) => pending
                .sync()
                .map(|p| (p, id))
                .map_err(|e| format!("writing its blob failed: {e}")),
            Err(why) => Err(why),
        };
        fetched.insert(uid, outcome);
    }

    /// Whether an answer for `uid` arrived already (its outcome recorded, or its fsync
    /// running); with `body`, only an answer that brought its body counts.
    fn holds(&self, uid: u32, fetched: &Fetched, body: bool) -> bool {
        let recorded = fetched.get(&uid).is_some_and(|o| !body || o.is_ok());
        recorded || self.syncing.iter().any(|s| s.0 == uid)
    }

    /// Waits for every fsync started and records its blob.
    async fn drain(self, fetched: &mut Fetched) {
        for (uid, sync, id) in self.syncing {
            let outcome = match sync.await {
                Ok(Ok(pending)) => Ok((pending, id)),
                Ok(Err(e)) => Err(format!("writing its blob failed: {e}")),
                Err(e) => Err(format!("writing its blob failed: {e}")),
            };
            fetched.insert(uid, outcome);
        }
    }
}

/// A group's rows in UID order, the blobs its staged rows name, and how many of those
/// arrived with another length than announced.
#[derive(Default)]
pub(super) struct GroupRows {
    pub(super) pending: Vec<PendingBlob>,
    pub(super) rows: Vec<NewMessage>,
    size_mismatches: u64,
}

/// Builds the group's rows in UID order; staged rows' blobs go to persist.
///
/// The literal is the message: a body whose length differs from its RFC822.SIZE is staged
/// with the literal's length (and counted); the size cap, applied to the announced size
/// before the fetch, is checked again on the literal.
fn rows_for(
    group: &[Decided],
    mut fetched: Fetched,
    target: &FolderTarget<'_>,
    max_size: u64,
) -> GroupRows {
    let mut out = GroupRows {
        pending: Vec::new(),
        rows: Vec::with_capacity(group.len()),
        size_mismatches: 0,
    };
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
            (None, Some(Ok((blob, id)))) => {
                let sent = blob.len();
                if sent != m.size {
                    out.size_mismatches += 1;
                    tracing::info!(
                        folder = target.name,
                        uid = m.uid,
                        announced = m.size,
                        sent,
                        "the literal's length differs from RFC822.SIZE; the literal is kept"
                    );
                }
                row.size = sent;
                if sent == 0 && m.size > 0 {
                    Some((
                        MessageState::Failed,
                        format!(
                            "the server sent an empty body for a message of {} bytes (RFC822.SIZE)",
                            m.size
                        ),
                    ))
                } else if sent > max_size {
                    Some((
                        MessageState::SkippedSize,
                        format!(
                            "the server announced {} bytes (RFC822.SIZE) but sent {sent}, over the {max_size}-byte size cap",
                            m.size
                        ),
                    ))
                } else {
                    row.blob = Some(blob.hash());
                    row.message_id = id;
                    out.pending.push(blob);
                    None
                }
            }
        };
        if let Some((state, reason)) = failure {
            row.state = state;
            row.reason = Some(reason);
        }
        out.rows.push(row);
    }
    out
}

impl GroupRows {
    /// Appends `other`'s rows and blobs after these.
    pub(super) fn append(&mut self, mut other: GroupRows) {
        self.pending.append(&mut other.pending);
        self.rows.append(&mut other.rows);
        self.size_mismatches += other.size_mismatches;
    }
}

/// What one committed group added.
pub(super) struct GroupDone {
    staged: u64,
    bytes: u64,
    deduplicated: u64,
    skipped_size: u64,
    skipped_item_cap: u64,
    failed: u64,
    size_mismatches: u64,
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
            size_mismatches: 0,
        }
    }
}

pub(super) async fn await_group(
    handle: JoinHandle<Result<GroupDone, StageError>>,
) -> Result<GroupDone, ExtractError> {
    handle
        .await
        .map_err(|e| StageError::Refused(format!("the stage writer stopped: {e}")))?
        .map_err(ExtractError::from)
}

pub(super) fn add(counts: &mut MailboxCounts, g: GroupDone, ctx: &Ctx, email: &str) {
    counts.staged += g.staged;
    counts.staged_bytes += g.bytes;
    counts.deduplicated += g.deduplicated;
    counts.skipped_size += g.skipped_size;
    counts.skipped_item_cap += g.skipped_item_cap;
    counts.failed += g.failed;
    counts.size_mismatches += g.size_mismatches;
    ctx.progress.advanced(email, g.staged, g.bytes);
}
