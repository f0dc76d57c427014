//! One mailbox's pass: log in, list, phase 1 (metadata), phase 2 (caps), phase 3 (bodies);
//! transient failures reconnect with backoff and resume from what is committed.

use std::collections::HashSet;

use tokio::io::{AsyncRead, AsyncWrite};

use super::bodies::{Decided, FolderTarget, Meta, fetch_folder};
use super::context::Ctx;
use super::folders::{FolderPlan, LeftOut, select_folders};
use super::plan::{Candidate, Verdict, apply_caps};
use super::{ExtractError, MailboxCounts, MailboxJob, MailboxOutcome};
use crate::imap::transport::connect;
use crate::imap::{During as _, FetchData, SequenceSet, Session, SessionConfig};
use crate::retry::{Attempts, Next};
use crate::stage::index::{FolderInfo, MailboxState, MessageState};

const META_ITEMS: &str = "(UID RFC822.SIZE INTERNALDATE FLAGS)";

/// Runs one mailbox's pass to the end (retrying transient failures) and records its state.
pub(super) async fn sync_mailbox(ctx: &Ctx, mb: &MailboxJob) -> MailboxOutcome {
    ctx.progress.mailbox_started(&mb.email);
    let _ = ctx
        .stage
        .index(|i| i.set_mailbox_state(&ctx.batch, &mb.email, MailboxState::Syncing, None));
    let mut counts = MailboxCounts::default();
    // Folders finished during this pass, and failed attempts in a row without progress.
    let mut finished = HashSet::new();
    let mut attempts = Attempts::new(&ctx.retry);
    let result = loop {
        let before = progress_mark(&counts, &finished);
        match sync_once(ctx, mb, &mut counts, &mut finished).await {
            Ok(()) => break Ok(()),
            Err(e) if e.is_transient() => {
                let progressed = progress_mark(&counts, &finished) != before;
                match attempts.failed(progressed, e.throttle_backoff()) {
                    Next::GiveUp { fruitless } => {
                        break Err(ExtractError::GaveUp {
                            mailbox: mb.email.clone(),
                            attempts: fruitless,
                            last: Box::new(e),
                        });
                    }
                    Next::Retry { wait, fruitless } => {
                        tracing::warn!(mailbox = %mb.email, fruitless, ?wait, "{e}; reconnecting");
                        counts.reconnects += 1;
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            Err(e) => break Err(e),
        }
    };
    let error = result.err().map(|e| e.to_string());
    // A mailbox whose pass ended is Synced even when single messages failed: those are
    // counted in its status and retried by the next pass.
    let (state, kind) = match &error {
        Some(_) => (MailboxState::Failed, "mailbox.failed"),
        None => (MailboxState::Synced, "mailbox.synced"),
    };
    let detail = match &error {
        Some(e) => e.clone(),
        None => serde_json::to_string(&counts).unwrap_or_default(),
    };
    let recorded = ctx.stage.index(|i| {
        let error = error.as_deref();
        i.set_mailbox_state_with_event(&ctx.batch, &mb.email, state, error, kind, &detail)
    });
    if let Err(e) = recorded {
        tracing::error!(mailbox = %mb.email, "recording the end of the pass: {e}");
    }
    let outcome = MailboxOutcome {
        email: mb.email.clone(),
        counts,
        error,
    };
    ctx.progress.mailbox_finished(&outcome);
    outcome
}

/// What counts as progress: message rows committed, folders finished.
fn progress_mark(c: &MailboxCounts, finished: &HashSet<i64>) -> (u64, usize) {
    let rows = c.staged + c.skipped_size + c.skipped_item_cap + c.failed;
    (rows, finished.len())
}

/// A folder after phase 1.
struct Examined {
    plan: FolderPlan,
    folder_id: i64,
    uidvalidity: u32,
    modseq: Option<u64>,
    new: Vec<Meta>,
}

async fn sync_once(
    ctx: &Ctx,
    mb: &MailboxJob,
    counts: &mut MailboxCounts,
    finished: &mut HashSet<i64>,
) -> Result<(), ExtractError> {
    let mut config = SessionConfig {
        read_timeout: Some(ctx.retry.read_timeout),
        ..SessionConfig::default()
    };
    config.limits.max_streamed_literal = config
        .limits
        .max_streamed_literal
        .max(ctx.limits.max_message_size + (1 << 20));
    let at = format!("{}:{}", ctx.connect.host, ctx.connect.port);
    let mut s = connect(&ctx.connect, config)
        .await
        .during(|| format!("connecting to {at}"))?;
    crate::login::log_in(&mut s, &mb.user_name, &mb.password, ctx.auth)
        .await
        .during(|| format!("logging in as {}", mb.user_name))?;
    let exchange = s.greeting().text.contains("Microsoft Exchange");
    let condstore = s.has_capability("CONDSTORE");
    let listed = s
        .list(b"", b"*")
        .await
        .during(|| "listing folders".into())?;
    let (plans, left_out) = select_folders(&listed, mb.user_root.as_deref(), &ctx.limits, exchange);
    for l in &left_out {
        tracing::debug!(mailbox = %mb.email, folder = %l.name, "left out: {}", l.reason);
    }
    let wires: Vec<Vec<u8>> = plans.iter().map(|p| p.wire.clone()).collect();
    counts.folders_gone += ctx
        .stage
        .index(|i| i.mark_gone_folders(mb.mailbox_id, &wires))?
        .len() as u64;
    counts.folders = plans.len() as u64;
    record_excluded(ctx, &mut s, mb.mailbox_id, &left_out).await?;

    let mut examined = Vec::with_capacity(plans.len());
    for plan in plans {
        examined.push(examine_folder(ctx, &mut s, mb, plan, condstore, counts).await?);
    }

    let candidates: Vec<Candidate> = examined
        .iter()
        .enumerate()
        .flat_map(|(folder, e)| {
            e.new.iter().map(move |m| Candidate {
                folder,
                uid: m.uid,
                size: m.size,
                date: m.unix,
            })
        })
        .collect();
    let staged_before = ctx.stage.index(|i| i.staged_count(mb.mailbox_id))?;
    let verdicts = apply_caps(
        &candidates,
        ctx.limits.max_message_size,
        ctx.limits.max_items,
        staged_before,
    );
    let (to_fetch, bytes) = candidates
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| **v == Verdict::Fetch)
        .fold((0, 0), |(n, b), (c, _)| (n + 1, b + c.size));
    ctx.progress.mailbox_planned(&mb.email, to_fetch, bytes);

    let mut verdict_of = verdicts.into_iter();
    for e in examined {
        let decided: Vec<Decided> = e
            .new
            .into_iter()
            .map(|meta| {
                let skip = match verdict_of.next() {
                    Some(Verdict::SkipSize) => Some((
                        MessageState::SkippedSize,
                        format!(
                            "{} bytes, over the {}-byte size cap",
                            meta.size, ctx.limits.max_message_size
                        ),
                    )),
                    Some(Verdict::SkipItemCap) => Some((
                        MessageState::SkippedItemCap,
                        format!(
                            "beyond the newest {} items of the mailbox",
                            ctx.limits.max_items
                        ),
                    )),
                    _ => None,
                };
                Decided { meta, skip }
            })
            .collect();
        if decided.iter().any(|d| d.skip.is_none()) {
            s.examine(&e.plan.wire, false)
                .await
                .during(|| format!("EXAMINE {:?}", e.plan.name))?;
        }
        let target = FolderTarget {
            folder_id: e.folder_id,
            uidvalidity: e.uidvalidity,
            name: &e.plan.name,
        };
        fetch_folder(ctx, &mut s, &target, &mb.email, decided, counts).await?;
        ctx.stage
            .index(|i| i.set_folder_modseq(e.folder_id, e.modseq))?;
        finished.insert(e.folder_id);
    }
    let _ = s.logout().await;
    Ok(())
}

/// Records the folders the batch's patterns leave out, with the source's STATUS MESSAGES
/// when it answers (the report counts them as excluded by the admin).
async fn record_excluded<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    mailbox_id: i64,
    left_out: &[LeftOut],
) -> Result<(), ExtractError> {
    for l in left_out.iter().filter(|l| l.by_batch) {
        let messages = match s.status(&l.wire, &["MESSAGES"]).await {
            Ok(st) => st.messages,
            Err(e) if e.is_transient() => {
                Err::<(), _>(e).during(|| format!("STATUS {:?}", l.name))?;
                None
            }
            Err(_) => None,
        };
        let folder = FolderInfo {
            wire_name: l.wire.clone(),
            name: l.name.clone(),
            delimiter: None,
            special_use: None,
        };
        ctx.stage
            .index(|i| i.record_excluded_folder(mailbox_id, &folder, &l.reason, messages))?;
    }
    Ok(())
}

/// Phase 1 for one folder: EXAMINE, notice a UIDVALIDITY change, flag changes, new UIDs.
async fn examine_folder<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    mb: &MailboxJob,
    plan: FolderPlan,
    condstore: bool,
    counts: &mut MailboxCounts,
) -> Result<Examined, ExtractError> {
    let info = s
        .examine(&plan.wire, condstore)
        .await
        .during(|| format!("EXAMINE {:?}", plan.name))?;
    let uidvalidity = info.uid_validity;
    let before = ctx
        .stage
        .index(|i| i.folder_sync(mb.mailbox_id, &plan.wire))?;
    let folder = FolderInfo {
        wire_name: plan.wire.clone(),
        name: plan.name.clone(),
        delimiter: plan.delimiter,
        special_use: plan.special_use.clone(),
    };
    let folder_id = ctx
        .stage
        .index(|i| i.upsert_folder(mb.mailbox_id, &folder, uidvalidity))?;
    ctx.stage
        .index(|i| i.set_folder_source_count(folder_id, info.exists))?;
    let restarted = before
        .as_ref()
        .is_some_and(|b| b.uidvalidity.is_some_and(|old| old != uidvalidity));
    if restarted {
        ctx.stage
            .index(|i| i.restart_folder(folder_id, uidvalidity))?;
        counts.folders_restarted += 1;
    }
    let highest = if restarted {
        0
    } else {
        before.as_ref().map_or(0, |b| b.highest_uid)
    };

    let mut new = Vec::new();
    if info.exists > 0 && info.uid_next.is_none_or(|next| next > highest + 1) {
        let set = SequenceSet::from_start(highest + 1);
        let metas = s
            .uid_fetch_meta(&set, META_ITEMS)
            .await
            .during(|| format!("listing new messages of {:?}", plan.name))?;
        new.extend(
            metas
                .iter()
                .filter(|m| m.uid.is_some_and(|u| u > highest))
                .filter_map(meta_of),
        );
    }
    let failed = ctx.stage.index(|i| i.failed_uids(folder_id, uidvalidity))?;
    if !failed.is_empty() {
        let set = SequenceSet::from_uids(failed.iter().copied());
        let metas = s
            .uid_fetch_meta(&set, META_ITEMS)
            .await
            .during(|| format!("re-reading failed messages of {:?}", plan.name))?;
        new.extend(
            metas
                .iter()
                .filter(|m| m.uid.is_some_and(|u| u <= highest))
                .filter_map(meta_of),
        );
    }
    let stored_modseq = before.as_ref().and_then(|b| b.highest_modseq);
    if condstore
        && !restarted
        && highest > 0
        && let (Some(old), Some(now)) = (stored_modseq, info.highest_modseq)
        && now > old
    {
        let set = SequenceSet::from_ranges([1..=highest]);
        let items = format!("(UID FLAGS) (CHANGEDSINCE {old})");
        let changed = s
            .uid_fetch_meta(&set, &items)
            .await
            .during(|| format!("reading flag changes of {:?}", plan.name))?;
        let changes: Vec<(u32, String)> = changed
            .iter()
            .filter_map(|m| Some((m.uid?, m.flags.as_ref()?.join(" "))))
            .collect();
        counts.flags_updated += ctx
            .stage
            .index(|i| i.update_flags(folder_id, uidvalidity, &changes))?;
    }
    Ok(Examined {
        plan,
        folder_id,
        uidvalidity,
        modseq: info.highest_modseq,
        new,
    })
}

fn meta_of(f: &FetchData) -> Option<Meta> {
    Some(Meta {
        uid: f.uid?,
        size: u64::from(f.rfc822_size.unwrap_or(0)),
        internaldate: f.internal_date.as_ref().map(|d| d.raw.clone()),
        unix: f.internal_date.as_ref().and_then(|d| d.unix),
        flags: f.flags.as_ref().map(|fl| fl.join(" ")).unwrap_or_default(),
    })
}
