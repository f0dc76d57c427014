//! The project's IMAP client: command encoding, response framing with streamed literals on
//! top of imap-proto, response routing and the session state machine.
//!
//! - [`framing`]: bounded response framing; whole-message literals go to a [`LiteralSink`].
//! - [`response`] and [`types`]: parsing into owned types (imap-proto, then a tolerant path).
//! - [`session`]: tags, literals, routing; commands in [`auth`], [`commands`], [`fetch`],
//!   [`append`]; errors in [`error`] (with [`During`] naming the step that failed).
//! - [`transport`]: TCP, TLS, STARTTLS; `Session::log_in` turns a CSV `UserName` into a login;
//!   [`diagnose`]: the timed checks behind `test-server`.
//! - [`encode`], [`seqset`], [`datetime`]: command arguments, UID sets, INTERNALDATE;
//!   [`capability`]: capabilities with a value (APPENDLIMIT).

pub mod append;
pub mod auth;
pub mod capability;
pub mod commands;
pub mod datetime;
pub mod diagnose;
pub mod encode;
pub mod error;
mod fallback;
pub mod fetch;
pub mod framing;
pub mod idle;
mod lexer;
mod login;
pub mod response;
mod scan;
pub mod seqset;
pub mod session;
pub mod sink;
#[cfg(test)]
mod testio;
pub mod transport;
pub mod types;

pub use append::AppendOutcome;
pub use capability::AppendLimit;
pub use commands::MailboxInfo;
pub use error::{During, ImapError, ImapStepError};
pub use fetch::FetchedMessage;
pub use framing::{FrameReader, FramingError, FramingLimits, StreamedBody};
pub use seqset::SequenceSet;
pub use session::{Completed, Session, SessionConfig};
pub use sink::{DiscardSink, LiteralSink, LiteralStart, MemorySink, WriterSink};
pub use types::{Code, FetchData, ListEntry, Response, Status, StatusText, Untagged};
