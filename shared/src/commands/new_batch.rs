//! `batch new` (New-MigrationBatch): a batch of mailboxes from a CSV on an endpoint. The
//! whole file is checked before the stage is touched, and the batch is created with its
//! mailboxes in one transaction. Passwords are not stored: each run reads them from the
//! CSV, whose absolute path the batch records.

use std::path::PathBuf;

use super::error::{CommandError, Result};
use crate::catalog::{BatchSettings, read_batch_file};
use crate::stage::index::{BatchInfo, NewMailbox};
use crate::stage::{Access, Stage};

/// Creates the batch `settings.name` with one mailbox per row of `csv` (its `csv_path` is
/// set to the file's absolute path) and returns it as stored.
pub fn new_batch(
    stage_dir: &std::path::Path,
    csv: &std::path::Path,
    settings: BatchSettings,
) -> Result<BatchInfo> {
    let rows = read_batch_file(csv)?;
    let csv_path: PathBuf = csv.canonicalize().map_err(|source| CommandError::File {
        action: "resolving",
        path: csv.to_path_buf(),
        source,
    })?;
    let mailboxes: Vec<NewMailbox> = rows
        .into_iter()
        .map(|r| NewMailbox {
            email: r.email,
            login_name: r.user_name,
            user_root: r.user_root,
            target_user: r.target_user,
        })
        .collect();
    let settings = BatchSettings {
        csv_path: Some(csv_path),
        ..settings
    };
    let mut stage = Stage::open(stage_dir, Access::Write)?;
    stage
        .index_mut()
        .create_batch_with_mailboxes(&settings, &mailboxes)?;
    Ok(stage.index().batch(&settings.name)?)
}
