//! Flags owed to messages the target already stored: on Microsoft 365 `\Flagged` is set
//! by a STORE after the APPEND, and when that STORE (or its SELECT) was throttled, cut or
//! refused, the message was recorded `done` with its flag pending. Each attempt first sets
//! those flags by the recorded APPENDUID; the message itself is never sent again.

use std::collections::HashSet;

use super::context::Ctx;
use super::destination::Destination;
use super::{MailboxUpload, UploadCounts, UploadError};

/// Sets the pending `\Flagged` of a mailbox's stored messages, except those the target
/// refused earlier in this run (`refused`, which grows by the new refusals). A refusal is
/// recorded with the server's words and tried again by the next run; a throttle or a broken
/// link ends the pass with that error (the caller reconnects, and the next attempt goes on).
pub(crate) async fn set_pending_flags<D: Destination>(
    ctx: &Ctx,
    mb: &MailboxUpload,
    dest: &mut D,
    counts: &mut UploadCounts,
    refused: &mut HashSet<i64>,
) -> Result<(), UploadError> {
    let mut pending = ctx
        .stage
        .index(|i| i.pending_flags(&ctx.target, mb.mailbox_id))?;
    pending.retain(|f| !refused.contains(&f.message_row));
    for flag in &pending {
        let path: Vec<String> = serde_json::from_str(&flag.folder).unwrap_or_default();
        let words = if path.is_empty() {
            Some(format!("no target folder recorded ({:?})", flag.folder))
        } else {
            dest.set_flagged(&path, &flag.target_id).await?
        };
        ctx.stage
            .index(|i| i.flag_settled(&ctx.target, flag.message_row, words.as_deref()))?;
        match words {
            None => counts.flags_set_later += 1,
            Some(words) => {
                tracing::warn!(mailbox = %mb.label(), folder = %path.join("/"),
                    id = %flag.target_id, "the target refused \\Flagged: {words}");
                refused.insert(flag.message_row);
            }
        }
    }
    Ok(())
}

/// How many of a mailbox's stored messages still lack their `\Flagged` on the target.
pub(crate) fn still_pending(ctx: &Ctx, mb: &MailboxUpload) -> Result<u64, UploadError> {
    let pending = ctx
        .stage
        .index(|i| i.pending_flags(&ctx.target, mb.mailbox_id))?;
    Ok(pending.len() as u64)
}
