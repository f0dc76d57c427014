//! `mailstage-extract batch report B` and `mailstage-upload report --batch B [--target T]`:
//! the migration report of a batch in one format, from the stage alone (no connection).

use std::path::Path;

use super::error::{CommandError, Result};
use crate::report::formats::{ReportFormat, render};
use crate::report::reconcile::{BatchReport, ReportRequest};
use crate::stage::{Access, Index, Stage};

/// A report, built and written out.
#[derive(Debug)]
pub struct Rendered {
    /// The model (its grade picks the exit status).
    pub report: BatchReport,
    /// The report in the format asked for.
    pub text: String,
}

/// Builds the report `req` asks for from the stage at `dir` and renders it in `format`.
/// With a target (the upload report) `req.target` must name one: see [`resolve_target`].
pub fn report(dir: &Path, req: &ReportRequest, format: ReportFormat) -> Result<Rendered> {
    let stage = Stage::open(dir, Access::Read)?;
    if let Some(t) = &req.target {
        stage.index().target(t)?;
    }
    let report = BatchReport::build(&stage, req)?;
    let text = render(&report, format).map_err(|source| CommandError::File {
        action: "render the report",
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(Rendered { report, text })
}

/// The target asked for, or the only one the batch went to (or the only one there is);
/// refused, naming the choices, when that is ambiguous.
pub fn resolve_target(index: &Index, batch: &str, target: Option<&str>) -> Result<String> {
    if let Some(t) = target {
        index.target(t)?;
        return Ok(t.to_owned());
    }
    let used = index.targets_of_batch(batch)?;
    let names = |v: &[String]| v.join(", ");
    match used.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            let all: Vec<String> = index.targets()?.into_iter().map(|t| t.name).collect();
            match all.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(CommandError::Refused(
                    "no target exists yet: create one with `mailstage-upload target new`".into(),
                )),
                _ => Err(CommandError::Refused(format!(
                    "batch {batch:?} has not been uploaded yet; name a target with --target ({})",
                    names(&all)
                ))),
            }
        }
        _ => Err(CommandError::Refused(format!(
            "batch {batch:?} went to several targets ({}); name one with --target",
            names(&used)
        ))),
    }
}
