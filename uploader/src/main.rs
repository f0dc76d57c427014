//! `mailstage-upload`: pushes staged messages into Microsoft 365 (or any IMAP server)
//! mailboxes, exactly once, resuming where a previous run stopped.

mod cmd_lint;
mod cmd_report;
mod cmd_run;
mod cmd_status;
mod cmd_target;
mod predicted;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use mailstage::report::terminal::Escaping;

/// Upload a verified stage into Microsoft 365 mailboxes.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The stage directory. `status` and `report` take it more than once to read the
    /// stages of a batch's shards as one, without merging them.
    #[arg(long, global = true, env = "MAILSTAGE_DIR", default_value = "stage",
          action = clap::ArgAction::Append)]
    stage: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Targets: where mail is uploaded (Microsoft 365 or an IMAP server).
    #[command(subcommand)]
    Target(cmd_target::TargetCommand),
    /// Upload a batch's staged mail into a target; a later run resumes and sends nothing
    /// twice.
    ///
    /// Exit status: 0 all done, 1 a mailbox failed, 2 done but messages were refused.
    Run(cmd_run::RunArgs),
    /// The dry run's predictions from the stage alone, with no connection and no credentials:
    /// where each folder goes (names Microsoft 365 reserves or merges), messages over the
    /// size limit, lines Exchange Online refuses, messages refused before.
    ///
    /// Exit status: 0 no message predicted not to arrive, 2 some are.
    Lint(cmd_lint::LintArgs),
    /// Where each mailbox's upload stands.
    Status(cmd_status::StatusArgs),
    /// The migration report of a batch through both phases (extraction and upload to a
    /// target): per mailbox and folder, reconciled, with a data consistency grade and the
    /// messages that need attention.
    ///
    /// Exit status: 0 Perfect or Good, 2 Investigate or Poor.
    Report(cmd_report::ReportArgs),
    /// Shell completions and man pages.
    #[command(flatten)]
    Doc(mailstage::cli::DocCommand),
    /// Re-hash every blob and check every message row against its blob before uploading.
    ///
    /// Exit status: 0 clean, 1 messages damaged or missing, 2 only garbage found.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mailstage::cli::init_logging("warn");
    // Whatever a server sent is escaped before it reaches a terminal.
    let mut stdout = Escaping(std::io::stdout().lock());
    let stages = cli.stage;
    let one = || mailstage::cli::single_stage(&stages).map_err(anyhow::Error::msg);
    let view = || mailstage::commands::merge::StageView::of(&stages).map_err(anyhow::Error::from);
    let result = match cli.command {
        Command::Doc(doc) => doc
            .run(Cli::command(), &mut stdout)
            .map_err(anyhow::Error::from),
        Command::Target(cmd) => one().and_then(|s| cmd_target::run(s, cmd, &mut stdout)),
        Command::Run(args) => one().and_then(|s| cmd_run::run(s, args, &mut stdout)),
        Command::Lint(args) => one().and_then(|s| cmd_lint::run(s, args, &mut stdout)),
        Command::Status(args) => view().and_then(|v| cmd_status::run(v.dir(), args, &mut stdout)),
        Command::Report(args) => view().and_then(|v| cmd_report::run(v.dir(), args, &mut stdout)),
        Command::Verify { json } => one().and_then(|s| {
            mailstage::commands::verify::verify_command(s, json, &mut stdout)
                .map(|c| c as u8)
                .map_err(anyhow::Error::from)
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut stderr = Escaping(std::io::stderr().lock());
            let _ = writeln!(stderr, "mailstage-upload: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
