//! Batches of mailboxes: endpoint settings, CSV batch files and admin-credential logins.

mod csv_file;
mod endpoint;
mod login;
mod tls_trust;

pub use csv_file::{BatchFileError, BatchRow, RowProblem, parse_batch_csv, read_batch_file};
pub use endpoint::{EndpointSettings, Security};
pub use login::{AuthChoice, LoginFormat, LoginMethod, ServerAuth, login_method};
pub use tls_trust::TlsTrust;
