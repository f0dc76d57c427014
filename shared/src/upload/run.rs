//! Runs an upload over a batch's mailboxes, up to the job's concurrency at once.

use std::sync::Arc;

use super::context::Ctx;
use super::imap_target::{ImapTarget, SynchronizingOnly};
use super::mailbox::{lost_upload, upload_mailbox};
use super::{Pace, SharedProgress, UploadJob, UploadOutcome};
use crate::parallel::run_bounded;
use crate::stage::SharedStage;

/// Uploads every mailbox of the job into the target over IMAP and returns each one's
/// outcome, in job order. A mailbox that fails does not stop the others; one whose task
/// panicked is recorded Failed with the panic's message.
pub async fn run_upload(
    job: UploadJob,
    stage: &SharedStage,
    progress: SharedProgress,
) -> Vec<UploadOutcome> {
    let ctx = Arc::new(Ctx {
        batch: job.batch,
        m365: job.target.is_m365(),
        target: job.target.name,
        rules: job.rules,
        dry_run: job.dry_run,
        retry: job.retry,
        connections: job.connections.max(1),
        pace: Pace::new(job.rates),
        stage: stage.handle(),
        progress,
    });
    let (connect, credentials) = (Arc::new(job.connect), Arc::new(job.credentials));
    let mailboxes = job.mailboxes.clone();
    let worker = ctx.clone();
    let synchronizing_only = SynchronizingOnly::default();
    let results = run_bounded(job.mailboxes, job.concurrency, move |mailbox| {
        let (ctx, connect, credentials) = (worker.clone(), connect.clone(), credentials.clone());
        let synchronizing_only = synchronizing_only.clone();
        async move {
            let (m365, timeout) = (ctx.m365, ctx.retry.read_timeout);
            let open = || {
                ImapTarget::open(
                    &connect,
                    &credentials,
                    &mailbox.target_mailbox,
                    m365,
                    timeout,
                    synchronizing_only.clone(),
                )
            };
            upload_mailbox(&ctx, &mailbox, open).await
        }
    })
    .await;
    results
        .into_iter()
        .zip(&mailboxes)
        .map(|(result, mb)| result.unwrap_or_else(|lost| lost_upload(&ctx, mb, &lost.0)))
        .collect()
}
