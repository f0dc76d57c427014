//! `batch start` and `batch sync`: arguments, the printed summary and the `--every` loop
//! ([`mailstage::commands::sync_loop`]) over [`mailstage::commands::pass`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mailstage::cli::{RunOutput, RunTls, ShardArgs};
use mailstage::commands::pass::{PassRequest, prepare_pass};
use mailstage::extract::Pass;
use mailstage::report::bars::LiveProgress;
use mailstage::report::terminal::printable;
use mailstage::report::{MailboxSummary, print_json};

use mailstage::commands::CommandError;
use mailstage::commands::sync_loop::{self, CycleReport};

/// Arguments shared by `batch start` and `batch sync`.
#[derive(Args)]
pub struct RunArgs {
    /// The batch.
    name: String,
    /// The batch file to read passwords from (default: the one given to `batch new`).
    #[arg(long)]
    csv: Option<PathBuf>,
    #[command(flatten)]
    tls: RunTls,
    #[command(flatten)]
    shard: ShardArgs,
    #[command(flatten)]
    output: RunOutput,
}

impl RunArgs {
    /// Defaults for a batch (what `batch new --autostart` runs).
    pub fn named(name: String) -> Self {
        Self {
            name,
            csv: None,
            tls: RunTls::default(),
            shard: ShardArgs::default(),
            output: RunOutput::default(),
        }
    }
}

/// Arguments of `batch sync`.
#[derive(Args)]
pub struct SyncArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Keep syncing at this interval (e.g. 24h, 30m) until interrupted (SIGINT/SIGTERM);
    /// a failed cycle is retried sooner, within the interval.
    #[arg(long, value_parser = parse_interval)]
    every: Option<Duration>,
    /// With --every: stop after this many failed cycles in a row (default: never).
    #[arg(long, requires = "every", value_parser = clap::value_parser!(u32).range(1..))]
    max_failed_cycles: Option<u32>,
}

/// `batch start`: the first pass (up to MaxConcurrentMigrations mailboxes at once).
pub fn start(stage_dir: &Path, args: &RunArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    Ok(run_once(stage_dir, args, Pass::Full, out)?.code)
}

/// `batch sync`: incremental passes (up to MaxConcurrentIncrementalSyncs at once), once or
/// on a schedule ([`sync_loop`]).
pub fn sync(stage_dir: &Path, args: &SyncArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let Some(every) = args.every else {
        return Ok(run_once(stage_dir, &args.run, Pass::Incremental, out)?.code);
    };
    let _lock = sync_loop::LoopLock::acquire(stage_dir, &args.run.name)?;
    let stop = sync_loop::stop_on_signals()?;
    writeln!(
        out,
        "syncing batch {:?} every {} until SIGINT or SIGTERM",
        args.run.name,
        show_interval(every)
    )?;
    let settings = sync_loop::LoopSettings {
        every,
        max_failed_cycles: args.max_failed_cycles,
    };
    let mut journal = sync_loop::StageJournal::new(stage_dir, &args.run.name);
    let code = sync_loop::run_loop(settings, &stop, out, &mut journal, |out| {
        run_once(stage_dir, &args.run, Pass::Incremental, out)
    })?;
    Ok(code)
}

fn run_once(
    stage_dir: &Path,
    a: &RunArgs,
    pass: Pass,
    out: &mut dyn Write,
) -> Result<CycleReport, CommandError> {
    let request = PassRequest {
        csv: a.csv.clone(),
        ca_file: a.tls.ca_file.clone(),
        insecure: a.tls.insecure,
        tls_fingerprint: a.tls.tls_fingerprint,
        shard: a
            .shard
            .request()
            .map_err(|e| CommandError::Refused(e.to_string()))?,
        ..PassRequest::new(&a.name, pass)
    };
    let prepared = prepare_pass(stage_dir, &request)?;
    let (result, shown) =
        LiveProgress::around(a.output.show(), prepared.mailboxes(), "fetch", |p| {
            prepared.run(p)
        });
    let report = result?;
    // On a terminal each mailbox's line was shown as it finished.
    let lines = if shown {
        &[][..]
    } else {
        &report.mailboxes[..]
    };
    let printed = if a.output.json {
        print_json(out, &report)
    } else {
        lines
            .iter()
            .try_for_each(|o| writeln!(out, "{}", printable(&o.summary_line())))
            .and_then(|()| writeln!(out, "batch {:?}: {}", report.batch, report.state))
    };
    printed.map_err(CommandError::Output)?;
    Ok(CycleReport {
        code: report.exit_code(),
        failed_mailboxes: report
            .mailboxes
            .iter()
            .filter(|o| o.error.is_some())
            .count(),
    })
}

/// `90s`, `30m`, `24h`, `1d`.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: give a number and a unit, e.g. 24h"))?;
    let secs = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use s, m, h or d)")),
    };
    if n == 0 {
        return Err("the interval must be more than zero".into());
    }
    Ok(Duration::from_secs(n * secs))
}

fn show_interval(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_interval("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(show_interval(Duration::from_secs(86_400)), "1d");
        assert!(
            parse_interval("0h").is_err()
                && parse_interval("h").is_err()
                && parse_interval("5y").is_err()
        );
    }
}
