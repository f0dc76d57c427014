//! The migration report as one self-contained HTML page: inline CSS, SVG and a little
//! script (no network): the grade and totals first, a table of mailboxes that sorts (click a
//! heading, or open the page with `#sort=COLUMN` / `#sort=-COLUMN`) and filters, charts,
//! then each mailbox's folders and problem items.

use std::fmt::Write as _;

use super::formats::{phase, total_lines};
use super::reconcile::{BatchReport, Counts, MailboxReport};
use super::table::{grouped, human_bytes};

const CSS: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// At most this many problem items per mailbox in the page (the CSV has them all).
const ITEMS_SHOWN: usize = 200;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The page.
pub fn html(r: &BatchReport) -> String {
    let mut s = String::new();
    let title = format!("Migration report: batch {}", r.batch);
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let _ = write!(
        s,
        "<header><h1>{}</h1><p>{} &middot; generated {} &middot; caps {} per message, {} items \
         per mailbox</p></header>",
        esc(&title),
        esc(&phase(r)),
        esc(&r.generated_at),
        esc(&human_bytes(r.max_message_size)),
        esc(&grouped(r.max_items)),
    );
    summary(&mut s, r);
    mailbox_table(&mut s, r);
    let _ = write!(s, "<section class=\"charts\">");
    super::charts::states_chart(&mut s, r);
    super::charts::size_chart(&mut s, r);
    super::charts::throughput_chart(&mut s, r);
    let _ = write!(s, "</section>");
    for m in &r.mailboxes {
        mailbox_section(&mut s, m, r.target.is_some());
    }
    let _ = write!(s, "<script>{SCRIPT}</script></body></html>");
    s
}

fn summary(s: &mut String, r: &BatchReport) {
    let g = r.grade.as_str();
    let _ = write!(
        s,
        "<section class=\"summary\"><div id=\"grade\" class=\"grade g-{g}\">{g}</div><dl>"
    );
    let ids = total_ids(&r.counts, r.target.is_some());
    for ((k, v), (id, n)) in total_lines(&r.counts, r.target.is_some())
        .into_iter()
        .zip(ids)
    {
        let _ = write!(
            s,
            "<div><dt>{}</dt><dd id=\"total-{id}\" data-v=\"{n}\">{}</dd></div>",
            esc(k),
            esc(&v)
        );
    }
    let _ = write!(s, "</dl>");
    for a in &r.approvals {
        let _ = write!(
            s,
            "<p class=\"approval\">Approved {}: {}</p>",
            esc(&a.at),
            esc(&a.detail)
        );
    }
    let _ = write!(s, "</section>");
}

/// The ids and raw numbers of the totals, in [`total_lines`]' order.
fn total_ids(c: &Counts, with_target: bool) -> Vec<(&'static str, i64)> {
    let n = |v: u64| v as i64;
    let mut v = vec![
        ("source", n(c.source)),
        ("staged", n(c.staged.messages)),
        ("skipped_size", n(c.skipped_size.messages)),
        ("skipped_item_cap", n(c.skipped_item_cap.messages)),
        ("failed", n(c.failed.messages)),
        ("excluded", n(c.excluded)),
        ("unexplained", c.unexplained),
    ];
    if with_target {
        v.extend([
            ("uploaded", n(c.uploaded.messages)),
            ("refused", n(c.refused.messages)),
            ("in_flight", n(c.in_flight.messages)),
            ("pending", n(c.pending.messages)),
        ]);
    }
    v
}

