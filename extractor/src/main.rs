//! `mailstage-extract`: pulls mailboxes from an IMAP server into the stage.
//!
//! It offers `test-server`, the migration catalog (`endpoint new/show/list/remove`,
//! `batch new/status/remove`) and the stage's maintenance commands (verify, gc, maildir).

mod cmd_batch;
mod cmd_endpoint;
mod cmd_pass;
mod cmd_shards;
mod test_server;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use mailstage::report::print_json;
use mailstage::report::terminal::Escaping;
use mailstage::stage::{Access, Stage, maildir};

/// Extract mailboxes from an IMAP server into a local, verifiable stage.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The stage directory. `batch status` and `batch report` take it more than once to
    /// read the stages of a batch's shards as one, without merging them.
    #[arg(long, global = true, env = "MAILSTAGE_DIR", default_value = "stage",
          action = clap::ArgAction::Append)]
    stage: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that the IMAP server is reachable, its TLS and, with --csv, every row's login
    /// (like Test-MigrationServerAvailability). Exit status 0 only if everything passed.
    TestServer(test_server::TestServerArgs),
    /// Migration endpoints: the source IMAP server and its concurrency limits
    /// (New-MigrationEndpoint, Get-MigrationEndpoint).
    #[command(subcommand)]
    Endpoint(cmd_endpoint::EndpointCommand),
    /// Migration batches: mailboxes from a CSV on an endpoint (New-MigrationBatch,
    /// Get-MigrationBatch, Remove-MigrationBatch).
    #[command(subcommand)]
    Batch(cmd_batch::BatchCommand),
    /// Re-hash every blob and check every message row against its blob.
    ///
    /// Exit status: 0 clean, 1 messages damaged or missing, 2 only garbage found (run gc).
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove leftovers of interrupted runs and blobs no message row names.
    Gc {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stage maintenance across machines: merge shard stages (or a copied stage) into one.
    #[command(subcommand)]
    Stage(StageCommand),
    /// Shell completions and man pages.
    #[command(flatten)]
    Doc(mailstage::cli::DocCommand),
    /// Build a maildir view of the stage (hard links) that mutt or notmuch can open.
    Maildir {
        /// Where to build it (a new or empty directory, or a view built before).
        #[arg(long)]
        out: PathBuf,
        /// Only this batch.
        #[arg(long)]
        batch: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The `stage` subcommands.
#[derive(Subcommand)]
enum StageCommand {
    /// Fold stages (a batch's shards, or a stage copied from another machine) into the stage
    /// given by --into (created when missing): blobs are copied and checked by their hash and
    /// made durable before the index rows, which merge without duplicates. Merging a stage
    /// again changes nothing; an interrupted merge is run again.
    Merge {
        /// The stage to merge into.
        #[arg(long)]
        into: PathBuf,
        /// The stages to merge.
        #[arg(required = true)]
        stages: Vec<PathBuf>,
        /// Print what was merged as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    mailstage::cli::init_logging("info");
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut stderr = Escaping(std::io::stderr().lock());
            let _ = writeln!(stderr, "mailstage-extract: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    // Whatever a server sent is escaped before it reaches a terminal.
    let mut stdout = Escaping(std::io::stdout().lock());
    let stages = cli.stage;
    let one = || mailstage::cli::single_stage(&stages).map_err(anyhow::Error::msg);
    match cli.command {
        Command::Doc(doc) => Ok(doc.run(Cli::command(), &mut stdout)?),
        Command::TestServer(args) => test_server::run(args, &mut stdout),
        Command::Endpoint(cmd) => cmd_endpoint::run(one()?, cmd, &mut stdout),
        Command::Batch(cmd) => cmd_batch::run(&stages, cmd, &mut stdout),
        Command::Stage(StageCommand::Merge { into, stages, json }) => {
            cmd_shards::merge(&into, &stages, json, &mut stdout)
        }
        Command::Verify { json } => {
            let code = mailstage::commands::verify::verify_command(one()?, json, &mut stdout)?;
            Ok(code as u8)
        }
        Command::Gc { json } => {
            let stage = Stage::open(one()?, Access::Write)?;
            let report = stage.gc()?;
            if json {
                print_json(&mut stdout, &report)?;
            } else {
                writeln!(
                    stdout,
                    "removed {} leftover file(s) from tmp/ ({} bytes) and {} unreferenced blob(s) ({} bytes)",
                    report.tmp_files, report.tmp_bytes, report.orphan_blobs, report.orphan_bytes
                )?;
                if report.stale_partials > 0 {
                    writeln!(
                        stdout,
                        "removed {} partial bod(ies) no pass can resume ({} bytes)",
                        report.stale_partials, report.stale_partial_bytes
                    )?;
                }
                for f in &report.foreign_files {
                    writeln!(stdout, "left alone: {} is not a blob name", f.display())?;
                }
            }
            Ok(0)
        }
        Command::Maildir { out, batch, json } => {
            let stage = Stage::open(one()?, Access::Read)?;
            let report = maildir::build_maildir(&stage, &out, batch.as_deref())
                .with_context(|| format!("building the maildir view at {}", out.display()))?;
            if json {
                print_json(&mut stdout, &report)?;
            } else {
                writeln!(
                    stdout,
                    "{} messages in {} folders of {} mailboxes at {} ({} hard links, {} copies)\n\
                     open one read-only, e.g.: mutt -R -f {}/<EmailAddress>/INBOX",
                    report.messages,
                    report.folders,
                    report.mailboxes,
                    out.display(),
                    report.linked,
                    report.copied,
                    out.display()
                )?;
            }
            Ok(0)
        }
    }
}
