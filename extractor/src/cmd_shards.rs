//! `batch plan` and `stage merge`: arguments and what they print.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use mailstage::cli::RunTls;
use mailstage::commands::merge::merge_stages;
use mailstage::commands::pass::PassRequest;
use mailstage::commands::shards::{PlanRequest, export_shards, plan as plan_batch};
use mailstage::extract::Pass;
use mailstage::report::print_json;
use mailstage::report::table::{Align, Table, grouped, human_bytes};

/// Arguments of `batch plan`.
#[derive(Args)]
pub struct PlanArgs {
    /// The batch.
    name: String,
    /// How many shards (a batch keeps the count of its first plan).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    shards: u32,
    /// The batch file to read logins from, and to add mailboxes from (default: the one given
    /// to `batch new`).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Do not reach the server: place new mailboxes by a hash of their address.
    #[arg(long)]
    no_sizes: bool,
    /// Seed a stage per shard, DIR/shard-0 … DIR/shard-(N-1), with the catalog (endpoints,
    /// targets, the batch and its plan; never a password or secret).
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
    #[command(flatten)]
    tls: RunTls,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

/// `batch plan`.
pub fn plan(stage_dir: &Path, a: PlanArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let req = PlanRequest {
        pass: PassRequest {
            csv: a.csv,
            ca_file: a.tls.ca_file,
            insecure: a.tls.insecure,
            tls_fingerprint: a.tls.tls_fingerprint,
            ..PassRequest::new(&a.name, Pass::Full)
        },
        shards: a.shards,
        measure: !a.no_sizes,
    };
    let report = plan_batch(stage_dir, &req)?;
    let exported = match &a.export {
        Some(dir) => export_shards(stage_dir, &a.name, dir)?,
        None => Vec::new(),
    };
    if a.json {
        #[derive(serde::Serialize)]
        struct Planned<'a> {
            #[serde(flatten)]
            plan: &'a mailstage::commands::shards::PlanReport,
            exported: &'a [PathBuf],
        }
        print_json(
            out,
            &Planned {
                plan: &report,
                exported: &exported,
            },
        )?;
        return Ok(0);
    }
    writeln!(
        out,
        "batch {:?} in {} shard(s): {} mailbox(es) placed now{}",
        report.batch,
        report.shards,
        report.placed.len(),
        match report.added.len() {
            0 => String::new(),
            n => format!(" ({n} added from the CSV)"),
        }
    )?;
    let mut t = Table::new(&[
        ("SHARD", Align::Right),
        ("MAILBOXES", Align::Right),
        ("MESSAGES", Align::Right),
        ("BYTES", Align::Right),
        ("SIZE UNKNOWN", Align::Right),
    ]);
    for s in &report.totals {
        t.row(vec![
            s.shard.to_string(),
            grouped(s.mailboxes),
            grouped(s.messages),
            human_bytes(s.bytes),
            grouped(s.unknown_sizes),
        ]);
    }
    t.write(out)?;
    for (email, why) in &report.size_errors {
        writeln!(out, "{email}: placed by a hash of the address: {why}")?;
    }
    for dir in &exported {
        writeln!(out, "seeded {}", dir.display())?;
    }
    writeln!(
        out,
        "run a shard with: mailstage-extract --stage STAGE batch start {} --shard I/{} \
         (or --shard-from-env in a Slurm array or Kubernetes Indexed Job)",
        report.batch, report.shards
    )?;
    Ok(0)
}

/// `stage merge --into S STAGE…`.
pub fn merge(
    into: &Path,
    stages: &[PathBuf],
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let merged = merge_stages(into, stages)?;
    if json {
        print_json(out, &merged)?;
        return Ok(0);
    }
    for m in &merged {
        let r = &m.rows;
        writeln!(
            out,
            "{}: {} blob(s) copied ({}), {} already here; rows added or brought forward: \
             {} mailbox(es), {} folder(s), {} message(s), {} upload(s), {} event(s)",
            m.source.display(),
            grouped(m.blobs_copied),
            human_bytes(m.bytes_copied),
            grouped(m.blobs_present),
            grouped(r.mailboxes),
            grouped(r.folders),
            grouped(r.messages),
            grouped(r.uploads),
            grouped(r.events),
        )?;
    }
    writeln!(out, "merged into {}", into.display())?;
    Ok(0)
}
