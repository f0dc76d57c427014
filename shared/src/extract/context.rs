//! What the mailbox tasks of one pass share; built by `run.rs`, read by every step.

use super::{Limits, RetryPolicy, SharedProgress};
use crate::imap::transport::ConnectOptions;
use crate::login::AuthChoice;
use crate::stage::StageHandle;

/// What every mailbox task of a pass shares.
pub(super) struct Ctx {
    pub batch: String,
    pub connect: ConnectOptions,
    pub auth: AuthChoice,
    pub limits: Limits,
    pub retry: RetryPolicy,
    pub stage: StageHandle,
    pub progress: SharedProgress,
}
