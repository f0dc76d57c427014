//! The IMAP response reader end to end: framing with streamed literals, imap-proto with the
//! tolerant fallback, and the tolerant path alone, over an arbitrary server byte stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstage_fuzz::{known_response_crash, read_responses, run_catching};

fuzz_target!(
    init: mailstage_fuzz::quiet_caught_panics(),
    |data: &[u8]| {
        if known_response_crash(data) {
            return;
        }
        run_catching(|| {
            read_responses(data);
        });
    }
);
