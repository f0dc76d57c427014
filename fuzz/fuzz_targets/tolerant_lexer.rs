//! The tolerant lexer directly, then the tolerant path on the same bytes as an untagged
//! response (`* ` … CRLF), which is where the lexer's output is read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstage_fuzz::known_response_crash;
use mailstage_imap::fuzzing;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::lex(data);
    if known_response_crash(data) {
        return;
    }
    let frame = [b"* ", data, b"\r\n"].concat();
    let _ = fuzzing::parse_tolerant(&frame);
});
