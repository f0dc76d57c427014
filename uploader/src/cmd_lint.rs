//! `lint`: the dry run's predictions from the stage alone, with no connection and no
//! credentials, as text, JSON or CSV.

use std::io::Write;
use std::path::Path;

use clap::{Args, ValueEnum};
use mailstage::commands::lint::{LintRequest, lint};
use mailstage::report::print_json;
use mailstage::report::terminal::printable;

use crate::cmd_run::mailbox_plan;

/// Arguments of `lint`.
#[derive(Args)]
pub struct LintArgs {
    /// The batch.
    #[arg(long)]
    batch: String,
    /// The target whose kind applies (and whose refusals of earlier runs are retried); its
    /// secret is not read and it is not contacted.
    #[arg(long, required_unless_present = "assume", conflicts_with = "assume")]
    target: Option<String>,
    /// Without a target: the kind of target to assume.
    #[arg(long, value_enum)]
    assume: Option<Assume>,
    /// Only these mailboxes (EmailAddress, comma-separated).
    #[arg(long, value_delimiter = ',')]
    users: Vec<String>,
    /// Rename a source folder, as `run --map` (repeatable).
    #[arg(long = "map", value_name = "OLD=NEW")]
    maps: Vec<String>,
    /// Leave out source folders matching a pattern, as `run --exclude` (repeatable).
    #[arg(long = "exclude", value_name = "PATTERN")]
    excludes: Vec<String>,
    /// The target's size limit when you know it (a raised MaxReceiveSize, its APPENDLIMIT):
    /// bytes, or with a unit (150MB) [default: Exchange Online's 35 MiB on Microsoft 365,
    /// none otherwise].
    #[arg(long, value_parser = mailstage::cli::parse_size)]
    size_limit: Option<u64>,
    /// text (the dry run's plan), json (the whole plan) or csv (one row per finding).
    #[arg(long, value_enum, default_value = "text")]
    format: LintFormat,
}

/// What to assume without a target.
#[derive(Clone, Copy, ValueEnum)]
enum Assume {
    /// Microsoft 365 (Exchange Online).
    M365,
}

/// How `lint` writes its findings.
#[derive(Clone, Copy, ValueEnum)]
enum LintFormat {
    /// The plan and predicted skips, as `run --dry-run` prints them.
    Text,
    /// The whole plan.
    Json,
    /// One row per finding (a folder renamed, merged or left out; a message predicted not to
    /// arrive).
    Csv,
}

/// Runs `lint`; exit status 0 no message predicted not to arrive, 2 some are.
pub fn run(stage_dir: &Path, args: LintArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let req = LintRequest {
        batch: args.batch,
        target: args.target,
        assume_m365: matches!(args.assume, Some(Assume::M365)),
        users: args.users,
        maps: args.maps,
        excludes: args.excludes,
        size_limit: args.size_limit,
    };
    let report = lint(stage_dir, &req)?;
    match args.format {
        LintFormat::Json => print_json(out, &report)?,
        LintFormat::Csv => out.write_all(report.to_csv()?.as_bytes())?,
        LintFormat::Text => {
            let against = match &report.target {
                Some(t) => format!("target {t:?}"),
                None => "an assumed target".to_owned(),
            };
            let kind = if report.m365 {
                "Microsoft 365"
            } else {
                "an IMAP server"
            };
            let head = format!("lint of batch {:?} for {against} ({kind})", report.batch);
            writeln!(out, "{}", printable(&head))?;
            for o in &report.mailboxes {
                mailbox_plan(out, o, true, false)?;
            }
            for a in &report.assumptions {
                writeln!(out, "note: {a}")?;
            }
        }
    }
    Ok(report.exit_code())
}
