//! Runs a pass over a batch's mailboxes, up to the endpoint's concurrency at once.

use std::sync::Arc;

use super::context::Ctx;
use super::mailbox::{finish_mailbox, sync_mailbox};
use super::{MailboxCounts, MailboxOutcome, PassJob, SharedProgress};
use crate::parallel::run_bounded;
use crate::stage::SharedStage;

/// Runs one pass (first or incremental) and returns each mailbox's outcome, in job order.
/// A mailbox that fails does not stop the others; one whose task panicked is recorded Failed
/// with the panic's message.
pub async fn run_pass(
    job: PassJob,
    stage: &SharedStage,
    progress: SharedProgress,
) -> Vec<MailboxOutcome> {
    let ctx = Arc::new(Ctx {
        batch: job.batch,
        connect: job.connect,
        auth: job.auth,
        limits: job.limits,
        retry: job.retry,
        stage: stage.handle(),
        progress,
    });
    let emails: Vec<String> = job.mailboxes.iter().map(|m| m.email.clone()).collect();
    let worker = ctx.clone();
    let results = run_bounded(job.mailboxes, job.concurrency, move |mailbox| {
        let ctx = worker.clone();
        async move { sync_mailbox(&ctx, &mailbox).await }
    })
    .await;
    results
        .into_iter()
        .zip(emails)
        .map(|(result, email)| {
            result.unwrap_or_else(|lost| {
                let error = format!("the pass stopped: {lost}");
                finish_mailbox(&ctx, &email, MailboxCounts::default(), Some(error))
            })
        })
        .collect()
}
