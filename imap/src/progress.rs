//! Bounds on progress, not only on silence: a server that keeps the link alive without
//! bringing the command nearer its end is cut after the read timeout, like a silent one.
//!
//! Two ways of keeping a link alive defeat a timer that any byte resets, and each has its
//! bound here:
//! - whole responses that answer nothing (`* OK still here`, `* n EXISTS` again and again,
//!   `* OK [ALERT]`, a flags-only `* n FETCH (FLAGS …)`): [`ProgressClock`] counts the time
//!   since the last response that was progress (see [`is_progress`]), the last command
//!   or the last write, and the session fails with [`ImapError::Stalled`] when a response
//!   that is no progress arrives past the limit;
//! - a response (a body literal, a line) trickling in a few bytes at a time: [`ReadStall`]
//!   adds up the time reads wait until [`PROGRESS_BYTES`] have arrived, and the read fails
//!   once that sum reaches the limit. An honest slow link moves that many bytes in a
//!   fraction of a second (1 Mbit/s: 33 ms); a long server-side wait before the first byte
//!   is still allowed the whole limit.

use std::time::Duration;

use tokio::time::Instant;

use super::error::ImapError;
use super::types::{Response, Status, Untagged};

/// Bytes that count as progress by themselves: a response (or part of one) this long is
/// data, not a keepalive. Below it, a read's wait is added to the stall.
pub(crate) const PROGRESS_BYTES: usize = 4096;

/// The read side's waits since the last progress.
#[derive(Debug, Default)]
pub(crate) struct ReadStall {
    /// Time reads waited since the last progress, up to the last byte that came.
    stalled: Duration,
    /// When the current wait began, if a read waits.
    waiting: Option<Instant>,
    /// Bytes that came since the last progress.
    unproven: usize,
}

impl ReadStall {
    /// A read waits (found no byte).
    pub(crate) fn waiting(&mut self) {
        self.waiting.get_or_insert_with(Instant::now);
    }

    /// A read brought `n` bytes: its wait counts as stalled unless [`PROGRESS_BYTES`] have
    /// now come since the last progress.
    pub(crate) fn moved(&mut self, n: usize) {
        if let Some(since) = self.waiting.take() {
            self.stalled += since.elapsed();
        }
        self.unproven = self.unproven.saturating_add(n);
        if self.unproven >= PROGRESS_BYTES {
            self.progressed();
        }
    }

    /// The command moved on (or enough bytes came): the stall starts afresh.
    pub(crate) fn progressed(&mut self) {
        self.stalled = Duration::ZERO;
        self.unproven = 0;
    }

    /// Time reads waited without progress, up to the last byte that came.
    pub(crate) fn stalled(&self) -> Duration {
        self.stalled
    }
}

/// The error inside the I/O error of a read that stalled (see [`ReadStall`]).
#[derive(Debug)]
pub(crate) struct StallError;

impl std::fmt::Display for StallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes came, but too few to be progress")
    }
}

impl std::error::Error for StallError {}

/// The time since the command last moved on, as the session sees whole responses.
#[derive(Debug)]
pub(crate) struct ProgressClock {
    since: Instant,
    /// The UID of the last FETCH response that counted as progress.
    last_uid: Option<u32>,
}

impl Default for ProgressClock {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            last_uid: None,
        }
    }
}

impl ProgressClock {
    /// A command was sent, bytes were written, or a response was progress.
    pub(crate) fn progressed(&mut self) {
        self.since = Instant::now();
    }

    /// Looks at a response of `len` bytes: true when it is progress (and restarts the
    /// clock); otherwise [`ImapError::Stalled`] once `limit` has passed since the last
    /// progress.
    pub(crate) fn observe(
        &mut self,
        resp: &Response,
        len: usize,
        limit: Option<Duration>,
    ) -> Result<bool, ImapError> {
        if len >= PROGRESS_BYTES || is_progress(resp, &mut self.last_uid) {
            self.progressed();
            return Ok(true);
        }
        match limit {
            Some(limit) if self.since.elapsed() >= limit => Err(ImapError::Stalled(limit)),
            _ => Ok(false),
        }
    }
}

/// Whether a response can bring a command nearer its end: completions, continuations,
/// data (LIST, STATUS, SEARCH, …) and FETCH responses for a UID other than the last one.
/// Not: untagged OK/NO/BAD (keepalives, alerts), EXISTS, RECENT, EXPUNGE, and FETCH
/// responses without a UID or for the same UID again (flag updates).
pub(crate) fn is_progress(resp: &Response, last_uid: &mut Option<u32>) -> bool {
    match resp {
        Response::Tagged { .. } | Response::Continuation { .. } => true,
        Response::Untagged(u) => match u {
            Untagged::Status(st) => st.status == Status::Bye,
            Untagged::Exists(_) | Untagged::Recent(_) | Untagged::Expunge(_) => false,
            Untagged::Fetch(f) => match f.uid {
                Some(uid) if *last_uid != Some(uid) => {
                    *last_uid = Some(uid);
                    true
                }
                _ => false,
            },
            _ => true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StatusText;

    fn keepalive() -> Response {
        Response::Untagged(Untagged::Status(StatusText {
            status: Status::Ok,
            code: None,
            text: "still here".into(),
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn keepalives_past_the_limit_stall_data_restarts_the_clock() {
        let limit = Some(Duration::from_secs(10));
        let mut clock = ProgressClock::default();
        for _ in 0..9 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(!clock.observe(&keepalive(), 20, limit).unwrap());
        }
        // A big response is data whatever it says.
        assert!(clock.observe(&keepalive(), PROGRESS_BYTES, limit).unwrap());
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(!clock.observe(&keepalive(), 20, limit).unwrap());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let e = clock.observe(&keepalive(), 20, limit).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server kept the link open without progress for 10 s"
        );
        assert!(e.is_transient());
    }

    #[test]
    fn a_fetch_is_progress_once_per_uid() {
        let fetch = |uid| {
            Response::Untagged(Untagged::Fetch(crate::types::FetchData {
                uid,
                ..Default::default()
            }))
        };
        let mut last = None;
        assert!(is_progress(&fetch(Some(1)), &mut last));
        assert!(!is_progress(&fetch(Some(1)), &mut last));
        assert!(!is_progress(&fetch(None), &mut last));
        assert!(is_progress(&fetch(Some(2)), &mut last));
        assert!(!is_progress(
            &Response::Untagged(Untagged::Exists(3)),
            &mut last
        ));
        assert!(!is_progress(&keepalive(), &mut last));
    }
}
