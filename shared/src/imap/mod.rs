//! The project's IMAP client: command encoding, response framing with streamed literals on
//! top of imap-proto, response routing and the session state machine.

pub mod datetime;
pub mod encode;
mod fallback;
pub mod framing;
mod lexer;
pub mod response;
mod scan;
pub mod seqset;
pub mod sink;
#[cfg(test)]
mod testio;
pub mod types;
