//! Sending one group of messages on one connection: recorded `in_flight` before the first
//! byte (one transaction), sent with several APPENDs in flight where the target takes them
//! (bounded by the mailbox's window, see [`super::pace::Budget`], and [`WINDOW_BYTES`]),
//! each settled by its own answer as it returns, then the results recorded (one
//! transaction).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use super::destination::{Delivery, Destination, Outgoing};
use super::refusal;
use super::send::{Group, Shared};
use super::setbacks::{MAX_DEFERRALS, MAX_LIMITS_IN_A_ROW};
use super::{UploadCounts, UploadError};
use crate::stage::index::{UploadItem, UploadResult};

/// Bytes of unanswered APPENDs on one connection at most (one larger message goes alone).
const WINDOW_BYTES: u64 = 8 << 20;

/// Sends one group: `in_flight` first, then the APPENDs, then the results.
///
/// - Stored: done (with `\Flagged` set by a STORE once every answer is in, on Microsoft
///   365; when that fails the message is done with its flag pending, set later by its id).
/// - A refusal of the message: failed with the target's words; the others go on.
/// - A refusal that concerns the folder: no more are started; the unstarted ones fail with
///   the same words, unsent, and it is returned (`Ok(Some((words, n)))`) so the connection
///   drops the folder's other groups alike.
/// - The mailbox is full: this one and the unstarted ones go back to pending, and it ends
///   with [`UploadError::TargetFull`].
/// - A throttle (or another answer that passes): not stored, back to pending; no more are
///   started, the answers to those in flight are still read.
/// - The link breaks: the oldest unanswered message stays in flight with one more lost send
///   (the server works in order: it was the one being read), the others in flight stay in
///   flight without one (after a throttle answer, none counts one); the next attempt looks
///   for each on the target. The unstarted ones go back to pending.
/// - Another connection of the mailbox failed: no more are started.
pub(super) async fn send_group<D: Destination>(
    s: &Shared<'_>,
    dest: &mut D,
    Group { path, items }: &Group,
    counts: &mut UploadCounts,
) -> Result<Option<(String, u64)>, UploadError> {
    let (ctx, mb) = (s.ctx, s.mb);
    let key = serde_json::to_string(path).unwrap_or_default();
    let rows: Vec<i64> = items.iter().map(|i| i.message_row).collect();
    ctx.stage
        .index(|i| i.begin_uploads(&ctx.target, &mb.record_key(), &key, &rows))?;
    let mut run = Sending::new(items.len());
    run.send(s, dest, path, items, counts).await;
    run.set_flags(s, dest, path).await;
    let results: Vec<(i64, UploadResult)> = items
        .iter()
        .zip(run.results)
        .map(|(item, r)| (item.message_row, r.unwrap_or(UploadResult::Pending)))
        .collect();
    let confirmed = Some((mb.mailbox_id, run.sent, run.sent_bytes));
    ctx.stage
        .index(|i| i.finish_group(&ctx.target, &results, confirmed))?;
    counts.uploaded += run.sent;
    counts.uploaded_bytes += run.sent_bytes;
    ctx.progress.advanced(&mb.email, run.sent, run.sent_bytes);
    match (run.failure, run.folder_refused) {
        (Some(e), _) => Err(e),
        (None, Some((words, n))) => Ok(Some((words, n))),
        (None, None) => Ok(None),
    }
}

/// One group being sent.
struct Sending {
    /// What became of each message, by its place in the group.
    results: Vec<Option<UploadResult>>,
    /// Messages started and not answered, oldest first.
    unanswered: VecDeque<usize>,
    /// Their bytes.
    unanswered_bytes: u64,
    /// No more messages are started.
    no_more: bool,
    /// The error the group ends with.
    failure: Option<UploadError>,
    /// The target answered a message with an error (a throttle): a link that breaks after
    /// it breaks because of it.
    answered_failure: bool,
    /// The folder's refusal and how many of the group it failed.
    folder_refused: Option<(String, u64)>,
    /// Stored messages whose `\Flagged` is still to be set, with their ids.
    to_flag: Vec<(usize, String)>,
    sent: u64,
    sent_bytes: u64,
}

impl Sending {
    fn new(n: usize) -> Self {
        Self {
            results: vec![None; n],
            unanswered: VecDeque::new(),
            unanswered_bytes: 0,
            no_more: false,
            failure: None,
            answered_failure: false,
            folder_refused: None,
            to_flag: Vec::new(),
            sent: 0,
            sent_bytes: 0,
        }
    }

