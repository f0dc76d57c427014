//! Group commits across a mailbox's folders: the rows of the groups a pass fetches, from
//! whatever folders they come, are gathered until a group's worth (`GROUP_UIDS` rows or
//! `GROUP_BYTES`) is ready, then their blobs are persisted and the rows committed in one
//! transaction on a blocking thread while the download goes on. A mailbox of many small
//! folders then pays for durability and a transaction a few times, not once per folder.
//!
//! Invariants kept: rows are committed in the order they were fetched, so every folder's
//! rows still commit in UID order and every UID up to its `highest_uid` has a row; a folder
//! counts as finished (and its HIGHESTMODSEQ is recorded) only after the commit that holds
//! its last rows, so a crash before it leaves the folder to be read again (its flags all
//! read); whatever stops the pass first commits what arrived whole ([`Committer::flush`]).

use std::collections::HashSet;

use tokio::task::JoinHandle;

use super::bodies::{GROUP_BYTES, GROUP_UIDS, GroupDone, GroupRows, add, await_group, commit};
use super::context::Ctx;
use super::{ExtractError, MailboxCounts};
use crate::stage::StageError;

/// A folder whose rows were all handed over: its id and the HIGHESTMODSEQ to record.
type FolderDone = (i64, Option<u64>);

/// The commit running, and the folders it finishes.
type Running = (JoinHandle<Result<GroupDone, StageError>>, Vec<FolderDone>);

/// Gathers a mailbox's rows into group commits, one running at a time.
pub(super) struct Committer<'a> {
    ctx: &'a Ctx,
    email: &'a str,
    /// Folders finished during this pass (their rows and HIGHESTMODSEQ committed).
    finished: &'a mut HashSet<i64>,
    /// Rows fetched and not yet handed to a commit, in order.
    ready: GroupRows,
    ready_bytes: u64,
    /// Folders whose last rows are in `ready` (or committed already).
    ready_folders: Vec<FolderDone>,
    running: Option<Running>,
}

impl<'a> Committer<'a> {
    /// A committer for `email`'s pass; the folders it finishes go into `finished`.
    pub fn new(ctx: &'a Ctx, email: &'a str, finished: &'a mut HashSet<i64>) -> Self {
        Self {
            ctx,
            email,
            finished,
            ready: GroupRows::default(),
            ready_bytes: 0,
            ready_folders: Vec::new(),
            running: None,
        }
    }

    /// Adds a group's rows (in UID order, after the rows added before from the same
    /// folder); starts a commit once a group's worth is ready.
    pub async fn add(
        &mut self,
        rows: GroupRows,
        counts: &mut MailboxCounts,
    ) -> Result<(), ExtractError> {
        self.ready_bytes += rows.pending.iter().map(|p| p.len()).sum::<u64>();
        self.ready.append(rows);
        if self.ready.rows.len() >= GROUP_UIDS || self.ready_bytes >= GROUP_BYTES {
            self.start(counts).await?;
        }
        Ok(())
    }

    /// Every row of `folder_id` was added: it is finished, and `modseq` recorded, once they
    /// are committed.
    pub fn folder_done(&mut self, folder_id: i64, modseq: Option<u64>) {
        self.ready_folders.push((folder_id, modseq));
    }

    /// Commits everything added so far and waits for it.
    pub async fn flush(&mut self, counts: &mut MailboxCounts) -> Result<(), ExtractError> {
        if !self.ready.rows.is_empty() || !self.ready_folders.is_empty() {
            self.start(counts).await?;
        }
        self.wait(counts).await
    }

    /// Waits for the commit running, then starts one of what is ready.
    async fn start(&mut self, counts: &mut MailboxCounts) -> Result<(), ExtractError> {
        self.wait(counts).await?;
        let rows = std::mem::take(&mut self.ready);
        let folders = std::mem::take(&mut self.ready_folders);
        self.ready_bytes = 0;
        self.running = Some((commit(self.ctx, rows, folders.clone()), folders));
        Ok(())
    }

    /// Waits for the commit running, if any, and counts what it committed.
    async fn wait(&mut self, counts: &mut MailboxCounts) -> Result<(), ExtractError> {
        if let Some((handle, folders)) = self.running.take() {
            add(counts, await_group(handle).await?, self.ctx, self.email);
            self.finished.extend(folders.iter().map(|(id, _)| *id));
        }
        Ok(())
    }
}
