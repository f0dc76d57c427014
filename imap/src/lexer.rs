//! A small, forgiving tokenizer for IMAP response data: atoms, strings and lists.
//!
//! It backs the tolerant path for responses imap-proto rejects or does not know (ESEARCH,
//! NAMESPACE, doubled spaces, IMAP4rev2-only capability lists, LIST-EXTENDED data).

/// A token tree of response data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// An atom or number, including `NIL`, flags (`\Seen`) and `BODY[…]<n>` items.
    Atom(Vec<u8>),
    /// A quoted string (unescaped) or a literal.
    Str(Vec<u8>),
    /// A parenthesised list.
    List(Vec<Value>),
}

impl Value {
    /// The bytes of an atom or string.
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Atom(b) | Self::Str(b) => Some(b),
            Self::List(_) => None,
        }
    }

    /// The value as text (lossy), for atoms and strings.
    pub(crate) fn text(&self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// True for the atom `NIL`.
    pub(crate) fn is_nil(&self) -> bool {
        matches!(self, Self::Atom(a) if a.eq_ignore_ascii_case(b"NIL"))
    }

    /// True for an atom equal to `word` (case-insensitive).
    pub(crate) fn is_atom(&self, word: &str) -> bool {
        matches!(self, Self::Atom(a) if a.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// A number from an atom.
    pub(crate) fn number<T: std::str::FromStr>(&self) -> Option<T> {
        match self {
            Self::Atom(a) if a.iter().all(u8::is_ascii_digit) => {
                std::str::from_utf8(a).ok()?.parse().ok()
            }
            _ => None,
        }
    }

    /// The items of a list.
    pub(crate) fn list(&self) -> Option<&[Value]> {
        match self {
            Self::List(v) => Some(v),
            _ => None,
        }
    }
}

const MAX_DEPTH: usize = super::response::MAX_NESTING;

/// Tokenizes response data (without the final CRLF). `None` for unbalanced parentheses,
/// unterminated strings or short literals. A list nested deeper than 64 is skipped whole
/// and stands as an empty list, so the items around it (a FETCH's UID and body beside a
/// hostile BODYSTRUCTURE) survive.
pub(crate) fn lex(input: &[u8]) -> Option<Vec<Value>> {
    let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b' ' => i += 1,
            b'(' if stack.len() > MAX_DEPTH => {
                i = skip_list(input, i)?;
                stack.last_mut()?.push(Value::List(Vec::new()));
            }
            b'(' => {
                stack.push(Vec::new());
                i += 1;
            }
            b')' => {
                let done = stack.pop()?;
                stack.last_mut()?.push(Value::List(done));
                i += 1;
            }
            b'"' => {
                let (s, next) = quoted(input, i + 1)?;
                stack.last_mut()?.push(Value::Str(s));
                i = next;
            }
            b'{' | b'~' => {
                let (s, next) = literal(input, i)?;
                stack.last_mut()?.push(Value::Str(s));
                i = next;
            }
            _ => {
                let next = atom_end(input, i);
                if next == i {
                    return None;
                }
                stack.last_mut()?.push(Value::Atom(input[i..next].to_vec()));
                i = next;
            }
        }
    }
    if stack.len() != 1 {
        return None;
    }
    stack.pop()
}

/// The index after the list opening at `i` (its strings and literals skipped, nothing
/// kept); `None` when it is not closed.
fn skip_list(input: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i < input.len() {
        match input[i] {
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'"' => i = quoted(input, i + 1)?.1,
            b'{' | b'~' => i = literal(input, i).map_or(i + 1, |(_, next)| next),
            _ => i += 1,
        }
    }
    None
}

fn quoted(input: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    while i < input.len() {
        match input[i] {
            b'"' => return Some((out, i + 1)),
            b'\\' => {
                out.push(*input.get(i + 1)?);
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

fn literal(input: &[u8], i: usize) -> Option<(Vec<u8>, usize)> {
    let open = if input[i] == b'~' { i + 1 } else { i };
    if input.get(open) != Some(&b'{') {
        return None;
    }
    let close = open + input[open..].iter().position(|&b| b == b'}')?;
    let digits = &input[open + 1..close];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let data_start = close + 1 + input.get(close + 1..)?.strip_prefix(b"\r\n").map(|_| 2)?;
    let data_end = data_start.checked_add(len)?;
    Some((input.get(data_start..data_end)?.to_vec(), data_end))
}

/// End of an atom starting at `i`; a `[` … `]` section is part of the atom, spaces and all.
fn atom_end(input: &[u8], mut i: usize) -> usize {
    while i < input.len() {
        match input[i] {
            b' ' | b'(' | b')' | b'"' | b'\r' | b'\n' => return i,
            b'[' => match input[i..].iter().position(|&b| b == b']') {
                Some(p) => i += p + 1,
                None => return input.len(),
            },
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(s: &str) -> Value {
        Value::Atom(s.as_bytes().to_vec())
    }

    #[test]
    fn lexes_nested_data() {
        let v =
            lex(b"FETCH (UID 5 FLAGS (\\Seen) BODY[HEADER.FIELDS (FROM)] {3}\r\nabc X \"a\\\"b\")")
                .unwrap();
        assert_eq!(v[0], atom("FETCH"));
        let items = v[1].list().unwrap();
        assert_eq!(items[0], atom("UID"));
        assert_eq!(items[1].number::<u32>(), Some(5));
        assert_eq!(items[3], Value::List(vec![atom("\\Seen")]));
        assert_eq!(items[4], atom("BODY[HEADER.FIELDS (FROM)]"));
        assert_eq!(items[5], Value::Str(b"abc".to_vec()));
        assert_eq!(items[7], Value::Str(b"a\"b".to_vec()));
    }

    #[test]
    fn rejects_broken_data() {
        assert_eq!(lex(b"(a"), None);
        assert_eq!(lex(b"a)"), None);
        assert_eq!(lex(b"\"abc"), None);
        assert_eq!(lex(b"{5}\r\nab"), None);
        assert_eq!(lex(&[b'('; 100]), None);
        assert_eq!(lex(b"a  b").unwrap().len(), 2);
    }

    #[test]
    fn lists_nested_too_deep_are_skipped_whole() {
        let mut input = b"FETCH (UID 5 BODYSTRUCTURE ".to_vec();
        input.extend(std::iter::repeat_n(b'(', 100_000));
        input.extend_from_slice(b"\"a)\" {3}\r\n)((");
        input.extend(std::iter::repeat_n(b')', 100_000));
        input.extend_from_slice(b" BODY[] {0}\r\n FLAGS (\\Seen))");
        let v = lex(&input).unwrap();
        let items = v[1].list().unwrap();
        assert_eq!(items[0], atom("UID"));
        assert_eq!(items[1].number::<u32>(), Some(5));
        let mut skipped = &items[3];
        for _ in 0..MAX_DEPTH - 1 {
            skipped = &skipped.list().unwrap()[0];
        }
        assert_eq!(skipped, &Value::List(Vec::new()));
        assert_eq!(items[4], atom("BODY[]"));
        assert_eq!(items[7], Value::List(vec![atom("\\Seen")]));
        // Unclosed, it is still refused.
        let mut open = b"(".repeat(MAX_DEPTH + 1);
        open.extend_from_slice(b"(\")\"");
        assert_eq!(lex(&open), None);
    }
}
