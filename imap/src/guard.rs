//! Bounds on what a server may send that the client cannot use: a greeting that is not IMAP,
//! runs of responses that parse as nothing, floods of untagged responses to one command.
//!
//! A server that speaks another protocol (SSH, SMTP, HTTP, a TLS port reached with
//! `--security none`) or garbage would otherwise be read response after response until a
//! timeout, and retried; past these bounds the session fails with a permanent
//! [`ImapError::NotImap`] (another protocol, noise), [`ImapError::Unparseable`] (IMAP-shaped
//! responses no parser knows) or [`ImapError::Flood`], showing what arrived.

use std::time::Duration;

use super::error::ImapError;
use super::framing::escaped_sample;
use super::types::{Response, Status, StatusText, Untagged};

/// The longest wait for the greeting after connecting (at most the read timeout). A TLS
/// port reached without TLS, like many non-IMAP services, waits for the client in silence.
pub(crate) const GREETING_TIMEOUT: Duration = Duration::from_secs(15);
/// Responses in a row that neither parser understands before the server is given up.
pub(crate) const MAX_UNPARSED_IN_ROW: usize = 32;
/// Bytes of such responses in a row before the server is given up.
pub(crate) const MAX_UNPARSED_BYTES_IN_ROW: usize = 256 << 10;
/// Untagged responses one command may draw besides what it reads itself (LIST entries,
/// EXISTS, EXPUNGE, unknown tags, …); no server sends this many for one command.
pub(crate) const MAX_UNTAGGED_PER_COMMAND: usize = 100_000;

/// What a session has been sent that it could not use, since the last understood response
/// or the last command.
#[derive(Debug, Default)]
pub(crate) struct InputGuard {
    unparsed: usize,
    unparsed_bytes: usize,
    first_unparsed: Option<(String, bool)>,
    untagged: usize,
}

impl InputGuard {
    /// A response was understood: the run of unparseable ones is over.
    pub(crate) fn parsed(&mut self) {
        self.unparsed = 0;
        self.unparsed_bytes = 0;
        self.first_unparsed = None;
    }

    /// A response neither parser understood; an error once the run is past the bounds.
    pub(crate) fn unparsed(&mut self, frame: &[u8]) -> Result<(), ImapError> {
        self.unparsed += 1;
        self.unparsed_bytes = self.unparsed_bytes.saturating_add(frame.len());
        let (sample, imap_like) = self
            .first_unparsed
            .get_or_insert_with(|| (escaped_sample(frame), looks_like_imap(frame)));
        if self.unparsed < MAX_UNPARSED_IN_ROW && self.unparsed_bytes < MAX_UNPARSED_BYTES_IN_ROW {
            return Ok(());
        }
        let (count, bytes, sample) = (self.unparsed, self.unparsed_bytes, sample.clone());
        Err(if *imap_like {
            ImapError::Unparseable {
                count,
                bytes,
                sample,
            }
        } else {
            ImapError::NotImap {
                what: format!("{count} responses in a row ({bytes} bytes) that are not IMAP"),
                sample,
            }
        })
    }

    /// A command was sent: its untagged responses are counted afresh.
    pub(crate) fn command_sent(&mut self) {
        self.untagged = 0;
    }

    /// An untagged response (or an unexpected completion or continuation) the command did
    /// not read itself; an error past [`MAX_UNTAGGED_PER_COMMAND`].
    pub(crate) fn untagged(&mut self) -> Result<(), ImapError> {
        self.untagged += 1;
        if self.untagged > MAX_UNTAGGED_PER_COMMAND {
            return Err(ImapError::Flood {
                limit: MAX_UNTAGGED_PER_COMMAND,
            });
        }
        Ok(())
    }
}

/// Whether a response looks like IMAP that the parsers do not know (`* …`, `+ …`,
/// `TAG …`, printable text) rather than another protocol or noise.
fn looks_like_imap(frame: &[u8]) -> bool {
    let line = frame.strip_suffix(b"\r\n").unwrap_or(frame);
    let printable = std::str::from_utf8(line).is_ok_and(|l| !l.chars().any(char::is_control));
    let (first, rest) = match line.iter().position(|&b| b == b' ') {
        Some(p) => (&line[..p], &line[p..]),
        None => (line, &b""[..]),
    };
    let tag_like = !first.is_empty()
        && !rest.is_empty()
        && first
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"*+.-_".contains(&b));
    printable && tag_like
}

