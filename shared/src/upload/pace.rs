//! How fast a run may send: the admin's ceilings on messages and bytes per second, shared by
//! all mailboxes of the run ([`Pace`]), and under them each target mailbox's throttle budget
//! as its throttles teach it ([`Budget`]).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The ceilings an admin sets (`--max-messages-per-second`, `--max-bytes-per-second`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateLimits {
    /// Messages per second, if limited.
    pub messages_per_second: Option<f64>,
    /// Bytes per second, if limited.
    pub bytes_per_second: Option<f64>,
}

/// The admin's ceilings, shared by all mailbox tasks of a run.
pub struct Pace {
    next_start: Mutex<Option<Instant>>,
    rates: RateLimits,
}

impl Pace {
    /// Messages start no faster than `rates` allow.
    pub fn new(rates: RateLimits) -> Self {
        Self {
            next_start: Mutex::new(None),
            rates,
        }
    }

    /// Waits for the ceilings to let a message of `bytes` start.
    pub async fn admit(&self, bytes: u64) {
        let cost = self.rates.messages_per_second.map_or(0.0, |r| 1.0 / r).max(
            self.rates
                .bytes_per_second
                .map_or(0.0, |r| bytes as f64 / r),
        );
        if cost > 0.0
            && let Some(at) = book(&self.next_start, cost)
        {
            tokio::time::sleep_until(at).await;
        }
    }
}

/// Books `cost` seconds after the later of now and the next free start; returns when the
/// booked message may start.
fn book(next_start: &Mutex<Option<Instant>>, cost: f64) -> Option<Instant> {
    let mut next = next_start.lock().ok()?;
    let now = Instant::now();
    let start = next.map_or(now, |t| t.max(now));
    *next = Some(start + Duration::from_secs_f64(cost));
    Some(start)
}

/// The rate cut to after a throttle, as a share of the rate that met it.
const DECREASE: f64 = 0.88;
/// The rate gained per second of successful APPENDs at the learned rate, as a share of the
/// rate set by the last cut (additive increase: the same step until the next throttle).
const INCREASE: f64 = 0.02;
/// The least rate a throttle teaches (messages per second).
const MIN_RATE: f64 = 0.5;
/// A suggested backoff up to this long reads as the server's refill interval (one more
/// APPEND allowed after it); a longer one is a penalty and teaches no rate.
const REFILL_HINT_MAX: Duration = Duration::from_secs(2);
/// The span over which the rate a throttle met is measured.
const OBSERVED_SPAN: Duration = Duration::from_secs(2);
/// Throttles within this span of a rate cut do not cut it again.
const CUT_SPAN: Duration = Duration::from_millis(500);
/// APPENDs in flight on one connection at most.
pub(crate) const MAX_WINDOW: usize = 16;

/// One target mailbox's APPEND budget as its throttles teach it, shared by the mailbox's
/// connections for the whole run: unpaced until the first throttle, then paced at a rate
/// cut to [`DECREASE`] of the rate that met the throttle (no more than the suggested
/// backoff's refill rate) and grown back by a fixed step per second of successes (AIMD),
/// so a long run settles just under the budget instead of bouncing off it.
///
/// It also keeps how many APPENDs a connection may have in flight: one after a throttle
/// (each one in flight when the link drops must be looked for on the target after the
/// reconnect, a search that may be throttled in turn), grown by one after every
/// [`MAX_WINDOW`] successes, up to [`MAX_WINDOW`].
pub(crate) struct Budget {
    state: Mutex<BudgetState>,
}

#[derive(Default)]
struct BudgetState {
    /// The rate APPENDs may start at (messages per second), once a throttle taught one.
    rate: Option<f64>,
    /// The rate gained per second of successes, set at the last cut.
    step: f64,
    /// When the next APPEND may start.
    next_start: Option<Instant>,
    /// Starts within the last [`OBSERVED_SPAN`].
    recent: std::collections::VecDeque<Instant>,
    /// Throttles met.
    throttles: u64,
    /// When the rate was last cut.
    last_cut: Option<Instant>,
    /// APPENDs a connection may have in flight.
    window: usize,
    /// Successes since the window last grew.
    streak: usize,
}

