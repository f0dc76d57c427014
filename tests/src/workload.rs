//! The deterministic message set shared by the `stage-workload` binary and the crash test.

/// Messages committed per group (one persist, one transaction).
pub const GROUP: usize = 10;

/// The UIDVALIDITY the workload's folder uses.
pub const UIDVALIDITY: u32 = 1;

/// The bytes of the message with this UID: 1–40 KB, every fifth a duplicate of the one before
/// it (so the dedup path runs under the crash test too).
pub fn message_bytes(uid: u32) -> Vec<u8> {
    message_bytes_sized(uid, None)
}

/// Like [`message_bytes`], with every message about `size` bytes when given (benchmarks).
pub fn message_bytes_sized(uid: u32, size: Option<usize>) -> Vec<u8> {
    let source = if uid.is_multiple_of(5) { uid - 1 } else { uid };
    let size = size.unwrap_or(1_000 + (source as usize * 7_919) % 40_000);
    let mut out = format!(
        "From: workload@example.com\r\nMessage-ID: <{source}@workload>\r\nSubject: {source}\r\n\r\n"
    )
    .into_bytes();
    let mut x = u64::from(source) | 1;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(b'a' + (x % 26) as u8);
        if out.len().is_multiple_of(76) {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}
