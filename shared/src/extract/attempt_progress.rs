//! What counts as progress between a mailbox's failed attempts (the retry loop of
//! `extract::mailbox` gives up after attempts in a row without any).

use std::collections::HashSet;

use super::context::Ctx;
use super::{MailboxCounts, MailboxJob};

/// What counts as progress besides failed messages: message rows committed, folders
/// finished, bytes of a body cut part-way kept to resume from, counted in steps of
/// [`PARTIAL_PROGRESS`] (a body trickling in a few bytes per attempt is no progress: the
/// mailbox fails instead of retrying for ever).
pub(super) fn progress_mark(c: &MailboxCounts, finished: &HashSet<i64>) -> (u64, usize, u64) {
    let rows = c.staged + c.skipped_size + c.skipped_item_cap;
    (rows, finished.len(), c.partial_bytes / PARTIAL_PROGRESS)
}

/// Whether a failed attempt recorded messages failed that were not failed before: the
/// index's count of the mailbox's failed messages against the one after the previous failed
/// attempt (`last`, updated), or, at the first failed attempt, whether it failed any
/// (`failed_any`). A server that answers the same message wrongly on every attempt then runs
/// out of attempts instead of being retried for ever.
pub(super) fn failed_more(
    ctx: &Ctx,
    mb: &MailboxJob,
    last: &mut Option<u64>,
    failed_any: bool,
) -> bool {
    let now = ctx.stage.index(|i| i.failed_messages(mb.mailbox_id)).ok();
    let grew = match (*last, now) {
        (Some(before), Some(now)) => now > before,
        _ => failed_any,
    };
    *last = now;
    grew
}

/// Bytes of partial bodies an attempt must keep to count as progress.
const PARTIAL_PROGRESS: u64 = 64 << 10;
