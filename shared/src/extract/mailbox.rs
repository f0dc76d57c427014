//! One mailbox's pass: log in, list, phase 1 (metadata), phase 2 (caps), phase 3 (bodies);
//! transient failures reconnect with backoff and resume from what is committed.

use std::collections::{HashMap, HashSet};

use tokio::io::{AsyncRead, AsyncWrite};

use super::attempt_progress::{failed_more, progress_mark};
use super::bodies_pass::{FolderBodies, fetch_folders};
use super::context::Ctx;
use super::deletions::{Seen, notice_deletions};
use super::flags::{FlagsOf, read_flags};
use super::folders::{FolderPlan, LeftOut};
use super::listing::{Listing, list_folders};
use super::plan::{Lister, meta_of};
use super::prefetch::open_new_folders;
use super::refused::is_refusal;
use super::unchanged::unchanged_folders;
use super::{ExtractError, MailboxCounts, MailboxJob, MailboxOutcome};
use crate::imap::pipeline::OpenedAndListed;
use crate::imap::transport::connect;
use crate::imap::types::StatusResponse;
use crate::imap::{
    DiscardSink, During as _, ImapError, ImapStepError, SequenceSet, Session, SessionConfig,
};
use crate::retry::{Attempts, Next};
use crate::stage::index::{FolderInfo, MailboxState, OpenedFolder};

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
    // The mailbox's failed messages after the last failed attempt (see `failed_more`).
    let mut failed_rows = None;
    let result = loop {
        let before = progress_mark(&counts, &finished);
        let failed_before = counts.failed;
        match sync_once(ctx, mb, &mut counts, &mut finished).await {
            Ok(()) => break Ok(()),
            Err(e) if e.is_transient() => {
                let failed = failed_more(ctx, mb, &mut failed_rows, counts.failed > failed_before);
                let progressed = failed || progress_mark(&counts, &finished) != before;
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
    finish_mailbox(ctx, &mb.email, counts, result.err().map(|e| e.to_string()))
}

/// Records the end of a mailbox's pass (Synced, or Failed with `error`) and reports it.
pub(crate) fn finish_mailbox(
    ctx: &Ctx,
    email: &str,
    counts: MailboxCounts,
    error: Option<String>,
) -> MailboxOutcome {
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
        i.set_mailbox_state_with_event(&ctx.batch, email, state, error, kind, &detail)
    });
    if let Err(e) = recorded {
        tracing::error!(mailbox = %email, "recording the end of the pass: {e}");
    }
    let outcome = MailboxOutcome {
        email: email.to_string(),
        counts,
        error,
    };
    ctx.progress.mailbox_finished(&outcome);
    outcome
}

/// A folder after phase 1.
struct Examined {
    plan: FolderPlan,
    folder_id: i64,
    uidvalidity: u32,
    modseq: Option<u64>,
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
    let condstore = s.has_capability("CONDSTORE");
    let Listing {
        plans,
        left_out,
        statuses,
    } = list_folders(&mut s, mb, &ctx.limits).await?;
    let foreign: Vec<_> = left_out
        .iter()
        .filter_map(|l| Some((l.name.clone(), l.namespace?)))
        .collect();
    ctx.stage
        .index(|i| i.set_namespace_folders(mb.mailbox_id, &foreign))?;
    counts.left_out_namespaces = foreign.into_iter().map(|(name, _)| name).collect();
    let not_mutf7: Vec<_> = plans
        .iter()
        .filter_map(|p| Some((&p.name, p.not_mutf7.as_ref()?)))
        .collect();
    if counts.folders_not_mutf7 == 0 {
        // Once per pass, not again after a reconnection.
        for (name, why) in &not_mutf7 {
            tracing::warn!(mailbox = %mb.email, folder = %name.escape_debug(),
                "folder name is not modified UTF-7 ({why}): read by its bytes as the server \
                 sent them, shown as UTF-8");
        }
    }
    counts.folders_not_mutf7 = not_mutf7.len() as u64;
    let wires: Vec<Vec<u8>> = plans.iter().map(|p| p.wire.clone()).collect();
    counts.folders_gone += ctx
        .stage
        .index(|i| i.mark_gone_folders(mb.mailbox_id, &wires))?
        .len() as u64;
    counts.folders = plans.len() as u64;
    record_excluded(ctx, &mut s, mb.mailbox_id, &left_out, statuses.as_deref()).await?;