/// The greeting from the first response: `* OK` or `* PREAUTH`; `* BYE` is [`ImapError::Bye`];
/// anything else (another protocol's banner, garbage) is [`ImapError::NotImap`].
pub(crate) fn greeting(frame: &[u8], parsed: Option<&Response>) -> Result<StatusText, ImapError> {
    match parsed {
        Some(Response::Untagged(Untagged::Status(st))) => match st.status {
            Status::Ok | Status::PreAuth => Ok(st.clone()),
            Status::Bye => Err(ImapError::Bye(st.text.clone())),
            _ => Err(not_a_greeting(frame)),
        },
        _ => Err(not_a_greeting(frame)),
    }
}

fn not_a_greeting(frame: &[u8]) -> ImapError {
    ImapError::NotImap {
        what: "its first line is not an IMAP greeting (* OK …)".into(),
        sample: escaped_sample(frame),
    }
}

/// How long to wait for the greeting under a read timeout.
pub(crate) fn greeting_wait(read_timeout: Option<Duration>) -> Duration {
    read_timeout.map_or(GREETING_TIMEOUT, |t| t.min(GREETING_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response;

    #[test]
    fn a_run_of_garbage_is_bounded_and_shown_escaped() {
        let mut g = InputGuard::default();
        for _ in 1..MAX_UNPARSED_IN_ROW {
            g.unparsed(b"\x16\x03\x01\x02\x00\x01\r\n").unwrap();
        }
        let err = g.unparsed(b"more\r\n").unwrap_err().to_string();
        assert!(err.contains("32 responses in a row"), "{err}");
        assert!(err.contains("does not speak IMAP"), "{err}");
        assert!(err.contains(r"\x16\x03\x01\x02\x00\x01\r\n"), "{err}");
        assert!(err.contains("--security ssl"), "{err}");
        assert!(
            !ImapError::NotImap {
                what: String::new(),
                sample: String::new()
            }
            .is_transient()
        );

        // An understood response ends the run.
        let mut g = InputGuard::default();
        for _ in 0..3 * MAX_UNPARSED_IN_ROW {
            g.unparsed(b"?\r\n").unwrap();
            g.parsed();
        }
        // Bytes count too: a few huge unparseable responses are enough.
        let big = vec![b'x'; MAX_UNPARSED_BYTES_IN_ROW / 2];
        let mut g = InputGuard::default();
        g.unparsed(&big).unwrap();
        let err = g.unparsed(&big).unwrap_err().to_string();
        assert!(err.contains("xxxx…"), "{err}");

        // IMAP no parser knows is named as such, not as another protocol.
        let mut g = InputGuard::default();
        for _ in 1..MAX_UNPARSED_IN_ROW {
            g.unparsed(b"* 1 FETCH (UID 1 X\r\n").unwrap();
        }
        let err = g.unparsed(b"* 2 FETCH (UID 2 X\r\n").unwrap_err();
        assert!(
            matches!(err, ImapError::Unparseable { count: 32, .. }),
            "{err}"
        );
        assert!(!err.is_transient());
        let err = err.to_string();
        assert!(err.contains(r#""* 1 FETCH (UID 1 X\r\n""#), "{err}");
        assert!(!err.contains("--security"), "{err}");
    }

    #[test]
    fn untagged_responses_per_command_are_bounded() {
        let mut g = InputGuard::default();
        for _ in 0..MAX_UNTAGGED_PER_COMMAND {
            g.untagged().unwrap();
        }
        g.command_sent();
        for _ in 0..MAX_UNTAGGED_PER_COMMAND {
            g.untagged().unwrap();
        }
        let err = g.untagged().unwrap_err();
        assert!(matches!(err, ImapError::Flood { .. }) && !err.is_transient());
    }

    #[test]
    fn only_an_imap_greeting_starts_a_session() {
        let check = |line: &[u8]| greeting(line, response::parse(line).as_ref());
        assert_eq!(check(b"* OK ready\r\n").unwrap().text, "ready");
        assert_eq!(check(b"* PREAUTH hi\r\n").unwrap().status, Status::PreAuth);
        assert!(matches!(check(b"* BYE busy\r\n"), Err(ImapError::Bye(_))));
        for banner in [
            &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
            b"220 mail.contoso.edu ESMTP Postfix\r\n",
            b"+OK POP3 server ready\r\n",
            b"HTTP/1.1 400 Bad Request\r\n",
            b"* 1 EXISTS\r\n",
            b"\x15\x03\x03\x00\x02\x02\x46\r\n",
        ] {
            let err = check(banner).unwrap_err();
            assert!(matches!(err, ImapError::NotImap { .. }), "{err}");
            assert!(err.to_string().contains("not an IMAP greeting"), "{err}");
        }
        assert_eq!(greeting_wait(None), GREETING_TIMEOUT);
        assert_eq!(
            greeting_wait(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }
}