impl Budget {
    /// A budget nothing has taught yet.
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(BudgetState {
                window: MAX_WINDOW,
                ..BudgetState::default()
            }),
        }
    }

    /// Waits until the next APPEND may start under the learned rate, and books it.
    pub(crate) async fn admit(&self) {
        let at = {
            let Ok(mut s) = self.state.lock() else { return };
            let now = Instant::now();
            while s.recent.front().is_some_and(|&t| now - t > OBSERVED_SPAN) {
                s.recent.pop_front();
            }
            let start = match s.rate {
                None => now,
                Some(rate) => {
                    let start = s.next_start.map_or(now, |t| t.max(now));
                    s.next_start = Some(start + Duration::from_secs_f64(1.0 / rate));
                    start
                }
            };
            s.recent.push_back(start);
            start
        };
        tokio::time::sleep_until(at).await;
    }

    /// An APPEND was stored: the rate grows by its share of the step, the window by one
    /// after a window's worth.
    pub(crate) fn stored(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if let Some(rate) = s.rate {
            s.rate = Some(rate + s.step / rate);
        }
        s.streak += 1;
        if s.streak >= MAX_WINDOW && s.window < MAX_WINDOW {
            s.window += 1;
            s.streak = 0;
        }
    }

    /// APPENDs a connection may have in flight now.
    pub(crate) fn window(&self) -> usize {
        self.state.lock().map_or(1, |s| s.window)
    }

    /// The target throttled, suggesting a wait: cut the rate.
    pub(crate) fn throttled(&self, suggested: Option<Duration>) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        let span = s.recent.front().map_or(OBSERVED_SPAN, |&t| {
            (now - t).max(Duration::from_millis(100))
        });
        let observed = s.recent.len() as f64 / span.as_secs_f64();
        // The first throttle cuts from the rate it met; later ones from the learned rate. A
        // first throttle met while no APPEND was started (planning: LIST, SEARCH, CREATE)
        // measured no APPEND rate, and teaches one only through the refill hint.
        let met = s.rate.or((!s.recent.is_empty()).then_some(observed));
        let refill = suggested
            .filter(|d| *d <= REFILL_HINT_MAX && !d.is_zero())
            .map(|d| 1.0 / d.as_secs_f64());
        let met = match (met, refill) {
            (Some(m), Some(r)) => Some(m.min(r)),
            (m, r) => m.or(r),
        };
        // Throttles soon after a cut answer commands sent before it took effect (a burst of
        // them after one reconnect): they cut once, as losses in one window do in TCP.
        let settling = s.last_cut.is_some_and(|t| now - t < CUT_SPAN);
        let rate = met.map(|m| (m * DECREASE).max(MIN_RATE));
        if let Some(rate) = rate.filter(|_| !settling) {
            s.rate = Some(rate);
            s.step = (rate * INCREASE).max(MIN_RATE * INCREASE);
            s.last_cut = Some(now);
        }
        s.throttles += 1;
        s.recent.clear();
        s.window = 1;
        s.streak = 0;
        // Nothing starts before the suggested wait is over.
        let after = now + suggested.unwrap_or_default().min(REFILL_HINT_MAX);
        s.next_start = Some(s.next_start.map_or(after, |t| t.max(after)));
        tracing::debug!(rate, throttles = s.throttles, "throttled: pacing APPENDs");
    }

    /// The learned rate, if a throttle taught one.
    pub(crate) fn rate(&self) -> Option<f64> {
        self.state.lock().ok().and_then(|s| s.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_ceilings_space_messages_out() {
        let pace = Pace::new(RateLimits {
            messages_per_second: Some(10.0),
            bytes_per_second: Some(1000.0),
        });
        let t0 = Instant::now();
        for _ in 0..5 {
            pace.admit(10).await;
        }
        // 5 messages at 10/s: the fifth starts 0.4 s after the first.
        assert_eq!(t0.elapsed(), Duration::from_millis(400));
        pace.admit(1000).await;
        let t1 = Instant::now();
        pace.admit(10).await;
        // 1000 bytes at 1000 B/s: the next waits a second.
        assert_eq!(t1.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_teaches_a_rate_under_the_refill_hint_and_successes_grow_it() {
        let budget = Budget::new();
        let t0 = Instant::now();
        for _ in 0..100 {
            budget.admit().await;
        }
        assert_eq!(t0.elapsed(), Duration::ZERO, "unpaced until throttled");
        // 25 per second refill: a 40 ms hint.
        budget.throttled(Some(Duration::from_millis(40)));
        let rate = budget.rate().unwrap();
        assert!((rate - 25.0 * DECREASE).abs() < 1e-9, "{rate}");
        let t1 = Instant::now();
        for _ in 0..23 {
            budget.admit().await;
            budget.stored();
        }
        // The suggested wait, then 22 intervals at about 22 per second.
        let took = t1.elapsed().as_secs_f64();
        assert!((1.0..1.1).contains(&took), "{took}");
        let grown = budget.rate().unwrap();
        assert!(grown > rate && grown < rate * 1.03, "{rate} -> {grown}");
        // Met again at the grown rate: cut below it.
        budget.throttled(Some(Duration::from_millis(40)));
        assert!(budget.rate().unwrap() < grown * DECREASE + 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_before_any_append_teaches_no_rate_and_a_burst_cuts_once() {
        let budget = Budget::new();
        budget.throttled(None);
        assert_eq!(
            budget.rate(),
            None,
            "planning was throttled, no APPEND measured"
        );
        for _ in 0..40 {
            budget.admit().await;
        }
        budget.throttled(None);
        let cut = budget.rate().expect("a rate from the APPENDs seen");
        budget.throttled(None);
        budget.throttled(None);
        assert_eq!(budget.rate(), Some(cut), "a burst of throttles cuts once");
        tokio::time::advance(CUT_SPAN).await;
        budget.throttled(None);
        assert!(budget.rate().unwrap() < cut, "a later throttle cuts again");
    }

    #[test]
    fn a_throttle_closes_the_window_and_successes_open_it_again() {
        let budget = Budget::new();
        assert_eq!(budget.window(), MAX_WINDOW);
        budget.throttled(None);
        assert_eq!(budget.window(), 1);
        for _ in 1..MAX_WINDOW {
            budget.stored();
        }
        assert_eq!(budget.window(), 1);
        budget.stored();
        assert_eq!(budget.window(), 2);
        for _ in 0..MAX_WINDOW * MAX_WINDOW {
            budget.stored();
        }
        assert_eq!(budget.window(), MAX_WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_penalty_backoff_teaches_the_observed_rate_not_its_inverse() {
        let budget = Budget::new();
        for _ in 0..10 {
            budget.admit().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Ten starts a second, then a five-minute penalty.
        budget.throttled(Some(Duration::from_secs(300)));
        let rate = budget.rate().unwrap();
        assert!((rate - 10.0 * DECREASE).abs() < 0.5, "{rate}");
    }
}
