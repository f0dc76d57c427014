//! Sending a mailbox's queue: groups of messages, each recorded `in_flight` before its
//! APPENDs and settled after, sent over one or several connections to the target mailbox.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::context::Ctx;
use super::destination::{Delivery, Destination, Outgoing};
use super::{MailboxUpload, RefusedFolder, UploadCounts, UploadError};
use crate::stage::index::{UploadItem, UploadResult};

/// Messages per group (one transaction before, one after).
const GROUP_MESSAGES: usize = 32;
/// Bytes per group.
const GROUP_BYTES: u64 = 32 << 20;

/// Messages of one source folder sent together into one target folder.
pub(crate) struct Group {
    /// The target folder.
    pub path: Vec<String>,
    /// The messages, in source UID order.
    pub items: Vec<UploadItem>,
}

/// Splits a folder's queue into groups of at most [`GROUP_MESSAGES`] and about
/// [`GROUP_BYTES`], all going to `path`.
pub(crate) fn groups(path: &[String], items: &[&UploadItem]) -> Vec<Group> {
    let mut out = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len()
            && n < GROUP_MESSAGES
            && (n == 0 || bytes + rest[n].size <= GROUP_BYTES)
        {
            bytes += rest[n].size;
            n += 1;
        }
        let (group, tail) = rest.split_at(n);
        out.push(Group {
            path: path.to_vec(),
            items: group.iter().map(|&i| i.clone()).collect(),
        });
        rest = tail;
    }
    out
}

