//! Command-line pieces both binaries share (feature `cli`): the run options that say how to
//! trust a server and how to report, and logging.

use std::path::PathBuf;

/// How a run trusts the server's certificate, over what the endpoint or target stores.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunTls {
    /// A PEM file of CA certificates to trust besides the system's (a private CA), for this
    /// run [default: the endpoint's or target's].
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate, for this run (a lab server only) [default: the
    /// endpoint's or target's].
    #[arg(long)]
    pub insecure: bool,
    /// Accept exactly the server certificate with this SHA-256 fingerprint
    /// (`sha256:` and 64 hex digits, as test-server shows it), for this run [default: the
    /// endpoint's or target's].
    #[arg(long, value_name = "sha256:HEX")]
    pub tls_fingerprint: Option<crate::imap::Fingerprint>,
}

/// Which shard of the batch's plan a run works on (`batch plan` made the plan).
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct ShardArgs {
    /// Only the mailboxes of shard I of N (counted from 0, e.g. 0/4); N must be the plan's.
    #[arg(long, value_name = "I/N", conflicts_with = "shard_from_env")]
    pub shard: Option<crate::shard::ShardSpec>,
    /// Take the shard index from the scheduler: SLURM_ARRAY_TASK_ID (a Slurm array task) or
    /// JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); the count is the plan's.
    #[arg(long)]
    pub shard_from_env: bool,
}

impl ShardArgs {
    /// The shard asked for, if any (reading the environment for `--shard-from-env`).
    pub fn request(self) -> Result<Option<crate::shard::ShardRequest>, crate::shard::ShardError> {
        use crate::shard::{ShardRequest, ShardSpec};
        if self.shard_from_env {
            let index = ShardSpec::index_from_env(|k| std::env::var(k).ok())?;
            return Ok(Some(ShardRequest::IndexOfPlan(index)));
        }
        Ok(self.shard.map(ShardRequest::Exactly))
    }
}

/// The one stage a command works on: refused when `--stage` was given more than once (only
/// `batch status` and the reports read several stages).
pub fn single_stage(stages: &[PathBuf]) -> Result<&std::path::Path, String> {
    match stages {
        [one] => Ok(one),
        [] => Err("no stage given (--stage DIR or MAILSTAGE_DIR)".into()),
        _ => Err(
            "this command works on one stage: give --stage once (batch status and the reports \
             read several)"
                .into(),
        ),
    }
}

/// How a run reports.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct RunOutput {
    /// No progress while running; the summary is still printed.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

impl RunOutput {
    /// Bars or log lines, unless `--quiet`.
    pub fn show(self) -> crate::report::bars::Show {
        if self.quiet {
            crate::report::bars::Show::Quiet
        } else {
            crate::report::bars::Show::Auto
        }
    }
}

/// Logs to standard error at `default_level`, or as `MAILSTAGE_LOG` says (an `EnvFilter`);
/// colours only on a terminal, so a redirected log holds no escape codes.
pub fn init_logging(default_level: &str) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILSTAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// How a migration report is written (`batch report`, `mailstage-upload report`).
#[derive(clap::Args, Debug, Clone)]
pub struct ReportOutput {
    /// text (a summary for a ticket), json (the whole model), csv (one row per message that
    /// needs attention) or html (one self-contained page).
    #[arg(long, value_enum, default_value = "text")]
    pub format: crate::report::formats::ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Every message, not only those that need attention (CSV and JSON).
    #[arg(long)]
    pub all: bool,
}

impl ReportOutput {
    /// Writes a rendered report to `--out` (saying so on `out`) or to `out`; returns the exit
    /// status: 0 for a Perfect or Good batch, 2 for Investigate or Poor.
    pub fn write(
        &self,
        rendered: &crate::commands::report::Rendered,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<u8> {
        match &self.out {
            Some(path) => {
                std::fs::write(path, &rendered.text)?;
                writeln!(
                    out,
                    "report written to {} (grade {})",
                    path.display(),
                    rendered.report.grade
                )?;
            }
            None => out.write_all(rendered.text.as_bytes())?,
        }
        use crate::report::grade::Grade;
        Ok(match rendered.report.grade {
            Grade::Perfect | Grade::Good => 0,
            Grade::Investigate | Grade::Poor => 2,
        })
    }
}

/// The shells `completions` writes a script for.
pub use clap_complete::Shell;

/// Writes `cmd`'s completion script for `shell` to `out` (`mailstage-extract completions
/// bash > /etc/bash_completion.d/mailstage-extract`).
pub fn completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn std::io::Write) {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Writes `cmd`'s man pages into `dir` (created when missing), one per command and
/// subcommand (`mailstage-extract.1`, `mailstage-extract-batch-start.1`, …); returns how many.
pub fn man_pages(cmd: clap::Command, dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let before = std::fs::read_dir(dir)?.count();
    clap_mangen::generate_to(cmd, dir)?;
    Ok(std::fs::read_dir(dir)?.count().saturating_sub(before))
}

/// The `completions` and `man` subcommands both binaries offer.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum DocCommand {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Write man pages, one per command and subcommand, into a directory.
    Man {
        /// The directory (created when missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

impl DocCommand {
    /// Runs it for the binary whose clap definition is `cmd`; exit status 0.
    pub fn run(&self, cmd: clap::Command, out: &mut dyn std::io::Write) -> std::io::Result<u8> {
        match self {
            DocCommand::Completions { shell } => completions(cmd, *shell, out),
            DocCommand::Man { out: dir } => {
                let n = man_pages(cmd, dir)?;
                writeln!(out, "{n} man page(s) written to {}", dir.display())?;
            }
        }
        Ok(0)
    }
}

/// Parses a size: a number of bytes (`36700160`), or a whole number with a unit `K`, `KB`,
/// `KiB`, `M`, `MB`, `MiB`, `G`, `GB`, `GiB` (any case, a space allowed: `500KB`, `35 MB`).
///
/// `KB`, `MB` and `GB` are binary multiples, the same as `KiB`, `MiB` and `GiB`: Microsoft's
/// "35 MB" per-message limit is taken as 35 MiB = 36,700,160 bytes. That is how Exchange itself
/// writes its size limits ("35 MB (36,700,160 bytes)"), and it is the conservative reading for
/// the acceptance rule "a 36 MB message is skipped, a 34 MB one is staged": a 34 MB message
/// is under the cap whichever way "MB" is read (34,000,000 or 35,651,584 bytes), while a
/// decimal 35,000,000-byte cap would wrongly skip a 34 MiB one; a 36 MiB message
/// (37,748,736 bytes) is over it.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{s:?}: unknown unit (use bytes, KB, MB or GB)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 35MB, 500KB or 36700160)"))?;
    match n.checked_mul(1 << shift) {
        Some(0) => Err("the size must be above 0".into()),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{s:?} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_mb_as_mib() {
        assert_eq!(parse_size("35MB"), Ok(36_700_160));
        assert_eq!(parse_size("35MiB"), Ok(36_700_160));
        assert_eq!(parse_size("35 mb"), Ok(36_700_160));
        assert_eq!(parse_size("36700160"), Ok(36_700_160));
        assert_eq!(parse_size("500KB"), Ok(512_000));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        for bad in [
            "",
            "MB",
            "35TB",
            "3.5MB",
            "-1",
            "0",
            "0MB",
            "99999999999999GB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
