//! An upload's outcome for a mailbox, in one line (its plan, for a dry run).

use super::{UploadOutcome, mailbox_label};
use crate::report::MailboxSummary;
use crate::report::summary_line::SummaryLine;
use crate::report::table::human_bytes;

impl MailboxSummary for UploadOutcome {
    fn email(&self) -> &str {
        &self.email
    }

    fn summary_line(&self) -> String {
        let c = &self.counts;
        let label = mailbox_label(&self.email, &self.target_mailbox);
        let mut line = SummaryLine::new(if self.dry_run {
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
        });
        line.part(
            c.found_present + c.resent > 0,
            format_args!(
                "after an interruption {} found already on the target, {} sent again",
                c.found_present, c.resent
            ),
        )
        .part(
            c.set_aside > 0,
            format_args!(
                "{} set aside (the link broke or the target answered \"not now\" each time they were sent; the next run tries them again)",
                c.set_aside
            ),
        )
        .part(
            c.adopted > 0,
            format_args!(
                "{} re-read after a UIDVALIDITY change kept their upload records (not sent again)",
                c.adopted
            ),
        )
        .part(
            c.reconnects + c.throttled > 0,
            format_args!(
                "{} reconnect(s), throttled {} time(s) ({} ms waited)",
                c.reconnects, c.throttled, c.throttle_wait_ms
            ),
        );
        for f in &self.refused_folders {
            line.part(
                true,
                format_args!(
                    "{} message(s) of folder {:?} not stored: {} (the next run tries again)",
                    f.messages, f.folder, f.words
                ),
            );
        }
        line.finish(self.error.as_deref())
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::{MailboxSummary, UploadOutcome};
    use crate::upload::{RefusedFolder, UploadCounts};

    #[test]
    fn an_upload_line_names_the_target_mailbox_and_each_refused_folder() {
        let outcome = UploadOutcome {
            email: "a@b.c".into(),
            target_mailbox: "d@e.f".into(),
            counts: UploadCounts {
                uploaded: 2,
                uploaded_bytes: 2048,
                throttled: 1,
                throttle_wait_ms: 500,
                ..UploadCounts::default()
            },
            folders: Vec::new(),
            refused_folders: vec![RefusedFolder {
                folder: "Big".into(),
                path: vec!["Big".into()],
                words: "too large".into(),
                messages: 1,
            }],
            error: None,
            size_limit: None,
            predicted_skips: Vec::new(),
            last_refusal: None,
            dry_run: false,
        };
        let line = outcome.summary_line();
        assert!(line.starts_with("a@b.c -> d@e.f: 2 uploaded ("), "{line}");
        assert!(
            line.ends_with(
                "), 0 refused, 0 folder(s) created; 0 reconnect(s), throttled 1 time(s) \
                 (500 ms waited); 1 message(s) of folder \"Big\" not stored: too large (the \
                 next run tries again)"
            ),
            "{line}"
        );
    }
}
