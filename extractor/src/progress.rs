//! Showing a pass as it runs: indicatif bars on a terminal (the batch's total and a line per
//! active mailbox: messages, bytes, rate, ETA), plain log lines otherwise, or nothing.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mailstage::extract::{MailboxOutcome, Progress};

/// How much to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// Bars on a terminal, lines elsewhere.
    Auto,
    /// Nothing while running (the summary is still printed).
    Quiet,
}

/// Progress for `batch start` / `batch sync`.
pub struct PassProgress {
    bars: Option<Bars>,
    lines: bool,
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    mailboxes: Mutex<HashMap<String, ProgressBar>>,
}

const TOTAL: &str =
    "{prefix:>32} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";
const MAILBOX: &str = "{prefix:>32} [{bar:30}] {pos}/{len} msgs {bytes_per_sec} {msg}";

impl PassProgress {
    /// Chooses bars or lines from where standard error goes.
    pub fn new(show: Show, mailboxes: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bars = (show == Show::Auto && terminal).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let total = multi.add(ProgressBar::new(0));
            total.set_style(style(TOTAL));
            total.set_prefix(format!("{mailboxes} mailbox(es)"));
            Bars {
                multi,
                total,
                mailboxes: Mutex::new(HashMap::new()),
            }
        });
        Self {
            lines: show == Show::Auto && !terminal,
            bars,
        }
    }

    /// Removes the bars before the summary is printed.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.total.finish_and_clear();
            let _ = b.multi.clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Progress for PassProgress {
    fn mailbox_started(&self, email: &str) {
        if let Some(b) = &self.bars {
            let bar = b.multi.add(ProgressBar::new(0));
            bar.set_style(style(MAILBOX));
            bar.set_prefix(email.to_owned());
            bar.set_message("listing folders");
            if let Ok(mut map) = b.mailboxes.lock() {
                map.insert(email.to_owned(), bar);
            }
        } else if self.lines {
            eprintln!("{email}: started");
        }
    }

    fn mailbox_planned(&self, email: &str, messages: u64, bytes: u64) {
        if let Some(b) = &self.bars {
            b.total.inc_length(bytes);
            if let Some(bar) = b.mailboxes.lock().ok().and_then(|m| m.get(email).cloned()) {
                bar.set_length(messages);
                bar.set_message(String::new());
            }
        } else if self.lines {
            eprintln!("{email}: {messages} message(s), {bytes} bytes to fetch");
        }
    }

    fn staged(&self, email: &str, messages: u64, bytes: u64) {
        if let Some(b) = &self.bars {
            b.total.inc(bytes);
            if let Some(bar) = b.mailboxes.lock().ok().and_then(|m| m.get(email).cloned()) {
                bar.inc(messages);
            }
        }
    }

    fn mailbox_finished(&self, outcome: &MailboxOutcome) {
        let line = describe(outcome);
        if let Some(b) = &self.bars {
            if let Some(bar) = b
                .mailboxes
                .lock()
                .ok()
                .and_then(|mut m| m.remove(&outcome.email))
            {
                bar.finish_and_clear();
                b.multi.remove(&bar);
            }
            let _ = b.multi.println(line);
        } else if self.lines {
            // The counts come in the summary at the end; a log only needs the moment.
            match &outcome.error {
                Some(e) => eprintln!("{}: finished, FAILED: {e}", outcome.email),
                None => eprintln!("{}: finished", outcome.email),
            }
        }
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
    if let Some(e) = &o.error {
        line.push_str(&format!("; FAILED: {e}"));
    }
    line
}
