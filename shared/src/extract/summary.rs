//! A pass's outcome for a mailbox, in one line.

use super::MailboxOutcome;
use crate::report::MailboxSummary;

impl MailboxSummary for MailboxOutcome {
    fn email(&self) -> &str {
        &self.email
    }

    fn summary_line(&self) -> String {
        let c = &self.counts;
        let mut line = format!(
            "{}: {} staged ({} bytes, {} already stored), {} over the size cap, {} over the item cap, {} failed",
            self.email,
            c.staged,
            c.staged_bytes,
            c.deduplicated,
            c.skipped_size,
            c.skipped_item_cap,
            c.failed
        );
        if c.flags_updated + c.folders_gone + c.folders_restarted + c.reconnects > 0 {
            line.push_str(&format!(
                "; {} flag change(s), {} folder(s) gone, {} re-read (UIDVALIDITY), {} reconnect(s)",
                c.flags_updated, c.folders_gone, c.folders_restarted, c.reconnects
            ));
        }
        if c.resumed > 0 {
            line.push_str(&format!(
                "; {} message(s) continued from a partial body",
                c.resumed
            ));
        }
        if c.size_mismatches > 0 {
            line.push_str(&format!(
                "; {} message(s) longer or shorter than announced (staged as sent)",
                c.size_mismatches
            ));
        }
        if c.deleted_on_source > 0 {
            line.push_str(&format!(
                "; {} deleted on the source (kept in the stage, not uploaded if not yet)",
                c.deleted_on_source
            ));
        }
        if !c.left_out_namespaces.is_empty() {
            line.push_str(&format!(
                "; left out (other users' or shared namespaces, not this user's mail): {}",
                c.left_out_namespaces.join(", ")
            ));
        }
        if c.folders_not_mutf7 > 0 {
            line.push_str(&format!(
                "; {} folder name(s) not modified UTF-7 (read by their bytes, shown as UTF-8)",
                c.folders_not_mutf7
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
