//! Modified UTF-7 (RFC 3501 §5.1.3), the encoding of IMAP mailbox names on the wire.
//!
//! Printable US-ASCII (0x20–0x7E) stands for itself, except `&`, which is written `&-`.
//! Everything else is UTF-16BE, written in base64 with `,` instead of `/`, without padding,
//! between `&` and `-`. [`decode`] is strict: it accepts only the canonical form that
//! [`encode`] produces, so a name round-trips byte for byte.

use thiserror::Error;

/// Why a mailbox name is not canonical modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Mutf7Error {
    /// A byte outside printable US-ASCII appeared outside of a base64 run.
    #[error("raw non-printable or non-ASCII character at byte {0}")]
    RawNonAscii(usize),
    /// An `&` run has no closing `-`.
    #[error("unterminated '&' run starting at byte {0}")]
    Unterminated(usize),
    /// A character that is not modified base64 appeared inside an `&` run.
    #[error("invalid modified base64 character at byte {0}")]
    BadBase64(usize),
    /// Leftover bits are non-zero or too many, or the run holds half a UTF-16 unit.
    #[error("non-canonical base64 padding in run starting at byte {0}")]
    BadPadding(usize),
    /// The run decodes to a lone or misordered UTF-16 surrogate.
    #[error("invalid UTF-16 (lone surrogate) in run starting at byte {0}")]
    BadUtf16(usize),
    /// The run encodes a character that must be written directly (printable ASCII).
    #[error("printable ASCII encoded in base64 in run starting at byte {0}")]
    EncodedAscii(usize),
    /// Two base64 runs follow each other directly; the canonical form merges them.
    #[error("adjacent base64 runs at byte {0} (non-canonical)")]
    AdjacentRuns(usize),
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn is_direct(c: u32) -> bool {
    (0x20..=0x7e).contains(&c)
}

fn sextet(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u32)
}

/// Encodes a mailbox name as modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(c as u32) {
            flush_run(&mut out, &mut run);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_run(&mut out, &mut run);
    out
}

fn flush_run(out: &mut String, run: &mut Vec<u16>) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let (mut acc, mut bits) = (0u32, 0u32);
    for unit in run.drain(..) {
        acc = (acc << 16) | u32::from(unit);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
}

/// Decodes a modified UTF-7 mailbox name, rejecting anything non-canonical.
pub fn decode(wire: &str) -> Result<String, Mutf7Error> {
    let bytes = wire.as_bytes();
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    let mut last_run_end: Option<usize> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'&' {
            if !is_direct(u32::from(b)) {
                return Err(Mutf7Error::RawNonAscii(i));
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let start = i;
        let close = bytes[start + 1..]
            .iter()
            .position(|&c| c == b'-')
            .map(|p| start + 1 + p)
            .ok_or(Mutf7Error::Unterminated(start))?;
        if close == start + 1 {
            out.push('&');
        } else {
            if last_run_end == Some(start) {
                return Err(Mutf7Error::AdjacentRuns(start));
            }
            decode_run(&bytes[start + 1..close], start, &mut out)?;
            last_run_end = Some(close + 1);
        }
        i = close + 1;
    }
    Ok(out)
}

fn decode_run(run: &[u8], start: usize, out: &mut String) -> Result<(), Mutf7Error> {
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (k, &b) in run.iter().enumerate() {
        let v = sextet(b).ok_or(Mutf7Error::BadBase64(start + 1 + k))?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push(((acc >> bits) & 0xffff) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 || acc != 0 || units.is_empty() {
        return Err(Mutf7Error::BadPadding(start));
    }
    for decoded in char::decode_utf16(units.iter().copied()) {
        let c = decoded.map_err(|_| Mutf7Error::BadUtf16(start))?;
        if is_direct(c as u32) {
            return Err(Mutf7Error::EncodedAscii(start));
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc3501_example() {
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let name = "~peter/mail/台北/日本語";
        assert_eq!(decode(wire).as_deref(), Ok(name));
        assert_eq!(encode(name), wire);
    }

    #[test]
    fn common_names() {
        for (wire, name) in [
            ("Entw&APw-rfe", "Entwürfe"),
            ("&-", "&"),
            ("Tom &- Jerry", "Tom & Jerry"),
            ("INBOX", "INBOX"),
            ("", ""),
            ("&AOQA9gD8-", "äöü"),
            ("&2D3eAA-", "😀"),
            ("a&AAk-b", "a\tb"),
        ] {
            assert_eq!(decode(wire).as_deref(), Ok(name), "decode {wire}");
            assert_eq!(encode(name), wire, "encode {name}");
        }
    }

    #[test]
    fn rejects_non_canonical_and_broken_input() {
        assert_eq!(decode("a&AGE-"), Err(Mutf7Error::EncodedAscii(1)));
        assert_eq!(decode("&U,BTFw"), Err(Mutf7Error::Unterminated(0)));
        assert_eq!(decode("&U/BTFw-"), Err(Mutf7Error::BadBase64(2)));
        assert_eq!(decode("&U,BTFw=-"), Err(Mutf7Error::BadBase64(7)));
        assert_eq!(decode("Entwürfe"), Err(Mutf7Error::RawNonAscii(4)));
        assert_eq!(decode("a\tb"), Err(Mutf7Error::RawNonAscii(1)));
        // A lone high surrogate (U+D83D).
        assert_eq!(decode("&2D0-"), Err(Mutf7Error::BadUtf16(0)));
        // Non-zero leftover bits.
        assert_eq!(decode("&APx-"), Err(Mutf7Error::BadPadding(0)));
        // Half a UTF-16 unit / too many leftover bits.
        assert_eq!(decode("&AP-"), Err(Mutf7Error::BadPadding(0)));
        assert_eq!(decode("&APwA-"), Err(Mutf7Error::BadPadding(0)));
        assert_eq!(decode("&U,A-&U,A-"), Err(Mutf7Error::AdjacentRuns(5)));
        // A literal '&' directly after a run is fine.
        assert_eq!(decode("&U,A-&-").as_deref(), Ok("台&"));
    }

    proptest! {
        #[test]
        fn roundtrip(name in any::<String>()) {
            let wire = encode(&name);
            prop_assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode(&wire), Ok(name));
        }

        #[test]
        fn decode_never_panics_and_accepts_only_canonical(wire in "[ -~]{0,40}") {
            if let Ok(name) = decode(&wire) {
                prop_assert_eq!(encode(&name), wire);
            }
        }
    }
}
