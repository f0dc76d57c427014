//! `verify` (both binaries offer it with the same behaviour, so they share one body).

use std::io::Write;
use std::path::Path;

use super::{CommandError, Result};
use crate::stage::{Access, Stage, StageError, verify};

/// Runs `verify` on the stage at `dir`, writes the report (text or JSON) to `out`, and
/// returns the process exit code: 0 clean, 1 damaged or missing blobs, 2 garbage only.
pub fn verify_command(dir: &Path, json: bool, out: &mut dyn Write) -> Result<i32> {
    let stage = Stage::open(dir, Access::Read)?;
    let report = verify::verify(&stage)?;
    let text = if json {
        let mut s = serde_json::to_string_pretty(&report)
            .map_err(|e| StageError::Refused(format!("cannot render the report as JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        report.render_text()
    };
    out.write_all(text.as_bytes())
        .map_err(CommandError::Output)?;
    Ok(report.exit_code())
}
