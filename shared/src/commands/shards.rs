//! `batch plan B --shards N [--export DIR]`: a batch split into shards that run on many
//! machines (a Slurm array, a Kubernetes Indexed Job), each an ordinary run of the two
//! binaries on its own stage, merged back with `stage merge`.
//!
//! The plan measures the mailboxes not planned yet in one quick pass (no body is fetched:
//! [`crate::extract::sizing`]), places them largest first onto the lightest shard (by a
//! stable hash of the address when a size cannot be had) and stores each mailbox's shard in
//! the index, where it never changes: mailboxes added to the batch later are placed
//! around the ones already planned.
//!
//! A shard's stage is seeded by `--export DIR`: `DIR/shard-I` gets the catalog (endpoints,
//! targets, the batch and its mailboxes with their shards) and nothing else. Passwords are
//! never in a stage: each shard run reads them from the batch's CSV (the path recorded by
//! `batch new`, or `--csv` where the shard's machine keeps it), and a target's secret from
//! the environment variable or file its settings name.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{CommandError, Result, runtime};
use super::pass::{PassRequest, prepare_pass};
use crate::catalog::read_batch_file;
use crate::extract::sizing::measure_mailboxes;
use crate::shard::{ShardRequest, ShardSpec, ToPlace, place};
use crate::stage::index::{Index, MergeScope, NewMailbox, Placement, PlannedMailbox};
use crate::stage::{Access, Stage};

/// What `batch plan` is asked.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// The batch, the CSV to read logins from, and the TLS trust for the sizing pass.
    pub pass: PassRequest,
    /// How many shards.
    pub shards: u32,
    /// Measure the new mailboxes on the server (otherwise they are placed by hash).
    pub measure: bool,
}

/// One shard's share of the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShardTotal {
    /// The shard (from 0).
    pub shard: u32,
    /// Its mailboxes.
    pub mailboxes: u64,
    /// The bytes the source reported for them.
    pub bytes: u64,
    /// The messages the source reported for them.
    pub messages: u64,
    /// Of its mailboxes, those placed by hash (size unknown).
    pub unknown_sizes: u64,
}

/// What `batch plan` did and the plan as it now stands.
#[derive(Clone, Debug, Serialize)]
pub struct PlanReport {
    /// The batch.
    pub batch: String,
    /// Its shard count.
    pub shards: u32,
    /// Mailboxes the CSV listed that the batch did not have, added to it now.
    pub added: Vec<String>,
    /// Mailboxes placed by this run (the others kept their shard).
    pub placed: Vec<String>,
    /// Mailboxes whose size could not be had, and why (placed by hash).
    pub size_errors: BTreeMap<String, String>,
    /// Every mailbox with its shard.
    pub mailboxes: Vec<PlannedMailbox>,
    /// Per shard.
    pub totals: Vec<ShardTotal>,
}

/// Plans the batch in `req.shards` shards; mailboxes already planned keep their shard.
pub fn plan(stage_dir: &Path, req: &PlanRequest) -> Result<PlanReport> {
    let batch = req.pass.batch.clone();
    if req.shards == 0 {
        return Err(CommandError::Refused(
            "a plan needs at least one shard".into(),
        ));
    }
    let added = add_new_rows(stage_dir, req)?;
    let (mut stage, job) = prepare_pass(stage_dir, &req.pass)?.into_parts();
    let before = stage.index().shard_plan(&batch)?;
    let unplanned: HashSet<&str> = before
        .iter()
        .filter(|m| m.shard.is_none())
        .map(|m| m.email.as_str())
        .collect();
    let mut loads = vec![0u64; req.shards as usize];
    for m in &before {
        if let Some(s) = m.shard {
            loads[s as usize] += m.bytes.unwrap_or(0);
        }
    }
    let (to_measure, _): (Vec<_>, Vec<_>) = job
        .mailboxes
        .into_iter()
        .partition(|m| unplanned.contains(m.email.as_str()));
    let emails: Vec<String> = to_measure.iter().map(|m| m.email.clone()).collect();
    let sizes = if req.measure && !to_measure.is_empty() {
        runtime()?.block_on(measure_mailboxes(
            &job.connect,
            job.auth,
            &job.limits,
            to_measure,
            job.concurrency,
        ))
    } else {
        emails
            .iter()
            .map(|_| Err("not measured (--no-sizes)".to_owned()))
            .collect()
    };
    if req.measure
        && !sizes.is_empty()
        && let Some(Err(first)) = sizes.iter().find(|s| s.is_err())
        && sizes.iter().all(|s| s.is_err())
    {
        return Err(CommandError::Refused(format!(
            "no mailbox of batch {batch:?} could be measured (the first: {first}); fix that, \
             or place them by a hash of their address with --no-sizes"
        )));
    }
    let mut size_errors = BTreeMap::new();
    let new: Vec<ToPlace> = emails
        .iter()
        .zip(&sizes)
        .map(|(email, size)| ToPlace {
            email: email.clone(),
            bytes: match size {
                Ok(s) => Some(s.bytes),
                Err(e) => {
                    if req.measure {
                        tracing::warn!(mailbox = %email, "size unknown ({e}); placed by a hash of the address");
                    }
                    size_errors.insert(email.clone(), e.clone());
                    None
                }
            },
        })
        .collect();
    let shards = place(&mut loads, &new);
    let placements: Vec<Placement> = new
        .iter()
        .zip(&shards)
        .zip(&sizes)
        .map(|((p, &shard), size)| Placement {
            email: p.email.clone(),
            shard,
            bytes: p.bytes,
            messages: size.as_ref().ok().map(|s| s.messages),
        })
        .collect();
    stage
        .index_mut()
        .record_shard_plan(&batch, req.shards, &placements)?;
    let mailboxes = stage.index().shard_plan(&batch)?;
    Ok(PlanReport {
        totals: totals(req.shards, &mailboxes),
        batch,
        shards: req.shards,
        added,
        placed: emails,
        size_errors,
        mailboxes,
    })
}

