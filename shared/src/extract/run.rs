//! Runs a pass over a batch's mailboxes, up to the endpoint's concurrency at once.

use std::sync::Arc;

use super::context::Ctx;
use super::mailbox::sync_mailbox;
use super::{MailboxOutcome, PassJob, SharedProgress};
use crate::parallel::run_bounded;
use crate::stage::SharedStage;

/// Runs one pass (first or incremental) and returns each mailbox's outcome, in job order.
/// A mailbox that fails does not stop the others.
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
    run_bounded(job.mailboxes, job.concurrency, move |mailbox| {
        let ctx = ctx.clone();
        async move { sync_mailbox(&ctx, &mailbox).await }
    })
    .await
}
