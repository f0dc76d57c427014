//! Runs a pass over a batch's mailboxes, up to the endpoint's concurrency at once.

use std::sync::Arc;

use super::mailbox::{Ctx, sync_mailbox};
use super::{MailboxOutcome, PassJob, Progress};
use crate::stage::SharedStage;

/// Runs one pass (first or incremental) and returns each mailbox's outcome, in job order.
/// A mailbox that fails does not stop the others.
pub async fn run_pass(
    job: PassJob,
    stage: &SharedStage,
    progress: Arc<dyn Progress>,
) -> Vec<MailboxOutcome> {
    let ctx = Arc::new(Ctx {
        batch: job.batch,
        connect: job.connect,
        auth: job.auth,
        limits: job.limits,
        retry: job.retry,
        blobs: stage.blobs.clone(),
        index: stage.index.clone(),
        progress,
    });
    let limit = Arc::new(tokio::sync::Semaphore::new(job.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let total = job.mailboxes.len();
    for (n, mailbox) in job.mailboxes.into_iter().enumerate() {
        let (ctx, limit) = (ctx.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            (n, sync_mailbox(&ctx, &mailbox).await)
        });
    }
    let mut outcomes: Vec<Option<MailboxOutcome>> = (0..total).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((n, outcome)) => outcomes[n] = Some(outcome),
            Err(e) => tracing::error!("a mailbox task stopped unexpectedly: {e}"),
        }
    }
    outcomes.into_iter().flatten().collect()
}
