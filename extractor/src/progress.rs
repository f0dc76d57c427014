//! Showing a pass as it runs: indicatif bars on a terminal (the batch's total and a line per
//! active mailbox: messages, bytes, rate, ETA), plain log lines otherwise, or nothing.

use mailstage::extract::MailboxOutcome;
use mailstage::report::RunProgress;
use mailstage::report::bars::LiveProgress;
use mailstage::report::bars::Show;

/// Progress for `batch start` / `batch sync`.
pub struct PassProgress(LiveProgress);

impl PassProgress {
    /// Chooses bars or lines from where standard error goes.
    pub fn new(show: Show, mailboxes: usize) -> Self {
        Self(LiveProgress::new(show, mailboxes, "fetch"))
    }

    /// Removes the bars before the summary is printed.
    pub fn finish(&self) {
        self.0.finish();
    }
}

impl RunProgress<MailboxOutcome> for PassProgress {
    fn mailbox_started(&self, email: &str) {
        self.0.started(email);
    }

    fn mailbox_planned(&self, email: &str, messages: u64, bytes: u64) {
        self.0.planned(email, messages, bytes);
    }

    fn advanced(&self, email: &str, messages: u64, bytes: u64) {
        self.0.advanced(email, messages, bytes);
    }

    fn mailbox_finished(&self, outcome: &MailboxOutcome) {
        self.0
            .finished(&outcome.email, describe(outcome), outcome.error.as_deref());
    }
}

/// One line about a mailbox's pass.
pub fn describe(o: &MailboxOutcome) -> String {
    let c = &o.counts;
    let mut line = format!(
        "{}: {} staged ({} bytes, {} already stored), {} over the size cap, {} over the item cap, {} failed",
        o.email,
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
    if let Some(e) = &o.error {
        line.push_str(&format!("; FAILED: {e}"));
    }
    line
}
