//! What the mailbox tasks of one run share; built by `run.rs`, read by every step.

use super::{MappingRules, Pace, SharedProgress};
use crate::retry::RetryPolicy;
use crate::stage::StageHandle;

/// What every mailbox task of a run shares.
pub(super) struct Ctx {
    pub batch: String,
    pub target: String,
    pub m365: bool,
    pub rules: MappingRules,
    pub dry_run: bool,
    pub retry: RetryPolicy,
    pub connections: usize,
    pub pace: Pace,
    pub stage: StageHandle,
    pub progress: SharedProgress,
}
