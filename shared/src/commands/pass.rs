//! `batch start` and `batch sync`: one pass over a batch's mailboxes (Start-MigrationBatch,
//! then the incremental syncs Microsoft runs every 24 hours). [`prepare_pass`] checks the
//! CSV against the batch and builds the job; [`PreparedPass::run`] reaches the server and
//! runs it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::pin::pin;

use serde::Serialize;

use super::error::{CommandError, Result, runtime};
use crate::catalog::TlsTrust;
use crate::catalog::{BatchRow, read_batch_file};
use crate::extract::{
    Limits, MailboxCounts, MailboxJob, MailboxOutcome, Pass, PassJob, SharedProgress, run_pass,
};
use crate::imap::Fingerprint;
use crate::imap::diagnose::{Failure, ServerReport, check_server_reachable};
use crate::imap::transport::ConnectOptions;
use crate::retry::RetryPolicy;
use crate::shard::ShardRequest;
use crate::stage::index::{BatchState, Index, MailboxInfo, MailboxState, NewMailbox};
use crate::stage::{Access, SharedStage, Stage, with_index};

/// What to run.
#[derive(Clone, Debug)]
pub struct PassRequest {
    /// The batch.
    pub batch: String,
    /// The batch file to read passwords from (default: the one given to `batch new`).
    pub csv: Option<PathBuf>,
    /// A CA file for this run (wins over the endpoint's).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate for this run (adds to the endpoint's trust).
    pub insecure: bool,
    /// Pin the server's certificate for this run (wins over the endpoint's).
    pub tls_fingerprint: Option<Fingerprint>,
    /// A first pass or an incremental one.
    pub pass: Pass,
    /// Only the mailboxes of this shard of the batch's plan.
    pub shard: Option<ShardRequest>,
}

impl PassRequest {
    /// A pass with the batch's own CSV and the endpoint's trust.
    pub fn new(batch: &str, pass: Pass) -> Self {
        Self {
            batch: batch.to_owned(),
            csv: None,
            ca_file: None,
            insecure: false,
            tls_fingerprint: None,
            pass,
            shard: None,
        }
    }
}

/// A pass ready to run: the stage open for writing and one job per mailbox.
pub struct PreparedPass {
    stage: Stage,
    job: PassJob,
}

/// How a pass ended.
#[derive(Clone, Debug, Serialize)]
pub struct PassReport {
    /// The batch.
    pub batch: String,
    /// The batch's state after the pass.
    pub state: BatchState,
    /// Each mailbox's outcome, in the batch's order.
    pub mailboxes: Vec<MailboxOutcome>,
}

impl PassReport {
    /// 0 all done, 1 every mailbox failed, 2 done with failures or skips an admin should
    /// read.
    pub fn exit_code(&self) -> u8 {
        verdict(&self.mailboxes).1
    }
}

/// Opens the stage, checks the CSV against the batch (every mailbox needs a row, no row may
/// name a mailbox outside the batch), records changed logins and builds the job.
pub fn prepare_pass(stage_dir: &Path, req: &PassRequest) -> Result<PreparedPass> {
    let mut stage = Stage::open(stage_dir, Access::Write)?;
    let index = stage.index_mut();
    let batch = index.batch(&req.batch)?;
    if batch.state == BatchState::Removing {
        return Err(CommandError::Refused(format!(
            "batch {:?} is being removed; finish with `batch remove {}`",
            req.batch, req.batch
        )));
    }
    let endpoint = index.endpoint(&batch.settings.endpoint)?;
    let csv = req
        .csv
        .clone()
        .or_else(|| batch.settings.csv_path.clone())
        .ok_or_else(|| {
            CommandError::Refused(format!(
                "batch {:?} has no CSV file on record; give --csv",
                req.batch
            ))
        })?;
    let rows = read_batch_file(&csv)?;
    let members = match req.shard {
        Some(shard) => Some(super::shards::shard_members(index, &req.batch, shard)?.1),
        None => None,
    };
    let mailboxes = mailbox_jobs(index, &req.batch, &csv, &rows, members.as_ref())?;
    let mut connect = ConnectOptions::new(&endpoint.server, endpoint.port, endpoint.security);
    let run_trust = TlsTrust::for_run(req.ca_file.as_deref(), req.insecure, req.tls_fingerprint);
    endpoint.tls.apply(&run_trust, &mut connect);
    let concurrency = match req.pass {
        Pass::Full => endpoint.max_concurrent_migrations,
        Pass::Incremental => endpoint.max_concurrent_incremental_syncs,
    } as usize;
    let job = PassJob {
        batch: req.batch.clone(),
        connect,
        auth: batch.settings.auth,
        limits: Limits {
            max_message_size: batch.settings.max_message_size,
            max_items: batch.settings.max_items,
            include: batch.settings.include_folders.clone(),
            include_namespaces: batch.settings.include_namespaces.clone(),
            exclude: batch.settings.exclude_folders.clone(),
        },
        retry: RetryPolicy::default(),
        concurrency,
        mailboxes,
    };
    Ok(PreparedPass { stage, job })
}

