//! A dry run's predicted skips as an admin reads them: the target's size limit, one summary
//! line per mailbox, and the first few messages with their folder and UID.

use std::io::Write;

use mailstage::report::table::human_bytes;
use mailstage::upload::long_lines::EXCHANGE_MAX_LINE;
use mailstage::upload::{SkipReason, UploadOutcome};

/// Messages listed per mailbox in the text summary (`--json` lists them all).
const SHOWN: usize = 5;

/// Writes a mailbox's predicted skips under its folder plan.
pub fn print(out: &mut dyn Write, o: &UploadOutcome) -> std::io::Result<()> {
    if let Some(l) = &o.size_limit {
        writeln!(
            out,
            "    size limit: {} bytes ({}, {})",
            l.bytes,
            human_bytes(l.bytes),
            l.describe_source()
        )?;
    }
    writeln!(out, "    predicted skips: {}", summary(o))?;
    for s in o.predicted_skips.iter().take(SHOWN) {
        writeln!(
            out,
            "    skip {} UID {} -> {} ({} bytes, {}): {}",
            s.folder,
            s.uid,
            s.target_folder,
            s.size,
            human_bytes(s.size),
            s.text
        )?;
    }
    let more = o.predicted_skips.len().saturating_sub(SHOWN);
    if more > 0 {
        writeln!(out, "    … and {more} more (--json lists them all)")?;
    }
    Ok(())
}

/// One line: how many messages are expected not to arrive, by reason.
fn summary(o: &UploadOutcome) -> String {
    let count = |r: SkipReason| o.predicted_skips.iter().filter(|s| s.reason == r).count();
    let mut parts = Vec::new();
    let over = count(SkipReason::OverSizeLimit);
    if over > 0 {
        parts.push(format!("{over} over the size limit"));
    }
    let long = count(SkipReason::LongLine);
    if long > 0 {
        parts.push(format!(
            "{long} with a line over {EXCHANGE_MAX_LINE} characters"
        ));
    }
    let before = o.counts.refused_before;
    if before > 0 {
        let last = o
            .last_refusal
            .as_deref()
            .map(|w| format!("; last: {w}"))
            .unwrap_or_default();
        parts.push(format!("{before} refused last time, will be retried{last}"));
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}
