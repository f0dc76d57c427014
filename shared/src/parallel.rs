//! Running one task per item with a bound on how many run at once.

use std::future::Future;
use std::sync::Arc;

/// Runs `work(item)` for every item on the tokio runtime, at most `limit` at once, and
/// returns the results in item order. A task that panics is logged and left out.
pub async fn run_bounded<I, O, F, Fut>(items: Vec<I>, limit: usize, work: F) -> Vec<O>
where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let work = Arc::new(work);
    let mut tasks = tokio::task::JoinSet::new();
    let total = items.len();
    for (n, item) in items.into_iter().enumerate() {
        let (permits, work) = (permits.clone(), work.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await;
            (n, work(item).await)
        });
    }
    let mut results: Vec<Option<O>> = (0..total).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((n, out)) => results[n] = Some(out),
            Err(e) => tracing::error!("a mailbox task stopped unexpectedly: {e}"),
        }
    }
    results.into_iter().flatten().collect()
}