/// One job per mailbox of the batch (of those in `wanted`, lower-cased, when given: a
/// shard's), with its CSV row's login; the CSV is the admin's
/// current word on logins, so changes are recorded (only changes: a batch of hundreds
/// would otherwise commit once per mailbox each run).
fn mailbox_jobs(
    index: &mut Index,
    batch: &str,
    csv: &Path,
    rows: &[BatchRow],
    wanted: Option<&HashSet<String>>,
) -> Result<Vec<MailboxJob>> {
    let known = index.mailboxes(batch)?;
    let batch_id = index.batch_id(batch)?;
    let extra: Vec<&str> = rows
        .iter()
        .filter(|r| !known.iter().any(|m| m.email.eq_ignore_ascii_case(&r.email)))
        .map(|r| r.email.as_str())
        .collect();
    if !extra.is_empty() {
        return Err(CommandError::Refused(format!(
            "{} lists mailboxes that are not in batch {batch:?}: {}; put them in a new batch",
            csv.display(),
            extra.join(", ")
        )));
    }
    let by_email: HashMap<String, &BatchRow> = rows
        .iter()
        .map(|r| (r.email.to_ascii_lowercase(), r))
        .collect();
    let mut jobs = Vec::new();
    let mut missing = Vec::new();
    for m in &known {
        if wanted.is_some_and(|w| !w.contains(&m.email.to_lowercase())) {
            continue;
        }
        let Some(&row) = by_email.get(&m.email.to_ascii_lowercase()) else {
            missing.push(m.email.as_str());
            continue;
        };
        let mailbox_id = if logins_changed(m, row) {
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
        return Err(CommandError::Refused(format!(
            "{} has no row (and so no password) for: {}; give the batch's CSV with --csv",
            csv.display(),
            missing.join(", ")
        )));
    }
    Ok(jobs)
}

fn logins_changed(m: &MailboxInfo, row: &BatchRow) -> bool {
    m.login_name != row.user_name
        || m.user_root != row.user_root
        || m.target_user != row.target_user
}

impl PreparedPass {
    /// How many mailboxes the pass covers.
    pub fn mailboxes(&self) -> usize {
        self.job.mailboxes.len()
    }

    /// The stage (open for writing) and the job, for a use case that does something else
    /// with them than a pass (`batch plan` measures the mailboxes).
    pub fn into_parts(self) -> (Stage, PassJob) {
        (self.stage, self.job)
    }

    /// Runs the pass while a connection of its own checks that the server can be reached at
    /// all (test-server's first steps): when it cannot, the pass is stopped and this fails
    /// with the diagnosis (the batch is then `Failed`); otherwise records the batch's state
    /// from the mailboxes' outcomes.
    pub fn run(self, progress: SharedProgress) -> Result<PassReport> {
        let Self { mut stage, job } = self;
        let batch = job.batch.clone();
        let mailboxes: Vec<(i64, String)> = job
            .mailboxes
            .iter()
            .map(|m| (m.mailbox_id, m.email.clone()))
            .collect();
        let connect = job.connect.clone();
        let runtime = runtime()?;
        stage
            .index_mut()
            .set_batch_state(&batch, BatchState::Syncing)?;
        let shared = stage.into_shared()?;
        let raced = runtime.block_on(unless_unreachable(
            check_server_reachable(&connect),
            run_pass(job, &shared, progress.clone()),
        ));
        // A stopped pass's tasks were aborted at their next await; the index writes they had
        // handed to blocking threads (whole transactions) end before the runtime is gone.
        drop(runtime);
        let outcomes = match raced {
            Ok(outcomes) => outcomes,
            // The check failed after a pass that got somewhere: the pass's word stands.
            Err((_, Some(outcomes))) if outcomes.iter().any(|o| o.error.is_none()) => outcomes,
            Err((failure, _)) => {
                return Err(record_unreachable(
                    &shared, &batch, &mailboxes, failure, &progress,
                ));
            }
        };
        let (state, _) = verdict(&outcomes);
        with_index(&shared.index, |i| i.set_batch_state(&batch, state))?;
        Ok(PassReport {
            batch,
            state,
            mailboxes: outcomes,
        })
    }
}

/// Races the reachability `check` against the `pass`. The check is polled first, so its
/// connection is the first the server sees. When it fails before the pass is done, the pass
/// is dropped (its mailbox tasks aborted) and `Err` carries the diagnosis; when the pass is
/// done first, the check is still waited for (it started with the pass, so it is about done)
/// and a failure comes with the pass's output.
async fn unless_unreachable<T>(
    check: impl Future<Output = ServerReport>,
    pass: impl Future<Output = T>,
) -> std::result::Result<T, (Failure, Option<T>)> {
    let (mut check, mut pass) = (pin!(check), pin!(pass));
    let (report, done) = tokio::select! {
        biased;
        report = &mut check => (report, None),
        done = &mut pass => (check.await, Some(done)),
    };
    match (report.failure, done) {
        (Some(failure), done) => Err((failure, done)),
        (None, Some(done)) => Ok(done),
        (None, None) => Ok(pass.await),
    }
}

/// Records a pass stopped because the server cannot be reached, and returns the error that
/// says so: each of its mailboxes still `Syncing` is `Failed` with the diagnosis (and its
/// listed scratch rows cleared), the batch `Failed`.
fn record_unreachable(
    shared: &SharedStage,
    batch: &str,
    mailboxes: &[(i64, String)],
    failure: Failure,
    progress: &SharedProgress,
) -> CommandError {
    let why = format!(
        "the pass stopped: cannot reach the source server: {}",
        failure.message
    );
    let error = CommandError::Unreachable {
        what: "the source server".into(),
        message: failure.message,
        hint: failure.hint,
    };
    let recorded = with_index(&shared.index, |i| {
        let syncing: HashSet<String> = i
            .mailboxes(batch)?
            .into_iter()
            .filter(|m| m.state == MailboxState::Syncing)
            .map(|m| m.email)
            .collect();
        for (id, email) in mailboxes.iter().filter(|(_, e)| syncing.contains(e)) {
            i.clear_listed(*id)?;
            let failed = MailboxState::Failed;
            i.set_mailbox_state_with_event(
                batch,
                email,
                failed,
                Some(&why),
                "mailbox.failed",
                &why,
            )?;
            progress.mailbox_finished(&MailboxOutcome {
                email: email.clone(),
                counts: MailboxCounts::default(),
                error: Some(why.clone()),
            });
        }
        i.set_batch_state(batch, BatchState::Failed)
    });
    match recorded {
        Ok(()) => error,
        Err(e) => e.into(),
    }
}

/// The batch's state and the exit status: 0 all done, 1 every mailbox failed, 2 done with
/// failures, skips or folder names outside modified UTF-7 an admin should read.
fn verdict(outcomes: &[MailboxOutcome]) -> (BatchState, u8) {
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let item_trouble = outcomes.iter().any(|o| {
        let c = &o.counts;
        c.failed + c.skipped_size + c.skipped_item_cap + c.folders_not_mutf7 > 0
    });
    if !outcomes.is_empty() && failed == outcomes.len() {
        (BatchState::Failed, 1)
    } else if failed > 0 || item_trouble {
        (BatchState::SyncedWithErrors, 2)
    } else {
        (BatchState::Synced, 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::imap::diagnose::FailureKind;

    /// A check that answers after `after`, failing when `fails`.
    async fn check(after: u64, fails: bool) -> ServerReport {
        tokio::time::sleep(Duration::from_millis(after)).await;
        ServerReport {
            failure: fails.then(|| Failure {
                kind: FailureKind::Refused,
                message: "refused".into(),
                hint: "the port".into(),
            }),
            ..ServerReport::default()
        }
    }

    /// Sets its flag when dropped: the pass was stopped.
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_check_stops_the_pass_and_a_finished_pass_waits_for_the_check() {
        let stopped = Arc::new(AtomicBool::new(false));
        let guard = Dropped(stopped.clone());
        let endless = async move {
            let _guard = guard;
            std::future::pending::<u8>().await
        };
        let raced = unless_unreachable(check(40, true), endless).await;
        assert!(matches!(raced, Err((ref f, None)) if f.message == "refused"));
        assert!(stopped.load(Ordering::SeqCst), "the pass was dropped");

        let quick = async { 7u8 };
        let raced = unless_unreachable(check(40, true), quick).await;
        assert!(matches!(raced, Err((_, Some(7)))), "{raced:?}");

        let slow = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            8u8
        };
        assert!(matches!(
            unless_unreachable(check(40, false), slow).await,
            Ok(8)
        ));
        let quick = async { 9u8 };
        assert!(matches!(
            unless_unreachable(check(40, false), quick).await,
            Ok(9)
        ));
    }
}