/// Sends every group over `first` and up to `ctx.connections - 1` more connections to the
/// same mailbox, each taking the next group from a shared queue. When one connection
/// fails, the others stop before their next APPEND; an error is returned, a
/// lasting one before a transient one (the caller reconnects and plans again, or gives up).
/// A further connection that cannot be opened is not an error: the others do its share
/// (a throttled one lowers the pace).
pub(crate) async fn send_all<D, F, Fut>(
    ctx: &Ctx,
    mb: &MailboxUpload,
    first: D,
    open: &F,
    work: Vec<Group>,
    counts: &mut UploadCounts,
    refused: &mut Vec<RefusedFolder>,
) -> Result<(), UploadError>
where
    D: Destination,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<D, UploadError>>,
{
    let extra = ctx.connections.max(1).min(work.len().max(1)) - 1;
    let queue = Mutex::new(Queue {
        groups: VecDeque::from(work),
        busy: Vec::new(),
    });
    let stop = AtomicBool::new(false);
    let folders = Mutex::new(Vec::new());
    let shared = Shared {
        ctx,
        mb,
        queue: &queue,
        stop: &stop,
        refused: &folders,
    };
    let first = worker(&shared, async { Ok(first) });
    let others = futures_util::future::join_all((0..extra).map(|_| worker(&shared, open())));
    let (first, others) = futures_util::future::join(first, others).await;
    refused.extend(folders.into_inner().unwrap_or_default());
    let mut errors = Vec::new();
    for (sent, outcome) in std::iter::once(first).chain(others) {
        counts.uploaded += sent.uploaded;
        counts.uploaded_bytes += sent.uploaded_bytes;
        counts.refused += sent.refused;
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
struct Shared<'a> {
    ctx: &'a Ctx,
    mb: &'a MailboxUpload,
    queue: &'a Mutex<Queue>,
    stop: &'a AtomicBool,
    /// Folders refused while sending.
    refused: &'a Mutex<Vec<RefusedFolder>>,
}

/// The groups left, and the target folders connections are sending to right now.
struct Queue {
    groups: VecDeque<Group>,
    busy: Vec<Vec<String>>,
}

impl Queue {
    /// The next group, preferring a folder no other connection is sending to (servers
    /// lock a folder while they append to it, so two connections on one folder mostly
    /// wait for each other); it is marked busy until [`Queue::done`].
    fn take(&mut self) -> Option<Group> {
        let free = self
            .groups
            .iter()
            .position(|g| !self.busy.contains(&g.path))
            .unwrap_or(0);
        let group = self.groups.remove(free)?;
        self.busy.push(group.path.clone());
        Some(group)
    }

    /// Takes every group still queued for `path` out of the queue.
    fn remove_path(&mut self, path: &[String]) -> Vec<Group> {
        let (gone, kept) = std::mem::take(&mut self.groups)
            .into_iter()
            .partition(|g| g.path == path);
        self.groups = kept;
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
            if e.throttle_backoff().is_some() {
                s.ctx.pace.throttled();
            }
            tracing::warn!(mailbox = %s.mb.label(), "one more connection to the target: {e}");
            return (counts, Ok(()));
        }
    };
    let mut result = Ok(());
    while !s.stop.load(Ordering::Relaxed) {
        let next = s.queue.lock().map(|mut q| q.take()).unwrap_or(None);
        let Some(group) = next else { break };
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
                if let Err(e) = refuse_unsent(s, &unsent, &words) {
                    s.stop.store(true, Ordering::Relaxed);
                    result = Err(e);
                    break;
                }
                let unsent_count: u64 = unsent.iter().map(|g| g.items.len() as u64).sum();
                counts.refused += unsent_count;
                if let Ok(mut r) = s.refused.lock() {
                    r.push(RefusedFolder {
                        folder: group.path.join("/"),
                        path: group.path.clone(),
                        words,
                        messages: in_group + unsent_count,
                    });
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

/// Records the messages of `groups` as refused with the folder's `words`, unsent (the next
/// run tries them again).
fn refuse_unsent(s: &Shared<'_>, groups: &[Group], words: &str) -> Result<(), UploadError> {
    let (ctx, mb) = (s.ctx, s.mb);
    for group in groups {
        let key = serde_json::to_string(&group.path).unwrap_or_default();
        let rows: Vec<i64> = group.items.iter().map(|i| i.message_row).collect();
        ctx.stage
            .index(|i| i.refuse_unsent(&ctx.target, &mb.record_key(), &key, &rows, words))?;
    }
    Ok(())
}

/// Sends one group: `in_flight` first (one transaction), then APPENDs, then the results
/// (one transaction). A message stored whose `\Flagged` could not be set after it is done
/// with its flag pending (set later by its id, never sent again); when that was a throttle
/// or a broken link, the rest of the group goes back to pending. When the link breaks, the
/// message being sent stays `in_flight` (the next attempt looks for it) with one more lost send, and the ones after it go back to
/// pending; a message the server answered with a throttle goes back to pending. When
/// another connection of the mailbox failed, the rest of the group goes back to pending
/// before the next APPEND. A refusal that concerns the folder fails the rest of the group
/// with the same words, unsent, and is returned (`Ok(Some((words, n)))`) so the connection drops
/// the folder's other groups alike (with how many of this group it refused); one that says the mailbox is full puts the message and
/// the rest back to pending and ends with [`UploadError::TargetFull`].
async fn send_group<D: Destination>(
    s: &Shared<'_>,
    dest: &mut D,
    Group { path, items: group }: &Group,
    counts: &mut UploadCounts,
) -> Result<Option<(String, u64)>, UploadError> {
    let (ctx, mb) = (s.ctx, s.mb);
    let key = serde_json::to_string(path).unwrap_or_default();
    let rows: Vec<i64> = group.iter().map(|i| i.message_row).collect();
    ctx.stage
        .index(|i| i.begin_uploads(&ctx.target, &mb.record_key(), &key, &rows))?;
    let mut results = Vec::with_capacity(group.len());
    let (mut sent, mut sent_bytes) = (0, 0);
    let mut failure = None;
    let mut folder_refused = None;
    for (n, item) in group.iter().enumerate() {
        if s.stop.load(Ordering::Relaxed) {
            let rest = group[n..].iter();
            results.extend(rest.map(|i| (i.message_row, UploadResult::Pending)));
            break;
        }
        let blob = match ctx.stage.blobs.open_blob(&item.blob) {
            Ok(file) => file,
            Err(e) => {
                results.extend(
                    group[n..]
                        .iter()
                        .map(|i| (i.message_row, UploadResult::Pending)),
                );
                failure = Some(e.into());
                break;
            }
        };
        let message = Outgoing {
            blob,
            size: item.size,
            flags: super::flag_atoms::sendable(&item.flags),
            internaldate: item.internaldate.clone(),
        };
        let permit = ctx.pace.admit(item.size).await;
        let delivered = dest.append(path, message).await;
        if let Some(p) = permit {
            ctx.pace
                .release(p, matches!(delivered, Ok(Delivery::Stored(_))));
        }
        match delivered {
            Ok(Delivery::Stored(id)) => {
                results.push((item.message_row, UploadResult::Done(id)));
                sent += 1;
                sent_bytes += item.size;
            }
            Ok(Delivery::StoredFlagPending { id, cause }) => {
                // Stored: done, whatever became of the flag, which is set later by its id.
                results.push((item.message_row, UploadResult::DoneFlagPending(id)));
                sent += 1;
                sent_bytes += item.size;
                tracing::warn!(mailbox = %mb.label(), folder = %path.join("/"), uid = item.uid,
                    "stored, \\Flagged to be set later: {cause}");
                if cause.is_transient() {
                    let rest = group[n + 1..].iter();
                    results.extend(rest.map(|i| (i.message_row, UploadResult::Pending)));
                    failure = Some(cause);
                    break;
                }
            }
            Ok(Delivery::Refused(words)) => {
                tracing::warn!(mailbox = %mb.label(), folder = %path.join("/"), uid = item.uid,
                    "the target refused a message: {words}");
                results.push((item.message_row, UploadResult::Failed(words)));
                counts.refused += 1;
            }
            Ok(Delivery::FolderRefused(words)) => {
                let words = format!("the target refused folder {:?}: {words}", path.join("/"));
                tracing::warn!(mailbox = %mb.label(), "{words}");
                let rest = group[n..].iter();
                results.extend(rest.map(|i| (i.message_row, UploadResult::Failed(words.clone()))));
                counts.refused += (group.len() - n) as u64;
                folder_refused = Some((words, (group.len() - n) as u64));
                break;
            }
            Ok(Delivery::MailboxFull(words)) => {
                tracing::warn!(mailbox = %mb.label(), "the target mailbox is full: {words}");
                let rest = group[n..].iter();
                results.extend(rest.map(|i| (i.message_row, UploadResult::Pending)));
                failure = Some(UploadError::TargetFull {
                    words,
                    messages: 0,
                    bytes: 0,
                });
                break;
            }
            Err(e) => {
                // Answered (a throttle): not stored, back to pending. The link broke: it
                // may have arrived, so it stays in flight (the next attempt looks for it)
                // with one more lost send; the rest of the group goes back to pending.
                let this = if e.was_answered() {
                    UploadResult::Pending
                } else {
                    UploadResult::Lost
                };
                results.push((item.message_row, this));
                let rest = group[n + 1..].iter();
                results.extend(rest.map(|i| (i.message_row, UploadResult::Pending)));
                failure = Some(e);
                break;
            }
        }
    }
    let confirmed = Some((mb.mailbox_id, sent, sent_bytes));
    ctx.stage
        .index(|i| i.finish_group(&ctx.target, &results, confirmed))?;
    counts.uploaded += sent;
    counts.uploaded_bytes += sent_bytes;
    ctx.progress.advanced(&mb.email, sent, sent_bytes);
    failure.map_or(Ok(folder_refused), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(folder: &str) -> Group {
        Group {
            path: vec![folder.to_owned()],
            items: Vec::new(),
        }
    }

    #[test]
    fn connections_spread_over_folders_and_take_every_group_once() {
        let mut q = Queue {
            groups: ["A", "A", "A", "B", "C"].map(group).into(),
            busy: Vec::new(),
        };
        let first = q.take().unwrap();
        let second = q.take().unwrap();
        let third = q.take().unwrap();
        assert_eq!(
            [&first.path[0], &second.path[0], &third.path[0]],
            ["A", "B", "C"]
        );
        // Every folder busy: the next one in order, even if another connection has it.
        let fourth = q.take().unwrap();
        assert_eq!(fourth.path[0], "A");
        q.done(&first.path);
        q.done(&fourth.path);
        assert_eq!(q.take().unwrap().path[0], "A");
        assert!(q.take().is_none());
    }
}
