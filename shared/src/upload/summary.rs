//! An upload's outcome for a mailbox, in one line (its plan, for a dry run).

use super::{UploadOutcome, mailbox_label};
use crate::report::MailboxSummary;
use crate::report::table::human_bytes;

impl MailboxSummary for UploadOutcome {
    fn email(&self) -> &str {
        &self.email
    }

    fn summary_line(&self) -> String {
        let c = &self.counts;
        let label = mailbox_label(&self.email, &self.target_mailbox);
        let mut line = if self.dry_run {
            format!(
                "{}: would upload {} message(s), {}; {} in folders left out",
                label,
                c.planned,
                human_bytes(c.planned_bytes),
                c.left_out
            )
        } else {
            format!(
                "{}: {} uploaded ({}), {} refused, {} folder(s) created",
                label,
                c.uploaded,
                human_bytes(c.uploaded_bytes),
                c.refused,
                c.folders_created
            )
        };
        if c.found_present + c.resent > 0 {
            line.push_str(&format!(
                "; after an interruption {} found already on the target, {} sent again",
                c.found_present, c.resent
            ));
        }
        if c.set_aside > 0 {
            line.push_str(&format!(
                "; {} set aside (the link broke each time they were sent; the next run tries them again)",
                c.set_aside
            ));
        }
        if c.adopted > 0 {
            line.push_str(&format!(
                "; {} re-read after a UIDVALIDITY change kept their upload records (not sent again)",
                c.adopted
            ));
        }
        if c.reconnects + c.throttled > 0 {
            line.push_str(&format!(
                "; {} reconnect(s), throttled {} time(s) ({} ms waited)",
                c.reconnects, c.throttled, c.throttle_wait_ms
            ));
        }
        if let Some(e) = &self.error {
            line.push_str(&format!("; FAILED: {e}"));
        }
        line
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}
