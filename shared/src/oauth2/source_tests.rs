//! The cache under tokio's paused clock, with a scripted stand-in for the token endpoint.

use std::collections::VecDeque;
use std::sync::Mutex as StdMutex;

use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::oauth2::error::AadError;

/// Answers from a script (`Ok(lifetime)` issues `t1`, `t2`, … in order); each request takes
/// `latency`. An empty script issues 1-hour tokens.
struct Scripted {
    script: StdMutex<VecDeque<Result<Duration, TokenError>>>,
    issued: AtomicU64,
    latency: Duration,
}

impl FetchToken for Arc<Scripted> {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            tokio::time::sleep(self.latency).await;
            let next = self.script.lock().unwrap().pop_front();
            let lifetime = next.unwrap_or(Ok(Duration::from_secs(3600)))?;
            let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AccessToken::new(
                SecretString::from(format!("t{n}")),
                "Bearer",
                lifetime,
            ))
        })
    }
}

fn scripted(
    script: Vec<Result<Duration, TokenError>>,
    latency: Duration,
) -> (TokenSource, Arc<Scripted>) {
    let fake = Arc::new(Scripted {
        script: StdMutex::new(script.into()),
        issued: AtomicU64::new(0),
        latency,
    });
    let retry = TokenRetry {
        max_attempts: 3,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(10),
    };
    (TokenSource::with_fetcher(fake.clone(), retry), fake)
}

fn secs(s: u64) -> Result<Duration, TokenError> {
    Ok(Duration::from_secs(s))
}

async fn token_text(source: &TokenSource) -> String {
    source
        .token()
        .await
        .unwrap()
        .secret()
        .expose_secret()
        .to_string()
}

fn http(status: u16, retry_after: Option<u64>) -> TokenError {
    TokenError::Http {
        url: "u".into(),
        status,
        body: String::new(),
        retry_after: retry_after.map(Duration::from_secs),
    }
}

fn bad_secret() -> TokenError {
    TokenError::Aad {
        url: "u".into(),
        status: 401,
        aad: Box::new(AadError {
            error: "invalid_client".into(),
            description: "AADSTS7000215: Invalid client secret provided.".into(),
            codes: vec![7000215],
            ..AadError::default()
        }),
        retry_after: None,
    }
}

#[test]
fn margins() {
    let m = |s: u64| refresh_margin(Duration::from_secs(s));
    assert_eq!(m(3599), Duration::from_secs(300));
    assert_eq!(m(600), Duration::from_secs(60));
    assert_eq!(m(30), Duration::from_secs(5));
    assert_eq!(m(2), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn the_token_is_cached_and_refreshed_when_the_margin_begins() {
    let (source, fake) = scripted(vec![secs(100), secs(100)], Duration::ZERO);
    assert_eq!(token_text(&source).await, "t1");
    // margin: 10 s of 100 s -> refresh 90 s after the request.
    tokio::time::advance(Duration::from_secs(89)).await;
    assert_eq!(token_text(&source).await, "t1");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(token_text(&source).await, "t2");
    assert_eq!(fake.issued.load(Ordering::SeqCst), 2);
    assert_eq!(source.requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_lifetime_counts_from_when_the_request_was_sent() {
    // The answer takes 20 s: a 100 s token is replaced 70 s after it arrived.
    let (source, _) = scripted(vec![secs(100), secs(100)], Duration::from_secs(20));
    assert_eq!(token_text(&source).await, "t1");
    tokio::time::advance(Duration::from_secs(69)).await;
    assert_eq!(token_text(&source).await, "t1");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(token_text(&source).await, "t2");
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_request() {
    let (source, fake) = scripted(vec![], Duration::from_secs(1));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { token_text(&s).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "t1");
    }
    assert_eq!(fake.issued.load(Ordering::SeqCst), 1);
    assert_eq!(source.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn invalidate_refreshes_once_and_only_the_same_token() {
    let (source, fake) = scripted(vec![], Duration::ZERO);
    let t1 = source.token().await.unwrap();
    // Many connections report t1 as refused: one new token.
    for _ in 0..5 {
        source.invalidate(&t1).await;
    }
    let t2 = source.token().await.unwrap();
    assert_ne!(t1, t2);
    // A late report about t1 leaves t2 alone.
    source.invalidate(&t1).await;
    assert_eq!(source.token().await.unwrap(), t2);
    assert_eq!(fake.issued.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_with_backoff_and_retry_after() {
    let (source, _) = scripted(
        vec![Err(http(500, None)), Err(http(429, Some(7))), secs(60)],
        Duration::ZERO,
    );
    let start = Instant::now();
    assert_eq!(token_text(&source).await, "t1");
    // 1 s backoff after the 500, then the 7 s the 429 asked for.
    assert_eq!(start.elapsed(), Duration::from_secs(8));
    assert_eq!(source.requests(), 3);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_policy() {
    let (source, _) = scripted(vec![Err(http(503, None)); 5], Duration::ZERO);
    let err = source.token().await.unwrap_err();
    assert!(matches!(err, TokenError::Http { status: 503, .. }), "{err}");
    assert_eq!(source.requests(), 3);
    // A Retry-After beyond max_backoff is not waited for.
    let (source, _) = scripted(vec![Err(http(429, Some(3600)))], Duration::ZERO);
    let start = Instant::now();
    let err = source.token().await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!((start.elapsed(), source.requests()), (Duration::ZERO, 1));
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_waiters_share_them() {
    let (source, fake) = scripted(vec![Err(bad_secret()), secs(60)], Duration::from_secs(1));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let s = source.clone();
            tokio::spawn(async move { s.token().await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.aad().and_then(AadError::aadsts), Some(7000215));
    }
    assert_eq!(source.requests(), 1);
    // A later call tries again (the secret may have been fixed meanwhile).
    assert_eq!(token_text(&source).await, "t1");
    assert_eq!(fake.issued.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_using_the_token_until_it_expires() {
    let (source, _) = scripted(
        vec![secs(100), Err(bad_secret()), Err(bad_secret())],
        Duration::ZERO,
    );
    assert_eq!(token_text(&source).await, "t1");
    tokio::time::advance(Duration::from_secs(95)).await;
    assert_eq!(token_text(&source).await, "t1");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(source.token().await.is_err());
}

#[tokio::test(start_paused = true)]
async fn debug_output_holds_no_token() {
    let (source, _) = scripted(vec![], Duration::ZERO);
    let token = source.token().await.unwrap();
    let shown = format!("{source:?} {token:?}");
    assert!(!shown.contains("t1"), "{shown}");
}
