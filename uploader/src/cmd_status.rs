//! `status`: where each mailbox's upload to a target stands.

use std::io::Write;
use std::path::Path;

use clap::Args;
use mailstage::report::print_json;
use mailstage::report::table::{Align, Table, grouped, human_bytes, or_dash};
use mailstage::stage::{Access, Index, Stage};
use mailstage::upload::mailbox_label;

/// Arguments of `status`.
#[derive(Args)]
pub struct StatusArgs {
    /// The batch.
    #[arg(long)]
    batch: String,
    /// The target (may be left out when the batch went to one target only, or only one
    /// exists).
    #[arg(long)]
    target: Option<String>,
    /// Print it as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `status`; exit status 0.
pub fn run(stage_dir: &Path, args: StatusArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let stage = Stage::open(stage_dir, Access::Read)?;
    let target = which_target(stage.index(), &args)?;
    let rows = stage.index().upload_status(&args.batch, &target)?;
    if args.json {
        print_json(out, &rows)?;
        return Ok(0);
    }
    let mut t = Table::new(&[
        ("MAILBOX", Align::Left),
        ("STATE", Align::Left),
        ("STAGED", Align::Right),
        ("DONE", Align::Right),
        ("PENDING", Align::Right),
        ("EXCLUDED", Align::Right),
        ("SOURCE DELETED", Align::Right),
        ("IN FLIGHT", Align::Right),
        ("FAILED", Align::Right),
        ("BYTES DONE", Align::Right),
        ("LAST RUN", Align::Right),
        ("LAST ERROR", Align::Left),
    ]);
    for r in &rows {
        t.row(vec![
            mailbox_label(&r.email, &r.target_mailbox),
            r.state.clone().unwrap_or_else(|| "NotStarted".into()),
            grouped(r.staged),
            grouped(r.done),
            grouped(r.pending),
            grouped(r.excluded),
            grouped(r.deleted_on_source),
            grouped(r.in_flight),
            grouped(r.failed),
            format!(
                "{} of {}",
                human_bytes(r.done_bytes),
                human_bytes(r.staged_bytes)
            ),
            r.rate().map_or_else(
                || "-".into(),
                |(m, b)| format!("{m:.1} msg/s, {}/s", human_bytes(b as u64)),
            ),
            or_dash(r.last_error.as_deref().or(r.last_refusal.as_deref())),
        ]);
    }
    t.write(out)?;
    Ok(0)
}

/// The target asked for, or the only one the batch went to (or the only one there is).
fn which_target(index: &Index, args: &StatusArgs) -> anyhow::Result<String> {
    Ok(mailstage::commands::report::resolve_target(
        index,
        &args.batch,
        args.target.as_deref(),
    )?)
}
