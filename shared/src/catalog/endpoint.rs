//! A migration endpoint: the source IMAP server and how many mailboxes may copy at once,
//! as `New-MigrationEndpoint -IMAP` describes it.

pub use mailstage_imap::Security;

use super::TlsTrust;

/// Everything stored about an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSettings {
    /// The endpoint's name, unique in the stage.
    pub name: String,
    /// The IMAP server's host name or address.
    pub server: String,
    /// The TCP port.
    pub port: u16,
    /// Plain, implicit TLS or STARTTLS.
    pub security: Security,
    /// Mailboxes copied at once in a first pass (`-MaxConcurrentMigrations`).
    pub max_concurrent_migrations: u32,
    /// Mailboxes copied at once in incremental passes (`-MaxConcurrentIncrementalSyncs`).
    pub max_concurrent_incremental_syncs: u32,
    /// Extra trust for the server's certificate (a private CA, or none for a lab server).
    pub tls: TlsTrust,
}

impl EndpointSettings {
    /// An endpoint with Microsoft's defaults for the two concurrency limits (20 and 10).
    pub fn new(name: &str, server: &str, port: u16, security: Security) -> Self {
        Self {
            name: name.to_owned(),
            server: server.to_owned(),
            port,
            security,
            max_concurrent_migrations: 20,
            max_concurrent_incremental_syncs: 10,
            tls: TlsTrust::default(),
        }
    }
}
