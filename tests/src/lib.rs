//! Test support for mailstage: a private Dovecot per test ([`Dovecot`]), ways to fill its
//! mailboxes (maildir fast path and APPEND), odd-message [`fixtures`], a small blocking
//! IMAP client ([`Probe`]) used as an independent oracle, and the deterministic [`workload`]
//! the crash test kills, the workspace's binaries ([`bins`]) for end-to-end runs, a
//! [`fault_proxy`] that cuts links on purpose, an [`exchange_proxy`] that behaves as
//! Exchange Online does, the checks of a completed stage ([`stage_check`]), uploads into a
//! second Dovecot ([`upload`]), and an emulator of Entra ID's token endpoint
//! ([`token_endpoint`]) on a tiny HTTP server ([`http1`]).

pub mod bins;
pub mod dovecot;
mod dovecot_certs;
pub mod exchange_proxy;
pub mod extraction;
pub mod fault_proxy;
pub mod fixtures;
pub mod http1;
pub mod maildir;
pub mod probe;
pub mod stage_check;
pub mod token_endpoint;
pub mod upload;
pub mod workload;

pub use dovecot::{Dovecot, DovecotBuilder, Owner};
pub use dovecot_certs::make_self_signed;
pub use maildir::{maildir_info, served_form};
pub use probe::{ListEntry, Probe, Response, Untagged, imap_date};
pub use token_endpoint::{Fault, TokenEndpoint};
