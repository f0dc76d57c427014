//! [`ImapError`]: everything a session can fail with, and how to judge it;
//! [`ImapStepError`] and [`During`]: the error with the step it stopped, as the extractor
//! and the uploader report it.

use std::io;
use std::time::Duration;

use thiserror::Error;

use super::framing::FramingError;
use super::types::{Code, Status, StatusText};

/// A failed IMAP operation.
#[derive(Debug, Error)]
pub enum ImapError {
    /// Reading or framing the server's responses failed.
    #[error("reading from the server: {0}")]
    Framing(#[from] FramingError),
    /// Writing to the server failed.
    #[error("writing to the server: {0}")]
    Io(#[from] io::Error),
    /// The server ended the session with an untagged BYE.
    #[error("server closed the session: BYE {0}")]
    Bye(String),
    /// The server answered a command with NO or BAD.
    #[error("{command}: server said {status}")]
    Rejected {
        /// The command name, e.g. `LOGIN`, `UID FETCH`.
        command: String,
        /// The tagged NO/BAD with its code and text.
        status: Box<StatusText>,
    },
    /// Authentication failed; `detail` holds a decoded server challenge, e.g. XOAUTH2's
    /// JSON error (`{"status":"401","schemes":"bearer","scope":"…"}`).
    #[error("AUTHENTICATE {mechanism}: server said {status}{}", detail.as_deref().map(|d| format!(" (detail: {d})")).unwrap_or_default())]
    AuthFailed {
        /// The SASL mechanism.
        mechanism: String,
        /// The tagged NO/BAD.
        status: Box<StatusText>,
        /// The server's last challenge, base64-decoded, when it sent one.
        detail: Option<String>,
    },
    /// No response within the read timeout; the connection must be dropped.
    #[error("no response from the server within {0:?}")]
    Timeout(Duration),
    /// The server kept sending, but nothing that brought the command nearer its end (only
    /// keepalive lines such as `* OK still here`, or a literal trickling in a few bytes at
    /// a time) for the read timeout; the connection must be dropped.
    #[error("the server kept the link open without progress for {} s", .0.as_secs())]
    Stalled(Duration),
    /// The server does not offer what the operation needs (e.g. LOGINDISABLED).
    #[error("server does not support {0}")]
    Unsupported(String),
    /// TLS could not be set up (bad CA file, invalid server name, empty trust store).
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The server's certificate was refused (unknown issuer, expired, wrong name, …).
    #[error("TLS: the certificate of {host} is not trusted ({})", certificate_text(reason, refusal.as_deref()))]
    Certificate {
        /// The host name it was checked against.
        host: String,
        /// Why rustls refused it (`ApplicationVerificationFailure`: not the pinned one).
        reason: rustls::CertificateError,
        /// What was presented and pinned, when the project's verifier refused it.
        refusal: Option<Box<crate::tls::CertificateRefusal>>,
    },
    /// The server broke the protocol (unexpected continuation, short greeting, …).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server does not speak IMAP: its first line is not a greeting, or it sent a run
    /// of responses neither parser understands. Permanent: reconnecting meets it again.
    #[error(
        "the server does not speak IMAP here: {what}; it sent \"{sample}\" (wrong port? a TLS port such as 993 needs --security ssl, not none)"
    )]
    NotImap {
        /// What was wrong.
        what: String,
        /// The first bytes of the first such response, escaped.
        sample: String,
    },
    /// The server sent a run of responses shaped like IMAP that no parser understands.
    /// Permanent: reconnecting meets them again.
    #[error(
        "the server sent {count} responses in a row ({bytes} bytes) that no parser understands, the first \"{sample}\""
    )]
    Unparseable {
        /// Responses in the run.
        count: usize,
        /// Their bytes.
        bytes: usize,
        /// The first bytes of the first one, escaped.
        sample: String,
    },
    /// One command drew more untagged responses than any server sends (an endless stream
    /// of EXISTS, …). Permanent.
    #[error("the server sent more than {limit} untagged responses to one command")]
    Flood {
        /// The bound.
        limit: usize,
    },
    /// The server accepted the connection but sent no greeting in time.
    #[error(
        "no greeting within {0:?} of connecting (a TLS port such as 993 with --security none? a service that is not IMAP?)"
    )]
    NoGreeting(Duration),
    /// A message body could not be written by the sink; the session is still usable.
    #[error("writing a message body failed: {0}")]
    Sink(io::Error),
    /// An earlier error left the connection in an unknown state.
    #[error("session unusable after an earlier connection error")]
    Unusable,
}

