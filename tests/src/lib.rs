//! Test support for mailstage: a private Dovecot per test ([`Dovecot`]), Cyrus IMAP
//! ([`cyrus`]) and Courier-IMAP ([`courier`]) beside it, one face for all of them
//! ([`servers`]), ways to fill its
//! mailboxes (maildir fast path and APPEND), odd-message [`fixtures`], a small blocking
//! IMAP client ([`Probe`]) used as an independent oracle, and the deterministic [`workload`]
//! the crash test kills, the workspace's binaries ([`bins`]) for end-to-end runs, a
//! [`fault_proxy`] that cuts or delays links on purpose and counts commands ([`command_count`]),
//! an [`exchange_proxy`] that behaves as
//! Exchange Online does, the checks of a completed stage ([`stage_check`]), uploads into a
//! second Dovecot ([`upload`]), and an emulator of Entra ID's token endpoint
//! ([`token_endpoint`]) on a tiny HTTP server ([`http1`]).

pub mod bins;
pub mod command_count;
pub mod courier;
pub mod cyrus;
mod delay_line;
pub mod dovecot;
mod dovecot_certs;
pub mod exchange_budget;
mod exchange_names;
pub mod exchange_proxy;
pub mod extraction;
pub mod fault_proxy;
pub mod fixtures;
pub mod hostile_server;
pub mod http1;
pub mod maildir;
pub mod probe;
pub mod process;
pub mod server_upload;
pub mod servers;
pub mod slurm;
pub mod stage_check;
pub mod token_endpoint;
pub mod upload;
pub mod workload;

pub use dovecot::{Dovecot, DovecotBuilder, Owner};
pub use dovecot_certs::make_self_signed;
pub use maildir::{maildir_info, served_form};
pub use probe::{ListEntry, Probe, Response, Untagged, imap_date};
pub use token_endpoint::{Fault, TokenEndpoint};

/// Where `scripts/setup.sh` unpacks the servers that conflict with Dovecot in apt (Cyrus's
/// `imapd`, Courier's `imapd` and `imaplogin`): `$MAILSTAGE_SERVERS_DIR`, by default
/// `/opt/mailstage-servers`.
pub fn servers_dir() -> std::path::PathBuf {
    std::env::var_os("MAILSTAGE_SERVERS_DIR")
        .map_or_else(|| "/opt/mailstage-servers".into(), Into::into)
}

/// A server the harness started, reachable on a loopback port.
pub trait ImapPort {
    /// Its plain IMAP port on 127.0.0.1.
    fn imap_port(&self) -> u16;
}

impl ImapPort for Dovecot {
    fn imap_port(&self) -> u16 {
        self.port()
    }
}

impl ImapPort for cyrus::Cyrus {
    fn imap_port(&self) -> u16 {
        self.port()
    }
}

impl ImapPort for courier::Courier {
    fn imap_port(&self) -> u16 {
        self.port()
    }
}

impl ImapPort for servers::TestServer {
    fn imap_port(&self) -> u16 {
        self.port()
    }
}
