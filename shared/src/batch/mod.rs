//! Batches of mailboxes: endpoint settings (and, later, CSV batch files and login formats).

mod endpoint;

pub use endpoint::{EndpointSettings, Security};