impl ImapError {
    /// True for failures a reconnect may cure: connection loss, timeouts, BYE, throttling.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Framing(e) => matches!(
                e,
                FramingError::Io(_) | FramingError::Closed | FramingError::Truncated
            ),
            Self::Io(_)
            | Self::Bye(_)
            | Self::Timeout(_)
            | Self::Stalled(_)
            | Self::NoGreeting(_)
            | Self::Unusable => true,
            Self::Rejected { .. } | Self::AuthFailed { .. } => self.is_passing_refusal(),
            _ => false,
        }
    }

    /// The tagged status of a rejected command or failed authentication.
    pub fn status(&self) -> Option<&StatusText> {
        match self {
            Self::Rejected { status, .. } | Self::AuthFailed { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The response code's name (`AUTHENTICATIONFAILED`, `ALREADYEXISTS`, `TRYCREATE`, …).
    pub fn code_name(&self) -> Option<String> {
        let code = self.status()?.code.as_ref()?;
        Some(match code {
            Code::Other { name, .. } => name.to_ascii_uppercase(),
            other => other
                .to_string()
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// True for a NO or BAD that means "not now" rather than "never": a throttle, an RFC 5530
    /// `UNAVAILABLE` or `INUSE` code, or the words servers use for it without a code
    /// ([`PASSING_WORDS`]). Reconnecting later may succeed; the command changed nothing.
    pub fn is_passing_refusal(&self) -> bool {
        let Some(status) = self.status() else {
            return false;
        };
        if self.throttle_backoff().is_some() {
            return true;
        }
        let code = self.code_name().unwrap_or_default();
        let text = status.text.to_ascii_lowercase();
        PASSING_CODES.contains(&code.as_str()) || PASSING_WORDS.iter().any(|w| text.contains(w))
    }

    /// The wait a throttle answer asks for: Exchange's `BAD Request is throttled. Suggested
    /// Backoff Time: N milliseconds` (N read as far as its digits go; `seconds` also
    /// understood), or [`UNSTATED_BACKOFF`] for a throttle that states no usable wait (a
    /// garbled or overflowing N, a `[THROTTLED]` code, the words of [`THROTTLE_WORDS`]). A
    /// throttle must never read as a refusal of the message it answered.
    /// An untagged `* BYE` in those words is a throttle too (the server ends the session
    /// rather than answer the command).
    pub fn throttle_backoff(&self) -> Option<Duration> {
        let (text, coded) = match self {
            Self::Bye(text) => (text.as_str(), false),
            _ => {
                let status = self.status()?;
                if status.status != Status::Bad && status.status != Status::No {
                    return None;
                }
                let coded = self.code_name().as_deref() == Some("THROTTLED");
                (status.text.as_str(), coded)
            }
        };
        if let Some((_, after)) = text.split_once("Suggested Backoff Time:") {
            return Some(stated_backoff(after).unwrap_or(UNSTATED_BACKOFF));
        }
        let text = text.to_ascii_lowercase();
        let throttled = coded || THROTTLE_WORDS.iter().any(|w| text.contains(w));
        throttled.then_some(UNSTATED_BACKOFF)
    }
}

/// The wait a throttle asks for when it states none that can be read: longer than a refill
/// interval (2 s), so it reads as a penalty and teaches the upload pace no rate by itself.
pub const UNSTATED_BACKOFF: Duration = Duration::from_secs(3);

/// Words of throttle answers without a readable backoff, lower-cased (Exchange's own
/// wording, and the common ones of rate limits).
pub const THROTTLE_WORDS: [&str; 4] = [
    "request is throttled",
    "throttled",
    "rate limit",
    "too many requests",
];

/// The wait stated after `Suggested Backoff Time:`: its number (digits, thousands
/// separators ignored) in milliseconds, or seconds when it says so (a number too large
/// for a `u64` is the longest wait, which the retry policy caps); `None` when there is no
/// number.
fn stated_backoff(after: &str) -> Option<Duration> {
    let after = after.trim_start();
    let number: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    if number.is_empty() {
        return None;
    }
    let n: u64 = number.parse().unwrap_or(u64::MAX);
    let unit = after[after
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(after.len())..]
        .trim_start()
        .to_ascii_lowercase();
    Some(
        if unit.starts_with("sec") || unit.starts_with("s ") || unit == "s" {
            Duration::from_secs(n)
        } else {
            Duration::from_millis(n)
        },
    )
}

/// Response codes of refusals that pass (RFC 5530): a subsystem is down for now
/// (Dovecot's "Temporary authentication failure"), the mailbox is in use.
const PASSING_CODES: [&str; 2] = ["UNAVAILABLE", "INUSE"];

/// Words of passing refusals that carry no code, lower-cased: Exchange's
/// `NO Server Unavailable. 15` and `NO User is authenticated but not connected.` (the
/// mailbox's back end is not reachable yet, often right after a login), and the common
/// wordings of "later" and of a connection limit (Dovecot's `Maximum number of
/// connections from user+IP exceeded`).
pub const PASSING_WORDS: [&str; 8] = [
    "server unavailable",
    "authenticated but not connected",
    "temporarily unavailable",
    "temporary failure",
    "try again later",
    "server is busy",
    "too many connections",
    "maximum number of connections",
];

/// The reason of a refused certificate: the refusal's own words when there is one (they
/// name the fingerprints), else rustls's reason.
fn certificate_text(
    reason: &rustls::CertificateError,
    refusal: Option<&crate::tls::CertificateRefusal>,
) -> String {
    match refusal {
        Some(r) => r.to_string(),
        None => format!("{reason:?}"),
    }
}

/// An IMAP error and the step that was being done ("EXAMINE \"INBOX\"", "APPEND to
/// \"Sent\""); shown as `step: error`.
#[derive(Debug, Error)]
#[error("{context}: {source}")]
pub struct ImapStepError {
    /// What was being done.
    pub context: String,
    /// The error.
    pub source: ImapError,
}

impl ImapStepError {
    /// True when reconnecting may help (see [`ImapError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.source.is_transient()
    }

    /// The wait the server asked for, when it throttled.
    pub fn throttle_backoff(&self) -> Option<Duration> {
        self.source.throttle_backoff()
    }
}

/// Names the step of an IMAP result that failed.
pub trait During<T> {
    /// Wraps an error with the step `context` names (built only when there is an error).
    fn during(self, context: impl FnOnce() -> String) -> Result<T, ImapStepError>;
}

impl<T> During<T> for Result<T, ImapError> {
    fn during(self, context: impl FnOnce() -> String) -> Result<T, ImapStepError> {
        self.map_err(|source| ImapStepError {
            context: context(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: Status, code: Option<Code>, text: &str) -> ImapError {
        ImapError::Rejected {
            command: "LOGIN".into(),
            status: Box::new(StatusText {
                status,
                code,
                text: text.into(),
            }),
        }
    }

    #[test]
    fn messages_and_classification() {
        let e = rejected(
            Status::No,
            Some(Code::Other {
                name: "AUTHENTICATIONFAILED".into(),
                args: None,
            }),
            "Authentication failed.",
        );
        assert_eq!(
            e.to_string(),
            "LOGIN: server said NO [AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(e.code_name().as_deref(), Some("AUTHENTICATIONFAILED"));
        assert!(!e.is_transient());
        let e = rejected(
            Status::Bad,
            None,
            "Request is throttled. Suggested Backoff Time: 2500 milliseconds",
        );
        assert_eq!(e.throttle_backoff(), Some(Duration::from_millis(2500)));
        assert!(e.is_transient());
        assert!(ImapError::Bye("shutting down".into()).is_transient());
        assert_eq!(
            rejected(Status::No, Some(Code::TryCreate), "no such mailbox")
                .code_name()
                .as_deref(),
            Some("TRYCREATE")
        );
    }

    #[test]
    fn refusals_that_mean_not_now_are_transient_and_the_rest_are_not() {
        let unavailable = Some(Code::Other {
            name: "UNAVAILABLE".into(),
            args: None,
        });
        for e in [
            rejected(Status::No, None, "Server Unavailable. 15"),
            rejected(Status::No, None, "User is authenticated but not connected."),
            rejected(Status::No, unavailable.clone(), "Backend down"),
            ImapError::AuthFailed {
                mechanism: "PLAIN".into(),
                status: Box::new(StatusText {
                    status: Status::No,
                    code: unavailable,
                    text: "Temporary authentication failure.".into(),
                }),
                detail: None,
            },
        ] {
            assert!(e.is_passing_refusal() && e.is_transient(), "{e}");
        }
        for e in [
            rejected(Status::No, None, "LOGIN failed."),
            rejected(Status::No, Some(Code::TryCreate), "Mailbox doesn't exist"),
            rejected(Status::Bad, None, "Command Argument Error. 11"),
        ] {
            assert!(!e.is_passing_refusal() && !e.is_transient(), "{e}");
        }
    }

    #[test]
    fn every_throttle_reads_as_one_whatever_wait_it_states() {
        let ms = Duration::from_millis;
        for (text, wait) in [
            (
                "Request is throttled. Suggested Backoff Time: 299609 milliseconds",
                ms(299_609),
            ),
            (
                "Request is throttled. Suggested Backoff Time: 0 milliseconds",
                ms(0),
            ),
            (
                "Request is throttled. Suggested Backoff Time: 1,500 milliseconds",
                ms(1500),
            ),
            (
                "Request is throttled. Suggested Backoff Time: 3 seconds",
                ms(3000),
            ),
            (
                "Request is throttled. Suggested Backoff Time:250ms",
                ms(250),
            ),
            (
                "Request is throttled. Suggested Backoff Time: abc milliseconds",
                UNSTATED_BACKOFF,
            ),
            (
                "Request is throttled. Suggested Backoff Time: -5 milliseconds",
                UNSTATED_BACKOFF,
            ),
            (
                "Request is throttled. Suggested Backoff Time:",
                UNSTATED_BACKOFF,
            ),
            ("Request is throttled.", UNSTATED_BACKOFF),
            ("Rate limit exceeded, slow down", UNSTATED_BACKOFF),
            (
                "Request is throttled. Suggested Backoff Time: 99999999999999999999999 milliseconds",
                ms(u64::MAX),
            ),
        ] {
            let e = rejected(Status::Bad, None, text);
            assert_eq!(e.throttle_backoff(), Some(wait), "{text}");
            assert!(e.is_passing_refusal() && e.is_transient(), "{text}");
        }
        let coded = rejected(
            Status::No,
            Some(Code::Other {
                name: "THROTTLED".into(),
                args: None,
            }),
            "Slow down",
        );
        assert_eq!(coded.throttle_backoff(), Some(UNSTATED_BACKOFF));
        let bye = ImapError::Bye(
            "Request is throttled. Suggested Backoff Time: 1500 milliseconds".into(),
        );
        assert_eq!(bye.throttle_backoff(), Some(ms(1500)));
        assert_eq!(
            ImapError::Bye("Connection is closed. 13".into()).throttle_backoff(),
            None
        );
        assert_eq!(
            rejected(Status::No, None, "Message too large").throttle_backoff(),
            None
        );
    }

    #[test]
    fn a_step_error_names_the_step_and_is_judged_by_its_cause() {
        let throttled = || {
            Err::<(), _>(rejected(
                Status::Bad,
                None,
                "Request is throttled. Suggested Backoff Time: 10 milliseconds",
            ))
            .during(|| "EXAMINE \"INBOX\"".into())
            .unwrap_err()
        };
        let shown = "EXAMINE \"INBOX\": LOGIN: server said BAD Request is throttled. \
                     Suggested Backoff Time: 10 milliseconds";
        let e = throttled();
        assert_eq!(e.to_string(), shown);
        assert!(e.is_transient());
        assert_eq!(e.throttle_backoff(), Some(Duration::from_millis(10)));
        assert_eq!(
            Ok::<_, ImapError>(7).during(|| unreachable!()).unwrap(),
            7,
            "the context is built only for an error"
        );
    }
}
