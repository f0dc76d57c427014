//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never enabled by the
//! binaries): the crate's private parsers, reached directly so the fuzzer does not have to
//! get past imap-proto first. Not part of the API.

use crate::types::Response;

/// The tolerant lexer on response data (without the final CRLF): the number of top-level
/// values, `None` when it refuses the input.
pub fn lex(input: &[u8]) -> Option<usize> {
    crate::lexer::lex(input).map(|values| values.len())
}

/// The tolerant path alone (hand parsers over the lexer) on one framed response.
pub fn parse_tolerant(frame: &[u8]) -> Option<Response> {
    crate::response::parse_tolerant(frame)
}
