//! What a token source needs to know: where to ask (login base URL, tenant), as whom (client
//! id and secret), for what (scope), and how patiently (timeouts, retries).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;

use super::error::TokenError;

/// Microsoft Entra ID's login endpoint for the global cloud.
pub const DEFAULT_LOGIN_BASE: &str = "https://login.microsoftonline.com";
/// Exchange Online's IMAP host, whose `/.default` scope app-only IMAP tokens are issued for.
pub const DEFAULT_IMAP_HOST: &str = "outlook.office365.com";

/// The scope of an app-only token for IMAP on `imap_host`: `https://{imap_host}/.default`.
pub fn scope_for(imap_host: &str) -> String {
    format!("https://{imap_host}/.default")
}

/// How often and how long a token request is retried after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRetry {
    /// Requests in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled after each one.
    pub initial_backoff: Duration,
    /// Longest wait between two requests. A `Retry-After` longer than this is not waited
    /// for: the error is returned (still transient, with its `retry_after`).
    pub max_backoff: Duration,
}

impl Default for TokenRetry {
    /// 4 attempts, 500 ms doubling, at most 30 s between two of them.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Settings of an OAuth2 client-credentials token source. `Debug` shows the secret as
/// `[REDACTED]` (it is a [`SecretString`]); nothing here logs it.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// Login base URL, e.g. [`DEFAULT_LOGIN_BASE`], a national cloud's, or an emulator's.
    /// `https`, or `http` to a loopback address only.
    pub login_base: String,
    /// Directory (tenant) id or a verified domain, e.g. `contoso.onmicrosoft.com`.
    pub tenant: String,
    /// Application (client) id of the app registration.
    pub client_id: String,
    /// Client secret *value*, read at run time and never stored or printed.
    pub client_secret: SecretString,
    /// Requested scope, normally [`scope_for`] the IMAP host.
    pub scope: String,
    /// Extra trusted CA certificates (PEM) for the login host, e.g. a TLS-inspecting proxy's.
    pub ca_file: Option<PathBuf>,
    /// Limit for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Limit for one whole request, answer included.
    pub request_timeout: Duration,
    /// Retries after transient failures.
    pub retry: TokenRetry,
}

impl OAuthConfig {
    /// Settings for the global cloud with the scope of `imap_host`, 10 s connect and 30 s
    /// request timeouts and the default [`TokenRetry`].
    pub fn new(
        tenant: &str,
        client_id: &str,
        client_secret: SecretString,
        imap_host: &str,
    ) -> Self {
        Self {
            login_base: DEFAULT_LOGIN_BASE.to_string(),
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            scope: scope_for(imap_host),
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            retry: TokenRetry::default(),
        }
    }

    /// The same settings with another login base URL (national cloud, emulator).
    pub fn with_login_base(mut self, login_base: &str) -> Self {
        self.login_base = login_base.to_string();
        self
    }

    /// `{login_base}/{tenant}/oauth2/v2.0/token`, after checking the base URL and tenant.
    pub fn token_url(&self) -> Result<Url, TokenError> {
        let bad = |why: String| TokenError::Config(why);
        let mut url = Url::parse(&self.login_base)
            .map_err(|e| bad(format!("login URL {:?}: {e}", self.login_base)))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(bad(format!(
                    "login URL {}: plain http is allowed to a loopback address only",
                    self.login_base
                )));
            }
            other => {
                return Err(bad(format!(
                    "login URL {}: scheme {other}",
                    self.login_base
                )));
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(format!(
                "login URL {}: no query or fragment expected",
                self.login_base
            )));
        }
        let tenant_ok = !self.tenant.is_empty()
            && self
                .tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !tenant_ok {
            return Err(bad(format!(
                "tenant {:?}: expected a directory id (GUID) or a domain name",
                self.tenant
            )));
        }
        if self.client_id.is_empty() {
            return Err(bad("empty client id".into()));
        }
        url.path_segments_mut()
            .map_err(|()| bad(format!("login URL {}: not a base URL", self.login_base)))?
            .pop_if_empty()
            .extend([self.tenant.as_str(), "oauth2", "v2.0", "token"]);
        Ok(url)
    }
}

/// True when the URL's host is 127.0.0.0/8, ::1 or `localhost`.
fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

/// True for `localhost`, 127.0.0.0/8 and ::1 (brackets allowed).
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: &str, tenant: &str) -> OAuthConfig {
        OAuthConfig::new(tenant, "app", SecretString::from("s3cr3t"), "imap.example")
            .with_login_base(base)
    }

    #[test]
    fn token_url_joins_base_and_tenant() {
        let url = config(DEFAULT_LOGIN_BASE, "contoso.onmicrosoft.com")
            .token_url()
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let url = config("http://127.0.0.1:8080/prefix/", "t")
            .token_url()
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/prefix/t/oauth2/v2.0/token"
        );
        assert!(config("http://localhost:1", "t").token_url().is_ok());
        assert!(config("http://[::1]:1", "t").token_url().is_ok());
    }

    #[test]
    fn token_url_refuses_plain_http_off_loopback_and_odd_tenants() {
        for (base, tenant) in [
            ("http://login.example", "t"),
            ("ftp://127.0.0.1", "t"),
            ("not a url", "t"),
            ("https://login.example/?x=1", "t"),
            (DEFAULT_LOGIN_BASE, ""),
            (DEFAULT_LOGIN_BASE, "../common"),
            (DEFAULT_LOGIN_BASE, "a/b"),
        ] {
            let err = config(base, tenant).token_url().unwrap_err();
            assert!(
                matches!(err, TokenError::Config(_)),
                "{base} {tenant}: {err}"
            );
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn scope_is_the_imap_hosts_default_scope() {
        let c = config(DEFAULT_LOGIN_BASE, "t");
        assert_eq!(c.scope, "https://imap.example/.default");
        assert_eq!(
            scope_for(DEFAULT_IMAP_HOST),
            "https://outlook.office365.com/.default"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", config(DEFAULT_LOGIN_BASE, "t"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}
