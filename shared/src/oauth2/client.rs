//! One token request: `POST {login}/{tenant}/oauth2/v2.0/token` with the client-credentials
//! form, over reqwest with rustls and the ring provider, and the reading of its answer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, RETRY_AFTER};
use reqwest::{Client, Response, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::config::OAuthConfig;
use super::error::{AadError, TokenError};
use super::scrub::Scrubber;
use crate::imap::TlsConfig;

/// Largest answer read from the token endpoint; Entra ID's are a few KiB.
const MAX_BODY: usize = 256 * 1024;
/// How much of a non-JSON error body is kept in the error.
const BODY_EXCERPT: usize = 300;

/// A bearer token. `Debug` never shows it; compare two with `==`.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    token_type: String,
    lifetime: Duration,
}

impl AccessToken {
    /// A token as issued: its value, type (`Bearer`) and lifetime (`expires_in`).
    pub fn new(secret: SecretString, token_type: &str, lifetime: Duration) -> Self {
        Self {
            secret,
            token_type: token_type.to_string(),
            lifetime,
        }
    }

    /// The token itself, for `AUTHENTICATE XOAUTH2` or an `Authorization` header.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// `token_type` as sent (`Bearer`).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The lifetime the server gave (`expires_in`), counted from the request.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.secret.expose_secret() == other.secret.expose_secret()
    }
}

impl Eq for AccessToken {}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Asks one token endpoint for client-credentials tokens; one request per [`fetch`], no
/// retries and no caching (see [`super::TokenSource`] for those).
///
/// [`fetch`]: TokenClient::fetch
#[derive(Clone)]
pub struct TokenClient {
    http: Client,
    url: Url,
    client_id: String,
    client_secret: SecretString,
    scope: String,
}

impl fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("url", &self.url.as_str())
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenClient {
    /// Checks the settings and builds the HTTP client (rustls with ring, the system's CAs
    /// plus `ca_file`, no proxy from the environment, no redirects).
    pub fn new(config: &OAuthConfig) -> Result<Self, TokenError> {
        let url = config.token_url()?;
        let trust = TlsConfig {
            ca_file: config.ca_file.clone(),
            ..TlsConfig::default()
        };
        let mut tls = Arc::unwrap_or_clone(
            trust
                .client_config(url.host_str().unwrap_or_default())
                .map_err(|e| TokenError::Config(e.to_string()))?,
        );
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("mailstage/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TokenError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            url,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            scope: config.scope.clone(),
        })
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> &str {
        self.url.as_str()
    }

    /// One token request and its answer.
    pub async fn fetch(&self) -> Result<AccessToken, TokenError> {
        let url = self.url.as_str();
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("scope", self.scope.as_str()),
            ("grant_type", "client_credentials"),
        ];
        tracing::debug!(%url, client_id = %self.client_id, scope = %self.scope, "token request");
        let response = self
            .http
            .post(self.url.clone())
            .header(ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenError::transport(url, e))?;
        let status = response.status();
        let retry_after = retry_after(&response);
        let body = zeroize::Zeroizing::new(
            read_body(response)
                .await
                .map_err(|e| TokenError::transport(url, e))?,
        );
        let scrubber = Scrubber::new(self.client_secret.expose_secret());
        read_answer(&scrubber, url, status, retry_after, &body)
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Entra ID).
fn retry_after(response: &Response) -> Option<Duration> {
    let text = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse().ok().map(Duration::from_secs)
}

/// The body, at most [`MAX_BODY`] bytes of it.
async fn read_body(mut response: Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY {
            break;
        }
    }
    Ok(body)
}

/// Reads an answer with the client secret kept out of any error: removed from the body in
/// every encoding before it is parsed, and from the parsed error's texts after (JSON escapes
/// decode into forms the body did not show).
pub(crate) fn read_answer(
    scrubber: &Scrubber,
    url: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<AccessToken, TokenError> {
    let text = zeroize::Zeroizing::new(scrubber.scrub(&String::from_utf8_lossy(body)));
    parse_answer(url, status, retry_after, &text).map_err(|e| e.map_texts(|t| scrubber.scrub(t)))
}

/// Reads the token endpoint's answer: a token on 2xx, else Entra ID's error or the HTTP one.
pub(crate) fn parse_answer(
    url: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &str,
) -> Result<AccessToken, TokenError> {
    let json = serde_json::from_str::<Value>(body).ok();
    let malformed = |reason: String| TokenError::Malformed {
        url: url.to_string(),
        status: status.as_u16(),
        reason,
    };
    if !status.is_success() {
        if let Some(aad) = json.as_ref().and_then(aad_error) {
            return Err(TokenError::Aad {
                url: url.to_string(),
                status: status.as_u16(),
                aad: Box::new(aad),
                retry_after,
            });
        }
        return Err(TokenError::Http {
            url: url.to_string(),
            status: status.as_u16(),
            body: excerpt(body),
            retry_after,
        });
    }
    let Some(json) = json else {
        return Err(malformed(format!("not JSON: {}", excerpt(body))));
    };
    let token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no access_token".into()))?;
    let token_type = json
        .get("token_type")
        .and_then(Value::as_str)
        .unwrap_or("Bearer");
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(malformed(format!("token_type {token_type:?}, not Bearer")));
    }
    let lifetime = json
        .get("expires_in")
        .and_then(seconds)
        .filter(|s| *s > 0)
        .ok_or_else(|| malformed("no positive expires_in".into()))?;
    Ok(AccessToken::new(
        SecretString::from(token),
        token_type,
        Duration::from_secs(lifetime),
    ))
}

/// A number of seconds sent as a JSON number or a string of digits (the v1 endpoint's way).
fn seconds(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Entra ID's error object, when the JSON has an `error` string.
fn aad_error(json: &Value) -> Option<AadError> {
    let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_string);
    Some(AadError {
        error: text("error")?,
        description: text("error_description").unwrap_or_default(),
        codes: json
            .get("error_codes")
            .and_then(Value::as_array)
            .map(|codes| codes.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default(),
        trace_id: text("trace_id"),
        correlation_id: text("correlation_id"),
        timestamp: text("timestamp"),
    })
}

/// The first [`BODY_EXCERPT`] characters of a body, on one line.
fn excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .take(BODY_EXCERPT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.chars().count() > BODY_EXCERPT {
        format!("{}…", one_line.trim_end())
    } else {
        one_line.trim_end().to_string()
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