/// Adds the CSV's rows that the batch does not have yet (how mailboxes join a planned batch);
/// refused when the batch is planned in another shard count.
fn add_new_rows(stage_dir: &Path, req: &PlanRequest) -> Result<Vec<String>> {
    let batch = &req.pass.batch;
    let mut stage = Stage::open(stage_dir, Access::Write)?;
    let index = stage.index_mut();
    let info = index.batch(batch)?;
    if let Some(count) = index.shard_count(batch)?
        && count != req.shards
    {
        return Err(CommandError::Refused(format!(
            "batch {batch:?} is planned in {count} shard(s), not {}: a plan keeps every mailbox \
             where it is (give --shards {count})",
            req.shards
        )));
    }
    let Some(csv) = req.pass.csv.clone().or(info.settings.csv_path) else {
        return Ok(Vec::new());
    };
    let known: HashSet<String> = index
        .mailboxes(batch)?
        .into_iter()
        .map(|m| m.email.to_lowercase())
        .collect();
    let batch_id = index.batch_id(batch)?;
    let mut added = Vec::new();
    for row in read_batch_file(&csv)? {
        if known.contains(&row.email.to_lowercase()) {
            continue;
        }
        index.add_mailbox(
            batch_id,
            &NewMailbox {
                email: row.email.clone(),
                login_name: row.user_name.clone(),
                user_root: row.user_root.clone(),
                target_user: row.target_user.clone(),
            },
        )?;
        index.record_event(
            Some(batch),
            Some(&row.email),
            "mailbox.added",
            "by batch plan",
        )?;
        added.push(row.email);
    }
    Ok(added)
}

fn totals(count: u32, mailboxes: &[PlannedMailbox]) -> Vec<ShardTotal> {
    let mut out: Vec<ShardTotal> = (0..count)
        .map(|shard| ShardTotal {
            shard,
            ..ShardTotal::default()
        })
        .collect();
    for m in mailboxes {
        let Some(t) = m.shard.and_then(|s| out.get_mut(s as usize)) else {
            continue;
        };
        t.mailboxes += 1;
        t.bytes += m.bytes.unwrap_or(0);
        t.messages += m.messages.unwrap_or(0);
        t.unknown_sizes += u64::from(m.bytes.is_none());
    }
    out
}

/// Seeds one stage per shard, `dir/shard-I`, with this stage's catalog (endpoints, targets,
/// batches and mailboxes with their shards; no message, no secret). Exporting again after
/// the plan grew adds the new mailboxes and leaves everything else alone. Returns the
/// stages' directories.
pub fn export_shards(stage_dir: &Path, batch: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    let source = Stage::open(stage_dir, Access::Read)?;
    let count = source.index().shard_count(batch)?.ok_or_else(|| {
        CommandError::Refused(format!("batch {batch:?} has no shard plan to export"))
    })?;
    let mut out = Vec::new();
    for i in 0..count {
        let path = dir.join(format!("shard-{i}"));
        let mut shard = Stage::open(&path, Access::Write)?;
        shard
            .index_mut()
            .merge_rows_from(source.index().path(), MergeScope::Catalog)?;
        out.push(path);
    }
    Ok(out)
}

/// The shard `req` asks for and the addresses (lower-cased) of its mailboxes; refused when
/// the batch has no plan, the count differs from the plan's, or a mailbox of the batch has
/// no shard yet (a plan must place it first, or two shards could both take it).
pub(crate) fn shard_members(
    index: &Index,
    batch: &str,
    req: ShardRequest,
) -> Result<(ShardSpec, HashSet<String>)> {
    let spec = req
        .resolve(batch, index.shard_count(batch)?)
        .map_err(CommandError::Refused)?;
    let plan = index.shard_plan(batch)?;
    let unplanned: Vec<&str> = plan
        .iter()
        .filter(|m| m.shard.is_none())
        .map(|m| m.email.as_str())
        .collect();
    if !unplanned.is_empty() {
        return Err(CommandError::Refused(format!(
            "mailbox(es) of batch {batch:?} without a shard: {}; place them with: \
             mailstage-extract batch plan {batch} --shards {}",
            unplanned.join(", "),
            spec.count
        )));
    }
    let members = plan
        .into_iter()
        .filter(|m| m.shard == Some(spec.index))
        .map(|m| m.email.to_lowercase())
        .collect();
    Ok((spec, members))
}
