//! `report`: a batch's migration report through both phases.

use std::io::Write;
use std::path::Path;

use clap::Args;
use mailstage::cli::ReportOutput;
use mailstage::commands::report::{report, resolve_target};
use mailstage::report::reconcile::ReportRequest;
use mailstage::stage::{Access, Stage};

/// Arguments of `report`.
#[derive(Args)]
pub struct ReportArgs {
    /// The batch.
    #[arg(long)]
    batch: String,
    /// The target (may be left out when the batch went to one target only, or only one
    /// exists).
    #[arg(long)]
    target: Option<String>,
    #[command(flatten)]
    output: ReportOutput,
}

/// Runs `report`; exit status 0 Perfect or Good, 2 Investigate or Poor.
pub fn run(stage_dir: &Path, args: ReportArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    let target = {
        let stage = Stage::open(stage_dir, Access::Read)?;
        resolve_target(stage.index(), &args.batch, args.target.as_deref())?
    };
    let req = ReportRequest {
        batch: args.batch,
        target: Some(target),
        all: args.output.all,
    };
    let rendered = report(stage_dir, &req, args.output.format)?;
    Ok(args.output.write(&rendered, out)?)
}
