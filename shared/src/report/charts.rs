//! The report's charts as inline SVG: items per mailbox as stacked bars by state, the
//! message-size distribution with the caps marked, and throughput over time.

use std::fmt::Write as _;

use super::html::esc;
use super::reconcile::BatchReport;
use super::table::{grouped, human_bytes};

/// A state's label, CSS class and count in a mailbox's bar.
type Segment = (&'static str, &'static str, u64);

/// Exchange Online's default message size limit, marked on the size chart with a target.
const EXCHANGE_LIMIT: u64 = 35 << 20;

fn segments(r: &BatchReport, m: &super::reconcile::MailboxReport) -> Vec<Segment> {
    let c = &m.counts;
    let mut v = if r.target.is_some() {
        vec![
            ("uploaded", "s-ok", c.uploaded.messages),
            (
                "pending",
                "s-pending",
                c.pending.messages + c.in_flight.messages,
            ),
            ("refused", "s-bad", c.refused.messages),
        ]
    } else {
        vec![("staged", "s-ok", c.staged.messages)]
    };
    v.extend([
        ("skipped", "s-skip", c.skipped()),
        ("failed", "s-bad", c.failed.messages),
        ("excluded", "s-excl", c.excluded),
    ]);
    v
}

/// Items per mailbox as horizontal stacked bars by state.
pub fn states_chart(s: &mut String, r: &BatchReport) {
    let rows: Vec<(String, Vec<Segment>)> = r
        .mailboxes
        .iter()
        .map(|m| (m.email.clone(), segments(r, m)))
        .collect();
    let max = rows
        .iter()
        .map(|(_, seg)| seg.iter().map(|x| x.2).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (label_w, bar_w, row_h) = (220.0, 480.0, 22.0);
    let h = row_h * rows.len() as f64 + 40.0;
    let _ = write!(
        s,
        "<figure><figcaption>Items per mailbox by state</figcaption>\
         <svg id=\"chart-states\" viewBox=\"0 0 {} {h}\" role=\"img\" \
         aria-label=\"Items per mailbox by state\">",
        label_w + bar_w + 80.0
    );
    for (i, (email, seg)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(email)
        );
        let mut x = label_w;
        for (label, class, n) in seg.iter().filter(|x| x.2 > 0) {
            let w = bar_w * *n as f64 / max as f64;
            let _ = write!(
                s,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\">\
                 <title>{}: {} {label}</title></rect>",
                row_h - 6.0,
                esc(email),
                grouped(*n)
            );
            x += w;
        }
        let total: u64 = seg.iter().map(|x| x.2).sum();
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\">{}</text>",
            x + 4.0,
            y + 14.0,
            grouped(total)
        );
    }
    let legend_y = h - 12.0;
    let mut x = label_w;
    let first = rows.first().map(|r| r.1.clone()).unwrap_or_default();
    for (label, class, _) in first {
        let _ = write!(
            s,
            "<rect class=\"{class}\" x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\"></rect>\
             <text x=\"{}\" y=\"{legend_y}\">{label}</text>",
            legend_y - 9.0,
            x + 14.0
        );
        x += 90.0;
    }
    let _ = write!(s, "</svg></figure>");
}

/// The message-size histogram with the size cap (and Exchange's limit) marked.
pub fn size_chart(s: &mut String, r: &BatchReport) {
    let n = r.size_histogram.len();
    let max = r.size_histogram.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, left, bottom) = (640.0, 200.0, 40.0, 40.0);
    let col = (w - left) / n.max(1) as f64;
    let _ = write!(
        s,
        "<figure><figcaption>Message sizes (all messages of the batch)</figcaption>\
         <svg id=\"chart-sizes\" viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"Message sizes\">",
        h + bottom
    );
    for (i, count) in r.size_histogram.iter().enumerate() {
        let bh = (h - 20.0) * *count as f64 / max as f64;
        let x = left + i as f64 * col;
        let label = match r.size_bounds.get(i) {
            Some(b) => format!("&lt;{}", human_bytes(*b)),
            None => format!(
                "&#8805;{}",
                human_bytes(*r.size_bounds.last().unwrap_or(&0))
            ),
        };
        let _ = write!(
            s,
            "<rect class=\"s-ok\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\">\
             <title>{label}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            x + 2.0,
            h - bh,
            col - 4.0,
            grouped(*count),
            x + col / 2.0,
            h - bh - 3.0,
            grouped(*count),
            x + col / 2.0,
            h + 16.0
        );
    }
    let mut caps = vec![("size cap", r.max_message_size)];
    if r.target.is_some() {
        caps.push(("Exchange default limit", EXCHANGE_LIMIT));
    }
    for (k, (label, cap)) in caps.into_iter().enumerate() {
        let x = left + cap_position(&r.size_bounds, cap) * col;
        // Labels right of the line, or left of it in the chart's right half.
        let (tx, anchor) = if x > w / 2.0 {
            (x - 3.0, "end")
        } else {
            (x + 3.0, "start")
        };
        let _ = write!(
            s,
            "<line class=\"cap\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{h}\"></line>\
             <text class=\"cap\" x=\"{tx:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{label} {}</text>",
            12.0 + 14.0 * k as f64,
            esc(&human_bytes(cap))
        );
    }
    let _ = write!(s, "</svg></figure>");
}

/// Where `cap` falls on the histogram's axis, in buckets (interpolated within its bucket).
fn cap_position(bounds: &[u64], cap: u64) -> f64 {
    let mut lower = 0u64;
    for (i, b) in bounds.iter().enumerate() {
        if cap < *b {
            return i as f64 + (cap - lower) as f64 / (*b - lower) as f64;
        }
        lower = *b;
    }
    bounds.len() as f64 + 0.5
}

/// Messages per interval over time, as bars.
pub fn throughput_chart(s: &mut String, r: &BatchReport) {
    let what = if r.target.is_some() {
        "uploaded"
    } else {
        "staged"
    };
    let pts = &r.throughput;
    let max = pts.iter().map(|p| p.messages).max().unwrap_or(0).max(1);
    let (w, h, left) = (640.0, 160.0, 40.0);
    let col = (w - left) / pts.len().max(1) as f64;
    let _ = write!(
        s,
        "<figure><figcaption>Messages {what} per {} s</figcaption>\
         <svg id=\"chart-throughput\" viewBox=\"0 0 {w} {}\" role=\"img\" \
         aria-label=\"Throughput\">",
        r.throughput_seconds,
        h + 30.0
    );
    for (i, p) in pts.iter().enumerate() {
        let bh = (h - 10.0) * p.messages as f64 / max as f64;
        let _ = write!(
            s,
            "<rect class=\"s-ok\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\">\
             <title>{}: {} messages, {}</title></rect>",
            left + i as f64 * col + 1.0,
            h - bh,
            (col - 2.0).max(1.0),
            esc(&p.at),
            grouped(p.messages),
            esc(&human_bytes(p.bytes))
        );
    }
    if let (Some(a), Some(b)) = (pts.first(), pts.last()) {
        let _ = write!(
            s,
            "<text class=\"axis\" x=\"{left}\" y=\"{}\">{}</text>\
             <text class=\"axis\" x=\"{w}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <text class=\"axis\" x=\"2\" y=\"12\">{}</text>",
            h + 20.0,
            esc(&a.at),
            h + 20.0,
            esc(&b.at),
            grouped(max)
        );
    }
    let _ = write!(s, "</svg></figure>");
}
