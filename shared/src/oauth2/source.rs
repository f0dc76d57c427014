//! [`TokenSource`]: one app token in memory for every connection, refreshed before it
//! expires or when a server refused it, fetched by one caller at a time while the others wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::client::{AccessToken, TokenClient};
use super::config::{OAuthConfig, TokenRetry};
use super::error::TokenError;

/// Smallest refresh margin (unless the lifetime is shorter than twice this).
const MIN_MARGIN: Duration = Duration::from_secs(5);
/// Largest refresh margin.
const MAX_MARGIN: Duration = Duration::from_secs(300);

/// How long before its end a token of this lifetime is replaced: 10 % of the lifetime, at
/// least 5 s and at most 5 min, and never more than half the lifetime.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10)
        .clamp(MIN_MARGIN, MAX_MARGIN)
        .min(lifetime / 2)
}

/// The future [`FetchToken::fetch`] returns.
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccessToken, TokenError>> + Send + 'a>>;

/// Something that performs one token request: [`TokenClient`], or a stand-in in tests.
pub trait FetchToken: Send + Sync + 'static {
    /// One request, no retries.
    fn fetch(&self) -> FetchFuture<'_>;
}

impl FetchToken for TokenClient {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(TokenClient::fetch(self))
    }
}

/// The shared token cache. Cheap to clone: clones share one token and one fetch at a time.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    fetcher: Box<dyn FetchToken>,
    retry: TokenRetry,
    state: Mutex<State>,
    /// Finished fetches (each with its retries), successful or not.
    rounds: AtomicU64,
    /// Token requests sent, retries included.
    requests: AtomicU64,
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    /// The error of the last round, with that round's number.
    last_error: Option<(u64, TokenError)>,
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
    expires_at: Instant,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("requests", &self.requests())
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source asking the token endpoint of `config`, with its retry policy.
    pub fn new(config: &OAuthConfig) -> Result<Self, TokenError> {
        Ok(Self::with_fetcher(TokenClient::new(config)?, config.retry))
    }

    /// A source asking `fetcher`, retrying transient failures as `retry` says.
    pub fn with_fetcher(fetcher: impl FetchToken, retry: TokenRetry) -> Self {
        Self {
            inner: Arc::new(Inner {
                fetcher: Box::new(fetcher),
                retry,
                state: Mutex::new(State::default()),
                rounds: AtomicU64::new(0),
                requests: AtomicU64::new(0),
            }),
        }
    }

    /// A token with more than the refresh margin left: the cached one, or a new one. While one
    /// caller fetches, the others wait for its outcome — a token, or its error — instead of
    /// sending requests of their own.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let inner = &self.inner;
        let seen = inner.rounds.load(Ordering::Acquire);
        let mut state = inner.state.lock().await;
        if let Some(cached) = &state.current
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let err = match &state.last_error {
            // A round finished while we waited for the lock, and failed: share its error.
            Some((round, err)) if *round > seen => err.clone(),
            _ => match self.fetch_round(&mut state).await {
                Ok(token) => return Ok(token),
                Err(err) => err,
            },
        };
        match &state.current {
            // Within the refresh margin the old token still works: use it while it lasts.
            Some(old) if Instant::now() < old.expires_at => {
                tracing::warn!(error = %err, "token refresh failed; the current token is still valid");
                Ok(old.token.clone())
            }
            _ => Err(err),
        }
    }

    /// Fetches (with retries) and records the outcome in `state`.
    async fn fetch_round(&self, state: &mut State) -> Result<AccessToken, TokenError> {
        let outcome = self.fetch_with_retries().await;
        let round = self.inner.rounds.fetch_add(1, Ordering::AcqRel) + 1;
        match outcome {
            Ok((token, sent_at)) => {
                let lifetime = token.lifetime();
                tracing::info!(lifetime_s = lifetime.as_secs(), "OAuth2 token obtained");
                state.last_error = None;
                state.current = Some(Cached {
                    token: token.clone(),
                    refresh_at: sent_at + lifetime - refresh_margin(lifetime),
                    expires_at: sent_at + lifetime,
                });
                Ok(token)
            }
            Err(err) => {
                state.last_error = Some((round, err.clone()));
                Err(err)
            }
        }
    }

    /// Drops `token` from the cache after a server refused it (AUTHENTICATE failed, 401), so
    /// the next [`token`](Self::token) fetches a new one. Does nothing when the cache already
    /// holds another token: many connections reporting the same bad token cause one fetch.
    pub async fn invalidate(&self, token: &AccessToken) {
        let mut state = self.inner.state.lock().await;
        if state.current.as_ref().is_some_and(|c| c.token == *token) {
            tracing::info!("OAuth2 token refused by a server; fetching a new one");
            state.current = None;
        }
    }

    /// Token requests sent so far, retries included.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// One round: requests until a token, a permanent error, or the retry policy gives up.
    /// Returns the token with the instant its request was sent (its lifetime counts from there).
    async fn fetch_with_retries(&self) -> Result<(AccessToken, Instant), TokenError> {
        let inner = &self.inner;
        let policy = inner.retry;
        let mut backoff = policy.initial_backoff;
        let mut attempt = 1;
        loop {
            let sent_at = Instant::now();
            inner.requests.fetch_add(1, Ordering::Relaxed);
            let err = match inner.fetcher.fetch().await {
                Ok(token) => return Ok((token, sent_at)),
                Err(err) => err,
            };
            if !err.is_transient() || attempt >= policy.max_attempts {
                return Err(err);
            }
            let wait = match err.retry_after() {
                Some(asked) if asked > policy.max_backoff => return Err(err),
                Some(asked) => asked,
                None => backoff,
            };
            tracing::warn!(error = %err, attempt, ?wait, "token request failed; retrying");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(policy.max_backoff);
            attempt += 1;
        }
    }
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
