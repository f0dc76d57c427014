//! `stage merge --into S STAGE…` ([`merge_stages`]), and reading several stages as one
//! without merging them ([`StageView`], for `batch status` and the reports).
//!
//! Copying a stage to another machine is the same operation: merge it into an empty (or
//! existing) stage there; what arrives is checked blob by blob.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{CommandError, Result};
use crate::stage::index::MergeScope;
use crate::stage::{Access, MergedStage, Stage};

/// Merges each stage of `sources` into the stage at `into` (created when missing), one after
/// the other; see [`Stage::merge_from`]. Merging a stage again changes nothing.
pub fn merge_stages(into: &Path, sources: &[PathBuf]) -> Result<Vec<MergedStage>> {
    if sources.is_empty() {
        return Err(CommandError::Refused(
            "name at least one stage to merge".into(),
        ));
    }
    let mut stage = Stage::open(into, Access::Write)?;
    let mut out = Vec::with_capacity(sources.len());
    for source in sources {
        out.push(stage.merge_from(source)?);
    }
    Ok(out)
}

/// One stage to read: the stage itself, or several stages combined into a private
/// temporary stage holding their index rows (no blobs), removed when the view is dropped.
/// The stages themselves are only read.
#[derive(Debug)]
pub struct StageView {
    dir: PathBuf,
    temporary: bool,
}

impl StageView {
    /// A view of `stages`: the one stage as it is, or their rows merged in a temporary stage.
    pub fn of(stages: &[PathBuf]) -> Result<Self> {
        match stages {
            [] => Err(CommandError::Refused("no stage given".into())),
            [one] => Ok(Self {
                dir: one.clone(),
                temporary: false,
            }),
            many => {
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let dir = std::env::temp_dir().join(format!(
                    "mailstage-view-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                let view = Self {
                    dir,
                    temporary: true,
                };
                let mut combined = Stage::open(&view.dir, Access::Write)?;
                for stage in many {
                    let source = Stage::open(stage, Access::Read)?;
                    combined
                        .index_mut()
                        .merge_rows_from(source.index().path(), MergeScope::Everything)?;
                }
                Ok(view)
            }
        }
    }

    /// The directory to open as a stage (for reading).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for StageView {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
