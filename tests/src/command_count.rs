//! Counting the IMAP commands a client sends through the [`fault_proxy`](crate::fault_proxy),
//! so a test can count a pass's commands and round trips.
//!
//! The client's bytes are read as IMAP command lines: a line that starts with a tag, a space
//! and a command name starts a command; a line ending in a literal (`{N}` or `{N+}`) continues
//! after the literal's N bytes, which are skipped whatever they hold. Lines without a tag and
//! a space (`DONE`, an AUTHENTICATE response) are not commands.
//!
//! A *turn* is a command sent after the server said something since the client's previous
//! command: each command that waited for a response counts one, a pipelined burst counts one.
//! It is an upper bound on the round trips the client waited for (a client that sends its next
//! command while a response still streams counts a turn it did not wait for).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Commands counted over all the links of one proxy.
#[derive(Debug, Default)]
pub struct CommandCounts {
    commands: AtomicU64,
    turns: AtomicU64,
    by_name: Mutex<BTreeMap<String, u64>>,
}

impl CommandCounts {
    /// Commands seen.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::SeqCst)
    }

    /// Turns seen (see the module's documentation).
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::SeqCst)
    }

    /// Commands seen by name, upper case, `UID` joined to the command it prefixes
    /// (`"UID FETCH"`, `"STATUS"`, `"LIST"`).
    pub fn by_name(&self) -> BTreeMap<String, u64> {
        self.by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Commands of this name seen (as [`by_name`](Self::by_name) spells it).
    pub fn named(&self, name: &str) -> u64 {
        self.by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Starts counting from zero (links already open keep being counted).
    pub fn reset(&self) {
        self.commands.store(0, Ordering::SeqCst);
        self.turns.store(0, Ordering::SeqCst);
        self.by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn count(&self, name: String, turn: bool) {
        self.commands.fetch_add(1, Ordering::SeqCst);
        if turn {
            self.turns.fetch_add(1, Ordering::SeqCst);
        }
        *self
            .by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default() += 1;
    }
}

/// The longest line start kept to read a tag and a command name from.
const HEAD: usize = 64;
/// The longest line end kept to read a literal's announcement from.
const TAIL: usize = 24;

/// Reads one link's client→server bytes (see the module's documentation).
#[derive(Debug, Default)]
pub(crate) struct CommandScanner {
    /// Literal bytes still to skip.
    literal_left: u64,
    /// The current line continues a command (it follows a literal).
    continuing: bool,
    /// The start of the current command line (not of its continuations).
    head: Vec<u8>,
    /// The end of the current physical line.
    tail: Vec<u8>,
}

impl CommandScanner {
    /// Reads `data`, counting into `counts` each command that starts in it; `server_spoke` is
    /// set by the other direction when the server's bytes reached the client.
    pub(crate) fn feed(
        &mut self,
        mut data: &[u8],
        counts: &CommandCounts,
        server_spoke: &AtomicBool,
    ) {
        while !data.is_empty() {
            if self.literal_left > 0 {
                let skip = data
                    .len()
                    .min(usize::try_from(self.literal_left).unwrap_or(usize::MAX));
                self.literal_left -= skip as u64;
                data = &data[skip..];
                continue;
            }
            let (line, newline) = match data.iter().position(|&b| b == b'\n') {
                Some(p) => (&data[..p], true),
                None => (data, false),
            };
            if !self.continuing && self.head.len() < HEAD {
                let room = HEAD - self.head.len();
                self.head.extend_from_slice(&line[..line.len().min(room)]);
            }
            self.tail.extend_from_slice(line);
            if self.tail.len() > TAIL {
                self.tail.drain(..self.tail.len() - TAIL);
            }
            data = &data[line.len() + usize::from(newline)..];
            if !newline {
                break;
            }
            if !self.continuing
                && let Some(name) = command_name(&self.head)
            {
                counts.count(name, server_spoke.swap(false, Ordering::SeqCst));
            }
            match literal_announced(&self.tail) {
                Some(n) => {
                    self.literal_left = n;
                    self.continuing = true;
                }
                None => {
                    self.continuing = false;
                    self.head.clear();
                }
            }
            self.tail.clear();
        }
    }
}

/// `tag SP name [SP …]` → the command's name (with `UID` joined to the next word).
fn command_name(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ');
    let tag = words.next()?;
    let is_tag_char = |b: &u8| b.is_ascii_graphic() && !b"(){%*\"\\+".contains(b);
    if tag.is_empty() || !tag.iter().all(is_tag_char) {
        return None;
    }
    let word = |w: &[u8]| -> Option<String> {
        (!w.is_empty() && w.iter().all(|b| b.is_ascii_alphabetic() || *b == b'-'))
            .then(|| String::from_utf8_lossy(w).to_ascii_uppercase())
    };
    let name = word(words.next()?)?;
    if name == "UID"
        && let Some(next) = words.next().and_then(word)
    {
        return Some(format!("UID {next}"));
    }
    Some(name)
}

/// A line ending in `{N}` or `{N+}` (before its CR) → N.
fn literal_announced(tail: &[u8]) -> Option<u64> {
    let t = tail.strip_suffix(b"\r").unwrap_or(tail);
    let t = t.strip_suffix(b"}")?;
    let t = t.strip_suffix(b"+").unwrap_or(t);
    let open = t.iter().rposition(|&b| b == b'{')?;
    let digits = &t[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> CommandCounts {
        let counts = CommandCounts::default();
        let spoke = AtomicBool::new(false);
        let mut s = CommandScanner::default();
        for p in pieces {
            s.feed(p, &counts, &spoke);
        }
        counts
    }

    #[test]
    fn counts_tagged_lines_and_skips_literals_and_untagged_lines() {
        let counts = scan(&[
            b"a1 LOGIN u p\r\na2 uid fetch 1:* (FLAGS)\r\n",
            b"a3 APPEND INBOX {11+}\r\nx1 NOOP\r\n\r\n",
            b" (\\Seen) {3}\r\nabc\r\nDONE\r\ndGVzdA==\r\na",
            b"4 STA",
            b"TUS \"Sent\" (MESSAGES)\r\n",
        ]);
        let names: Vec<(String, u64)> = counts.by_name().into_iter().collect();
        assert_eq!(
            names,
            [
                ("APPEND".to_string(), 1),
                ("LOGIN".to_string(), 1),
                ("STATUS".to_string(), 1),
                ("UID FETCH".to_string(), 1),
            ]
        );
        assert_eq!(counts.commands(), 4);
        assert_eq!(counts.named("STATUS"), 1);
        counts.reset();
        assert_eq!((counts.commands(), counts.named("STATUS")), (0, 0));
    }

    #[test]
    fn a_turn_is_a_command_after_the_server_spoke() {
        let counts = CommandCounts::default();
        let spoke = AtomicBool::new(true); // the greeting
        let mut s = CommandScanner::default();
        s.feed(b"a1 CAPABILITY\r\n", &counts, &spoke);
        spoke.store(true, Ordering::SeqCst);
        s.feed(
            b"a2 STATUS A (UIDNEXT)\r\na3 STATUS B (UIDNEXT)\r\n",
            &counts,
            &spoke,
        );
        s.feed(b"a4 STATUS C (UIDNEXT)\r\n", &counts, &spoke);
        spoke.store(true, Ordering::SeqCst);
        s.feed(b"a5 LOGOUT\r\n", &counts, &spoke);
        assert_eq!((counts.commands(), counts.turns()), (5, 3));
    }

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_announced(b"APPEND X {123}\r"), Some(123));
        assert_eq!(literal_announced(b"{7+}\r"), Some(7));
        assert_eq!(literal_announced(b"\"{x}\"\r"), None);
        assert_eq!(literal_announced(b"{}\r"), None);
        assert_eq!(command_name(b"* OK hi\r"), None);
        assert_eq!(command_name(b"DONE\r"), None);
    }
}
