//! The use cases the binaries run, one module each: a binary parses arguments, calls one of
//! these, prints what it returns and picks the exit status. A library user (or a scheduler
//! running shards of a batch on many machines) calls the same functions.
//!
//! - [`test_server`]: reach a server and log in with each CSV row.
//! - [`new_batch`]: create a batch from a CSV.
//! - [`pass`]: a first or incremental pass of a batch (prepare, then run).
//! - [`sync_loop`]: `batch sync --every`, passes on a schedule that outlives outages.
//! - [`upload_run`]: a batch's staged mail into a target (prepare, then run).
//! - [`lint`]: the dry run's predictions from the stage alone (no connection).
//! - [`verify`]: re-hash the stage and report (the same for both binaries).
//! - [`report`]: a batch's migration report (text, JSON, CSV, HTML).
//! - [`merge`]: shard stages folded into one, and several stages read as one.
//! - [`shards`]: a batch's shard plan and the shards' own stages.
//! - [`approve_skipped`]: record an admin's approval of a batch's skipped items.

pub mod approve_skipped;
mod error;
pub mod lint;
pub mod merge;
pub mod new_batch;
pub mod pass;
pub mod report;
pub mod shards;
pub mod sync_loop;
pub mod test_server;
pub mod upload_run;
pub mod verify;

pub use error::{CommandError, Result};
