//! What the binaries show an admin: aligned tables and `Key : value` lists ([`table`]), and
//! live progress ([`bars`]): indicatif bars on a terminal, plain log lines elsewhere.

pub mod bars;
pub mod table;

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
