//! A pass's outcome for a mailbox, in one line.

use super::MailboxOutcome;
use crate::report::MailboxSummary;
use crate::report::summary_line::SummaryLine;

impl MailboxSummary for MailboxOutcome {
    fn email(&self) -> &str {
        &self.email
    }

    fn summary_line(&self) -> String {
        let c = &self.counts;
        let mut line = SummaryLine::new(format!(
            "{}: {} staged ({} bytes, {} already stored), {} over the size cap, {} over the item cap, {} failed",
            self.email,
            c.staged,
            c.staged_bytes,
            c.deduplicated,
            c.skipped_size,
            c.skipped_item_cap,
            c.failed
        ));
        line.part(
            c.flags_updated + c.folders_gone + c.folders_restarted + c.reconnects > 0,
            format_args!(
                "{} flag change(s), {} folder(s) gone, {} re-read (UIDVALIDITY), {} reconnect(s)",
                c.flags_updated, c.folders_gone, c.folders_restarted, c.reconnects
            ),
        )
        .part(
            c.resumed > 0,
            format_args!("{} message(s) continued from a partial body", c.resumed),
        )
        .part(
            c.size_mismatches > 0,
            format_args!(
                "{} message(s) longer or shorter than announced (staged as sent)",
                c.size_mismatches
            ),
        )
        .part(
            c.deleted_on_source > 0,
            format_args!(
                "{} deleted on the source (kept in the stage, not uploaded if not yet)",
                c.deleted_on_source
            ),
        )
        .part(
            !c.left_out_namespaces.is_empty(),
            format_args!(
                "left out (other users' or shared namespaces, not this user's mail): {}",
                c.left_out_namespaces.join(", ")
            ),
        )
        .part(
            c.folders_not_mutf7 > 0,
            format_args!(
                "{} folder name(s) not modified UTF-7 (read by their bytes, shown as UTF-8)",
                c.folders_not_mutf7
            ),
        );
        line.finish(self.error.as_deref())
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::{MailboxOutcome, MailboxSummary};
    use crate::extract::MailboxCounts;

    #[test]
    fn a_pass_line_shows_its_counts_then_only_the_parts_that_happened() {
        let outcome = MailboxOutcome {
            email: "a@b.c".into(),
            counts: MailboxCounts {
                staged: 3,
                staged_bytes: 300,
                resumed: 1,
                left_out_namespaces: vec!["Public".into()],
                ..MailboxCounts::default()
            },
            error: Some("link cut".into()),
        };
        assert_eq!(
            outcome.summary_line(),
            "a@b.c: 3 staged (300 bytes, 0 already stored), 0 over the size cap, 0 over the \
             item cap, 0 failed; 1 message(s) continued from a partial body; left out (other \
             users' or shared namespaces, not this user's mail): Public; FAILED: link cut"
        );
    }
}
