//! Test support for mailstage: a private Dovecot per test ([`Dovecot`]), ways to fill its
//! mailboxes (maildir fast path and APPEND), odd-message [`fixtures`], a small blocking
//! IMAP client ([`Probe`]) used as an independent oracle, and the deterministic [`workload`]
//! the crash test kills, and the workspace's binaries ([`bins`]) for end-to-end runs.

pub mod bins;
pub mod dovecot;
pub mod exchange_proxy;
pub mod extraction;
pub mod fixtures;
pub mod maildir;
pub mod probe;
pub mod upload;
pub mod workload;

pub use dovecot::{Dovecot, DovecotBuilder, Owner};
pub use maildir::{maildir_info, served_form};
pub use probe::{ListEntry, Probe, Response, Untagged, imap_date};
