//! Command-line pieces both binaries share (feature `cli`): the run options that say how to
//! trust a server and how to report, and logging.

use std::path::PathBuf;

/// How a run trusts the server's certificate, over what the endpoint or target stores.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunTls {
    /// A PEM file of CA certificates to trust besides the system's (a private CA), for this
    /// run [default: the endpoint's or target's].
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate, for this run (a lab server only) [default: the
    /// endpoint's or target's].
    #[arg(long)]
    pub insecure: bool,
    /// Accept exactly the server certificate with this SHA-256 fingerprint
    /// (`sha256:` and 64 hex digits, as test-server shows it), for this run [default: the
    /// endpoint's or target's].
    #[arg(long, value_name = "sha256:HEX")]
    pub tls_fingerprint: Option<crate::imap::Fingerprint>,
}

/// How a run reports.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct RunOutput {
    /// No progress while running; the summary is still printed.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

impl RunOutput {
    /// Bars or log lines, unless `--quiet`.
    pub fn show(self) -> crate::report::bars::Show {
        if self.quiet {
            crate::report::bars::Show::Quiet
        } else {
            crate::report::bars::Show::Auto
        }
    }
}

/// Logs to standard error at `default_level`, or as `MAILSTAGE_LOG` says (an `EnvFilter`).
pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILSTAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
