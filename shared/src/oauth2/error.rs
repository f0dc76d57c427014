//! [`TokenError`]: why no token was obtained, with Entra ID's (Azure AD's) own words, a hint
//! for the usual mistakes, and whether trying again may help.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

/// A failed token request. Cloneable so that callers waiting for the same request share its
/// outcome. Never contains the client secret.
#[derive(Debug, Clone, Error)]
pub enum TokenError {
    /// The settings cannot work (bad login URL, plain http off loopback, odd tenant).
    #[error("invalid OAuth2 settings: {0}")]
    Config(String),
    /// Entra ID answered with its JSON error (`error`, `error_description`, `error_codes`).
    #[error("{url}: token request refused (HTTP {status}): {aad}")]
    Aad {
        /// The token endpoint asked.
        url: String,
        /// The HTTP status (400 and 401 for the usual mistakes).
        status: u16,
        /// The error as sent.
        aad: Box<AadError>,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The request did not get an answer: DNS, connection refused, TLS, timeout.
    #[error("{url}: {kind}: {detail}")]
    Transport {
        /// The token endpoint asked.
        url: String,
        /// What kind of failure.
        kind: TransportKind,
        /// The whole chain of causes as text.
        detail: String,
        /// The underlying error.
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// An HTTP error answer that is not Entra ID's JSON (proxy page, 5xx, 429).
    #[error("{url}: HTTP {status}{}: {body}", retry_after.map(|d| format!(" (Retry-After {} s)", d.as_secs())).unwrap_or_default())]
    Http {
        /// The token endpoint asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body, as text.
        body: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// A success answer without a usable token (not JSON, no `access_token`, bad lifetime).
    #[error("{url}: unusable token response (HTTP {status}): {reason}")]
    Malformed {
        /// The token endpoint asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        reason: String,
    },
}

impl TokenError {
    /// True when the same request may succeed later: server errors (5xx), throttling (429),
    /// request timeouts (408), `temporarily_unavailable`, connection failures and timeouts.
    /// Entra ID's 4xx errors (wrong secret, tenant, scope) and TLS certificate problems are
    /// permanent: only a change of settings cures them.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Config(_) | Self::Malformed { .. } => false,
            Self::Aad { status, aad, .. } => {
                transient_status(*status) || aad.error == "temporarily_unavailable"
            }
            Self::Http { status, .. } => transient_status(*status),
            Self::Transport { kind, .. } => *kind != TransportKind::Tls,
        }
    }

    /// How long the server asked to wait (`Retry-After` in seconds).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Aad { retry_after, .. } | Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Entra ID's error, when the server sent one.
    pub fn aad(&self) -> Option<&AadError> {
        match self {
            Self::Aad { aad, .. } => Some(aad),
            _ => None,
        }
    }

    /// The error with `f` applied to every text that came from the server (Entra ID's
    /// error and description, an HTTP body, a malformed answer's reason).
    pub(crate) fn map_texts(self, f: impl Fn(&str) -> String) -> Self {
        match self {
            Self::Aad {
                url,
                status,
                mut aad,
                retry_after,
            } => {
                aad.error = f(&aad.error);
                aad.description = f(&aad.description);
                Self::Aad {
                    url,
                    status,
                    aad,
                    retry_after,
                }
            }
            Self::Http {
                url,
                status,
                body,
                retry_after,
            } => Self::Http {
                url,
                status,
                body: f(&body),
                retry_after,
            },
            Self::Malformed {
                url,
                status,
                reason,
            } => Self::Malformed {
                url,
                status,
                reason: f(&reason),
            },
            other => other,
        }
    }

    /// What of this error may be stored (the index's `upload_runs.last_error`): Entra ID's
    /// error code and the first line of its description (no trace or correlation ids), the
    /// HTTP status, the kind of transport failure — never a body or a server's echo, which
    /// could carry something derived from a secret or a token.
    pub fn for_record(&self) -> String {
        match self {
            Self::Config(text) => format!("invalid OAuth2 settings: {text}"),
            Self::Aad {
                url, status, aad, ..
            } => {
                let first = aad.description.lines().next().unwrap_or_default().trim();
                format!(
                    "{url}: token request refused (HTTP {status}): {}: {first}",
                    aad.error
                )
            }
            Self::Transport { url, kind, .. } => format!("{url}: {kind}"),
            Self::Http { url, status, .. } => format!("{url}: HTTP {status}"),
            Self::Malformed { url, status, .. } => {
                format!("{url}: unusable token response (HTTP {status})")
            }
        }
    }

    /// A transport error for `url` out of reqwest's error.
    pub(crate) fn transport(url: &str, e: reqwest::Error) -> Self {
        let kind = TransportKind::of(&e);
        let mut detail = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !detail.contains(&text) {
                detail.push_str(": ");
                detail.push_str(&text);
            }
            cause = c.source();
        }
        Self::Transport {
            url: url.to_string(),
            kind,
            detail,
            source: Arc::new(e),
        }
    }
}

