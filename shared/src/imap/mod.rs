//! The project's IMAP client: command encoding, response framing with streamed literals on
//! top of imap-proto, response routing and the session state machine.

pub mod append;
pub mod auth;
pub mod commands;
pub mod datetime;
pub mod encode;
pub mod error;
mod fallback;
pub mod fetch;
pub mod framing;
mod lexer;
pub mod response;
mod scan;
pub mod seqset;
pub mod session;
pub mod sink;
#[cfg(test)]
mod testio;
pub mod types;
