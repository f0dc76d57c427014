//! One mailbox's upload: folders, the resolution of what a crash left in flight, and the
//! queue sent in groups; transient failures reconnect with backoff and resume.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::destination::{Delivery, Destination, Outgoing};
use super::mapping::{MappedFolder, MappingRules, folders_to_create, map_folders};
use super::predict::{Prediction, SizeLimit, predict};
use super::{MailboxUpload, Pace, SharedProgress, UploadCounts, UploadError, UploadOutcome};
use crate::retry::RetryPolicy;
use crate::stage::index::{UploadItem, UploadResult, UploadState};
use crate::stage::{BlobStore, Index, StageError};

/// Messages per group (one transaction before, one after).
const GROUP_MESSAGES: usize = 32;
/// Bytes per group.
const GROUP_BYTES: u64 = 32 << 20;

/// What every mailbox task of a run shares.
pub(crate) struct Ctx {
    pub batch: String,
    pub target: String,
    pub m365: bool,
    pub rules: MappingRules,
    pub dry_run: bool,
    pub retry: RetryPolicy,
    pub pace: Pace,
    pub blobs: Arc<BlobStore>,
    pub index: Arc<Mutex<Index>>,
    pub progress: SharedProgress,
}

impl Ctx {
    /// Runs `f` on the index (one writer at a time).
    pub(super) fn index<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, StageError>,
    ) -> Result<T, StageError> {
        crate::stage::with_index(&self.index, f)
    }
}

/// Uploads one mailbox to the end (reconnecting after transient failures) and records the
/// run's state.
pub(crate) async fn upload_mailbox<D, F, Fut>(
    ctx: &Ctx,
    mb: &MailboxUpload,
    open: F,
) -> UploadOutcome
where
    D: Destination,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<D, UploadError>>,
{
    ctx.progress.mailbox_started(&mb.email);
    let mut counts = UploadCounts::default();
    let mut found = Findings::default();
    let mut result = Ok(());
    if !ctx.dry_run {
        result = ctx
            .index(|i| {
                i.set_upload_run(mb.mailbox_id, &ctx.target, "Uploading", None)?;
                i.retry_failed_uploads(&ctx.target, mb.mailbox_id)
            })
            .map(drop)
            .map_err(UploadError::from);
    }
    let mut failures = 0;
    while result.is_ok() {
        let before = progress_mark(&counts);
        let attempt = async {
            let mut dest = open().await?;
            let done = upload_once(ctx, mb, &mut dest, &mut counts, &mut found).await;
            dest.close().await;
            done
        };
        match attempt.await {
            Ok(()) => break,
            Err(e) if e.is_transient() => {
                failures = if progress_mark(&counts) != before {
                    1
                } else {
                    failures + 1
                };
                if failures >= ctx.retry.attempts_without_progress {
                    result = Err(e);
                    break;
                }
                let suggested = e.throttle_backoff();
                let wait = ctx.retry.wait(suggested, failures);
                if suggested.is_some() {
                    ctx.pace.throttled();
                    counts.throttled += 1;
                    counts.throttle_wait_ms += wait.as_millis() as u64;
                }
                tracing::warn!(mailbox = %mb.email, failures, ?wait, "{e}; reconnecting");
                counts.reconnects += 1;
                tokio::time::sleep(wait).await;
            }
            Err(e) => result = Err(e),
        }
    }
    let error = result.err().map(|e| format!("{}: {e}", mb.email));
    if !ctx.dry_run {
        let state = match (&error, counts.refused) {
            (Some(_), _) => "Failed",
            (None, 0) => "Uploaded",
            (None, _) => "UploadedWithErrors",
        };
        let detail = error
            .clone()
            .unwrap_or_else(|| serde_json::to_string(&counts).unwrap_or_default());
        let _ = ctx.index(|i| {
            i.set_upload_run(mb.mailbox_id, &ctx.target, state, error.as_deref())?;
            i.record_event(
                Some(&ctx.batch),
                Some(&mb.email),
                &format!("upload.{state}"),
                &detail,
            )
        });
    }
    let outcome = UploadOutcome {
        email: mb.email.clone(),
        counts,
        folders: found.folders,
        error,
        size_limit: found.prediction.size_limit,
        predicted_skips: found.prediction.skips,
        last_refusal: found.prediction.last_refusal,
    };
    ctx.progress.mailbox_finished(&outcome);
    outcome
}

/// What counts as progress: messages settled one way or another.
fn progress_mark(c: &UploadCounts) -> u64 {
    c.uploaded + c.found_present + c.refused + c.folders_created
}

/// What a mailbox's run learns besides its counts.
#[derive(Default)]
struct Findings {
    /// Where each source folder goes.
    folders: Vec<MappedFolder>,
    /// For a dry run: the predicted skips.
    prediction: Prediction,
}

