//! The migration report written out: text (the summary an admin pastes into a ticket), JSON
//! (the whole model), CSV (one row per message that needs attention, or every message) and
//! HTML ([`super::html`]).

use std::fmt::Write as _;

use super::reconcile::{BatchReport, Counts};
use super::table::{Align, Table, grouped, human_bytes};

/// How a report is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ReportFormat {
    /// A summary for a ticket.
    #[default]
    Text,
    /// The whole model.
    Json,
    /// One row per message.
    Csv,
    /// One self-contained page for a browser.
    Html,
}

/// The report in `format`.
pub fn render(report: &BatchReport, format: ReportFormat) -> Result<String, std::io::Error> {
    match format {
        ReportFormat::Text => Ok(text(report)),
        ReportFormat::Json => serde_json::to_string_pretty(report)
            .map_err(std::io::Error::other)
            .map(|mut s| {
                s.push('\n');
                s
            }),
        ReportFormat::Csv => csv(report),
        ReportFormat::Html => Ok(super::html::html(report)),
    }
}

/// The columns of the CSV, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "mailbox",
    "folder",
    "uid",
    "message_id",
    "subject",
    "date",
    "size",
    "state",
    "reason",
    "server_words",
    "target_folder",
    "target_id",
];

fn csv(r: &BatchReport) -> Result<String, std::io::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    for (email, i) in r.items() {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        w.write_record([
            email.to_owned(),
            i.folder.clone(),
            i.uid.to_string(),
            o(&i.message_id),
            o(&i.subject),
            o(&i.date),
            i.size.to_string(),
            i.state.clone(),
            o(&i.reason),
            o(&i.server_words),
            o(&i.target_folder),
            o(&i.target_id),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

/// The phase a report covers, in words.
pub fn phase(r: &BatchReport) -> String {
    match &r.target {
        Some(t) => format!("extraction and upload to target {t:?}"),
        None => "extraction".into(),
    }
}

/// `N (size)` for a tally.
fn nb(messages: u64, bytes: u64) -> String {
    format!("{} ({})", grouped(messages), human_bytes(bytes))
}

/// The totals as `label: value` lines (the same in text and HTML).
pub fn total_lines(c: &Counts, with_target: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("source", grouped(c.source)),
        ("staged", nb(c.staged.messages, c.staged.bytes)),
        (
            "skipped (size cap)",
            nb(c.skipped_size.messages, c.skipped_size.bytes),
        ),
        (
            "skipped (item cap)",
            nb(c.skipped_item_cap.messages, c.skipped_item_cap.bytes),
        ),
        ("failed on the source", grouped(c.failed.messages)),
        ("in excluded folders", grouped(c.excluded)),
        ("unexplained", c.unexplained.to_string()),
    ];
    if with_target {
        v.extend([
            ("uploaded", nb(c.uploaded.messages, c.uploaded.bytes)),
            ("refused by the target", grouped(c.refused.messages)),
            ("in flight", grouped(c.in_flight.messages)),
            ("pending", grouped(c.pending.messages)),
        ]);
    }
    v
}

fn text(r: &BatchReport) -> String {
    let with_target = r.target.is_some();
    let mut s = String::new();
    let _ = writeln!(s, "Migration report: batch {} ({})", r.batch, phase(r));
    let _ = writeln!(s, "Generated: {}", r.generated_at);
    let _ = writeln!(
        s,
        "Grade: {} ({} mailbox(es): {})",
        r.grade,
        r.mailboxes.len(),
        r.grades
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(g, n)| format!("{n} {g}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "Caps: {} per message, {} items per mailbox",
        human_bytes(r.max_message_size),
        grouped(r.max_items)
    );
    for a in &r.approvals {
        let _ = writeln!(s, "Approved {}: {}", a.at, a.detail);
    }
    s.push('\n');
    for (k, v) in total_lines(&r.counts, with_target) {
        let _ = writeln!(s, "{k:>22}: {v}");
    }
    s.push('\n');
    let mut cols = vec![
        ("MAILBOX", Align::Left),
        ("GRADE", Align::Left),
        ("SOURCE", Align::Right),
        ("STAGED", Align::Right),
        ("SKIPPED", Align::Right),
        ("FAILED", Align::Right),
        ("EXCLUDED", Align::Right),
    ];
    if with_target {
        cols.extend([
            ("UPLOADED", Align::Right),
            ("REFUSED", Align::Right),
            ("PENDING", Align::Right),
        ]);
    }
    let mut t = Table::new(&cols);
    for m in &r.mailboxes {
        let c = &m.counts;
        let mut row = vec![
            m.email.clone(),
            m.grade.to_string(),
            grouped(c.source),
            grouped(c.staged.messages),
            grouped(c.skipped()),
            grouped(c.failed.messages),
            grouped(c.excluded),
        ];
        if with_target {
            row.extend([
                grouped(c.uploaded.messages),
                grouped(c.refused.messages),
                grouped(c.pending.messages + c.in_flight.messages),
            ]);
        }
        t.row(row);
    }
    let mut table = Vec::new();
    let _ = t.write(&mut table);
    s.push_str(&String::from_utf8_lossy(&table));
    for m in r.mailboxes.iter().filter(|m| !m.findings.is_empty()) {
        let _ = writeln!(s, "\n{} ({}):", m.email, m.grade);
        for f in &m.findings {
            let _ = writeln!(s, "  - {f}");
        }
    }
    s
}
