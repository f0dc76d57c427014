//! Sending a mailbox's queue: groups of messages, each recorded `in_flight` before its
//! APPENDs and settled after, sent over one or several connections to the target mailbox.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::context::Ctx;
use super::destination::Destination;
use super::pace::Budget;
use super::pipeline::send_group;
use super::setbacks::Setbacks;
use super::{MailboxUpload, RefusedFolder, UploadCounts, UploadError};
use crate::stage::StageError;
use crate::stage::index::UploadItem;

/// Messages per group (one transaction before, one after).
pub(crate) const GROUP_MESSAGES: usize = 32;
/// Bytes per group.
const GROUP_BYTES: u64 = 32 << 20;

/// Messages of one source folder sent together into one target folder.
pub(crate) struct Group {
    /// The target folder.
    pub path: Vec<String>,
    /// The messages, in source UID order.
    pub items: Vec<UploadItem>,
}

/// Messages read at a time when a folder's remaining queue is refused unsent.
pub(crate) const REFUSE_CHUNK: usize = 1024;

/// One source folder's messages still to send to `path`, read from the index a group at a
/// time after a cursor: a run holds no list of a whole mailbox.
pub(crate) struct Lane {
    /// The source folder's row.
    pub folder_id: i64,
    /// The target folder.
    pub path: Vec<String>,
    /// The last message taken (UIDVALIDITY, UID).
    after: (u32, u32),
}

impl Lane {
    /// A lane from the start of the folder's queue.
    pub(crate) fn new(folder_id: i64, path: Vec<String>) -> Self {
        Lane {
            folder_id,
            path,
            after: (0, 0),
        }
    }

    /// The next messages of the queue (refused ones left out), at most `limit`; the cursor
    /// moves past them.
    pub(crate) fn next(
        &mut self,
        ctx: &Ctx,
        mb: &MailboxUpload,
        limit: usize,
    ) -> Result<Vec<UploadItem>, StageError> {
        let items = ctx.stage.index(|i| {
            i.upload_queue_after(
                &ctx.target,
                mb.mailbox_id,
                self.folder_id,
                self.after,
                limit,
            )
        })?;
        if let Some(last) = items.last() {
            self.after = (last.uidvalidity, last.uid);
        }
        Ok(items)
    }

    /// The next group: at most [`GROUP_MESSAGES`] and about [`GROUP_BYTES`] (a larger
    /// message goes alone); `None` when the folder's queue is done.
    fn next_group(&mut self, ctx: &Ctx, mb: &MailboxUpload) -> Result<Option<Group>, StageError> {
        let start = self.after;
        let mut items = self.next(ctx, mb, GROUP_MESSAGES)?;
        let mut bytes = 0;
        let fit = items
            .iter()
            .enumerate()
            .take_while(|(n, i)| {
                let fits = *n == 0 || bytes + i.size <= GROUP_BYTES;
                bytes += i.size;
                fits
            })
            .count();
        items.truncate(fit);
        self.after = items.last().map_or(start, |i| (i.uidvalidity, i.uid));
        Ok((!items.is_empty()).then(|| Group {
            path: self.path.clone(),
            items,
        }))
    }
}

/// A mailbox's work: its lanes in folder order, and how many groups they make at least
/// (connections beyond that would find nothing to send).
pub(crate) struct Work {
    /// One lane per source folder with messages to send.
    pub lanes: Vec<Lane>,
    /// At least this many groups.
    pub groups_at_least: usize,
}