/// One connection's worth of work: plan, create folders, resolve, send. A dry run stops
/// after the plan and its prediction.
async fn upload_once<D: Destination>(
    ctx: &Ctx,
    mb: &MailboxUpload,
    dest: &mut D,
    counts: &mut UploadCounts,
    found: &mut Findings,
) -> Result<(), UploadError> {
    let target = dest.folders().await?;
    let sources = ctx.index(|i| i.upload_folders(mb.mailbox_id))?;
    let mapped = map_folders(&sources, &target, ctx.m365, &ctx.rules);
    found.folders.clone_from(&mapped);
    let queue = ctx.index(|i| i.upload_queue(&ctx.target, mb.mailbox_id))?;
    let dest_of: HashMap<i64, &Vec<String>> = mapped
        .iter()
        .filter_map(|m| Some((m.source_id, m.target.as_ref()?)))
        .collect();
    let (sendable, left_out): (Vec<&UploadItem>, Vec<&UploadItem>) = queue
        .iter()
        .partition(|i| dest_of.contains_key(&i.folder_id));
    counts.left_out = left_out.len() as u64;
    if ctx.dry_run {
        counts.planned = sendable.len() as u64;
        counts.planned_bytes = sendable.iter().map(|i| i.size).sum();
        let limit = SizeLimit::of_target(dest.append_limit(), ctx.m365);
        found.prediction = predict(ctx, mb, limit, &mapped, &sendable).await?;
        found.prediction.count(counts);
        return Ok(());
    }
    for path in folders_to_create(&mapped, &target) {
        dest.create_folder(&path).await?;
        counts.folders_created += 1;
    }
    let mut to_send = Vec::with_capacity(sendable.len());
    for item in sendable {
        if item.state == UploadState::InFlight {
            if resolve_in_flight(ctx, mb, dest, item, counts).await? {
                continue;
            }
            counts.resent += 1;
        }
        to_send.push(item);
    }
    let (messages, bytes) = (to_send.len() as u64, to_send.iter().map(|i| i.size).sum());
    ctx.progress.mailbox_planned(&mb.email, messages, bytes);
    for folder_items in to_send.chunk_by(|a, b| a.folder_id == b.folder_id) {
        let path = dest_of[&folder_items[0].folder_id];
        for group in groups(folder_items) {
            send_group(ctx, mb, dest, path, group, counts).await?;
        }
    }
    Ok(())
}

/// Looks for a message a previous run left in flight where it was sent: present (more
/// copies with its key than confirmed uploads) → done; absent → back to pending.
async fn resolve_in_flight<D: Destination>(
    ctx: &Ctx,
    mb: &MailboxUpload,
    dest: &mut D,
    item: &UploadItem,
    counts: &mut UploadCounts,
) -> Result<bool, UploadError> {
    let Some(sent_to) = item.sent_to.as_deref() else {
        return Ok(false);
    };
    let path: Vec<String> = serde_json::from_str(sent_to).unwrap_or_default();
    let present = if path.is_empty() {
        0
    } else {
        match dest.count_matching(&path, item).await {
            Ok(n) => n,
            // The folder it was sent to is gone or unreadable: the message is not there.
            Err(UploadError::Imap { source, .. }) if !source.is_transient() => 0,
            Err(e) => return Err(e),
        }
    };
    let confirmed = ctx.index(|i| i.done_with_key(&ctx.target, &mb.email, sent_to, item))?;
    let found = present > confirmed;
    let result = if found {
        counts.found_present += 1;
        UploadResult::Done(None)
    } else {
        UploadResult::Pending
    };
    ctx.index(|i| i.finish_uploads(&ctx.target, &[(item.message_row, result)]))?;
    Ok(found)
}

/// Splits a folder's queue into groups of at most [`GROUP_MESSAGES`] and about
/// [`GROUP_BYTES`].
fn groups<'a>(items: &'a [&'a UploadItem]) -> impl Iterator<Item = &'a [&'a UploadItem]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
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
        rest = tail;
        Some(group)
    })
}

/// Sends one group: `in_flight` first (one transaction), then APPENDs, then the results
/// (one transaction). On a connection failure the message being sent stays `in_flight`
/// (the next attempt looks for it) and the ones after it go back to pending.
async fn send_group<D: Destination>(
    ctx: &Ctx,
    mb: &MailboxUpload,
    dest: &mut D,
    path: &[String],
    group: &[&UploadItem],
    counts: &mut UploadCounts,
) -> Result<(), UploadError> {
    let key = serde_json::to_string(path).unwrap_or_default();
    let rows: Vec<i64> = group.iter().map(|i| i.message_row).collect();
    ctx.index(|i| i.begin_uploads(&ctx.target, &mb.email, &key, &rows))?;
    let mut results = Vec::with_capacity(group.len());
    let (mut sent, mut sent_bytes) = (0, 0);
    let mut failure = None;
    for (n, item) in group.iter().enumerate() {
        let blob = match ctx.blobs.open_blob(&item.blob) {
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
            flags: item
                .flags
                .split_whitespace()
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .map(str::to_owned)
                .collect(),
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
            Ok(Delivery::Refused(words)) => {
                tracing::warn!(mailbox = %mb.email, folder = %path.join("/"), uid = item.uid,
                    "the target refused a message: {words}");
                results.push((item.message_row, UploadResult::Failed(words)));
                counts.refused += 1;
            }
            Err(e) => {
                results.extend(
                    group[n + 1..]
                        .iter()
                        .map(|i| (i.message_row, UploadResult::Pending)),
                );
                failure = Some(e);
                break;
            }
        }
    }
    ctx.index(|i| i.finish_uploads(&ctx.target, &results))?;
    counts.uploaded += sent;
    counts.uploaded_bytes += sent_bytes;
    ctx.progress.uploaded(&mb.email, sent, sent_bytes);
    failure.map_or(Ok(()), Err)
}
