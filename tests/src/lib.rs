//! Test support for mailstage: a private Dovecot per test ([`Dovecot`]), ways to fill its
//! mailboxes (maildir fast path and APPEND), odd-message [`fixtures`], a small blocking
//! IMAP client ([`Probe`]) used as an independent oracle, and the deterministic [`workload`]
//! the crash test kills, the workspace's binaries ([`bins`]) for end-to-end runs, a
//! [`fault_proxy`] that cuts links on purpose, and the checks of a completed stage
//! ([`stage_check`]).

pub mod bins;
pub mod dovecot;
pub mod extraction;
pub mod fault_proxy;
pub mod fixtures;
pub mod maildir;
pub mod probe;
pub mod stage_check;
pub mod workload;

pub use dovecot::{Dovecot, DovecotBuilder, Owner};
pub use maildir::{maildir_info, served_form};
pub use probe::{ListEntry, Probe, Response, Untagged, imap_date};
