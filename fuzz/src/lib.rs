//! Helpers the fuzz targets share: driving the response reader over bytes, and the filter
//! for crashes that are known and being fixed elsewhere (so CI gates on new ones only).

use mailstage_imap::framing::{FrameReader, FramingLimits};
use mailstage_imap::sink::MemorySink;
use mailstage_imap::{fuzzing, response};

/// Whether inputs that can only reach two crashes fixed in issue 11 are skipped (imap-proto's
/// recursive parser overflowing the stack on parentheses nested thousands deep, and
/// `datetime::parse` slicing inside a UTF-8 character). The fixes are merged (the depth check
/// before imap-proto, a total `datetime::parse`), so nothing is skipped: set it to `true`
/// only to bisect a regression of those two.
pub const SKIP_KNOWN_CRASHES: bool = false;

/// Deepest parenthesis nesting the known imap-proto stack overflow leaves alone.
const KNOWN_SAFE_DEPTH: usize = 64;

/// True when an IMAP byte stream may reach a known crash (see [`SKIP_KNOWN_CRASHES`]):
/// parentheses nested deeper than [`KNOWN_SAFE_DEPTH`], or non-ASCII bytes in a stream
/// that names INTERNALDATE.
pub fn known_response_crash(data: &[u8]) -> bool {
    if !SKIP_KNOWN_CRASHES {
        return false;
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for &b in data {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    let names_date = data
        .windows(12)
        .any(|w| w.eq_ignore_ascii_case(b"INTERNALDATE"));
    deepest > KNOWN_SAFE_DEPTH || (names_date && known_date_crash(data))
}

/// True when an INTERNALDATE text may reach the known `datetime::parse` crash (non-ASCII).
pub fn known_date_crash(data: &[u8]) -> bool {
    SKIP_KNOWN_CRASHES && !data.is_ascii()
}

/// Limits small enough that the fuzzer reaches every bound of the framing layer.
pub const LIMITS: FramingLimits = FramingLimits {
    max_line: 2048,
    max_small_literal: 1024,
    max_frame: 8192,
    max_streamed_literal: 4096,
    chunk_size: 64,
};

/// Frames `data` as a server's byte stream and parses every response with the full reader
/// (imap-proto, then the tolerant path) and with the tolerant path alone, until the stream
/// ends or a framing bound stops it. Returns the number of responses framed.
pub fn read_responses(data: &[u8]) -> usize {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let mut reader = FrameReader::new(data, LIMITS);
            let mut sink = MemorySink::new(LIMITS.max_streamed_literal as usize);
            let mut framed = 0;
            loop {
                let frame = match reader.next_frame(&mut sink).await {
                    Ok(frame) => frame,
                    Err(e) if e.stream_in_sync() => continue,
                    Err(_) => break,
                };
                assert!(frame.bytes.ends_with(b"\r\n"), "a frame ends in CRLF");
                assert!(
                    frame.bytes.len() <= LIMITS.max_frame,
                    "a frame stays bounded"
                );
                for body in &frame.bodies {
                    assert_eq!(
                        body.len,
                        body.output.len() as u64,
                        "a body is streamed whole"
                    );
                }
                let _ = response::parse(&frame.bytes);
                let _ = fuzzing::parse_tolerant(&frame.bytes);
                framed += 1;
            }
            framed
        })
    })
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Replaces libFuzzer's abort-on-any-panic hook with one that only remembers the panic:
/// the response reader catches imap-proto's known panics on purpose (`response.rs`), and
/// those are handled, not crashes. A panic that escapes is reported by [`run_catching`].
pub fn quiet_caught_panics() {
    std::panic::set_hook(Box::new(|info| {
        LAST_PANIC.with(|last| *last.borrow_mut() = info.to_string());
    }));
}

/// Runs `f`; a panic that escapes it is printed and aborts the process (a crash for
/// libFuzzer), as libFuzzer's own hook would have.
pub fn run_catching(f: impl FnOnce() + std::panic::UnwindSafe) {
    if std::panic::catch_unwind(f).is_err() {
        LAST_PANIC.with(|last| eprintln!("escaped panic: {}", last.borrow()));
        std::process::abort();
    }
}
