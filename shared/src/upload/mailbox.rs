//! One mailbox's upload: folders, the resolution of what a crash left in flight, and the
//! queue sent in groups; transient failures reconnect with backoff and resume.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;

use super::context::Ctx;
use super::destination::Destination;
use super::key::{self, ResumeKey};
use super::mapping::MappedFolder;
use super::pace::Budget;
use super::plan::{PLAN_CHUNK, TargetView, destinations, map_mailbox, plan};
use super::predict::{Prediction, SizeLimit};
use super::send::{GROUP_MESSAGES, Lane, Work, send_all};
use super::setbacks::Setbacks;
use super::{MailboxUpload, RefusedFolder, UploadCounts, UploadError, UploadOutcome};
use super::{create, flags};
use crate::retry::{Attempts, Next};
use crate::stage::StageError;
use crate::stage::index::{UploadItem, UploadResult};

/// Uploads one mailbox to the end (reconnecting after transient failures) and records the
/// run's state.
pub(super) async fn upload_mailbox<D, F, Fut>(
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
    let mut result = same_target_mailbox(ctx, mb);
    if result.is_ok() && !ctx.dry_run {
        result = ctx
            .stage
            .index(|i| {
                i.set_upload_run(mb.mailbox_id, &ctx.target, "Uploading", None)?;
                i.retry_failed_uploads(&ctx.target, mb.mailbox_id)?;
                i.adopt_retired_uploads(&ctx.target, mb.mailbox_id)
            })
            .map(|adopted| counts.adopted = adopted)
            .map_err(UploadError::from);
    }
    let mut attempts = Attempts::new(&ctx.retry);
    let budget = Budget::new();
    let setbacks = Setbacks::default();
    while result.is_ok() {
        setbacks.next_attempt();
        let before = progress_mark(&counts);
        let attempt = async {
            let mut dest = open().await?;
            match upload_once(ctx, mb, &mut dest, &mut counts, &mut found).await {
                Ok(work) => {
                    let refused = &mut found.refused_folders;
                    send_all(
                        ctx,
                        (mb, &budget, &setbacks),
                        dest,
                        &open,
                        work,
                        &mut counts,
                        refused,
                    )
                    .await
                }
                Err(e) => {
                    dest.close().await;
                    Err(e)
                }
            }
        };
        match attempt.await {
            Ok(()) => break,
            Err(e) if e.is_transient() => {
                let suggested = e.throttle_backoff();
                match attempts.failed(progress_mark(&counts) != before, suggested) {
                    Next::GiveUp { fruitless } => {
                        result = Err(UploadError::GaveUp {
                            attempts: fruitless,
                            last: Box::new(e),
                        });
                        break;
                    }
                    Next::Retry { wait, fruitless } => {
                        if suggested.is_some() {
                            budget.throttled(suggested);
                            counts.throttled += 1;
                            counts.throttle_wait_ms += wait.as_millis() as u64;
                        }
                        tracing::warn!(mailbox = %mb.label(), fruitless, ?wait, "{e}; reconnecting");
                        counts.reconnects += 1;
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            Err(e) => result = Err(e),
        }
    }
    if let Some(rate) = budget.rate() {
        tracing::info!(mailbox = %mb.label(), throttles = counts.throttled,
            "the target's throttles taught a pace of {rate:.1} APPENDs per second");
    }
    if let Err(UploadError::TargetFull {
        messages, bytes, ..
    }) = &mut result
    {
        (*messages, *bytes) = (counts.uploaded, counts.uploaded_bytes);
    }
    if result.is_ok() && !ctx.dry_run {
        match flags::still_pending(ctx, mb) {
            Ok(n) => counts.flags_pending = n,
            Err(e) => result = Err(e),
        }
    }
    let error = result.err().map(|e| format!("{}: {e}", mb.label()));
    finish_upload(ctx, mb, counts, found, error)
}

/// Records the end of a mailbox's run (Uploaded, UploadedWithErrors, or Failed with
/// `error`) and reports it.
fn finish_upload(
    ctx: &Ctx,
    mb: &MailboxUpload,
    counts: UploadCounts,
    found: Findings,
    error: Option<String>,
) -> UploadOutcome {
    if !ctx.dry_run {
        let state = match (
            &error,
            counts.refused + counts.set_aside + counts.flags_pending,
        ) {
            (Some(_), _) => "Failed",
            (None, 0) => "Uploaded",
            (None, _) => "UploadedWithErrors",
        };
        let detail = error
            .clone()
            .unwrap_or_else(|| serde_json::to_string(&counts).unwrap_or_default());
        let run = (mb.mailbox_id, ctx.target.as_str());
        let event = (ctx.batch.as_str(), mb.email.as_str(), detail.as_str());
        if let Err(e) = ctx
            .stage
            .index(|i| i.finish_upload_run(run, state, error.as_deref(), event))
        {
            tracing::error!(mailbox = %mb.label(), "recording the end of the run: {e}");
        }
    }
    let outcome = UploadOutcome {
        email: mb.email.clone(),
        target_mailbox: mb.target_mailbox.clone(),
        counts,
        folders: found.folders,
        refused_folders: found.refused_folders,
        error,
        size_limit: found.prediction.size_limit,
        predicted_skips: found.prediction.skips,
        last_refusal: found.prediction.last_refusal,
        dry_run: ctx.dry_run,
    };
    ctx.progress.mailbox_finished(&outcome);
    outcome
}

/// Records a mailbox whose task stopped without an outcome (it panicked) as Failed, with why.
pub(crate) fn lost_upload(ctx: &Ctx, mb: &MailboxUpload, why: &str) -> UploadOutcome {
    let error = format!("{}: the run stopped: {why}", mb.label());
    let found = Findings::default();
    finish_upload(ctx, mb, UploadCounts::default(), found, Some(error))
}

/// Refuses a mailbox whose upload records name another target mailbox than the batch does
/// now: sending on would split it over two mailboxes and the records of the first would no
/// longer say what it holds.
fn same_target_mailbox(ctx: &Ctx, mb: &MailboxUpload) -> Result<(), UploadError> {
    let recorded = ctx
        .stage
        .index(|i| i.upload_mailboxes(&ctx.target, mb.mailbox_id))?;
    match recorded.into_iter().find(|r| *r != mb.record_key()) {
        Some(recorded) => Err(UploadError::TargetMoved {
            recorded,
            now: mb.target_mailbox.clone(),
        }),
        None => Ok(()),
    }
}

/// What counts as progress: messages settled one way or another, a message left in flight
/// found absent (it goes back to the queue once), a flag set later (a message set aside is
/// not: a link that breaks on every message must still fail the mailbox).
fn progress_mark(c: &UploadCounts) -> u64 {
    c.uploaded + c.found_present + c.resent + c.refused + c.folders_created + c.flags_set_later
}

/// What a mailbox's run learns besides its counts.
#[derive(Default)]
struct Findings {
    /// Where each source folder goes.
    folders: Vec<MappedFolder>,
    /// For a dry run: the predicted skips.
    prediction: Prediction,
    /// Target folders the target refused.
    refused_folders: Vec<RefusedFolder>,
    /// Messages whose pending `\Flagged` the target refused in this run (not asked again
    /// until the next run).
    flags_refused: HashSet<i64>,
    /// The first attempt has planned (the folders a previous run left messages in flight to
    /// were given time to stop growing, see [`settle`]; later attempts wait their reconnect
    /// backoff instead).
    planned_once: bool,
}

/// How long the folders a previous run left messages in flight to must show no new message
/// before this run looks for those messages.
const IN_FLIGHT_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The longest a run waits for those folders to stop growing.
const IN_FLIGHT_SETTLE_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until the folders a previous run left APPENDs in flight to (`sent_to`, as the
/// index records them) stop growing: the target may still be storing what it had received
/// (pipelined, or still in the dead client's socket buffer), and looking for those messages
/// before it is done would find them absent and send them twice. A folder counts as settled
/// when its UIDNEXT and MESSAGES are the same [`IN_FLIGHT_GRACE`] apart; after
/// [`IN_FLIGHT_SETTLE_MAX`] the run goes on, with a warning.
async fn settle<D: Destination>(
    mb: &MailboxUpload,
    dest: &mut D,
    sent_to: &BTreeSet<&str>,
) -> Result<(), UploadError> {
    let folders: Vec<Vec<String>> = sent_to
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    let started = std::time::Instant::now();
    let mut before = dest.folder_marks(&folders).await?;
    loop {
        tokio::time::sleep(IN_FLIGHT_GRACE).await;
        let now = dest.folder_marks(&folders).await?;
        if now == before {
            return Ok(());
        }
        if started.elapsed() >= IN_FLIGHT_SETTLE_MAX {
            tracing::warn!(
                mailbox = %mb.email,
                "the target's folders were still growing {} s after a previous run's \
                 messages in flight; looking for them now",
                IN_FLIGHT_SETTLE_MAX.as_secs()
            );
            return Ok(());
        }
        before = now;
    }
}

/// Plans on one connection: maps the folders, creates what is missing, resolves what a
/// crash left in flight, and returns the work to send (a lane per source folder, read from
/// the index a group at a time). A dry run stops after the plan and its prediction (and
/// returns no work).
async fn upload_once<D: Destination>(
    ctx: &Ctx,
    mb: &MailboxUpload,
    dest: &mut D,
    counts: &mut UploadCounts,
    found: &mut Findings,
) -> Result<Work, UploadError> {
    let target = dest.folders().await?;
    if ctx.dry_run {
        let view = TargetView {
            folders: target,
            m365: ctx.m365,
            size_limit: SizeLimit::of_target(dest.append_limit(), ctx.m365),
        };
        let (stage, name, rules, mb) = (
            ctx.stage.clone(),
            ctx.target.clone(),
            ctx.rules.clone(),
            mb.clone(),
        );
        let planned = tokio::task::spawn_blocking(move || {
            plan(&stage, &stage.blobs, &name, &mb, &view, &rules, PLAN_CHUNK)
        })
        .await;
        let planned = match planned {
            Ok(p) => p?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(StageError::Refused(format!("planning stopped: {e}")).into()),
        };
        planned.count(counts);
        found.folders = planned.folders;
        found.prediction = planned.prediction;
        return Ok(Work {
            lanes: Vec::new(),
            groups_at_least: 0,
        });
    }
    let sources = ctx.stage.index(|i| i.upload_folders(mb.mailbox_id))?;
    let mapped = map_mailbox(&sources, &target, ctx.m365, &ctx.rules);
    found.folders.clone_from(&mapped);
    let dest_of = destinations(&mapped);
    let queued = |ctx: &Ctx| {
        ctx.stage
            .index(|i| i.upload_queue_folders(&ctx.target, mb.mailbox_id, false))
    };
    counts.left_out = queued(ctx)?
        .iter()
        .filter(|q| !dest_of.contains_key(&q.folder_id))
        .map(|q| q.messages)
        .sum();
    let left_out: Vec<i64> = mapped
        .iter()
        .filter(|m| m.target.is_none())
        .map(|m| m.source_id)
        .collect();
    ctx.stage
        .index(|i| i.set_left_out(&ctx.target, mb.mailbox_id, &left_out))?;
    let refused = &mut found.refused_folders;
    create::create_folders(dest, mb, &mapped, &target, counts, refused).await?;
    create::refuse_queued(ctx, mb, &dest_of, counts, refused)?;
    let in_flight: Vec<UploadItem> = ctx
        .stage
        .index(|i| i.upload_in_flight(&ctx.target, mb.mailbox_id))?
        .into_iter()
        .filter(|i| dest_of.contains_key(&i.folder_id))
        .collect();
    if !found.planned_once {
        let in_flight_to: BTreeSet<&str> = in_flight
            .iter()
            .filter_map(|i| i.sent_to.as_deref())
            .collect();
        if !in_flight_to.is_empty() {
            settle(mb, dest, &in_flight_to).await?;
        }
    }
    found.planned_once = true;
    for item in &in_flight {
        // Present or set aside: done or failed; absent: back in the queue, sent again.
        if resolve_in_flight(ctx, mb, dest, item, counts).await? == Resolved::Absent {
            counts.resent += 1;
        }
    }
    flags::set_pending_flags(ctx, mb, dest, counts, &mut found.flags_refused).await?;
    let to_send: Vec<_> = queued(ctx)?
        .into_iter()
        .filter_map(|q| Some((q, dest_of.get(&q.folder_id)?)))
        .collect();
    let messages = to_send.iter().map(|(q, _)| q.messages).sum();
    let bytes = to_send.iter().map(|(q, _)| q.bytes).sum();
    ctx.progress.mailbox_planned(&mb.email, messages, bytes);
    Ok(Work {
        groups_at_least: to_send
            .iter()
            .map(|(q, _)| (q.messages as usize).div_ceil(GROUP_MESSAGES))
            .sum(),
        lanes: to_send
            .into_iter()
            .map(|(q, path)| Lane::new(q.folder_id, path.to_vec()))
            .collect(),
    })
}

/// Looks for a message a previous attempt or run left in flight where it was sent: present
/// (more copies with its [`ResumeKey`] than uploads the index has confirmed there with the
/// same key, so real duplicates stay duplicates) → done; absent → back to pending, or set
/// aside as failed when the link has broken [`MAX_LOST_SENDS`] times while it was being
/// sent (a crash or kill does not count: only a broken link while sending it). A message
/// without a key (no usable Message-ID and no INTERNALDATE, or a header over 1 MiB) cannot
/// be looked for: it counts as absent and is sent again.
async fn resolve_in_flight<D: Destination>(
    ctx: &Ctx,
    mb: &MailboxUpload,
    dest: &mut D,
    item: &UploadItem,
    counts: &mut UploadCounts,
) -> Result<Resolved, UploadError> {
    let Some(sent_to) = item.sent_to.as_deref() else {
        return Ok(Resolved::Absent);
    };
    let path: Vec<String> = serde_json::from_str(sent_to).unwrap_or_default();
    let found = match ResumeKey::of(item, &ctx.stage.blobs)? {
        Some(key) if !path.is_empty() => {
            // Any failure to look stops the mailbox: guessing "absent" would duplicate.
            let copies = dest.matching(&path, &key).await?;
            let confirmed = confirmed_with_key(ctx, mb, sent_to, &key)?;
            (copies.uids.len() as u64 > confirmed).then_some(copies)
        }
        _ => None,
    };
    let lost = item.lost_sends;
    let (result, resolved) = if let Some(copies) = found {
        counts.found_present += 1;
        // On Microsoft 365 its \Flagged comes by a STORE after the APPEND, which the
        // interruption may have cut off: set it by the copy no confirmed upload names.
        let flag = ctx.m365 && is_flagged_item(item);
        let id = if flag {
            unclaimed_copy(ctx, mb, sent_to, &copies)?
        } else {
            None
        };
        let result = id.map_or(UploadResult::Done(None), UploadResult::DoneFlagPending);
        (result, Resolved::Present)
    } else if lost >= MAX_LOST_SENDS {
        counts.set_aside += 1;
        let words = format!(
            "the link to the target broke {lost} times while this message was being sent; \
             set aside until the next run (a message the link cannot carry, or one the server \
             drops the connection over)"
        );
        tracing::warn!(mailbox = %mb.label(), uid = item.uid, "{words}");
        (UploadResult::Failed(words), Resolved::SetAside)
    } else {
        (UploadResult::Pending, Resolved::Absent)
    };
    ctx.stage
        .index(|i| i.finish_uploads(&ctx.target, &[(item.message_row, result)]))?;
    Ok(resolved)
}

/// True when a staged message carries `\Flagged`.
fn is_flagged_item(item: &UploadItem) -> bool {
    let flags: Vec<String> = item.flags.split_whitespace().map(str::to_owned).collect();
    super::is_flagged(&flags)
}

/// The id (`uidvalidity:uid`) of the newest of `copies` that no confirmed upload to that
/// folder is recorded with: the copy a resolved in-flight message is taken to be.
fn unclaimed_copy(
    ctx: &Ctx,
    mb: &MailboxUpload,
    sent_to: &str,
    copies: &super::destination::Matching,
) -> Result<Option<String>, StageError> {
    let claimed = ctx
        .stage
        .index(|i| i.done_target_ids(&ctx.target, &mb.record_key(), sent_to))?;
    Ok(copies
        .uids
        .iter()
        .rev()
        .map(|uid| format!("{}:{uid}", copies.uid_validity))
        .find(|id| !claimed.contains(id)))
}

/// Lost sends (the link broke while the message was being sent, and it was not on the
/// target after) before a message is set aside as failed; the next run tries it again.
const MAX_LOST_SENDS: u32 = 3;

/// What became of a message a previous attempt left in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved {
    /// On the target: done.
    Present,
    /// Not there: to be sent again.
    Absent,
    /// Lost too often: failed until the next run.
    SetAside,
}

/// How many of the mailbox's uploads the index has confirmed in the target folder `sent_to`
/// with this key: by Message-ID, or those with the same INTERNALDATE whose staged header
/// matches.
fn confirmed_with_key(
    ctx: &Ctx,
    mb: &MailboxUpload,
    sent_to: &str,
    key: &ResumeKey,
) -> Result<u64, StageError> {
    match key {
        ResumeKey::MessageId(id) => ctx
            .stage
            .index(|i| i.done_with_message_id(&ctx.target, &mb.record_key(), sent_to, id)),
        ResumeKey::Headers {
            internaldate,
            fingerprint,
        } => {
            let candidates = ctx.stage.index(|i| {
                i.done_blobs_at(&ctx.target, &mb.record_key(), sent_to, *internaldate)
            })?;
            key::count_same_headers(&ctx.stage.blobs, &candidates, fingerprint, *internaldate)
        }
    }
}
