//! The data consistency grade of a mailbox and of a batch (as Microsoft's data consistency
//! score: Perfect / Good / Investigate / Poor). The rule, as the README states it:
//!
//! - **Poor**: the mailbox's pass (or its upload run) failed; or some folder's source count
//!   does not reconcile (source − staged − skipped − failed ≠ 0); or failed fetches plus
//!   refusals exceed [`POOR_SHARE_PERCENT`] % of the mailbox's accounted messages.
//! - **Investigate**: some message failed on the source or was refused by the target (at or
//!   under that share); or messages are pending or in flight for the target; or the mailbox
//!   was never extracted, or a folder read has no source count recorded.
//! - **Good**: only messages the batch's own caps left behind (size cap, item cap).
//! - **Perfect**: every message the source reported is staged (and, for a target, uploaded)
//!   or lies in a folder the batch's patterns exclude.
//!
//! A batch's grade is its worst mailbox's. An admin's `batch approve-skipped` is recorded
//! and shown beside the grade; it does not change it.

use super::reconcile::Counts;

/// Failures plus refusals above this share of a mailbox's messages make it Poor.
pub const POOR_SHARE_PERCENT: u64 = 1;

/// A data consistency grade, best first.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Grade {
    /// Everything arrived or was excluded by the admin's own rules.
    Perfect,
    /// Only the admin's caps left messages behind.
    Good,
    /// Failures or refusals under the threshold, or work still to do.
    Investigate,
    /// A failed mailbox, an unexplained difference, or failures above the threshold.
    Poor,
}

impl Grade {
    /// The grade's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Perfect => "Perfect",
            Grade::Good => "Good",
            Grade::Investigate => "Investigate",
            Grade::Poor => "Poor",
        }
    }
}

impl std::fmt::Display for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What besides the counts a mailbox's grade depends on.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradeFacts {
    /// Its pass or its upload run failed.
    pub failed_run: bool,
    /// It was never extracted.
    pub never_extracted: bool,
    /// A folder that is read has no source count recorded.
    pub source_unknown: bool,
    /// Some folder's source count does not reconcile.
    pub unexplained: bool,
    /// The report covers a target (pending and in-flight messages count).
    pub with_target: bool,
}

/// A mailbox's grade from its counts and facts (the rule above).
pub fn grade_mailbox(c: &Counts, f: &GradeFacts) -> Grade {
    let problems = c.failed.messages + c.refused.messages;
    let accounted = c.staged.messages + c.skipped() + c.failed.messages;
    if f.failed_run || f.unexplained || problems * 100 > accounted * POOR_SHARE_PERCENT {
        Grade::Poor
    } else if problems > 0
        || f.never_extracted
        || f.source_unknown
        || (f.with_target && c.pending.messages + c.in_flight.messages > 0)
    {
        Grade::Investigate
    } else if c.skipped() > 0 {
        Grade::Good
    } else {
        Grade::Perfect
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::index::Tally;

    fn t(messages: u64) -> Tally {
        Tally { messages, bytes: 0 }
    }

    #[test]
    fn the_rule_as_written() {
        let clean = Counts {
            staged: t(200),
            uploaded: t(200),
            ..Counts::default()
        };
        let facts = GradeFacts {
            with_target: true,
            ..GradeFacts::default()
        };
        assert_eq!(grade_mailbox(&clean, &facts), Grade::Perfect);
        let capped = Counts {
            skipped_size: t(1),
            ..clean
        };
        assert_eq!(grade_mailbox(&capped, &facts), Grade::Good);
        let one_refusal = Counts {
            refused: t(1),
            uploaded: t(199),
            ..clean
        };
        assert_eq!(grade_mailbox(&one_refusal, &facts), Grade::Investigate);
        let many = Counts {
            refused: t(3),
            uploaded: t(197),
            ..clean
        };
        assert_eq!(grade_mailbox(&many, &facts), Grade::Poor);
        let pending = Counts {
            pending: t(5),
            uploaded: t(195),
            ..clean
        };
        assert_eq!(grade_mailbox(&pending, &facts), Grade::Investigate);
        let extraction_only = GradeFacts::default();
        assert_eq!(grade_mailbox(&pending, &extraction_only), Grade::Perfect);
        let unexplained = GradeFacts {
            unexplained: true,
            ..facts
        };
        assert_eq!(grade_mailbox(&clean, &unexplained), Grade::Poor);
        assert!(Grade::Poor > Grade::Investigate && Grade::Good > Grade::Perfect);
    }
}