    /// Starts messages while the window has room and reads answers, until every started
    /// one is answered or the link broke; settles the unstarted ones.
    async fn send<D: Destination>(
        &mut self,
        s: &Shared<'_>,
        dest: &mut D,
        path: &[String],
        items: &[UploadItem],
        counts: &mut UploadCounts,
    ) {
        let mut next = 0;
        loop {
            while !self.no_more && next < items.len() && self.has_room(s, dest, items[next].size) {
                if s.stop.load(Ordering::Relaxed) {
                    self.no_more = true;
                    break;
                }
                let item = &items[next];
                let blob = match s.ctx.stage.blobs.open_blob(&item.blob) {
                    Ok(file) => file,
                    Err(e) => {
                        self.fail(e.into());
                        self.no_more = true;
                        break;
                    }
                };
                let message = Outgoing {
                    blob,
                    size: item.size,
                    flags: super::flag_atoms::sendable(&item.flags),
                    internaldate: item.internaldate.clone(),
                };
                s.budget.admit().await;
                s.ctx.pace.admit(item.size).await;
                let started = dest.start_append(path, message, next as u64).await;
                self.unanswered.push_back(next);
                self.unanswered_bytes += item.size;
                next += 1;
                if let Err(e) = started {
                    // The answers to those sent before may still be read (a throttle).
                    self.no_more = true;
                    self.fail(e);
                }
            }
            if self.unanswered.is_empty() {
                break;
            }
            match dest.answer().await {
                Ok((ticket, answer)) => {
                    let n = usize::try_from(ticket).unwrap_or(usize::MAX);
                    match self.unanswered.iter().position(|&u| u == n) {
                        Some(at) => {
                            self.unanswered.remove(at);
                            self.unanswered_bytes -= items[n].size;
                            self.settle(s, path, &items[n], n, answer, counts);
                        }
                        None => tracing::warn!(ticket, "an answer for no message in flight"),
                    }
                }
                Err(e) => {
                    self.link_broke(e);
                    break;
                }
            }
        }
        let rest = next.min(items.len());
        for r in &mut self.results[rest..] {
            *r = Some(match &self.folder_refused {
                Some((words, _)) => UploadResult::Failed(words.clone()),
                None => UploadResult::Pending,
            });
        }
        if let Some((_, n)) = &mut self.folder_refused {
            let unsent = (items.len() - rest) as u64;
            *n += unsent;
            counts.refused += unsent;
        }
    }

    /// True when a message of `size` may start now: nothing is unanswered, or the target
    /// takes it ahead and the window has room.
    fn has_room<D: Destination>(&self, s: &Shared<'_>, dest: &D, size: u64) -> bool {
        self.unanswered.is_empty()
            || (dest.sends_ahead(size)
                && self.unanswered.len() < s.budget.window()
                && self.unanswered_bytes + size <= WINDOW_BYTES)
    }

    /// Keeps the error that ends the group: a lasting one before a throttle (whose wait
    /// the mailbox honours), a throttle before any other, else the first.
    fn fail(&mut self, e: UploadError) {
        let rank = |e: &UploadError| {
            if !e.is_transient() {
                2
            } else {
                u8::from(e.throttle_backoff().is_some())
            }
        };
        if self.failure.as_ref().is_none_or(|f| rank(&e) > rank(f)) {
            self.failure = Some(e);
        }
    }

    /// The link broke (no more answers come): every unanswered message stays in flight,
    /// the oldest with one more lost send unless an answer already explained the break or
    /// the break is a throttle itself (a `* BYE` in a throttle's words).
    fn link_broke(&mut self, e: UploadError) {
        let explained = self.answered_failure || e.throttle_backoff().is_some();
        for (k, n) in self.unanswered.drain(..).enumerate() {
            self.results[n] = Some(if k == 0 && !explained {
                UploadResult::Lost
            } else {
                UploadResult::Unanswered
            });
        }
        self.unanswered_bytes = 0;
        self.no_more = true;
        self.fail(e);
    }

