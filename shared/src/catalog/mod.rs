//! What the admin defines, stored in the stage's index and read by every run: source
//! endpoints (`New-MigrationEndpoint`), batches (`New-MigrationBatch`) with their CSV batch
//! files, upload targets with where their secrets come from, and the TLS trust kept with an
//! endpoint or target. Plain data: no connection, no pipeline.

mod batch;
mod csv_file;
mod endpoint;
mod target;
mod tls_trust;

pub use batch::{BatchSettings, DEFAULT_MAX_ITEMS, DEFAULT_MAX_MESSAGE_SIZE};
pub use csv_file::{BatchFileError, BatchRow, RowProblem, parse_batch_csv, read_batch_file};
pub use endpoint::{EndpointSettings, Security};
pub use target::{
    M365_IMAP_HOST, M365_LOGIN_URL, SecretError, SecretSource, TargetKind, TargetSettings,
};
pub use tls_trust::{CaFileError, TlsTrust};
