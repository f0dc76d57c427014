//! `run`: arguments and the printed summary over [`mailstage::commands::upload_run`].

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use mailstage::cli::{RunOutput, RunTls, ShardArgs};
use mailstage::commands::upload_run::{UploadRequest, prepare_upload};
use mailstage::report::bars::LiveProgress;
use mailstage::report::table::human_bytes;
use mailstage::report::terminal::printable;
use mailstage::report::{MailboxSummary, print_json};
use mailstage::upload::{RateLimits, UploadOutcome, mailbox_label};

use crate::predicted;

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    /// The batch whose staged mail is uploaded.
    #[arg(long)]
    batch: String,
    /// The target (see `target new`).
    #[arg(long)]
    target: String,
    /// Only these mailboxes (EmailAddress, comma-separated).
    #[arg(long, value_delimiter = ',')]
    users: Vec<String>,
    /// Show what would go where (folder plan, messages and bytes) and the predicted skips
    /// (over the target's size limit, lines Exchange refuses, refused last time) without
    /// creating or sending anything.
    #[arg(long)]
    dry_run: bool,
    /// Mailboxes uploaded at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=200))]
    concurrency: u32,
    /// Connections per mailbox, each sending from the mailbox's queue (each has up to 16
    /// APPENDs in flight where the target offers LITERAL+, else one).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    connections_per_mailbox: u32,
    /// Rename a source folder (and its subfolders): 'Old/Path=New/Path' (levels separated
    /// by `/`). Repeatable.
    #[arg(long = "map", value_name = "OLD=NEW")]
    maps: Vec<String>,
    /// Leave out source folders matching a pattern (`*`, `?`; levels separated by `/`).
    /// Repeatable.
    #[arg(long = "exclude", value_name = "PATTERN")]
    excludes: Vec<String>,
    /// At most this many messages per second over all mailboxes (a ceiling over the pace
    /// each target mailbox's throttles teach).
    #[arg(long)]
    max_messages_per_second: Option<f64>,
    /// At most this many bytes per second over all mailboxes (e.g. 5000000 for ~40 Mbit/s).
    #[arg(long)]
    max_bytes_per_second: Option<f64>,
    #[command(flatten)]
    tls: RunTls,
    #[command(flatten)]
    shard: ShardArgs,
    #[command(flatten)]
    output: RunOutput,
}

/// Runs `run`; the exit status is 0 when every mailbox is done, 2 when messages were
/// refused, 1 when a mailbox failed.
pub fn run(stage_dir: &Path, args: RunArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let request = UploadRequest {
        batch: args.batch.clone(),
        target: args.target.clone(),
        users: args.users.clone(),
        dry_run: args.dry_run,
        concurrency: args.concurrency as usize,
        connections_per_mailbox: args.connections_per_mailbox as usize,
        maps: args.maps.clone(),
        excludes: args.excludes.clone(),
        rates: RateLimits {
            messages_per_second: positive(
                args.max_messages_per_second,
                "--max-messages-per-second",
            )?,
            bytes_per_second: positive(args.max_bytes_per_second, "--max-bytes-per-second")?,
        },
        ca_file: args.tls.ca_file.clone(),
        insecure: args.tls.insecure,
        tls_fingerprint: args.tls.tls_fingerprint,
        shard: args.shard.request()?,
    };
    let prepared = prepare_upload(stage_dir, &request)?;
    let (result, shown) =
        LiveProgress::around(args.output.show(), prepared.mailboxes(), "upload", |p| {
            prepared.run(p)
        });
    let report = result?;
    if args.output.json {
        print_json(out, &report.mailboxes)?;
    } else {
        summary(out, &args, &report.mailboxes, report.elapsed, shown)?;
    }
    Ok(report.exit_code())
}

fn summary(
    out: &mut dyn Write,
    args: &RunArgs,
    outcomes: &[UploadOutcome],
    elapsed: Duration,
    lines_shown: bool,
) -> anyhow::Result<()> {
    for o in outcomes {
        mailbox_plan(out, o, args.dry_run, lines_shown)?;
    }
    let (messages, bytes) = outcomes.iter().fold((0, 0), |(m, b), o| {
        (m + o.counts.uploaded, b + o.counts.uploaded_bytes)
    });
    let secs = elapsed.as_secs_f64().max(1e-3);
    if !args.dry_run {
        writeln!(
            out,
            "batch {:?} -> target {:?}: {messages} message(s), {} in {secs:.1} s ({:.1} msg/s, {}/s); {} of {} mailbox(es) failed",
            args.batch,
            args.target,
            human_bytes(bytes),
            messages as f64 / secs,
            human_bytes((bytes as f64 / secs) as u64),
            outcomes.iter().filter(|o| o.error.is_some()).count(),
            outcomes.len()
        )?;
    }
    Ok(())
}

/// Writes a mailbox's summary line and its folder plan: every folder for a plan (a dry run,
/// `lint`), else those with a note; for a plan, its predicted skips too. When the summary
/// line was shown already (`line_shown`: on a terminal, as the mailbox finished), the plan
/// is headed by the mailbox's name only, and a mailbox with nothing under it is left out.
pub fn mailbox_plan(
    out: &mut dyn Write,
    o: &UploadOutcome,
    plan: bool,
    line_shown: bool,
) -> std::io::Result<()> {
    let folders: Vec<_> = o
        .folders
        .iter()
        .filter(|f| plan || f.note.is_some())
        .collect();
    if !line_shown {
        writeln!(out, "{}", printable(&o.summary_line()))?;
    } else if plan || !folders.is_empty() {
        let label = mailbox_label(&o.email, &o.target_mailbox);
        writeln!(out, "{}:", printable(&label))?;
    }
    for f in folders {
        let to = f
            .target
            .as_ref()
            .map_or_else(|| "(left out)".to_owned(), |t| t.join("/"));
        let note = f
            .note
            .as_deref()
            .map(|n| format!("  [{n}]"))
            .unwrap_or_default();
        let line = format!("{} -> {to}{note}", f.source);
        writeln!(out, "    {}", printable(&line))?;
    }
    if plan {
        predicted::print(out, o)?;
    }
    Ok(())
}

fn positive(value: Option<f64>, name: &str) -> anyhow::Result<Option<f64>> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => bail!("{name} must be a positive number"),
        other => Ok(other),
    }
}