    // Folders nothing happened in since the last complete pass stay closed.
    let recorded = ctx.stage.index(|i| i.folder_syncs(mb.mailbox_id))?;
    let listed = statuses.as_deref();
    let unchanged = unchanged_folders(
        ctx,
        &mut s,
        mb.mailbox_id,
        &plans,
        &recorded,
        listed,
        condstore,
    )
    .await?;
    let to_open: Vec<FolderPlan> = plans
        .into_iter()
        .filter(|p| !unchanged.contains(&p.wire))
        .collect();
    // Folders the stage holds nothing of yet are opened and listed in one pipeline.
    let prefetched =
        open_new_folders(&mut s, &recorded, &to_open, listed, condstore, META_ITEMS).await?;
    // ... and recorded in the index in one transaction.
    let mut prefetched = record_opened(ctx, mb.mailbox_id, &to_open, prefetched)?;
    let mut examined = Vec::with_capacity(to_open.len());
    // What an earlier attempt listed is listed again (from the committed highest UIDs).
    ctx.stage.index(|i| i.clear_listed(mb.mailbox_id))?;
    let mut open = Open {
        condstore,
        qresync: match condstore && s.has_capability("QRESYNC") {
            true => Qresync::Offered,
            false => Qresync::Unavailable,
        },
        finished,
        listed: Lister::new(mb.mailbox_id),
    };
    // A folder the server refuses to open does not stop the others (the mailbox fails after).
    let mut refused = Vec::new();
    for plan in to_open {
        let pre = prefetched.remove(&plan.wire);
        let name = plan.name.clone();
        match examine_folder(ctx, &mut s, mb, plan, &mut open, counts, pre).await {
            Ok(e) => examined.push(e),
            // Its EXAMINE or its listing refused for good.
            Err(e) if is_refusal(&e) => {
                tracing::warn!(mailbox = %mb.email, folder = %name, "{e}; reading the other folders");
                refused.push(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    open.listed.finish(ctx)?;

    let staged_before = ctx.stage.index(|i| i.staged_count(mb.mailbox_id))?;
    let (max_size, max_items) = (ctx.limits.max_message_size, ctx.limits.max_items);
    let planned = ctx
        .stage
        .index(|i| i.decide_listed_caps(mb.mailbox_id, max_size, max_items, staged_before))?;
    crate::crash_point::hit("metadata-listed");
    let (to_fetch, bytes) = (planned.fetch, planned.fetch_bytes);
    ctx.progress.mailbox_planned(&mb.email, to_fetch, bytes);

    let mut folders = Vec::with_capacity(examined.len());
    for e in examined {
        folders.push(FolderBodies {
            fetches: ctx.stage.index(|i| i.listed_to_fetch(e.folder_id))?,
            plan: e.plan,
            folder_id: e.folder_id,
            uidvalidity: e.uidvalidity,
            modseq: e.modseq,
        });
    }
    fetch_folders(ctx, &mut s, mb, folders, counts, finished, &mut refused).await?;
    ctx.stage.index(|i| i.clear_listed(mb.mailbox_id))?;
    // Everything is committed: say goodbye without waiting for the answer.
    let _ = s.send_logout().await;
    match refused.is_empty() {
        true => Ok(()),
        false => Err(ExtractError::FoldersNotOpened {
            mailbox: mb.email.clone(),
            refused,
        }),
    }
}

/// A folder opened in the pipeline, and where its pass starts.
type OpenedAhead = (OpenedAndListed, OpenedFolder);

/// Records the folders opened in the pipeline in the index, in one transaction.
fn record_opened(
    ctx: &Ctx,
    mailbox_id: i64,
    plans: &[FolderPlan],
    mut prefetched: HashMap<Vec<u8>, OpenedAndListed>,
) -> Result<HashMap<Vec<u8>, OpenedAhead>, ExtractError> {
    let ahead: Vec<(&FolderPlan, OpenedAndListed)> = plans
        .iter()
        .filter_map(|p| Some((p, prefetched.remove(&p.wire)?)))
        .collect();
    let rows: Vec<(FolderInfo, u32, u32)> = ahead
        .iter()
        .map(|(p, o)| (folder_info(p), o.mailbox.uid_validity, o.mailbox.exists))
        .collect();
    let opened = ctx.stage.index(|i| i.open_folders(mailbox_id, &rows))?;
    Ok(ahead
        .into_iter()
        .zip(opened)
        .map(|((p, o), f)| (p.wire.clone(), (o, f)))
        .collect())
}

fn folder_info(plan: &FolderPlan) -> FolderInfo {
    FolderInfo {
        wire_name: plan.wire.clone(),
        name: plan.name.clone(),
        delimiter: plan.delimiter,
        special_use: plan.special_use.clone(),
    }
}

/// Records the folders the batch's patterns leave out, with the source's STATUS MESSAGES
/// when it answers (the report counts them as excluded by the admin); `listed` holds the
/// STATUS the listing returned, if it did.
async fn record_excluded<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    mailbox_id: i64,
    left_out: &[LeftOut],
    listed: Option<&[StatusResponse]>,
) -> Result<(), ExtractError> {
    for l in left_out.iter().filter(|l| l.by_batch) {
        let known = listed.and_then(|all| all.iter().find(|st| st.mailbox == l.wire));
        let messages = match known {
            Some(st) => st.messages,
            None => status_messages(s, l).await?,
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

/// STATUS MESSAGES of a folder left out, `None` when the server refuses it.
async fn status_messages<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<S>,
    l: &LeftOut,
) -> Result<Option<u32>, ExtractError> {
    match s.status(&l.wire, &["MESSAGES"]).await {
        Ok(st) => Ok(st.messages),
        Err(e) if e.is_transient() => {
            Err::<(), _>(e).during(|| format!("STATUS {:?}", l.name))?;
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

/// Phase 1 for one folder: EXAMINE, notice a UIDVALIDITY change, flag changes, new UIDs.
/// How folders are opened on this connection.
struct Open<'a> {
    /// EXAMINE with `(CONDSTORE)`.
    condstore: bool,
    /// QRESYNC (RFC 7162): an EXAMINE with the last pass's UIDVALIDITY and HIGHESTMODSEQ
    /// names what was expunged since, so a deletion costs no UID SEARCH.
    qresync: Qresync,
    /// Folders finished earlier in this pass (before a reconnection): not resynced again.
    finished: &'a HashSet<i64>,
    /// Where the metadata of the new messages goes: the index, as it arrives.
    listed: Lister,
}

/// Where QRESYNC stands on a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Qresync {
    /// Not offered (or refused): deletions are found by counting.
    Unavailable,
    /// Offered, enabled at the first folder that has a HIGHESTMODSEQ from an earlier pass.
    Offered,
    /// Enabled on this connection.
    Enabled,
}

impl Open<'_> {
    /// The UIDVALIDITY and HIGHESTMODSEQ to resync `wire` from, enabling QRESYNC on the
    /// connection at its first use; `None` to open it without.
    async fn resync_from<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        ctx: &Ctx,
        s: &mut Session<S>,
        mb: &MailboxJob,
        wire: &[u8],
    ) -> Result<Option<(u32, u64)>, ExtractError> {
        if self.qresync == Qresync::Unavailable {
            return Ok(None);
        }
        let Some(known) = ctx
            .stage
            .index(|i| i.folder_sync(mb.mailbox_id, wire))?
            .filter(|f| !self.finished.contains(&f.id))
            .and_then(|f| Some((f.uidvalidity?, f.highest_modseq?)))
        else {
            return Ok(None);
        };
        if self.qresync == Qresync::Offered {
            self.qresync = match s.enable(&["QRESYNC"]).await {
                Ok(on) if on.iter().any(|e| e.eq_ignore_ascii_case("QRESYNC")) => Qresync::Enabled,
                Ok(_) => Qresync::Unavailable,
                Err(source) if source.is_transient() => {
                    let context = "enabling QRESYNC".into();
                    return Err(ImapStepError { context, source }.into());
                }
                Err(e) => {
                    tracing::debug!(mailbox = %mb.email, "ENABLE QRESYNC refused ({e}); deletions are found by counting");
                    Qresync::Unavailable
                }
            };
        }
        Ok((self.qresync == Qresync::Enabled).then_some(known))
    }
}

async fn examine_folder<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    mb: &MailboxJob,
    plan: FolderPlan,
    open: &mut Open<'_>,
    counts: &mut MailboxCounts,
    pre: Option<OpenedAhead>,
) -> Result<Examined, ExtractError> {
    let condstore = open.condstore;
    // Opened ahead without EXISTS: opened again, where the count is found another way.
    let pre = pre.filter(|(p, _)| !p.mailbox.exists_missing);
    let opened_ahead = pre.is_some();
    // `known`: the UIDVALIDITY and HIGHESTMODSEQ the folder was opened with under QRESYNC.
    let (info, mut listed_new, opened, known) = match pre {
        Some((p, opened)) => (p.mailbox, p.fetched, opened, None),
        None => {
            let known = open.resync_from(ctx, s, mb, &plan.wire).await?;
            let info = match known {
                Some((validity, modseq)) => s.examine_qresync(&plan.wire, validity, modseq).await,
                None => s.examine(&plan.wire, condstore).await,
            }
            .during(|| format!("EXAMINE {:?}", plan.name))?;
            let folder = folder_info(&plan);
            let opened = ctx
                .stage
                .index(|i| i.open_folder(mb.mailbox_id, &folder, info.uid_validity))?;
            ctx.stage
                .index(|i| i.set_folder_source_count(opened.id, info.exists))?;
            (info, None, opened, known)
        }
    };
    let uidvalidity = info.uid_validity;
    if uidvalidity == 0 {
        tracing::warn!(mailbox = %mb.email, folder = %plan.name,
            "the server gave no UIDVALIDITY, or 0 (RFC 3501 forbids it): taken as missing, \
             the folder's UIDs as they are");
    }
    let (folder_id, restarted, highest) = (opened.id, opened.restarted, opened.highest_uid);
    let failed = ctx.stage.index(|i| i.failed_uids(folder_id, uidvalidity))?;
    let lister = &mut open.listed;
    lister.next_folder(folder_id);
    let unlisted_mail = listed_new.is_none() && info.exists > 0;
    if opened_ahead && (highest != 0 || !failed.is_empty() || unlisted_mail) {
        // Opened in the pipeline, yet there is more to do than it did (the stage holds some
        // of it, or mail arrived in a folder LIST-STATUS showed empty): open it again (the
        // pipeline left another folder selected) and list what is new as usual.
        listed_new = None;
        s.examine(&plan.wire, condstore)
            .await
            .during(|| format!("EXAMINE {:?}", plan.name))?;
    }
    if restarted {
        ctx.stage
            .blobs
            .remove_partials_of_folder(folder_id, uidvalidity)?;
        tracing::info!(mailbox = %mb.email, folder = %plan.name, retired = opened.retired,
            "UIDVALIDITY changed: the folder is read again");
        counts.folders_restarted += 1;
        crate::crash_point::hit("uidvalidity-restarted");
    }

    let mut new_above_highest = 0;
    // No UID comes after 4294967295 (`highest + 1` would overflow): nothing new to list. A
    // UIDNEXT at the first new UID says nothing is new, unless the server holds more
    // messages than the stage has rows for up to `highest` (all of them, in a folder it holds
    // nothing of): a server's stale UIDNEXT must not hide new mail.
    let stale_next = || {
        highest == 0
            || ctx
                .stage
                .index(|i| i.present_count(folder_id, uidvalidity, highest))
                .is_ok_and(|present| u64::from(info.exists) > present)
    };
    if let Some(first_new) = highest.checked_add(1)
        && info.exists > 0
        && info
            .uid_next
            .is_none_or(|next| next > first_new || stale_next())
    {
        match listed_new.take() {
            // Listed in the pipeline: converted from the responses it kept.
            Some(metas) => {
                let new = metas.iter().filter(|m| m.uid.is_some_and(|u| u > highest));
                for (m, answer) in new.filter_map(meta_of) {
                    new_above_highest += u64::from(answer);
                    lister.take(ctx, m, answer);
                }
            }
            None => {
                let set = SequenceSet::from_start(first_new);
                new_above_highest = list_meta(ctx, s, &set, |u| u > highest, lister)
                    .await
                    .during(|| format!("listing new messages of {:?}", plan.name))?;
            }
        }
    }
    if !failed.is_empty() {
        let set = SequenceSet::from_uids(failed.iter().copied());
        // Only those: a flag change of a staged message may come meanwhile.
        list_meta(ctx, s, &set, |u| u <= highest && set.contains(u), lister)
            .await
            .during(|| format!("re-reading failed messages of {:?}", plan.name))?;
    }
    lister.check()?;
    // Flag changes of staged messages: through CONDSTORE when the server offers it (only
    // what changed since the stored HIGHESTMODSEQ), otherwise every staged UID's FLAGS.
    let stored_modseq = opened.highest_modseq;
    let flag_items = match (condstore, stored_modseq, info.highest_modseq) {
        _ if restarted || highest == 0 => None,
        (true, Some(old), Some(now)) if now > old => {
            Some(format!("(UID FLAGS) (CHANGEDSINCE {old})"))
        }
        // Staged before, but no HIGHESTMODSEQ recorded (a pass stopped between the folder's
        // last commit and its HIGHESTMODSEQ's): every staged UID's flags, once.
        (true, None, Some(_)) => Some("(UID FLAGS)".to_owned()),
        (true, _, _) => None,
        (false, _, _) if info.exists == 0 => None,
        (false, _, _) => Some("(UID FLAGS)".to_owned()),
    };
    // Every UID up to `highest` the server holds, when the FLAGS fetch listed them all.
    let listed = match flag_items {
        Some(items) => {
            let at = FlagsOf {
                name: &plan.name,
                folder_id,
                uidvalidity,
                highest,
            };
            read_flags(ctx, s, &at, &items, condstore, counts).await?
        }
        None => None,
    };
    // Opened with QRESYNC parameters the server accepted (same UIDVALIDITY): its `VANISHED
    // (EARLIER)`, or the lack of one, says what was expunged since the last pass (RFC 7162:
    // every such UID, possibly more); otherwise the message count decides.
    let resynced = known.is_some_and(|(validity, _)| validity == uidvalidity);
    if resynced && highest > 0 && !restarted {
        if let Some(vanished) = &info.vanished {
            counts.deleted_on_source += ctx.stage.index(|i| {
                i.mark_vanished(folder_id, uidvalidity, highest, |u| vanished.contains(u))
            })?;
        }
    } else if highest > 0 && !restarted {
        let seen = Seen {
            name: &plan.name,
            folder_id,
            uidvalidity,
            highest,
            on_server: u64::from(info.exists).saturating_sub(new_above_highest),
            listed,
        };
        counts.deleted_on_source += notice_deletions(ctx, s, seen).await?;
    }
    Ok(Examined {
        plan,
        folder_id,
        uidvalidity,
        modseq: info.highest_modseq,
    })
}

/// Reads the metadata of the messages of `set` whose UID `keep` accepts into the index, each
/// converted as its FETCH response arrives and written in groups: neither the parsed
/// responses of a large folder nor their [`Meta`] are ever held all at once. Returns how
/// many it listed; a failed write stops the FETCH, and [`Lister::finish`] reports it.
async fn list_meta<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    set: &SequenceSet,
    keep: impl Fn(u32) -> bool,
    lister: &mut Lister,
) -> Result<u64, ImapError> {
    let mut listed = 0;
    let fetched = s
        .uid_fetch(
            std::slice::from_ref(set),
            META_ITEMS,
            1,
            &mut DiscardSink,
            |m| {
                let Some((meta, answer)) = meta_of(&m.fetch).filter(|(m, _)| keep(m.uid)) else {
                    return Ok(());
                };
                listed += u64::from(answer);
                match lister.take(ctx, meta, answer) {
                    true => Ok(()),
                    false => Err(ImapError::Sink(std::io::Error::other(
                        "the stage's index refused the listed messages",
                    ))),
                }
            },
        )
        .await;
    match (fetched, lister.failed()) {
        // The index's error is reported by `Lister::finish`, naming it.
        (Err(_), true) => Ok(listed),
        (result, _) => result.map(|()| listed),
    }
}
