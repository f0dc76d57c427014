//! Live progress of a run over mailboxes: indicatif bars on a terminal (the batch's bytes
//! with rate and ETA, and a line per active mailbox: messages, rate), plain log lines when
//! standard error is not a terminal, or nothing.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{MailboxSummary, RunProgress};

/// How much to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// Bars on a terminal, lines elsewhere.
    Auto,
    /// Nothing while running (the summary is still printed).
    Quiet,
}

/// Progress of one run, shown as [`RunProgress`] of either pipeline.
pub struct LiveProgress {
    bars: Option<Bars>,
    lines: bool,
    /// The verb of a mailbox's planned work ("fetch", "upload").
    verb: &'static str,
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    mailboxes: Mutex<HashMap<String, MailboxBar>>,
}

impl Bars {
    /// Runs `f` on a mailbox's line, if it has one.
    fn with_line(&self, email: &str, f: impl FnOnce(&mut MailboxBar)) {
        if let Some(line) = self
            .mailboxes
            .lock()
            .ok()
            .as_mut()
            .and_then(|m| m.get_mut(email))
        {
            f(line);
        }
    }
}

/// A mailbox's line, and the bytes it added to the total (a reconnect plans again, for
/// what is left, so the total is corrected rather than added to).
struct MailboxBar {
    bar: ProgressBar,
    planned_bytes: u64,
    done_bytes: u64,
}

const TOTAL: &str =
    "{prefix:>32} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}";
const MAILBOX: &str = "{prefix:>32} [{bar:30}] {pos}/{len} msgs {rate} {msg}";
/// Before anything is planned, a bar of length 0 would be drawn full: words instead.
const WAITING: &str = "{prefix:>32} {msg}";

impl LiveProgress {
    /// Chooses bars or lines from where standard error goes; `verb` names the work.
    pub fn new(show: Show, mailboxes: usize, verb: &'static str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bars = (show == Show::Auto && terminal).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let total = multi.add(ProgressBar::new(0));
            total.set_style(style(WAITING));
            total.set_prefix(format!("{mailboxes} mailbox(es)"));
            total.set_message("starting");
            Bars {
                multi,
                total,
                mailboxes: Mutex::new(HashMap::new()),
            }
        });
        Self {
            lines: show == Show::Auto && !terminal,
            bars,
            verb,
        }
    }

    /// Runs `run` with a new display (as [`LiveProgress::new`]), removes the bars whatever
    /// it returns, and returns its result with [`LiveProgress::showed_summaries`].
    pub fn around<T>(
        show: Show,
        mailboxes: usize,
        verb: &'static str,
        run: impl FnOnce(std::sync::Arc<Self>) -> T,
    ) -> (T, bool) {
        let progress = std::sync::Arc::new(Self::new(show, mailboxes, verb));
        let result = run(progress.clone());
        progress.finish();
        (result, progress.showed_summaries())
    }

    /// True when each mailbox's summary line was shown above the bars as it finished, on a
    /// terminal that standard output goes to as well: the final list need not repeat them
    /// (redirected, standard output is the record and gets every line).
    pub fn showed_summaries(&self) -> bool {
        self.bars.is_some() && std::io::stdout().is_terminal()
    }

    /// Removes the bars before the summary is printed.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.total.finish_and_clear();
            let _ = b.multi.clear();
        }
    }

    /// A mailbox's run begins.
    pub fn started(&self, email: &str) {
        if let Some(b) = &self.bars {
            let bar = b.multi.add(ProgressBar::new(0));
            bar.set_style(style(WAITING));
            bar.set_prefix(email.to_owned());
            bar.set_message("listing folders");
            if let Ok(mut map) = b.mailboxes.lock() {
                let line = MailboxBar {
                    bar,
                    planned_bytes: 0,
                    done_bytes: 0,
                };
                map.insert(email.to_owned(), line);
            }
        } else if self.lines {
            eprintln!("{email}: started");
        }
    }

    /// A mailbox's work is known: `messages` and `bytes` still to do (after a reconnect,
    /// what is left).
    pub fn planned(&self, email: &str, messages: u64, bytes: u64) {
        if let Some(b) = &self.bars {
            b.with_line(email, |line| {
                b.total.set_style(style(TOTAL));
                line.bar.set_style(style(MAILBOX));
                let planned = line.done_bytes + bytes;
                let total = b.total.length().unwrap_or(0);
                b.total
                    .set_length((total + planned).saturating_sub(line.planned_bytes));
                line.planned_bytes = planned;
                line.bar.set_length(line.bar.position() + messages);
                line.bar.set_message(String::new());
            });
        } else if self.lines {
            eprintln!(
                "{email}: {messages} message(s), {bytes} bytes to {}",
                self.verb
            );
        }
    }

    /// Messages and bytes done.
    pub fn advanced(&self, email: &str, messages: u64, bytes: u64) {
        if let Some(b) = &self.bars {
            b.total.inc(bytes);
            b.with_line(email, |line| {
                line.done_bytes += bytes;
                line.bar.inc(messages);
            });
        }
    }

    /// A mailbox's run ended; `line` describes it (printed above the bars on a terminal).
    pub fn finished(&self, email: &str, line: String, error: Option<&str>) {
        if let Some(b) = &self.bars {
            if let Some(line) = b.mailboxes.lock().ok().and_then(|mut m| m.remove(email)) {
                line.bar.finish_and_clear();
                b.multi.remove(&line.bar);
            }
            let _ = b.multi.println(super::terminal::printable(&line));
        } else if self.lines {
            // The counts come in the summary at the end; a log only needs the moment.
            match error {
                Some(e) => eprintln!(
                    "{email}: finished, FAILED: {}",
                    super::terminal::printable(e)
                ),
                None => eprintln!("{email}: finished"),
            }
        }
    }
}

/// The one progress display of both pipelines: each mailbox's line ends with its outcome's
/// summary.
impl<O: MailboxSummary> RunProgress<O> for LiveProgress {
    fn mailbox_started(&self, email: &str) {
        self.started(email);
    }

    fn mailbox_planned(&self, email: &str, messages: u64, bytes: u64) {
        self.planned(email, messages, bytes);
    }

    fn advanced(&self, email: &str, messages: u64, bytes: u64) {
        LiveProgress::advanced(self, email, messages, bytes);
    }

    fn mailbox_finished(&self, outcome: &O) {
        self.finished(outcome.email(), outcome.summary_line(), outcome.error());
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}/s", s.per_sec());
            },
        )
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bars drawn nowhere, as on a terminal.
    fn hidden() -> LiveProgress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        let total = multi.add(ProgressBar::new(0));
        LiveProgress {
            bars: Some(Bars {
                multi,
                total,
                mailboxes: Mutex::new(HashMap::new()),
            }),
            lines: false,
            verb: "fetch",
        }
    }

    #[test]
    fn a_plan_made_again_after_a_reconnect_replaces_the_first() {
        let p = hidden();
        p.started("a@x");
        p.started("b@x");
        p.planned("a@x", 10, 1000);
        p.planned("b@x", 5, 500);
        p.advanced("a@x", 4, 400);
        // a@x reconnects and plans what is left: 6 messages, 600 bytes.
        p.planned("a@x", 6, 600);
        let b = p.bars.as_ref().unwrap();
        assert_eq!(b.total.length(), Some(1500));
        assert_eq!(b.total.position(), 400);
        let map = b.mailboxes.lock().unwrap();
        assert_eq!(map["a@x"].bar.length(), Some(10));
        assert_eq!(map["a@x"].bar.position(), 4);
    }
}
