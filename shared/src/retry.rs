//! Riding out transient failures: the policy both pipelines share, and its backoff schedule.

use std::time::Duration;

/// How a mailbox's pass (extraction or upload) rides out transient failures (a dropped link, a timeout, BYE,
/// throttling): it reconnects with exponential backoff and resumes from what is committed.
///
/// Only attempts that made no progress count: an attempt that made progress (extraction: a
/// message row committed or a folder finished for the first time; upload: a message settled
/// or a folder created) resets the count and the backoff, so a link
/// that drops every few megabytes still gets a large mailbox through, while one that never
/// lets a message (or a login) through fails the mailbox after `attempts_without_progress`.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in a row without progress before the mailbox fails (default 6).
    pub attempts_without_progress: u32,
    /// The wait before reconnecting (default 1 s), doubled after each attempt in a row
    /// without progress. Exchange's suggested backoff wins when it throttles.
    pub first_backoff: Duration,
    /// The longest wait between attempts (default 30 s).
    pub max_backoff: Duration,
    /// The longest wait a server's suggested backoff can impose (default 5 min).
    pub max_suggested_backoff: Duration,
    /// How long a read or a write may move no byte before the link counts as lost
    /// (default 120 s): an inactivity timeout, so a slow body that keeps moving is never cut.
    pub read_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_without_progress: 6,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_suggested_backoff: Duration::from_secs(300),
            read_timeout: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `fruitless` failed attempts in a row (1 s, 1 s,
    /// 2 s, 4 s … up to `max_backoff` by default); a server's suggested backoff wins (up
    /// to `max_suggested_backoff`).
    pub fn wait(&self, suggested: Option<Duration>, fruitless: u32) -> Duration {
        if let Some(wait) = suggested {
            return wait.min(self.max_suggested_backoff);
        }
        let doublings = fruitless.saturating_sub(1).min(16);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// The count of failed attempts in a row without progress, for one mailbox's pass: both
/// pipelines' reconnect loops ask it what to do after a transient failure.
#[derive(Debug)]
pub struct Attempts<'a> {
    policy: &'a RetryPolicy,
    /// Failed attempts in a row without progress, throttles left out.
    fruitless: u32,
    /// Throttled attempts in a row without progress.
    throttled: u32,
}

/// A throttle is the server's "come back in N ms", not a failure of the mailbox: attempts
/// ended by one are allowed this many times `attempts_without_progress` in a row (each
/// waiting the suggested backoff, at most 5 min) before the mailbox fails.
pub const THROTTLE_ALLOWANCE: u32 = 4;

/// What to do after a transient failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then reconnect and resume.
    Retry {
        /// The wait.
        wait: Duration,
        /// Attempts in a row without progress so far (0 when this one made progress).
        fruitless: u32,
    },
    /// Stop: this many attempts in a row made no progress.
    GiveUp {
        /// The attempts.
        fruitless: u32,
    },
}

impl<'a> Attempts<'a> {
    /// No attempt has failed yet.
    pub fn new(policy: &'a RetryPolicy) -> Self {
        Self {
            policy,
            fruitless: 0,
            throttled: 0,
        }
    }

    /// After an attempt failed transiently: `progressed` tells whether it got anything done
    /// first (then the count and the backoff start again), `suggested` is the server's
    /// requested backoff, if it throttled.
    ///
    /// Throttled attempts count apart, against [`THROTTLE_ALLOWANCE`] times the limit.
    pub fn failed(&mut self, progressed: bool, suggested: Option<Duration>) -> Next {
        if progressed {
            (self.fruitless, self.throttled) = (0, 0);
        } else if suggested.is_some() {
            self.throttled += 1;
        } else {
            self.fruitless += 1;
        }
        let limit = self.policy.attempts_without_progress;
        if self.fruitless >= limit || self.throttled >= limit.saturating_mul(THROTTLE_ALLOWANCE) {
            return Next::GiveUp {
                fruitless: self.fruitless + self.throttled,
            };
        }
        Next::Retry {
            wait: self.policy.wait(suggested, self.fruitless),
            fruitless: self.fruitless + self.throttled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_attempts_without_progress_count_toward_giving_up() {
        let policy = RetryPolicy {
            attempts_without_progress: 3,
            ..RetryPolicy::default()
        };
        let mut a = Attempts::new(&policy);
        let retry = |wait, fruitless| Next::Retry {
            wait: Duration::from_secs(wait),
            fruitless,
        };
        assert_eq!(a.failed(false, None), retry(1, 1));
        assert_eq!(a.failed(false, None), retry(2, 2));
        assert_eq!(a.failed(true, None), retry(1, 0), "progress starts again");
        assert_eq!(a.failed(false, None), retry(1, 1));
        assert_eq!(a.failed(false, None), retry(2, 2));
        let throttled = a.failed(true, Some(Duration::from_millis(300)));
        assert_eq!(
            throttled,
            Next::Retry {
                wait: Duration::from_millis(300),
                fruitless: 0
            }
        );
        a.failed(false, None);
        a.failed(false, None);
        assert_eq!(a.failed(false, None), Next::GiveUp { fruitless: 3 });
    }

    #[test]
    fn throttles_in_a_row_are_allowed_longer_than_other_failures_but_not_forever() {
        let policy = RetryPolicy {
            attempts_without_progress: 3,
            ..RetryPolicy::default()
        };
        let mut a = Attempts::new(&policy);
        let throttle = Some(Duration::from_millis(200));
        for n in 1..3 * THROTTLE_ALLOWANCE {
            assert_eq!(
                a.failed(false, throttle),
                Next::Retry {
                    wait: Duration::from_millis(200),
                    fruitless: n
                },
                "throttle {n}"
            );
        }
        assert_eq!(
            a.failed(false, throttle),
            Next::GiveUp {
                fruitless: 3 * THROTTLE_ALLOWANCE
            }
        );
        let mut a = Attempts::new(&policy);
        a.failed(false, throttle);
        a.failed(false, None);
        a.failed(false, None);
        assert!(matches!(
            a.failed(false, None),
            Next::GiveUp { fruitless: 4 }
        ));
    }

    #[test]
    fn backoff_doubles_per_attempt_without_progress_up_to_the_maximum() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (0..8).map(|n| policy.wait(None, n).as_secs()).collect();
        assert_eq!(waits, [1, 1, 2, 4, 8, 16, 30, 30]);
        let quick = RetryPolicy {
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..6)
            .map(|n| quick.wait(None, n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
        assert_eq!(quick.wait(None, 99), Duration::from_millis(50));
        assert_eq!(
            policy.wait(Some(Duration::from_millis(700)), 3),
            Duration::from_millis(700)
        );
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(policy.wait(hour, 1), Duration::from_secs(300));
    }
}
