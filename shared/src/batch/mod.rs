//! Batches of mailboxes: endpoint settings and CSV batch files.

mod csv_file;
mod endpoint;

pub use csv_file::{BatchFileError, BatchRow, RowProblem, parse_batch_csv, read_batch_file};
pub use endpoint::{EndpointSettings, Security};