fn transient_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// DNS or TCP connect failed (host unreachable, connection refused).
    Connect,
    /// No answer within the connect or request timeout.
    Timeout,
    /// The TLS handshake failed (e.g. an untrusted certificate): permanent.
    Tls,
    /// Anything else (connection dropped mid-answer, …).
    Other,
}

impl TransportKind {
    fn of(e: &reqwest::Error) -> Self {
        if mentions_rustls(e) {
            Self::Tls
        } else if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect
        } else {
            Self::Other
        }
    }
}

/// Whether a rustls error is among the causes. `io::Error::source()` skips the error it
/// wraps (it returns *that* error's source), and tokio-rustls's errors come as an io::Error
/// inside an io::Error, so those are opened by downcasting.
fn mentions_rustls(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    let inner: Option<&(dyn std::error::Error + 'static)> = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .map(|i| i as _);
    inner.is_some_and(mentions_rustls) || e.source().is_some_and(mentions_rustls)
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "cannot connect",
            Self::Timeout => "timed out",
            Self::Tls => "TLS failed",
            Self::Other => "request failed",
        })
    }
}

/// Entra ID's error answer, fields as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AadError {
    /// OAuth2 error code, e.g. `invalid_client`, `invalid_request`, `invalid_scope`.
    pub error: String,
    /// `error_description`, beginning with the AADSTS code, e.g. `AADSTS7000215: Invalid
    /// client secret provided. …`.
    pub description: String,
    /// `error_codes`, e.g. `[7000215]`.
    pub codes: Vec<u64>,
    /// `trace_id`, to quote to Microsoft support.
    pub trace_id: Option<String>,
    /// `correlation_id`, to quote to Microsoft support.
    pub correlation_id: Option<String>,
    /// `timestamp` as sent.
    pub timestamp: Option<String>,
}

impl AadError {
    /// The AADSTS number: the first of `error_codes`, else the one the description starts with.
    pub fn aadsts(&self) -> Option<u64> {
        if let Some(code) = self.codes.first() {
            return Some(*code);
        }
        let digits: String = self
            .description
            .strip_prefix("AADSTS")?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    /// What to check for the common mistakes.
    pub fn hint(&self) -> Option<&'static str> {
        let hint = match self.aadsts() {
            Some(7000215) => {
                "the client secret is wrong: give the secret's Value (not its Secret ID) \
                 from the app registration's Certificates & secrets"
            }
            Some(7000222) => {
                "the client secret has expired: create a new one in the app registration's \
                 Certificates & secrets"
            }
            Some(90002 | 900023 | 90013) => {
                "the tenant is not found or not valid: give the directory (tenant) id or a \
                 verified domain of the tenant, and the login URL of its cloud"
            }
            Some(700016) => {
                "no application with this client id in the tenant: check the application \
                 (client) id and that the app is registered (or consented) in this tenant"
            }
            Some(500011) => {
                "the resource of the scope is not found in the tenant: check the IMAP host \
                 (scope https://outlook.office365.com/.default) and that Exchange Online is \
                 licensed there"
            }
            Some(1002012 | 70011) => {
                "the scope is not valid: app-only tokens need https://IMAP_HOST/.default"
            }
            Some(50126 | 50034) => {
                "user credentials were refused: app-only access uses the client credentials \
                 grant, not a user's password"
            }
            Some(7000218 | 7000216) => "the request carried no client secret",
            Some(50079 | 50076) => {
                "multi-factor authentication is required: use an app registration with \
                 client credentials (app-only), which MFA does not apply to"
            }
            _ if self.error == "invalid_scope" => {
                "the scope is not valid for this tenant: check the IMAP host \
                 (https://IMAP_HOST/.default)"
            }
            _ if self.error == "unauthorized_client" => {
                "the app is not allowed the client credentials grant in this tenant"
            }
            _ => return None,
        };
        Some(hint)
    }
}

