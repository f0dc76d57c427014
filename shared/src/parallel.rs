//! Running one task per item with a bound on how many run at once.

use std::future::Future;
use std::sync::Arc;

/// A task that did not return: it panicked or was cancelled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskLost(pub String);

/// Runs `work(item)` for every item on the tokio runtime, at most `limit` at once, and
/// returns the results in item order: a task that panicked (or was cancelled) gives
/// [`TaskLost`] with the panic's message, so no item's outcome goes missing.
pub async fn run_bounded<I, O, F, Fut>(
    items: Vec<I>,
    limit: usize,
    work: F,
) -> Vec<Result<O, TaskLost>>
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
    let mut slot_of = std::collections::HashMap::with_capacity(total);
    for (n, item) in items.into_iter().enumerate() {
        let (permits, work) = (permits.clone(), work.clone());
        let handle = tasks.spawn(async move {
            let _permit = permits.acquire().await;
            work(item).await
        });
        slot_of.insert(handle.id(), n);
    }
    let mut results: Vec<Result<O, TaskLost>> = (0..total)
        .map(|_| Err(TaskLost("the task never reported".into())))
        .collect();
    while let Some(done) = tasks.join_next_with_id().await {
        let (id, result) = match done {
            Ok((id, out)) => (id, Ok(out)),
            Err(e) => {
                let id = e.id();
                let lost = TaskLost(if e.is_panic() {
                    format!("internal error (panic): {}", panic_message(e.into_panic()))
                } else {
                    "the task was cancelled".into()
                });
                tracing::error!("a task stopped unexpectedly: {lost}");
                (id, Err(lost))
            }
        };
        if let Some(&n) = slot_of.get(&id) {
            results[n] = result;
        }
    }
    results
}

/// The text a panic was raised with.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_string(),
            Err(_) => "(no message)".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_reported_in_its_place() {
        let out = run_bounded(vec![1u32, 2, 3, 4], 2, |n| async move {
            tokio::task::yield_now().await;
            match n {
                2 => panic!("byte index 2 is not a char boundary"),
                3 => std::panic::panic_any(7u8),
                n => n * 10,
            }
        })
        .await;
        assert_eq!(out[0], Ok(10));
        let Err(TaskLost(lost)) = &out[1] else {
            panic!("{:?}", out[1]);
        };
        assert!(
            lost.contains("panic") && lost.contains("not a char boundary"),
            "{lost}"
        );
        assert_eq!(
            out[2],
            Err(TaskLost("internal error (panic): (no message)".into()))
        );
        assert_eq!(out[3], Ok(40));
    }
}
