//! The project's IMAP client: command encoding, response framing with streamed literals on
//! top of imap-proto, response routing and the session state machine.

pub mod encode;
pub mod framing;
mod scan;
pub mod seqset;
pub mod sink;
#[cfg(test)]
mod testio;