fn mailbox_table(s: &mut String, r: &BatchReport) {
    let mut cols: Vec<(&str, &str)> = vec![
        ("mailbox", "Mailbox"),
        ("grade", "Grade"),
        ("source", "Source"),
        ("staged", "Staged"),
        ("skipped", "Skipped"),
        ("failed", "Failed"),
        ("excluded", "Excluded"),
    ];
    if r.target.is_some() {
        cols.extend([
            ("uploaded", "Uploaded"),
            ("refused", "Refused"),
            ("pending", "Pending"),
        ]);
    }
    cols.extend([("bytes", "Bytes staged"), ("last", "Last pass")]);
    let _ = write!(
        s,
        "<section><h2>Mailboxes</h2><input id=\"filter\" type=\"search\" \
         placeholder=\"Filter mailboxes\" aria-label=\"Filter mailboxes\">\
         <table id=\"mailboxes\"><thead><tr>"
    );
    for (key, label) in &cols {
        let _ = write!(s, "<th data-key=\"{key}\" tabindex=\"0\">{label}</th>");
    }
    let _ = write!(s, "</tr></thead><tbody>");
    for m in &r.mailboxes {
        let c = &m.counts;
        let g = m.grade.as_str();
        let mut cells: Vec<(String, String)> = vec![
            (
                m.email.clone(),
                format!("<a href=\"#mb-{0}\">{0}</a>", esc(&m.email)),
            ),
            (
                grade_rank(m).to_string(),
                format!("<span class=\"pill g-{g}\">{g}</span>"),
            ),
            num(c.source),
            num(c.staged.messages),
            num(c.skipped()),
            num(c.failed.messages),
            num(c.excluded),
        ];
        if r.target.is_some() {
            cells.extend([
                num(c.uploaded.messages),
                num(c.refused.messages),
                num(c.pending.messages + c.in_flight.messages),
            ]);
        }
        cells.push((
            c.staged.bytes.to_string(),
            esc(&human_bytes(c.staged.bytes)),
        ));
        let last = m.last_sync_at.clone().unwrap_or_default();
        cells.push((
            last.clone(),
            esc(if last.is_empty() { "never" } else { &last }),
        ));
        let _ = write!(s, "<tr data-mailbox=\"{}\">", esc(&m.email));
        for ((key, _), (v, shown)) in cols.iter().zip(cells) {
            let _ = write!(
                s,
                "<td data-key=\"{key}\" data-v=\"{}\">{shown}</td>",
                esc(&v)
            );
        }
        let _ = write!(s, "</tr>");
    }
    let _ = write!(s, "</tbody></table></section>");
}

/// A number's sort value and its shown text.
fn num(n: u64) -> (String, String) {
    (n.to_string(), grouped(n))
}

/// The grade as a number that sorts worst last.
fn grade_rank(m: &MailboxReport) -> u8 {
    m.grade as u8
}

fn mailbox_section(s: &mut String, m: &MailboxReport, with_target: bool) {
    let g = m.grade.as_str();
    let _ = write!(
        s,
        "<section class=\"mailbox\" id=\"mb-{0}\"><h2>{0} <span class=\"pill g-{g}\">{g}</span></h2>",
        esc(&m.email)
    );
    if let Some(t) = &m.target_mailbox {
        let state = m.upload_state.as_deref().unwrap_or("not started");
        let _ = write!(
            s,
            "<p>Target mailbox {} &middot; upload {}</p>",
            esc(t),
            esc(state)
        );
    }
    if !m.findings.is_empty() {
        let _ = write!(s, "<ul class=\"findings\">");
        for f in &m.findings {
            let _ = write!(s, "<li>{}</li>", esc(f));
        }
        let _ = write!(s, "</ul>");
    }
    let _ = write!(
        s,
        "<table class=\"folders\"><thead><tr><th>Folder</th><th>State</th><th>Source</th>\
         <th>Staged</th><th>Skipped</th><th>Failed</th>{}<th>Unexplained</th></tr></thead><tbody>",
        if with_target {
            "<th>Uploaded to</th><th>Uploaded</th><th>Refused</th><th>Pending</th>"
        } else {
            ""
        }
    );
    for f in &m.folders {
        let c = &f.counts;
        let state = f.note.clone().unwrap_or_else(|| f.state.clone());
        let source = f.source_messages.map_or("-".into(), grouped);
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&f.name),
            esc(&state),
            source,
            grouped(c.staged.messages),
            grouped(c.skipped()),
            grouped(c.failed.messages)
        );
        if with_target {
            let _ = write!(
                s,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                esc(&f.target_folders.join(", ")),
                grouped(c.uploaded.messages),
                grouped(c.refused.messages),
                grouped(c.pending.messages + c.in_flight.messages)
            );
        }
        let _ = write!(s, "<td>{}</td></tr>", c.unexplained);
    }
    let _ = write!(s, "</tbody></table>");
    let problems: Vec<_> = m
        .items
        .iter()
        .filter(|i| !matches!(i.state.as_str(), "staged" | "uploaded" | "pending"))
        .collect();
    if !problems.is_empty() {
        let _ = write!(
            s,
            "<h3>Items that need attention ({})</h3><table class=\"items\"><thead><tr>\
             <th>Folder</th><th>UID</th><th>Subject</th><th>Date</th><th>Size</th>\
             <th>State</th><th>Reason</th><th>Server's words</th></tr></thead><tbody>",
            problems.len()
        );
        for i in problems.iter().take(ITEMS_SHOWN) {
            let o = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                esc(&i.folder),
                i.uid,
                o(&i.subject),
                o(&i.date),
                esc(&human_bytes(i.size)),
                esc(&i.state),
                o(&i.reason),
                o(&i.server_words)
            );
        }
        let _ = write!(s, "</tbody></table>");
        if problems.len() > ITEMS_SHOWN {
            let _ = write!(
                s,
                "<p>{} more in the CSV report (--format csv).</p>",
                problems.len() - ITEMS_SHOWN
            );
        }
    }
    let _ = write!(s, "</section>");
}
