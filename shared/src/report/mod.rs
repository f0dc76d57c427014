//! What the binaries show an admin: aligned tables and `Key : value` lists ([`table`]), and
//! live progress ([`bars`]): indicatif bars on a terminal, plain log lines elsewhere; a
//! server's control characters escaped on their way to a terminal ([`terminal`]); the
//! migration report ([`reconcile`], [`grade`]) and its formats; a mailbox's one-line summary
//! ([`summary_line`]).

pub mod bars;
mod charts;
pub mod formats;
pub mod grade;
pub mod html;
pub mod reconcile;
pub mod summary_line;
pub mod table;
pub mod terminal;

/// What a run over a batch's mailboxes reports as it goes (the library has no UI; the
/// binaries draw it). Extraction and upload both report through it; `O` is a mailbox's
/// outcome.
pub trait RunProgress<O>: Send + Sync {
    /// A mailbox's run begins.
    fn mailbox_started(&self, _email: &str) {}
    /// Its work is known: messages and bytes still to do (after a reconnect, what is left).
    fn mailbox_planned(&self, _email: &str, _messages: u64, _bytes: u64) {}
    /// Messages and bytes done for good (staged, or confirmed by the target).
    fn advanced(&self, _email: &str, _messages: u64, _bytes: u64) {}
    /// A mailbox's run ended.
    fn mailbox_finished(&self, _outcome: &O) {}
}

/// A mailbox's outcome as an admin reads it: one line, and the error when it failed. Both
/// pipelines' outcomes have one, so one progress display ([`bars::LiveProgress`]) and one
/// summary serve both binaries.
pub trait MailboxSummary {
    /// The mailbox's address.
    fn email(&self) -> &str;
    /// One line about what the run did (counts, and the failure at the end).
    fn summary_line(&self) -> String;
    /// Why it failed, if it did.
    fn error(&self) -> Option<&str>;
}

/// A [`RunProgress`] that shows nothing.
pub struct Silent;

impl<O> RunProgress<O> for Silent {}

/// Writes a value as pretty JSON and a newline.
pub fn print_json(
    out: &mut dyn std::io::Write,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}
