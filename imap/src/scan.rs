//! Byte-level helpers for the framing layer: what kind of response a line starts, where a
//! literal announcement is, and whether the literal is a whole-message FETCH item. The
//! status words and whole-message items are also what the tolerant parser goes by.

use super::types::Status;

/// What the first line of a response says about literals in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// A status response or a continuation request: never carries literals.
    Status,
    /// `* <seq> FETCH …`: whole-message literals are streamed.
    Fetch(u32),
    /// Any other response: literals are kept in memory.
    Other,
}

/// The words that make a response a status response, with the status each one means.
const STATUS_WORDS: [(&[u8], Status); 5] = [
    (b"OK", Status::Ok),
    (b"NO", Status::No),
    (b"BAD", Status::Bad),
    (b"PREAUTH", Status::PreAuth),
    (b"BYE", Status::Bye),
];

/// The status a word names (`OK`, `NO`, `BAD`, `PREAUTH`, `BYE`; case-insensitive).
pub(crate) fn status_word(word: &[u8]) -> Option<Status> {
    STATUS_WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
        .map(|&(_, s)| s)
}

fn is_status_word(word: &[u8]) -> bool {
    status_word(word).is_some()
}

/// Classifies a response by its first line (without CRLF).
pub(crate) fn classify(line: &[u8]) -> LineKind {
    if line.first() == Some(&b'+') {
        return LineKind::Status;
    }
    let mut words = line.split(|&b| b == b' ');
    let first = words.next().unwrap_or_default();
    let second = words.next().unwrap_or_default();
    if first == b"*" {
        if is_status_word(second) {
            return LineKind::Status;
        }
        let third = words.next().unwrap_or_default();
        if third.eq_ignore_ascii_case(b"FETCH")
            && let Some(seq) = parse_u32(second)
        {
            return LineKind::Fetch(seq);
        }
        return LineKind::Other;
    }
    if is_status_word(second) {
        LineKind::Status
    } else {
        LineKind::Other
    }
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A literal announcement at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Marker {
    /// Offset of `{` (or of `~` for literal8) in the line.
    pub start: usize,
    /// Announced length; `u64::MAX` when the number does not fit.
    pub len: u64,
}

/// Finds `{N}`, `{N+}` or `~{N}` at the very end of a line (without CRLF).
pub(crate) fn literal_marker(line: &[u8]) -> Option<Marker> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let body = &inner[open + 1..];
    let digits = body.strip_suffix(b"+").unwrap_or(body);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);
    let start = if open > 0 && line[open - 1] == b'~' {
        open - 1
    } else {
        open
    };
    Some(Marker { start, len })
}

/// The FETCH items that carry a whole message: streamed to the sink when sent as a literal,
/// taken as the body when sent inline.
pub(crate) const WHOLE_MESSAGE_ITEMS: [&str; 5] = [
    "BODY[]",
    "BODY.PEEK[]",
    "RFC822",
    "BINARY[]",
    "BINARY.PEEK[]",
];

/// When the text before a literal ends in a whole-message FETCH item and a space, returns
/// the item's offset and its name.
pub(crate) fn streamable_item(prefix: &[u8]) -> Option<(usize, String)> {
    let before = prefix.strip_suffix(b" ")?;
    let pos = before
        .iter()
        .rposition(|&b| b == b' ' || b == b'(')
        .map_or(0, |p| p + 1);
    let token = std::str::from_utf8(&before[pos..]).ok()?;
    let base = match token.strip_suffix('>').and_then(|t| t.rsplit_once('<')) {
        Some((base, origin))
            if !origin.is_empty() && origin.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        Some(_) => return None,
        None => token,
    };
    WHOLE_MESSAGE_ITEMS
        .iter()
        .any(|item| item.eq_ignore_ascii_case(base))
        .then(|| (pos, token.to_string()))
}