    /// Records the target's answer for the `n`th message.
    fn settle(
        &mut self,
        s: &Shared<'_>,
        path: &[String],
        item: &UploadItem,
        n: usize,
        answer: Result<Delivery, UploadError>,
        counts: &mut UploadCounts,
    ) {
        let (mb, folder) = (s.mb, path.join("/"));
        let result = match answer {
            Ok(Delivery::Stored(id)) => {
                s.setbacks.stored_in(path);
                self.stored(s, item);
                UploadResult::Done(id)
            }
            Ok(Delivery::StoredToFlag(id)) => {
                s.setbacks.stored_in(path);
                self.stored(s, item);
                self.to_flag.push((n, id.clone()));
                UploadResult::DoneFlagPending(id)
            }
            Ok(Delivery::Refused(words))
                if refusal::names_limit(&words)
                    && s.setbacks.limited(path) >= MAX_LIMITS_IN_A_ROW =>
            {
                // RFC 5530: "an implementation limit of some kind", which may be the
                // folder's (Exchange Online holds at most 1,000,000 items per folder):
                // after so many in a row the folder stops, one error naming it, rather
                // than every other message of it refused one by one.
                self.refuse_folder(
                    s,
                    format!(
                        "the target refused {MAX_LIMITS_IN_A_ROW} messages in a row in folder \
                         {folder:?} with [LIMIT] (last: {words}); taken as a limit of the folder \
                         (such as its item count): its other messages are not sent"
                    ),
                    counts,
                )
            }
            Ok(Delivery::Refused(words)) => {
                tracing::warn!(mailbox = %mb.label(), %folder, uid = item.uid,
                    "the target refused a message: {words}");
                counts.refused += 1;
                UploadResult::Failed(words)
            }
            Ok(Delivery::FolderMissing(words)) if s.setbacks.recreate(path) => {
                // Deleted on the target while the run sends to it: the next attempt lists
                // the folders, creates it again and sends this message once more.
                tracing::warn!(mailbox = %mb.label(), %folder,
                    "the folder is gone from the target ({words}); creating it again");
                self.no_more = true;
                self.answered_failure = true;
                self.fail(UploadError::TryAgain(format!(
                    "folder {folder:?} is gone from the target ({words}); creating it again"
                )));
                UploadResult::Pending
            }
            Ok(Delivery::FolderRefused(words) | Delivery::FolderMissing(words)) => {
                let words = format!("the target refused folder {folder:?}: {words}");
                self.refuse_folder(s, words, counts)
            }
            Ok(Delivery::MailboxFull(words)) => {
                tracing::warn!(mailbox = %mb.label(), "the target mailbox is full: {words}");
                self.no_more = true;
                self.fail(UploadError::TargetFull {
                    words,
                    messages: 0,
                    bytes: 0,
                });
                UploadResult::Pending
            }
            Err(UploadError::TryAgain(words))
                if s.setbacks.deferred(item.message_row) >= MAX_DEFERRALS =>
            {
                // "Not now" to this message again and again (Exchange's `Server
                // Unavailable. 15` for an item it cannot convert): set aside so the rest of
                // the mailbox goes on; the next run tries it again.
                let words = format!(
                    "the target answered \"not now\" to this message {MAX_DEFERRALS} times \
                     (last: {words}); set aside until the next run"
                );
                tracing::warn!(mailbox = %mb.label(), %folder, uid = item.uid, "{words}");
                // Not refused: a transient answer, tried again by the next run.
                counts.set_aside += 1;
                UploadResult::Failed(words)
            }
            Err(e) => {
                // Answered (a throttle, a "not now"): not stored, back to pending.
                self.no_more = true;
                self.answered_failure |= e.was_answered();
                let this = if e.was_answered() {
                    UploadResult::Pending
                } else {
                    UploadResult::Lost
                };
                self.fail(e);
                this
            }
        };
        self.results[n] = Some(result);
    }

    /// The folder refused a message: it fails with `words`, and no more are started (the
    /// unstarted ones fail alike, unsent).
    fn refuse_folder(
        &mut self,
        s: &Shared<'_>,
        words: String,
        counts: &mut UploadCounts,
    ) -> UploadResult {
        tracing::warn!(mailbox = %s.mb.label(), "{words}");
        counts.refused += 1;
        self.no_more = true;
        self.folder_refused.get_or_insert((words.clone(), 0)).1 += 1;
        UploadResult::Failed(words)
    }

    /// Counts a stored message.
    fn stored(&mut self, s: &Shared<'_>, item: &UploadItem) {
        self.sent += 1;
        self.sent_bytes += item.size;
        s.budget.stored();
    }

    /// Sets `\Flagged` on the stored messages that need it, now that no answer is
    /// outstanding; a message whose flag is not set stays done with its flag pending. A
    /// transient failure (throttle, broken link) ends the group; none is tried after the
    /// link is gone.
    async fn set_flags<D: Destination>(&mut self, s: &Shared<'_>, dest: &mut D, path: &[String]) {
        let link_gone = self.failure.as_ref().is_some_and(UploadError::is_transient);
        if link_gone {
            return;
        }
        for (n, id) in std::mem::take(&mut self.to_flag) {
            match dest.set_flagged(path, &id).await {
                Ok(None) => self.results[n] = Some(UploadResult::Done(Some(id))),
                Ok(Some(words)) => {
                    tracing::warn!(mailbox = %s.mb.label(), folder = %path.join("/"),
                        "stored, \\Flagged to be set later: {words}");
                }
                Err(e) => {
                    tracing::warn!(mailbox = %s.mb.label(), folder = %path.join("/"),
                        "stored, \\Flagged to be set later: {e}");
                    if e.is_transient() {
                        self.fail(e);
                        return;
                    }
                }
            }
        }
    }
}
