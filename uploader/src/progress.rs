//! Showing an upload as it runs (the same bars and lines as the extractor's), and the
//! one-line account of a mailbox.

use mailstage::report::RunProgress;
use mailstage::report::bars::{LiveProgress, Show};
use mailstage::report::table::human_bytes;
use mailstage::upload::{UploadOutcome, mailbox_label};

/// Progress for `run`.
pub struct UploadBars {
    live: LiveProgress,
    /// A dry run: each mailbox's line tells its plan, not what was sent.
    dry_run: bool,
}

impl UploadBars {
    /// Chooses bars or lines from where standard error goes.
    pub fn new(show: Show, mailboxes: usize, dry_run: bool) -> Self {
        Self {
            live: LiveProgress::new(show, mailboxes, "upload"),
            dry_run,
        }
    }

    /// Removes the bars before the summary is printed.
    pub fn finish(&self) {
        self.live.finish();
    }
}

impl RunProgress<UploadOutcome> for UploadBars {
    fn mailbox_started(&self, email: &str) {
        self.live.started(email);
    }

    fn mailbox_planned(&self, email: &str, messages: u64, bytes: u64) {
        self.live.planned(email, messages, bytes);
    }

    fn advanced(&self, email: &str, messages: u64, bytes: u64) {
        self.live.advanced(email, messages, bytes);
    }

    fn mailbox_finished(&self, outcome: &UploadOutcome) {
        self.live.finished(
            &outcome.email,
            describe(outcome, self.dry_run),
            outcome.error.as_deref(),
        );
    }
}

/// One line about a mailbox's run (or its plan, for a dry run).
pub fn describe(o: &UploadOutcome, dry_run: bool) -> String {
    let c = &o.counts;
    let label = mailbox_label(&o.email, &o.target_mailbox);
    let mut line = if dry_run {
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
    if c.flags_set_later > 0 {
        line.push_str(&format!(
            "; \\Flagged set on {} message(s) stored earlier (not sent again)",
            c.flags_set_later
        ));
    }
    if c.flags_pending > 0 {
        line.push_str(&format!(
            "; \\Flagged still not set on {} stored message(s) (the target refused it; the next run tries again)",
            c.flags_pending
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
    for f in &o.refused_folders {
        line.push_str(&format!(
            "; {} message(s) of folder {:?} not stored: {} (the next run tries again)",
            f.messages, f.folder, f.words
        ));
    }
    if let Some(e) = &o.error {
        line.push_str(&format!("; FAILED: {e}"));
    }
    line
}
