//! `batch start` and `batch sync`: a pass over a batch's mailboxes (Start-MigrationBatch,
//! then the incremental syncs Microsoft runs every 24 hours).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use mailstage::batch::{BatchRow, read_batch_file};
use mailstage::cli::{RunOutput, RunTls};
use mailstage::extract::{
    Limits, MailboxJob, MailboxOutcome, Pass, PassJob, RetryPolicy, run_pass,
};
use mailstage::imap::diagnose::check_server;
use mailstage::imap::transport::ConnectOptions;
use mailstage::report::print_json;
use mailstage::stage::index::{BatchState, NewMailbox};
use mailstage::stage::{Access, Stage, with_index};

use crate::progress::{PassProgress, describe};
use crate::sync_loop::{self, CycleReport};

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
    output: RunOutput,
}

impl RunArgs {
    /// Defaults for a batch (what `batch new --autostart` runs).
    pub fn named(name: String) -> Self {
        Self {
            name,
            csv: None,
            tls: RunTls::default(),
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
    sync_loop::run_loop(settings, &stop, out, &mut journal, |out| {
        run_once(stage_dir, &args.run, Pass::Incremental, out)
    })
}

fn run_once(
    stage_dir: &Path,
    a: &RunArgs,
    pass: Pass,
    out: &mut dyn Write,
) -> anyhow::Result<CycleReport> {
    let mut stage = Stage::open(stage_dir, Access::Write)?;
    let index = stage.index_mut();
    let batch = index.batch(&a.name)?;
    if batch.state == BatchState::Removing {
        bail!(
            "batch {:?} is being removed; finish with `batch remove {}`",
            a.name,
            a.name
        );
    }
    let endpoint = index.endpoint(&batch.settings.endpoint)?;
    let csv = a
        .csv
        .clone()
        .or_else(|| batch.settings.csv_path.clone())
        .with_context(|| format!("batch {:?} has no CSV file on record; give --csv", a.name))?;
    let rows = read_batch_file(&csv)?;
    let known = index.mailboxes(&a.name)?;
    let batch_id = index.batch_id(&a.name)?;
    let extra: Vec<&str> = rows
        .iter()
        .filter(|r| !known.iter().any(|m| m.email.eq_ignore_ascii_case(&r.email)))
        .map(|r| r.email.as_str())
        .collect();
    if !extra.is_empty() {
        bail!(
            "{} lists mailboxes that are not in batch {:?}: {}; put them in a new batch",
            csv.display(),
            a.name,
            extra.join(", ")
        );
    }
    let by_email: HashMap<String, &BatchRow> = rows
        .iter()
        .map(|r| (r.email.to_ascii_lowercase(), r))
        .collect();
    let mut jobs = Vec::new();
    let mut missing = Vec::new();
    for m in &known {
        let Some(&row) = by_email.get(&m.email.to_ascii_lowercase()) else {
            missing.push(m.email.as_str());
            continue;
        };
        // The CSV is the admin's current word on logins: record changes to them (only
        // changes: a batch of hundreds would otherwise commit once per mailbox each run).
        let changed = m.login_name != row.user_name
            || m.user_root != row.user_root
            || m.target_user != row.target_user;
        let mailbox_id = if changed {
            index.add_mailbox(
                batch_id,
                &NewMailbox {
                    email: m.email.clone(),
                    login_name: row.user_name.clone(),
                    user_root: row.user_root.clone(),
                    target_user: row.target_user.clone(),
                },
            )?
        } else {
            m.id
        };
        jobs.push(MailboxJob {
            mailbox_id,
            email: m.email.clone(),
            user_name: row.user_name.clone(),
            password: row.password.clone(),
            user_root: row.user_root.clone(),
        });
    }
    if !missing.is_empty() {
        bail!(
            "{} has no row (and so no password) for: {}; give the batch's CSV with --csv",
            csv.display(),
            missing.join(", ")
        );
    }
    let mut connect = ConnectOptions::new(&endpoint.server, endpoint.port, endpoint.security);
    endpoint
        .tls
        .apply(a.tls.ca_file.as_deref(), a.tls.insecure, &mut connect);
    let concurrency = match pass {
        Pass::Full => endpoint.max_concurrent_migrations,
        Pass::Incremental => endpoint.max_concurrent_incremental_syncs,
    } as usize;
    let job = PassJob {
        batch: a.name.clone(),
        connect,
        auth: batch.settings.auth,
        limits: Limits {
            max_message_size: batch.settings.max_message_size,
            max_items: batch.settings.max_items,
            include: batch.settings.include_folders.clone(),
            exclude: batch.settings.exclude_folders.clone(),
        },
        retry: RetryPolicy::default(),
        concurrency,
        mailboxes: jobs,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Fail fast, with test-server's diagnosis, when the server cannot be reached at all.
    let reach = runtime.block_on(check_server(&job.connect));
    if let Some(f) = reach.failure {
        index.set_batch_state(&a.name, BatchState::Failed)?;
        bail!(
            "cannot reach the source server: {}\n  hint: {}",
            f.message,
            f.hint
        );
    }
    index.set_batch_state(&a.name, BatchState::Syncing)?;
    let shared = stage.into_shared()?;
    let progress = Arc::new(PassProgress::new(a.output.show(), job.mailboxes.len()));
    let outcomes = runtime.block_on(run_pass(job, &shared, progress.clone()));
    progress.finish();
    let (state, code) = verdict(&outcomes);
    with_index(&shared.index, |i| i.set_batch_state(&a.name, state))?;
    if a.output.json {
        let summary = serde_json::json!({ "batch": a.name, "state": state, "mailboxes": outcomes });
        print_json(out, &summary)?;
    } else {
        for o in &outcomes {
            writeln!(out, "{}", describe(o))?;
        }
        writeln!(out, "batch {:?}: {state}", a.name)?;
    }
    Ok(CycleReport {
        code,
        failed_mailboxes: outcomes.iter().filter(|o| o.error.is_some()).count(),
    })
}

/// The batch's state and the exit status: 0 all done, 1 every mailbox failed, 2 done with
/// failures or skips an admin should read.
fn verdict(outcomes: &[MailboxOutcome]) -> (BatchState, u8) {
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let item_trouble = outcomes.iter().any(|o| {
        let c = &o.counts;
        c.failed + c.skipped_size + c.skipped_item_cap > 0
    });
    if !outcomes.is_empty() && failed == outcomes.len() {
        (BatchState::Failed, 1)
    } else if failed > 0 || item_trouble {
        (BatchState::SyncedWithErrors, 2)
    } else {
        (BatchState::Synced, 0)
    }
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
