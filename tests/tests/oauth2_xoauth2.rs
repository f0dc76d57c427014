//! App-only OAuth2 end to end: `mailstage::oauth2` against the token endpoint emulator, and
//! its tokens in `AUTHENTICATE XOAUTH2` against a Dovecot that checks them with the emulator
//! (DESIGN §6): one token for every mailbox, expired tokens refused and replaced, Entra ID's
//! errors named with their hints, transport errors naming the URL, one request for many
//! callers, transient faults retried.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use mailstage::catalog::Security;
use mailstage::imap::transport::{self, ConnectOptions};
use mailstage::imap::{ImapError, SessionConfig};
use mailstage::oauth2::{
    AccessToken, OAuthConfig, TokenClient, TokenError, TokenRetry, TokenSource, TransportKind,
};
use mailstage_tests::token_endpoint::{CLIENT_ID, CLIENT_SECRET, TENANT};
use mailstage_tests::{Dovecot, Fault, TokenEndpoint};
use secrecy::{ExposeSecret, SecretString};

/// Settings for the emulator's tenant and app, retrying quickly.
fn config(endpoint: &TokenEndpoint) -> OAuthConfig {
    config_at(&endpoint.login_base())
}

/// Settings for the emulator's tenant and app at login base URL `base`.
fn config_at(base: &str) -> OAuthConfig {
    let mut c = OAuthConfig::new(
        TENANT,
        CLIENT_ID,
        SecretString::from(CLIENT_SECRET),
        "outlook.office365.com",
    )
    .with_login_base(base);
    c.retry = TokenRetry {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(5),
    };
    c
}

/// `AUTHENTICATE XOAUTH2` as `user` with `token` on a new connection to `dovecot`.
async fn xoauth2(dovecot: &Dovecot, user: &str, token: &AccessToken) -> Result<(), ImapError> {
    let opts = ConnectOptions::new("127.0.0.1", dovecot.port(), Security::None);
    let mut session = transport::connect(&opts, SessionConfig::default()).await?;
    session.authenticate_xoauth2(user, token.secret()).await?;
    // Logged in as that mailbox: its INBOX opens.
    session.examine(b"INBOX", false).await?;
    Ok(())
}

fn refused(result: Result<(), ImapError>) -> Result<()> {
    let err = result.err().context("a refused token logged in")?;
    ensure!(
        err.code_name().as_deref() == Some("AUTHENTICATIONFAILED"),
        "expected AUTHENTICATIONFAILED, got {err}"
    );
    Ok(())
}

#[tokio::test]
async fn one_app_token_logs_in_as_every_mailbox_and_expired_ones_are_replaced() -> Result<()> {
    let endpoint = TokenEndpoint::builder()
        .lifetime(Duration::from_secs(2))
        .start()?;
    let dovecot = Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .xoauth2_introspection(&endpoint.introspection_url())
        .start()?;
    let tokens = TokenSource::new(&config(&endpoint))?;
    let issued = Instant::now();
    let t1 = tokens.token().await?;
    assert_eq!(t1.lifetime(), Duration::from_secs(2));
    for user in ["alice", "bob"] {
        xoauth2(&dovecot, user, &t1)
            .await
            .with_context(|| format!("XOAUTH2 as {user}:\n{}", dovecot.log()))?;
    }
    assert_eq!(endpoint.introspected_users(), ["alice", "bob"]);
    // Passwords still work; a token the endpoint never issued does not.
    dovecot.login("alice")?.logout()?;
    let bogus = AccessToken::new(
        SecretString::from("bogus"),
        "Bearer",
        Duration::from_secs(9),
    );
    refused(xoauth2(&dovecot, "alice", &bogus).await)?;

    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(issued.elapsed())).await;
    assert!(!endpoint.is_live(t1.secret().expose_secret()));
    refused(xoauth2(&dovecot, "alice", &t1).await)?;
    tokens.invalidate(&t1).await;
    let t2 = tokens.token().await?;
    assert_ne!(t1, t2);
    xoauth2(&dovecot, "bob", &t2).await?;
    assert_eq!(endpoint.counters().tokens_issued, 2);
    assert_eq!(endpoint.counters().introspections_refused, 2);
    Ok(())
}

/// The error of one `token()` with `config`, after checking it is permanent and was asked once.
async fn refusal(endpoint: &TokenEndpoint, config: OAuthConfig) -> Result<TokenError> {
    let tokens = TokenSource::new(&config)?;
    let err = tokens.token().await.err().context("a token was issued")?;
    ensure!(!err.is_transient(), "{err} should be permanent");
    ensure!(tokens.requests() == 1, "retried a permanent error");
    ensure!(endpoint.counters().refused == 1);
    Ok(err)
}

