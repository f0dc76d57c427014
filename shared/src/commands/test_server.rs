//! `test-server`: the counterpart of Test-MigrationServerAvailability — can this machine
//! reach the IMAP server, is TLS right, and (given the batch CSV) does every row log in?

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::error::{Result, runtime};
use crate::catalog::read_batch_file;
use crate::imap::diagnose::{ServerReport, check_server};
use crate::imap::transport::ConnectOptions;
use crate::imap::{Fingerprint, Security};
use crate::login::{AuthChoice, LoginCheck, check_logins};

/// What to check.
#[derive(Clone, Debug)]
pub struct TestServerRequest {
    /// The server's name or address.
    pub server: String,
    /// The port (default: the security's usual port).
    pub port: Option<u16>,
    /// none, ssl or tls.
    pub security: Security,
    /// Extra CAs to trust.
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate.
    pub insecure: bool,
    /// Accept exactly the certificate with this fingerprint.
    pub tls_fingerprint: Option<Fingerprint>,
    /// A batch CSV: try every row's login.
    pub csv: Option<PathBuf>,
    /// How to log in.
    pub auth: AuthChoice,
    /// Logins tried at once.
    pub parallel: usize,
    /// The limit for the connection and TLS.
    pub timeout: Duration,
}

/// Everything the checks found.
#[derive(Clone, Debug, Serialize)]
pub struct TestServerReport {
    /// The server itself.
    pub server: ServerReport,
    /// Each CSV row's login, in row order (none when the server checks failed).
    pub logins: Vec<LoginCheck>,
    /// Whether every check passed.
    pub passed: bool,
}

/// Runs the server checks and then, if they passed and a CSV was given, every row's login.
/// A CSV that cannot be read is an error before anything is tried.
pub fn test_server(req: &TestServerRequest) -> Result<TestServerReport> {
    let rows = match &req.csv {
        Some(path) => Some(read_batch_file(path)?),
        None => None,
    };
    let port = req.port.unwrap_or(req.security.default_port());
    let mut opts = ConnectOptions::new(&req.server, port, req.security);
    opts.tls.ca_file = req.ca_file.clone();
    opts.tls.insecure = req.insecure;
    opts.tls.fingerprint = req.tls_fingerprint;
    opts.connect_timeout = req.timeout.max(Duration::from_secs(1));
    let (server, logins) = runtime()?.block_on(async {
        let server = check_server(&opts).await;
        let logins = match rows {
            Some(rows) if server.failure.is_none() => {
                check_logins(&opts, rows, req.auth, req.parallel).await
            }
            _ => Vec::new(),
        };
        (server, logins)
    });
    let passed = server.failure.is_none() && logins.iter().all(|l| l.ok);
    Ok(TestServerReport {
        server,
        logins,
        passed,
    })
}