/// The deepest parenthesis nesting of a framed response, skipping quoted strings and
/// literals (`{N}` CRLF and N bytes). Stops counting once past `limit` (returns `limit + 1`),
/// so a hostile response costs one pass over its bytes and nothing more.
pub(crate) fn nesting_depth(frame: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < frame.len() {
        match frame[i] {
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b')' => depth = depth.saturating_sub(1),
            b'"' => {
                i += 1;
                while i < frame.len() && frame[i] != b'"' {
                    i += if frame[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'}' if frame.get(i + 1..i + 3) == Some(b"\r\n") => {
                let open = frame[..i].iter().rposition(|&b| b == b'{');
                let len = open.and_then(|o| {
                    let digits = &frame[o + 1..i];
                    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
                    std::str::from_utf8(digits).ok()?.parse::<usize>().ok()
                });
                if let Some(len) = len {
                    i = i.saturating_add(2).saturating_add(len);
                }
            }
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// Finds `UID <n>` (preceded by `(` or a space) in a FETCH line, as a hint for sinks.
pub(crate) fn find_uid(line: &[u8]) -> Option<u32> {
    let mut from = 0;
    while let Some(p) = line[from..]
        .windows(4)
        .position(|w| w.eq_ignore_ascii_case(b"UID "))
    {
        let at = from + p;
        let after = &line[at + 4..];
        let digits_len = after.iter().take_while(|b| b.is_ascii_digit()).count();
        if at > 0
            && matches!(line[at - 1], b' ' | b'(')
            && let Some(uid) = parse_u32(&after[..digits_len])
        {
            return Some(uid);
        }
        from = at + 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines() {
        assert_eq!(
            classify(b"* 12 FETCH (UID 5 BODY[] {3}"),
            LineKind::Fetch(12)
        );
        assert_eq!(classify(b"* 12 fetch (UID 5)"), LineKind::Fetch(12));
        assert_eq!(classify(b"* OK [ALERT] {5}"), LineKind::Status);
        assert_eq!(classify(b"+ {5}"), LineKind::Status);
        assert_eq!(classify(b"A1 NO {5}"), LineKind::Status);
        assert_eq!(classify(b"* LIST () \"/\" {5}"), LineKind::Other);
        assert_eq!(classify(b"* 99999999999 FETCH (X {5}"), LineKind::Other);
        assert_eq!(classify(b""), LineKind::Other);
    }

    #[test]
    fn finds_literal_markers() {
        assert_eq!(
            literal_marker(b"x {12}"),
            Some(Marker { start: 2, len: 12 })
        );
        assert_eq!(
            literal_marker(b"x {12+}"),
            Some(Marker { start: 2, len: 12 })
        );
        assert_eq!(literal_marker(b"x ~{0}"), Some(Marker { start: 2, len: 0 }));
        assert_eq!(
            literal_marker(b"x {99999999999999999999999}"),
            Some(Marker {
                start: 2,
                len: u64::MAX
            })
        );
        assert_eq!(literal_marker(b"x {}"), None);
        assert_eq!(literal_marker(b"x {1a}"), None);
        assert_eq!(literal_marker(b"x {1} y"), None);
    }

    #[test]
    fn recognises_whole_message_items() {
        assert_eq!(
            streamable_item(b"* 1 FETCH (BODY[] "),
            Some((11, "BODY[]".into()))
        );
        assert_eq!(
            streamable_item(b"* 1 FETCH (UID 5 rfc822 "),
            Some((17, "rfc822".into()))
        );
        assert_eq!(
            streamable_item(b"* 1 FETCH (BODY[]<0> "),
            Some((11, "BODY[]<0>".into()))
        );
        assert!(streamable_item(b"* 1 FETCH (BINARY[] ").is_some());
        assert_eq!(streamable_item(b"* 1 FETCH (BODY[HEADER] "), None);
        assert_eq!(streamable_item(b"* 1 FETCH (RFC822.HEADER "), None);
        assert_eq!(streamable_item(b"* 1 FETCH (BODY[]<x> "), None);
        assert_eq!(streamable_item(b"* 1 FETCH (BODY[]"), None);
    }

    #[test]
    fn measures_nesting_outside_strings_and_literals() {
        assert_eq!(nesting_depth(b"* 1 FETCH (UID 5)\r\n", 64), 1);
        assert_eq!(
            nesting_depth(b"* 1 FETCH (BODYSTRUCTURE ((\"a\" NIL) \"b\"))\r\n", 64),
            3
        );
        assert_eq!(nesting_depth(b"* 1 FETCH (X \"((((\\\"((\")\r\n", 64), 1);
        assert_eq!(
            nesting_depth(b"* 1 FETCH (BODY[HEADER] {6}\r\n((((((\r\n)\r\n", 64),
            1
        );
        assert_eq!(
            nesting_depth(b"* 1 FETCH (X {6+}\r\n((((((\r\n)\r\n", 64),
            1
        );
        let mut deep = b"* 1 FETCH (BODYSTRUCTURE ".to_vec();
        deep.extend(std::iter::repeat_n(b'(', 100_000));
        assert_eq!(nesting_depth(&deep, 64), 65);
        // Unbalanced and odd input never panics.
        for odd in [
            &b")))(("[..],
            b"\"",
            b"\\",
            b"{",
            b"}\r\n",
            b"{99999999999999999999}\r\n",
        ] {
            let _ = nesting_depth(odd, 64);
        }
    }

    #[test]
    fn finds_uid_hints() {
        assert_eq!(find_uid(b"* 1 FETCH (UID 5 BODY[] {3}"), Some(5));
        assert_eq!(find_uid(b"* 1 FETCH (FLAGS () UID 77)"), Some(77));
        assert_eq!(find_uid(b"* 1 FETCH (XUID 5 BODY[] {3}"), None);
        assert_eq!(find_uid(b"* 1 FETCH (BODY[] {3}"), None);
    }
}