impl fmt::Display for AadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The description as sent, its line breaks (before "Trace ID: …") made spaces.
        let description = self.description.trim_end().replace("\r\n", " ");
        write!(f, "{}: {}", self.error, description.replace('\n', " "))?;
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(description: &str, codes: &[u64]) -> AadError {
        AadError {
            error: "invalid_client".into(),
            description: description.into(),
            codes: codes.to_vec(),
            ..AadError::default()
        }
    }

    #[test]
    fn the_aadsts_number_comes_from_the_codes_or_the_description() {
        assert_eq!(aad("whatever", &[7000215]).aadsts(), Some(7000215));
        assert_eq!(
            aad("AADSTS90002: Tenant 'x' not found.", &[]).aadsts(),
            Some(90002)
        );
        assert_eq!(aad("no code here", &[]).aadsts(), None);
    }

    #[test]
    fn common_codes_have_hints_and_the_display_keeps_the_text_verbatim() {
        for code in [7000215, 7000222, 90002, 900023, 700016, 500011, 50126] {
            let e = aad(&format!("AADSTS{code}: text."), &[code]);
            assert!(e.hint().is_some(), "{code}");
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("invalid_client: AADSTS{code}: text.")));
            assert!(shown.contains("hint: "), "{shown}");
        }
        assert!(aad("AADSTS1: odd", &[1]).hint().is_none());
        let scope = AadError {
            error: "invalid_scope".into(),
            ..AadError::default()
        };
        assert!(scope.hint().unwrap().contains("IMAP host"));
    }

    #[test]
    fn what_is_recorded_keeps_the_code_and_drops_bodies_and_ids() {
        let e = TokenError::Aad {
            url: "u".into(),
            status: 401,
            aad: Box::new(aad(
                "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2",
                &[7000215],
            )),
            retry_after: None,
        };
        assert_eq!(
            e.for_record(),
            "u: token request refused (HTTP 401): invalid_client: AADSTS7000215: Invalid client secret provided."
        );
        let e = TokenError::Http {
            url: "u".into(),
            status: 502,
            body: "echo client_secret=x".into(),
            retry_after: None,
        };
        assert_eq!(e.for_record(), "u: HTTP 502");
        let e = TokenError::Malformed {
            url: "u".into(),
            status: 200,
            reason: "not JSON: access_token=eyJ".into(),
        };
        assert!(!e.for_record().contains("eyJ"));
    }

    #[test]
    fn transient_and_permanent() {
        let err = |status: u16, error: &str| TokenError::Aad {
            url: "u".into(),
            status,
            aad: Box::new(AadError {
                error: error.into(),
                ..AadError::default()
            }),
            retry_after: None,
        };
        assert!(!err(401, "invalid_client").is_transient());
        assert!(!err(400, "invalid_request").is_transient());
        assert!(err(400, "temporarily_unavailable").is_transient());
        assert!(err(503, "server_error").is_transient());
        let http = |status: u16| TokenError::Http {
            url: "u".into(),
            status,
            body: String::new(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(http(500).is_transient() && http(429).is_transient() && http(408).is_transient());
        assert!(!http(404).is_transient());
        assert_eq!(http(429).retry_after(), Some(Duration::from_secs(3)));
        assert!(http(429).to_string().contains("Retry-After 3 s"));
    }
}
