//! `mailstage-extract batch approve-skipped B`: an admin's approval of the messages a batch
//! left behind (as `Set-MigrationBatch -ApproveSkippedItems`), recorded in the event log with
//! what was approved. The report shows it beside the grade.

use std::path::Path;

use super::error::Result;
use crate::report::reconcile::APPROVAL_EVENT;
use crate::report::table::grouped;
use crate::stage::{Access, Stage};

/// What was approved.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Approved {
    /// The batch.
    pub batch: String,
    /// Messages over the size cap.
    pub skipped_size: u64,
    /// Messages beyond the item cap.
    pub skipped_item_cap: u64,
    /// Messages that failed on the source.
    pub failed: u64,
    /// The event's words.
    pub detail: String,
}

/// Records the approval of batch `batch`'s skipped and failed messages as they stand now.
pub fn approve_skipped(dir: &Path, batch: &str) -> Result<Approved> {
    let stage = Stage::open(dir, Access::Write)?;
    let c = stage.index().batch_status(batch)?.totals.counts;
    let detail = format!(
        "{} over the size cap, {} beyond the item cap, {} failed on the source",
        grouped(c.skipped_size),
        grouped(c.skipped_item_cap),
        grouped(c.failed)
    );
    stage
        .index()
        .record_event(Some(batch), None, APPROVAL_EVENT, &detail)?;
    Ok(Approved {
        batch: batch.to_owned(),
        skipped_size: c.skipped_size,
        skipped_item_cap: c.skipped_item_cap,
        failed: c.failed,
        detail,
    })
}
