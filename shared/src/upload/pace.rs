//! How fast a run may send: how many APPENDs at once (cut in half when the target throttles,
//! grown back by one after a run of successes) and the admin's ceilings on messages and
//! bytes per second.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Successful APPENDs in a row, without a throttle, before one more may run at once.
const GROW_AFTER: u64 = 50;

/// The ceilings an admin sets (`--max-messages-per-second`, `--max-bytes-per-second`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateLimits {
    /// Messages per second, if limited.
    pub messages_per_second: Option<f64>,
    /// Bytes per second, if limited.
    pub bytes_per_second: Option<f64>,
}

/// The pace shared by all mailbox tasks of a run.
pub struct Pace {
    slots: Semaphore,
    max: usize,
    state: Mutex<PaceState>,
    rates: RateLimits,
}

struct PaceState {
    /// APPENDs allowed at once now.
    current: usize,
    /// Slots to take away as they come back (after a throttle).
    owed: usize,
    /// Successes since the last throttle or growth.
    streak: u64,
    /// When the next message may start under the rate ceilings.
    next_start: Option<Instant>,
}

impl Pace {
    /// At most `max` APPENDs at once, under `rates`.
    pub fn new(max: usize, rates: RateLimits) -> Self {
        let max = max.max(1);
        Self {
            slots: Semaphore::new(max),
            max,
            state: Mutex::new(PaceState {
                current: max,
                owed: 0,
                streak: 0,
                next_start: None,
            }),
            rates,
        }
    }

    /// Waits for a slot and for the rate ceilings, for a message of `bytes`.
    pub async fn admit(&self, bytes: u64) -> Option<SemaphorePermit<'_>> {
        let permit = self.slots.acquire().await.ok()?;
        let wait_until = self.reserve(bytes);
        if let Some(at) = wait_until {
            tokio::time::sleep_until(at).await;
        }
        Some(permit)
    }

    /// Books the message's share of the rate ceilings; returns when it may start.
    fn reserve(&self, bytes: u64) -> Option<Instant> {
        let cost = self.rates.messages_per_second.map_or(0.0, |r| 1.0 / r).max(
            self.rates
                .bytes_per_second
                .map_or(0.0, |r| bytes as f64 / r),
        );
        if cost <= 0.0 {
            return None;
        }
        let mut s = self.state.lock().ok()?;
        let now = Instant::now();
        let start = s.next_start.map_or(now, |t| t.max(now));
        s.next_start = Some(start + Duration::from_secs_f64(cost));
        Some(start)
    }

    /// Hands back a slot after an APPEND; keeps it when slots are owed after a throttle.
    pub fn release(&self, permit: SemaphorePermit<'_>, succeeded: bool) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if s.owed > 0 {
            s.owed -= 1;
            permit.forget();
            return;
        }
        drop(permit);
        if succeeded {
            s.streak += 1;
            if s.streak >= GROW_AFTER && s.current < self.max {
                s.current += 1;
                s.streak = 0;
                self.slots.add_permits(1);
            }
        }
    }

    /// The target throttled: halve what may run at once (never below one).
    pub fn throttled(&self) {
        if let Ok(mut s) = self.state.lock() {
            let target = (s.current / 2).max(1);
            s.owed += s.current - target;
            s.current = target;
            s.streak = 0;
        }
    }

    /// APPENDs allowed at once now.
    #[cfg(test)]
    fn current(&self) -> usize {
        self.state.lock().map_or(1, |s| s.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_and_successes_grow_back_one_at_a_time() {
        let pace = Pace::new(8, RateLimits::default());
        pace.throttled();
        assert_eq!(pace.current(), 4);
        pace.throttled();
        assert_eq!(pace.current(), 2);
        // The owed slots are taken as permits come back: only 2 can be held afterwards.
        for _ in 0..6 {
            let p = pace.admit(0).await.unwrap();
            pace.release(p, true);
        }
        let a = pace.admit(0).await.unwrap();
        let b = pace.admit(0).await.unwrap();
        assert!(pace.slots.try_acquire().is_err());
        pace.release(a, true);
        pace.release(b, true);
        for _ in 0..GROW_AFTER {
            let p = pace.admit(0).await.unwrap();
            pace.release(p, true);
        }
        assert_eq!(pace.current(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_ceilings_space_messages_out() {
        let pace = Pace::new(
            4,
            RateLimits {
                messages_per_second: Some(10.0),
                bytes_per_second: Some(1000.0),
            },
        );
        let t0 = Instant::now();
        for _ in 0..5 {
            let p = pace.admit(10).await.unwrap();
            pace.release(p, true);
        }
        // 5 messages at 10/s: the fifth starts 0.4 s after the first.
        assert_eq!(t0.elapsed(), Duration::from_millis(400));
        let p = pace.admit(1000).await.unwrap();
        pace.release(p, true);
        let t1 = Instant::now();
        let p = pace.admit(10).await.unwrap();
        pace.release(p, true);
        // 1000 bytes at 1000 B/s: the next waits a second.
        assert_eq!(t1.elapsed(), Duration::from_secs(1));
    }
}
