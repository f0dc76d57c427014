//! `mailstage-upload`: pushes staged messages into Microsoft 365 mailboxes.
//!
//! Today it offers `verify`, the check an admin runs before uploading; the upload itself
//! (run, status, report) arrives with the IMAP APPEND transport.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Upload a verified stage into Microsoft 365 mailboxes.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The stage directory.
    #[arg(long, global = true, env = "MAILSTAGE_DIR", default_value = "stage")]
    stage: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    let result = match cli.command {
        Command::Verify { json } => {
            mailstage::commands::verify_command(&cli.stage, json, &mut std::io::stdout().lock())
        }
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("mailstage-upload: error: {e}");
            ExitCode::from(1)
        }
    }
}
