//! What went wrong earlier in a mailbox's run and must not repeat without end: a target
//! folder that vanished (created again once), a message the target keeps answering "not
//! now" (set aside after a few times so the rest of the mailbox goes on).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// "Not now" answers (without a throttle) to one message in one run before it is set
/// aside as failed; the next run tries it again.
pub(crate) const MAX_DEFERRALS: u32 = 3;

/// A mailbox's setbacks in this run, shared by its connections.
#[derive(Default)]
pub(crate) struct Setbacks {
    /// The mailbox's current attempt.
    attempt: AtomicU32,
    /// Target folders that vanished while the run sent to them (an APPEND answered
    /// `[TRYCREATE]`: deleted on the target meanwhile), and the attempt each vanished in.
    vanished: Mutex<HashMap<Vec<String>, u32>>,
    /// "Not now" answers to each message (by its row).
    deferred: Mutex<HashMap<i64, u32>>,
}

impl Setbacks {
    /// A new attempt (reconnect and plan) starts.
    pub(crate) fn next_attempt(&self) {
        self.attempt.fetch_add(1, Ordering::Relaxed);
    }

    /// True when the vanished folder `path` is to be created again by the next attempt and
    /// its messages sent once more: it did not vanish earlier in this run (the answers of
    /// one attempt, several APPENDs in flight to it, count as one vanishing). If it
    /// vanishes again, its messages are refused with the target's words.
    pub(crate) fn recreate(&self, path: &[String]) -> bool {
        let attempt = self.attempt.load(Ordering::Relaxed);
        let Ok(mut seen) = self.vanished.lock() else {
            return false;
        };
        *seen.entry(path.to_vec()).or_insert(attempt) == attempt
    }

    /// Counts a "not now" answer to the message of `row`; returns how many it has had in
    /// this run.
    pub(crate) fn deferred(&self, row: i64) -> u32 {
        let Ok(mut seen) = self.deferred.lock() else {
            return MAX_DEFERRALS;
        };
        let n = seen.entry(row).or_default();
        *n += 1;
        *n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_recreated_once_per_run_and_a_message_deferred_is_counted() {
        let s = Setbacks::default();
        s.next_attempt();
        let path = vec!["Projects".to_string()];
        assert!(s.recreate(&path));
        assert!(s.recreate(&path), "the same attempt's other answers");
        s.next_attempt();
        assert!(
            !s.recreate(&path),
            "vanished again after it was created again"
        );
        assert_eq!((s.deferred(7), s.deferred(7), s.deferred(8)), (1, 2, 1));
    }
}