#[tokio::test]
async fn a_wrong_client_secret_is_aadsts7000215_with_its_hint() -> Result<()> {
    let endpoint = TokenEndpoint::builder().start()?;
    let mut c = config(&endpoint);
    c.client_secret = SecretString::from("not-the-secret-value");
    let err = refusal(&endpoint, c).await?;
    let shown = err.to_string();
    assert_eq!(err.aad().and_then(|a| a.aadsts()), Some(7000215), "{shown}");
    assert!(shown.contains("HTTP 401"), "{shown}");
    assert!(
        shown.contains("invalid_client: AADSTS7000215: Invalid client secret provided."),
        "{shown}"
    );
    assert!(
        shown.contains("hint: the client secret is wrong"),
        "{shown}"
    );
    assert!(err.aad().unwrap().trace_id.is_some());
    assert!(
        !shown.contains("not-the-secret-value")
            && !format!("{err:?}").contains("not-the-secret-value")
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_tenant_or_app_or_scope_is_named() -> Result<()> {
    for (change, code, hint) in [
        ("tenant", 90002, "tenant is not found"),
        ("client", 700016, "no application with this client id"),
        ("scope", 500011, "check the IMAP host"),
    ] {
        let endpoint = TokenEndpoint::builder().start()?;
        let mut c = config(&endpoint);
        match change {
            "tenant" => c.tenant = "fabrikam.onmicrosoft.com".into(),
            "client" => c.client_id = "11111111-2222-3333-4444-555555555555".into(),
            _ => c.scope = "https://imap.example/.default".into(),
        }
        let err = refusal(&endpoint, c).await?;
        let shown = err.to_string();
        assert_eq!(err.aad().and_then(|a| a.aadsts()), Some(code), "{shown}");
        assert!(shown.contains(&format!("AADSTS{code}: ")), "{shown}");
        assert!(shown.contains(hint), "{shown}");
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_login_host_is_a_transport_error_naming_the_url() -> Result<()> {
    let endpoint = TokenEndpoint::builder().start()?;
    let base = endpoint.login_base();
    drop(endpoint);
    let mut c = config_at(&base);
    c.retry.max_attempts = 2;
    let tokens = TokenSource::new(&c)?;
    let err = tokens.token().await.err().context("a token from nowhere")?;
    let shown = err.to_string();
    assert!(
        matches!(
            err,
            TokenError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{shown}"
    );
    assert!(
        shown.starts_with(&format!(
            "{base}/{TENANT}/oauth2/v2.0/token: cannot connect"
        )),
        "{shown}"
    );
    assert!(err.is_transient());
    assert_eq!(tokens.requests(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_callers_cause_one_request() -> Result<()> {
    let endpoint = TokenEndpoint::builder().start()?;
    let tokens = TokenSource::new(&config(&endpoint))?;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.token().await })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await??);
    }
    assert!(all.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(endpoint.counters().token_requests, 1);
    assert_eq!(endpoint.counters().tokens_issued, 1);
    Ok(())
}

#[tokio::test]
async fn server_errors_and_throttling_are_transient_and_retried() -> Result<()> {
    let endpoint = TokenEndpoint::builder().start()?;
    let c = config(&endpoint);
    // One request alone: the 500 is a transient HTTP error.
    endpoint.fail_next(1, Fault::ServerError);
    let err = TokenClient::new(&c)?
        .fetch()
        .await
        .err()
        .context("no 500")?;
    assert!(matches!(err, TokenError::Http { status: 500, .. }), "{err}");
    assert!(err.is_transient());
    // The source retries: 500, then 429 with Retry-After: 1, then a token.
    endpoint.fail_next(1, Fault::ServerError);
    endpoint.fail_next(1, Fault::Throttle { retry_after: 1 });
    let tokens = TokenSource::new(&c)?;
    let start = Instant::now();
    tokens.token().await?;
    assert!(
        start.elapsed() >= Duration::from_millis(1100),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(tokens.requests(), 3);
    let counters = endpoint.counters();
    assert_eq!(
        (
            counters.token_requests,
            counters.faults,
            counters.tokens_issued
        ),
        (4, 3, 1)
    );
    Ok(())
}

#[tokio::test]
async fn a_hanging_endpoint_times_out() -> Result<()> {
    let endpoint = TokenEndpoint::builder().start()?;
    endpoint.fail_next(1, Fault::Hang);
    let mut c = config(&endpoint);
    c.request_timeout = Duration::from_millis(300);
    let err = TokenClient::new(&c)?
        .fetch()
        .await
        .err()
        .context("an answer")?;
    assert!(
        matches!(
            err,
            TokenError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(err.to_string().contains(&endpoint.login_base()), "{err}");
    // The next request is answered.
    TokenClient::new(&c)?.fetch().await?;
    Ok(())
}

#[tokio::test]
async fn https_uses_rustls_and_an_untrusted_certificate_is_a_permanent_tls_error() -> Result<()> {
    // Dovecot's implicit-TLS port stands in for a TLS login host: the handshake is real, the
    // HTTP after it is not.
    let dovecot = Dovecot::builder().tls(true).start()?;
    let base = format!(
        "https://127.0.0.1:{}",
        dovecot.tls_port().context("no TLS port")?
    );
    let mut c = config_at(&base);
    c.retry.max_attempts = 1;
    let err = TokenClient::new(&c)?
        .fetch()
        .await
        .err()
        .context("HTTP from IMAP")?;
    let shown = err.to_string();
    assert!(
        matches!(
            err,
            TokenError::Transport {
                kind: TransportKind::Tls,
                ..
            }
        ),
        "{shown}"
    );
    assert!(
        shown.starts_with(&format!("{base}/{TENANT}/oauth2/v2.0/token: TLS failed")),
        "{shown}"
    );
    assert!(!err.is_transient());
    // Trusting the CA, the handshake succeeds and the IMAP greeting is no HTTP answer.
    c.ca_file = dovecot.ca_pem_path().map(Into::into);
    let err = TokenClient::new(&c)?
        .fetch()
        .await
        .err()
        .context("HTTP from IMAP")?;
    assert!(
        matches!(
            err,
            TokenError::Transport {
                kind: TransportKind::Other,
                ..
            }
        ),
        "{err}"
    );
    Ok(())
}
