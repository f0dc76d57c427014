//! Odd messages and folder names, built as raw bytes on purpose.

/// 35 MiB, the size cap the tests use for exactly-at-cap and over-cap messages.
pub const CAP_35_MB: usize = 35 * 1024 * 1024;

/// A deterministic xorshift64* generator (no dependency, same output everywhere).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A float uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Standard headers (CRLF-terminated) with an optional Message-ID, plus `extra` header lines.
fn headers(subject: &str, message_id: Option<&str>, extra: &str) -> String {
    let id = message_id
        .map(|m| format!("Message-ID: <{m}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Alice Example <alice@example.test>\r\nTo: Bob Example <bob@example.test>\r\n\
         Subject: {subject}\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n{id}{extra}"
    )
}

/// A normal small text message with a Message-ID derived from `n`.
pub fn simple(n: u64) -> Vec<u8> {
    let h = headers(
        &format!("Simple message {n}"),
        Some(&format!("simple-{n}@example.test")),
        "",
    );
    format!(
        "{h}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello {n}.\r\n"
    )
    .into_bytes()
}

/// A message without any Message-ID header.
pub fn no_message_id() -> Vec<u8> {
    format!(
        "{}\r\nThis message has no message id header.\r\n",
        headers("Without an id", None, "")
    )
    .into_bytes()
}

/// Raw 8-bit headers: a UTF-8 Subject and a Latin-1 (ISO-8859-1) From display name.
pub fn eight_bit_headers() -> Vec<u8> {
    let mut m =
        b"From: J\xf6rg M\xfcller <joerg@example.test>\r\nTo: bob@example.test\r\n".to_vec();
    m.extend_from_slice("Subject: Grüße aus Köln – 日本語\r\n".as_bytes());
    m.extend_from_slice(
        b"Message-ID: <eightbit@example.test>\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n",
    );
    m.extend_from_slice("\r\nKörper mit Umlauten.\r\n".as_bytes());
    m
}

/// A message whose lines end in bare LF only.
pub fn bare_lf() -> Vec<u8> {
    headers("Bare LF", Some("barelf@example.test"), "")
        .replace("\r\n", "\n")
        .into_bytes()
        .into_iter()
        .chain(b"\nline one\nline two\n".iter().copied())
        .collect()
}

/// A message with NUL bytes in its body.
pub fn nul_bytes() -> Vec<u8> {
    let mut m = format!("{}\r\n", headers("NUL bytes", Some("nul@example.test"), "")).into_bytes();
    m.extend_from_slice(b"before\0between\0\0after\r\n");
    m
}

/// A message whose body is one line of `len` bytes (e.g. 200 KB) before the final CRLF.
pub fn long_line(len: usize) -> Vec<u8> {
    let mut m = format!(
        "{}\r\n",
        headers("One very long line", Some("longline@example.test"), "")
    )
    .into_bytes();
    m.extend((0..len).map(|i| b'a' + (i % 26) as u8));
    m.extend_from_slice(b"\r\n");
    m
}

/// multipart/mixed holding multipart/alternative (text + html), a message/rfc822 and an attachment.
pub fn nested_multipart() -> Vec<u8> {
    let h = headers(
        "Nested multipart",
        Some("nested@example.test"),
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n",
    );
    let inner_msg = headers("Forwarded", Some("inner@example.test"), "");
    format!(
        "{h}\r\nPreamble.\r\n--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain part.\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML part.</p>\r\n--alt--\r\n\
         --outer\r\nContent-Type: message/rfc822\r\n\r\n{inner_msg}\r\nForwarded body.\r\n\
         --outer\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n\r\n\
         AAECAwQFBgcICQ==\r\n--outer--\r\nEpilogue.\r\n"
    )
    .into_bytes()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Body lines of [`message_of_size`]: 76 base64 characters plus CRLF.
const LINE: usize = 78;

/// The smallest size [`message_of_size`] accepts.
pub const MIN_SIZED: usize = 512;

/// A valid RFC 5322 message of exactly `n_bytes` (≥ [`MIN_SIZED`]): headers, then
/// base64-looking lines of 76 characters, all determined by `seed`.
pub fn message_of_size(n_bytes: usize, seed: u64) -> Vec<u8> {
    assert!(
        n_bytes >= MIN_SIZED,
        "message_of_size needs at least {MIN_SIZED} bytes"
    );
    let head = |pad: usize| {
        let extra = format!(
            "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n\
             Content-Transfer-Encoding: base64\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(pad + 1)
        );
        headers(
            &format!("Sized {n_bytes} seed {seed}"),
            Some(&format!("sized-{n_bytes}-{seed}@example.test")),
            &extra,
        )
    };
    // A last line needs at least one character before its CRLF: pad headers to avoid 1 or 2.
    let mut h = head(0);
    if matches!((n_bytes - h.len()) % LINE, 1 | 2) {
        h = head(2);
    }
    let mut out = Vec::with_capacity(n_bytes);
    out.extend_from_slice(h.as_bytes());
    let mut rng = Rng::new(seed);
    while out.len() < n_bytes {
        let chars = (n_bytes - out.len()).min(LINE) - 2;
        let mut bits = 0u64;
        for i in 0..chars {
            if i % 10 == 0 {
                bits = rng.next_u64();
            }
            out.push(B64[(bits & 63) as usize]);
            bits >>= 6;
        }
        out.extend_from_slice(b"\r\n");
    }
    debug_assert_eq!(out.len(), n_bytes);
    out
}

/// Sizes of a benchmark corpus: `count` sizes from 1 KiB to 3 MiB, skewed towards small
/// (log-uniform on the square of a uniform draw), deterministic for `seed`.
pub fn corpus_sizes(seed: u64, count: usize) -> Vec<usize> {
    let (lo, hi) = (1024f64, 3.0 * 1024.0 * 1024.0);
    let mut rng = Rng::new(seed ^ 0xC0_4B05);
    (0..count)
        .map(|_| {
            let u = rng.unit();
            ((lo * (hi / lo).powf(u * u)) as usize).clamp(1024, 3 * 1024 * 1024)
        })
        .collect()
}

/// A deterministic benchmark corpus: message `i` has size `corpus_sizes(seed, count)[i]`.
pub fn corpus(seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> {
    corpus_sizes(seed, count)
        .into_iter()
        .enumerate()
        .map(move |(i, size)| {
            message_of_size(size, seed.wrapping_mul(1_000_003).wrapping_add(i as u64))
        })
}

/// An odd folder: its IMAP name in UTF-8 and the modified UTF-7 name Dovecot puts on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OddFolder {
    /// The name in UTF-8, `/` as the hierarchy separator (as used by the maildir helpers).
    pub name: &'static str,
    /// The exact wire name Dovecot 2.3.19 reports in LIST.
    pub wire: &'static str,
}

/// Flag sets the upload tests give their messages in turn: system flags, none, and
/// keywords beside `\Seen`.
pub const FLAG_SETS: [&[&str]; 4] = [
    &["\\Seen"],
    &["\\Flagged", "\\Answered"],
    &[],
    &["\\Seen", "$Forwarded", "Work"],
];

/// Odd but selectable folders (the non-ASCII wire names are checked against Dovecot's LIST).
pub const ODD_FOLDERS: &[OddFolder] = &[
    OddFolder {
        name: "Entwürfe",
        wire: "Entw&APw-rfe",
    },
    OddFolder {
        name: "日本語",
        wire: "&ZeVnLIqe-",
    },
    OddFolder {
        name: "Привет",
        wire: "&BB8EQAQ4BDIENQRC-",
    },
    OddFolder {
        name: "R&D",
        wire: "R&-D",
    },
    OddFolder {
        name: "With Spaces",
        wire: "With Spaces",
    },
    OddFolder {
        name: "dotted.name",
        wire: "dotted.name",
    },
    OddFolder {
        name: "Projects/2024/Q1",
        wire: "Projects/2024/Q1",
    },
];

/// Parents that exist only as bare directories above `Projects/2024/Q1`: Dovecot lists them
/// as `(\Noselect \HasChildren)`, exactly as after an IMAP `CREATE Projects/2024/Q1`.
pub const NOSELECT_PARENTS: &[OddFolder] = &[
    OddFolder {
        name: "Projects",
        wire: "Projects",
    },
    OddFolder {
        name: "Projects/2024",
        wire: "Projects/2024",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_messages_are_exact() {
        for n in (MIN_SIZED..MIN_SIZED + 2 * LINE + 3).chain([4096, 100_000, 1 << 20]) {
            let m = message_of_size(n, n as u64);
            assert_eq!(m.len(), n);
            assert!(m.ends_with(b"\r\n") && !m.ends_with(b"\r\n\r\n\r\n"));
            assert!(m.windows(4).any(|w| w == b"\r\n\r\n"));
        }
        assert_eq!(message_of_size(5000, 7), message_of_size(5000, 7));
        assert_ne!(message_of_size(5000, 7), message_of_size(5000, 8));
    }

    #[test]
    fn corpus_is_skewed_and_deterministic() {
        let sizes = corpus_sizes(1, 2000);
        assert_eq!(sizes, corpus_sizes(1, 2000));
        assert!(sizes.iter().all(|&s| (1024..=3 << 20).contains(&s)));
        let small = sizes.iter().filter(|&&s| s < 64 * 1024).count();
        assert!(small > 1000, "only {small} small messages");
        assert!(sizes.iter().any(|&s| s > 1 << 20));
        let first: Vec<usize> = corpus(1, 3).map(|m| m.len()).collect();
        assert_eq!(first, sizes[..3]);
    }

    #[test]
    fn odd_messages_have_their_oddity() {
        assert!(
            !String::from_utf8_lossy(&no_message_id())
                .to_ascii_lowercase()
                .contains("message-id")
        );
        assert!(eight_bit_headers().iter().any(|&b| b >= 0x80));
        assert!(!bare_lf().contains(&b'\r'));
        assert!(nul_bytes().contains(&0));
        assert_eq!(
            long_line(200_000)
                .split(|&b| b == b'\n')
                .map(<[u8]>::len)
                .max(),
            Some(200_001)
        );
        assert!(
            String::from_utf8(nested_multipart())
                .unwrap()
                .contains("--alt--")
        );
    }
}
