//! mailstage's IMAP client, a crate of its own that knows nothing of batches, stages or
//! upload targets: command encoding, response framing with streamed literals on top of
//! imap-proto, response routing and the session state machine, transports and TLS.
//!
//! - [`framing`]: bounded response framing; whole-message literals go to a [`LiteralSink`].
//! - [`response`] and [`types`]: parsing into owned types (imap-proto, then a tolerant path).
//! - [`session`]: tags, literals, routing; commands in [`auth`], [`mailboxes`], [`fetch`],
//!   [`append`]; errors in [`error`] (with [`During`] naming the step that failed).
//! - [`transport`]: TCP, TLS, STARTTLS ([`Security`]); [`tls`]: which certificates a client
//!   trusts (also used for HTTPS elsewhere); [`diagnose`]: the timed checks of reaching a
//!   server behind `test-server`.
//! - [`encode`], [`seqset`], [`datetime`], [`mutf7`]: command arguments, UID sets,
//!   INTERNALDATE, modified UTF-7 folder names; [`capability`]: capabilities with a value
//!   (APPENDLIMIT).

pub mod append;
pub mod auth;
pub mod capability;
pub mod datetime;
pub mod diagnose;
pub mod encode;
pub mod error;
mod fallback;
pub mod fetch;
mod fingerprint;
pub mod framing;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
pub mod idle;
mod lexer;
pub mod mailboxes;
pub mod mutf7;
pub mod pipeline;
mod progress;
pub mod response;
mod scan;
pub mod security;
pub mod seqset;
pub mod session;
pub mod sink;
#[cfg(test)]
mod testio;
pub mod tls;
pub mod transport;
pub mod types;

pub use append::AppendOutcome;
pub use capability::AppendLimit;
pub use error::{During, ImapError, ImapStepError};
pub use fetch::FetchedMessage;
pub use framing::{FrameReader, FramingError, FramingLimits, StreamedBody};
pub use mailboxes::SelectedMailbox;
pub use security::Security;
pub use seqset::SequenceSet;
pub use session::{Completed, Session, SessionConfig};
pub use sink::{DiscardSink, LiteralSink, LiteralStart, MemorySink, WriterSink};
pub use tls::{CertificateRefusal, Fingerprint, FingerprintError, TlsConfig, TlsSetupError};
pub use types::{Code, FetchData, ListEntry, Response, Status, StatusText, Untagged};
