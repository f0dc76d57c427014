//! What went wrong earlier in a mailbox's run and must not repeat without end: a target
//! folder that vanished (created again once), a message the target keeps answering "not
//! now" (set aside after a few times so the rest of the mailbox goes on), a folder whose
//! messages meet `[LIMIT]` again and again (stopped).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// "Not now" answers (without a throttle) to one message in one run before it is set
/// aside as failed; the next run tries it again.
pub(crate) const MAX_DEFERRALS: u32 = 3;

/// `[LIMIT]` refusals in a row in one folder (none stored between) after which the folder
/// is taken as full and stops.
pub(crate) const MAX_LIMITS_IN_A_ROW: u32 = 20;

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
    /// `[LIMIT]` refusals in a row in each target folder (by its path).
    limited: Mutex<HashMap<Vec<String>, u32>>,
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

    /// Counts a `[LIMIT]` refusal in folder `path`; returns how many it has had in a row.
    pub(crate) fn limited(&self, path: &[String]) -> u32 {
        let Ok(mut seen) = self.limited.lock() else {
            return 0;
        };
        let n = seen.entry(path.to_vec()).or_default();
        *n += 1;
        *n
    }

    /// A message was stored in folder `path`: its `[LIMIT]` refusals are no longer in a row.
    pub(crate) fn stored_in(&self, path: &[String]) {
        if let Ok(mut seen) = self.limited.lock()
            && !seen.is_empty()
        {
            seen.remove(path);
        }
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
        let other = vec!["Other".to_string()];
        assert_eq!(
            (s.limited(&path), s.limited(&path), s.limited(&other)),
            (1, 2, 1)
        );
        s.stored_in(&path);
        assert_eq!((s.limited(&path), s.limited(&other)), (1, 2));
    }
}
