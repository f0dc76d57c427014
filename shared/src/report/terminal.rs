//! What reaches a terminal never carries a server's control characters: a greeting, a
//! capability, a certificate's subject or an error text with `ESC [ …` could move the
//! cursor, recolour or rewrite what the admin reads. [`printable`] escapes one text;
//! [`Escaping`] escapes everything written through it except line ends and tabs, so the
//! binaries wrap their standard output in it once.

use std::borrow::Cow;
use std::io::{self, Write};

/// True for a character a terminal may act on: C0 controls, DEL and C1 controls.
fn is_unsafe(c: char) -> bool {
    c.is_control()
}

/// `text` with every control character (line breaks too) written as `\u{…}`.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_char(out: &mut String, c: char) {
    if is_unsafe(c) {
        out.push_str(&format!("\\u{{{:x}}}", c as u32));
    } else {
        out.push(c);
    }
}

/// A writer that escapes control characters (except `\n` and `\t`) as `\u{…}` on their way
/// to `W`; invalid UTF-8 passes as it is (it cannot form a control character). JSON output is
/// unchanged: JSON strings already escape their control characters.
pub struct Escaping<W: Write>(pub W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let chunk = String::from_utf8_lossy(buf);
        if matches!(chunk, Cow::Borrowed(_))
            && !chunk
                .chars()
                .any(|c| is_unsafe(c) && c != '\n' && c != '\t')
        {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        match std::str::from_utf8(buf) {
            Ok(text) => {
                let mut out = String::with_capacity(text.len() + 8);
                for c in text.chars() {
                    if c == '\n' || c == '\t' {
                        out.push(c);
                    } else {
                        push_char(&mut out, c);
                    }
                }
                self.0.write_all(out.as_bytes())?;
            }
            Err(_) => {
                // Byte by byte: ASCII controls escaped, everything else as it came.
                for &b in buf {
                    if (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f {
                        write!(self.0, "\\u{{{b:x}}}")?;
                    } else {
                        self.0.write_all(&[b])?;
                    }
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_text_is_kept() {
        assert!(matches!(printable("IMAP4rev1 ready"), Cow::Borrowed(_)));
        assert_eq!(
            printable("ok\x1b[2J\r\n\u{9b}31m\x07"),
            "ok\\u{1b}[2J\\u{d}\\u{a}\\u{9b}31m\\u{7}"
        );
        let mut out = Escaping(Vec::new());
        writeln!(out, "greeting\t* OK \x1b]0;owned\x07 Dovecot, café").unwrap();
        out.write_all(b"raw \xff\x1b[1m\n").unwrap();
        let shown = String::from_utf8_lossy(&out.0).into_owned();
        assert_eq!(
            shown,
            "greeting\t* OK \\u{1b}]0;owned\\u{7} Dovecot, café\nraw \u{fffd}\\u{1b}[1m\n"
        );
        assert!(!out.0.contains(&0x1b) && !out.0.contains(&0x07));
    }
}