/// Sends every group over `first` and up to `ctx.connections - 1` more connections to the
/// same mailbox, each taking the next group from a shared queue. When one connection
/// fails, the others stop before their next APPEND; an error is returned, a
/// lasting one before a transient one (the caller reconnects and plans again, or gives up).
/// A further connection that cannot be opened is not an error: the others do its share
/// (a throttled one teaches the mailbox's budget).
pub(crate) async fn send_all<D, F, Fut>(
    ctx: &Ctx,
    (mb, budget, setbacks): (&MailboxUpload, &Budget, &Setbacks),
    first: D,
    open: &F,
    work: Work,
    counts: &mut UploadCounts,
    refused: &mut Vec<RefusedFolder>,
) -> Result<(), UploadError>
where
    D: Destination,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<D, UploadError>>,
{
    let extra = ctx.connections.max(1).min(work.groups_at_least.max(1)) - 1;
    let queue = Mutex::new(Queue {
        lanes: VecDeque::from(work.lanes),
        busy: Vec::new(),
    });
    let stop = AtomicBool::new(false);
    let folders = Mutex::new(Vec::new());
    let shared = Shared {
        ctx,
        mb,
        budget,
        setbacks,
        queue: &queue,
        stop: &stop,
        refused: &folders,
    };
    let first = worker(&shared, async { Ok(first) });
    let others = futures_util::future::join_all((0..extra).map(|_| worker(&shared, open())));
    let (first, others) = futures_util::future::join(first, others).await;
    for folder in folders.into_inner().unwrap_or_default() {
        add_refused(refused, folder);
    }
    let mut errors = Vec::new();
    for (sent, outcome) in std::iter::once(first).chain(others) {
        counts.uploaded += sent.uploaded;
        counts.uploaded_bytes += sent.uploaded_bytes;
        counts.refused += sent.refused;
        counts.set_aside += sent.set_aside;
        errors.extend(outcome.err());
    }
    let worst = most_telling(&errors);
    let Some(n) = worst else { return Ok(()) };
    let returned = errors.swap_remove(n);
    // The caller counts the throttle it is handed; those other connections met in the
    // same attempt are counted here (one wait honours them all).
    counts.throttled += errors
        .iter()
        .filter(|e| e.throttle_backoff().is_some())
        .count() as u64;
    Err(returned)
}

/// Which of the connections' errors the caller should act on: a lasting one first (the
/// stage, a refused login: reconnecting cannot help, and it must not hide behind a dropped
/// link), then the throttle asking the longest wait (so the mailbox honours it), then any.
fn most_telling(errors: &[UploadError]) -> Option<usize> {
    let lasting = errors.iter().position(|e| !e.is_transient());
    let longest_throttle = (0..errors.len())
        .filter(|&n| errors[n].throttle_backoff().is_some())
        .max_by_key(|&n| errors[n].throttle_backoff());
    lasting
        .or(longest_throttle)
        .or((!errors.is_empty()).then_some(0))
}

/// What the connections of one mailbox share.
pub(super) struct Shared<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) mb: &'a MailboxUpload,
    /// The mailbox's throttle budget.
    pub(super) budget: &'a Budget,
    /// What went wrong earlier in this run with folders and messages.
    pub(super) setbacks: &'a Setbacks,
    queue: &'a Mutex<Queue>,
    /// Another connection failed: start no more APPENDs.
    pub(super) stop: &'a AtomicBool,
    /// Folders refused while sending.
    refused: &'a Mutex<Vec<RefusedFolder>>,
}

/// The lanes left, and the target folders connections are sending to right now.
struct Queue {
    lanes: VecDeque<Lane>,
    busy: Vec<Vec<String>>,
}

impl Queue {
    /// The next group, preferring a folder no other connection is sending to (servers
    /// lock a folder while they append to it, so two connections on one folder mostly
    /// wait for each other); it is marked busy until [`Queue::done`].
    fn take(&mut self, ctx: &Ctx, mb: &MailboxUpload) -> Result<Option<Group>, StageError> {
        loop {
            let free = self
                .lanes
                .iter()
                .position(|l| !self.busy.contains(&l.path))
                .unwrap_or(0);
            let Some(lane) = self.lanes.get_mut(free) else {
                return Ok(None);
            };
            if let Some(group) = lane.next_group(ctx, mb)? {
                self.busy.push(group.path.clone());
                return Ok(Some(group));
            }
            self.lanes.remove(free);
        }
    }

    /// Takes every lane still queued for `path` out of the queue.
    fn remove_path(&mut self, path: &[String]) -> Vec<Lane> {
        let (gone, kept) = std::mem::take(&mut self.lanes)
            .into_iter()
            .partition(|l| l.path == path);
        self.lanes = kept;
        gone.into()
    }

    /// A connection finished sending to `path`.
    fn done(&mut self, path: &[String]) {
        if let Some(n) = self.busy.iter().position(|p| p == path) {
            self.busy.swap_remove(n);
        }
    }
}

/// One connection: takes groups until the queue is empty or another connection failed.
async fn worker<D: Destination>(
    s: &Shared<'_>,
    connection: impl Future<Output = Result<D, UploadError>>,
) -> (UploadCounts, Result<(), UploadError>) {
    let mut counts = UploadCounts::default();
    let mut dest = match connection.await {
        Ok(d) => d,
        Err(e) => {
            if let Some(wait) = e.throttle_backoff() {
                s.budget.throttled(Some(wait));
            }
            tracing::warn!(mailbox = %s.mb.label(), "one more connection to the target: {e}");
            return (counts, Ok(()));
        }
    };
    let mut result = Ok(());
    while !s.stop.load(Ordering::Relaxed) {
        let next = match s.queue.lock() {
            Ok(mut q) => q.take(s.ctx, s.mb),
            Err(_) => Ok(None),
        };
        let group = match next {
            Ok(Some(group)) => group,
            Ok(None) => break,
            Err(e) => {
                s.stop.store(true, Ordering::Relaxed);
                result = Err(e.into());
                break;
            }
        };
        let sent = send_group(s, &mut dest, &group, &mut counts).await;
        let unsent = match s.queue.lock() {
            Ok(mut q) => {
                q.done(&group.path);
                match &sent {
                    Ok(Some(_)) => q.remove_path(&group.path),
                    _ => Vec::new(),
                }
            }
            Err(_) => Vec::new(),
        };
        match sent {
            Ok(None) => {}
            Ok(Some((words, in_group))) => {
                // The folder refused a message: its other messages fail alike, unsent.
                let unsent_count = match refuse_unsent(s, unsent, &words) {
                    Ok(n) => n,
                    Err(e) => {
                        s.stop.store(true, Ordering::Relaxed);
                        result = Err(e);
                        break;
                    }
                };
                counts.refused += unsent_count;
                if let Ok(mut r) = s.refused.lock() {
                    add_refused(
                        &mut r,
                        RefusedFolder {
                            folder: group.path.join("/"),
                            path: group.path.clone(),
                            words,
                            messages: in_group + unsent_count,
                        },
                    );
                }
            }
            Err(e) => {
                s.stop.store(true, Ordering::Relaxed);
                result = Err(e);
                break;
            }
        }
    }
    dest.close().await;
    (counts, result)
}

/// Adds a refused folder to `refused`, counted into its entry when several connections or
/// attempts met the refusal: one entry (the first words) per folder.
fn add_refused(refused: &mut Vec<RefusedFolder>, folder: RefusedFolder) {
    match refused.iter_mut().find(|f| f.path == folder.path) {
        Some(known) => known.messages += folder.messages,
        None => refused.push(folder),
    }
}

/// Records the messages left in `lanes` as refused with the folder's `words`, unsent (the
/// next run tries them again); returns how many.
fn refuse_unsent(s: &Shared<'_>, lanes: Vec<Lane>, words: &str) -> Result<u64, UploadError> {
    let (ctx, mb) = (s.ctx, s.mb);
    let mut refused = 0;
    for mut lane in lanes {
        let key = serde_json::to_string(&lane.path).unwrap_or_default();
        loop {
            let items = lane.next(ctx, mb, REFUSE_CHUNK)?;
            if items.is_empty() {
                break;
            }
            let rows: Vec<i64> = items.iter().map(|i| i.message_row).collect();
            ctx.stage
                .index(|i| i.refuse_unsent(&ctx.target, &mb.record_key(), &key, &rows, words))?;
            refused += rows.len() as u64;
        }
    }
    Ok(refused)
}
