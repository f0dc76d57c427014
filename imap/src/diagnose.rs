//! The checks behind `test-server` (Microsoft's Test-MigrationServerAvailability): each step
//! of reaching an IMAP server and logging in, timed, and a diagnosis an admin can act on
//! when a step fails.

use std::time::Instant;

use serde::Serialize;

use super::error::ImapError;
use super::framing::FramingError;
use super::session::SessionConfig;
use super::tls::{CertificateRefusal, Fingerprint, is_self_signed};
use super::transport::{ConnectOptions, TlsInfo, connect_addrs, resolve, secure};

/// What kind of failure, for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The name does not resolve.
    Dns,
    /// Nothing listens on the port.
    Refused,
    /// No answer in time.
    Timeout,
    /// Another network error (unreachable, reset).
    Network,
    /// TLS could not be set up (untrusted or mismatched certificate, no STARTTLS, …).
    Tls,
    /// The server said something that is not IMAP as expected.
    Protocol,
    /// The user's own password was refused.
    BadCredentials,
    /// The admin (master) credentials were refused.
    AdminRefused,
    /// The admin logged in but may not open this user's mailbox.
    NotAuthorized,
    /// The login method is not available on this server.
    Unsupported,
    /// The server refused for now, not for good (a throttle, `[UNAVAILABLE]`, Exchange's
    /// "Server Unavailable" or "User is authenticated but not connected").
    Unavailable,
    /// The login worked but sees no folder to read (an admin login into a user that does
    /// not exist, a root that matches nothing).
    NoFolders,
}

/// A failed step: what happened, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The kind, for scripts.
    pub kind: FailureKind,
    /// What happened, with the server's or the system's own words.
    pub message: String,
    /// What to check or change.
    pub hint: String,
}

/// The server's certificate and the negotiated TLS parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsReport {
    /// Protocol version.
    pub version: String,
    /// Cipher suite.
    pub cipher: String,
    /// The certificate's subject.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// The end of its validity (RFC 3339).
    pub not_after: String,
    /// Days until then (negative once expired).
    pub days_left: i64,
    /// The SHA-256 fingerprint of the server's certificate (what `--tls-fingerprint` pins).
    pub fingerprint: Option<Fingerprint>,
    /// Its issuer is its subject.
    pub self_signed: bool,
    /// False when it was not checked at all (`--insecure`).
    pub checked: bool,
}

/// Everything `test-server` learned about the server itself.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerReport {
    /// The server as given.
    pub server: String,
    /// The port.
    pub port: u16,
    /// `none`, `ssl` or `tls`.
    pub security: String,
    /// What the name resolved to.
    pub addresses: Vec<String>,
    /// Resolution time.
    pub dns_ms: Option<f64>,
    /// The address the TCP connection went to.
    pub connected_to: Option<String>,
    /// TCP connect time.
    pub connect_ms: Option<f64>,
    /// TLS details, when TLS is used and succeeded.
    pub tls: Option<TlsReport>,
    /// Time from TCP connected to a usable session (TLS, STARTTLS, greeting).
    pub session_ms: Option<f64>,
    /// The greeting line's text.
    pub greeting: Option<String>,
    /// Capabilities before login.
    pub capabilities: Vec<String>,
    /// The server's identification (RFC 2971 ID), when it offers it.
    pub server_id: Vec<(String, String)>,
    /// Median NOOP round trip.
    pub round_trip_ms: Option<f64>,
    /// The step that failed, if one did.
    pub failure: Option<Failure>,
}

/// Milliseconds since `t`.
pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Checks DNS, TCP, TLS, greeting, capabilities and round trip, stopping at the first failure.
pub async fn check_server(opts: &ConnectOptions) -> ServerReport {
    checked(opts, true).await
}

/// Checks only that the server can be reached: DNS, TCP, TLS and an IMAP greeting (no
/// capabilities, ID or round-trip samples), the fail-fast check before a pass, which then
/// costs one round trip instead of half a dozen.
pub async fn check_server_reachable(opts: &ConnectOptions) -> ServerReport {
    checked(opts, false).await
}

async fn checked(opts: &ConnectOptions, full: bool) -> ServerReport {
    let mut report = ServerReport {
        server: opts.host.clone(),
        port: opts.port,
        security: opts.security.to_string(),
        ..ServerReport::default()
    };
    if let Err(failure) = run_server_checks(opts, &mut report, full).await {
        report.failure = Some(failure);
    }
    report
}

async fn run_server_checks(
    opts: &ConnectOptions,
    r: &mut ServerReport,
    full: bool,
) -> Result<(), Failure> {
    let t = Instant::now();
    let resolved = tokio::time::timeout(opts.connect_timeout, resolve(opts))
        .await
        .map_err(|_| connect_failure(&ImapError::Timeout(opts.connect_timeout), opts))?;
    let addrs = resolved.map_err(|e| Failure {
        kind: FailureKind::Dns,
        message: format!("cannot resolve {}: {e}", opts.host),
        hint: "check the server's name (an FQDN such as imap.contoso.edu) and this machine's DNS"
            .into(),
    })?;
    r.dns_ms = Some(ms_since(t));
    r.addresses = addrs.iter().map(|a| a.ip().to_string()).collect();

    let t = Instant::now();
    let tcp = connect_addrs(&addrs, opts)
        .await
        .map_err(|e| connect_failure(&e, opts))?;
    r.connect_ms = Some(ms_since(t));
    r.connected_to = tcp.peer_addr().ok().map(|a| a.to_string());

    let t = Instant::now();
    let mut session = secure(opts, tcp, SessionConfig::default())
        .await
        .map_err(|e| connect_failure(&e, opts))?;
    r.session_ms = Some(ms_since(t));
    r.greeting = Some(session.greeting().to_string());
    r.tls = session
        .stream()
        .tls_info()
        .map(|info| tls_report(&info, !opts.tls.insecure));
    if !full {
        let _ = session.send_logout().await;
        return Ok(());
    }
    if session.capabilities().is_empty() {
        session
            .capability()
            .await
            .map_err(|e| connect_failure(&e, opts))?;
    }
    r.capabilities = session.capabilities().to_vec();
    if session.has_capability("ID") {
        let ours = [
            ("name", "mailstage"),
            ("version", env!("CARGO_PKG_VERSION")),
        ];
        r.server_id = session
            .id(&ours)
            .await
            .map_err(|e| connect_failure(&e, opts))?;
    }

    let mut samples = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let noop = session.command("NOOP").build();
        session
            .execute(noop)
            .await
            .map_err(|e| connect_failure(&e, opts))?;
        samples.push(ms_since(t));
    }
    samples.sort_by(f64::total_cmp);
    r.round_trip_ms = Some(samples[1]);
    let _ = session.logout().await;
    Ok(())
}

/// Diagnoses an error from reaching the server (before any login).
pub fn connect_failure(e: &ImapError, opts: &ConnectOptions) -> Failure {
    classified(e, &format!("{}:{}", opts.host, opts.port))
}

/// A failure of the connection itself, its message prefixed with `subject`.
pub fn classified(e: &ImapError, subject: &str) -> Failure {
    let io = match e {
        ImapError::Io(io) | ImapError::Framing(FramingError::Io(io)) => Some(io),
        _ => None,
    };
    let check_security =
        "check --security (ssl for implicit TLS, usually port 993; tls for STARTTLS, usually 143)";
    if let ImapError::Certificate {
        reason, refusal, ..
    } = e
    {
        return Failure {
            kind: FailureKind::Tls,
            message: format!("{subject}: {e}"),
            hint: certificate_hint(reason, refusal.as_deref()),
        };
    }
    let (kind, hint) = match (e, io.map(std::io::Error::kind)) {
        (_, Some(std::io::ErrorKind::ConnectionRefused)) => (
            FailureKind::Refused,
            "nothing accepts connections on that port: check the port and that IMAP is enabled on the server",
        ),
        (ImapError::Timeout(_), _) => (
            FailureKind::Timeout,
            "no answer: check firewalls between this machine and the server, and the port",
        ),
        (ImapError::Tls(_) | ImapError::Unsupported(_), _) => (FailureKind::Tls, check_security),
        (_, Some(_)) => (FailureKind::Network, "check the network path to the server"),
        _ => (
            FailureKind::Protocol,
            "the server did not answer as an IMAP server does: check the port and --security",
        ),
    };
    let message = format!("{subject}: {e}");
    Failure {
        kind,
        message,
        hint: hint.into(),
    }
}

/// What to do about a refused certificate: for a self-signed one, pinning it (by its
/// fingerprint, which the message names) rather than turning checks off.
fn certificate_hint(
    reason: &rustls::CertificateError,
    refusal: Option<&CertificateRefusal>,
) -> String {
    use rustls::CertificateError as C;
    if let Some(r) = refusal {
        if r.cause.is_none() {
            return format!(
                "the server's certificate is not the pinned one: if it was replaced on purpose, \
                 check the new one on the server (openssl x509 -noout -fingerprint -sha256 -in \
                 cert.pem) and pin it with --tls-fingerprint {}",
                r.presented
            );
        }
        if r.self_signed {
            return format!(
                "the server's certificate is self-signed: if {} is the certificate the server \
                 has (openssl x509 -noout -fingerprint -sha256 -in cert.pem on the server), pin \
                 it with --tls-fingerprint {} or give the certificate itself with --ca-file; \
                 --insecure would accept any certificate, an attacker's too",
                r.presented, r.presented
            );
        }
    }
    match reason {
        C::UnknownIssuer => {
            "the certificate is signed by a CA this machine does not trust: give its CA with --ca-file, or pin the server's certificate with --tls-fingerprint (--insecure only for a lab server)"
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the certificate does not name this server: connect with the name it was issued for, or pin it with --tls-fingerprint"
        }
        C::Expired | C::ExpiredContext { .. } => {
            "the server's certificate has expired: renew it (or pin it with --tls-fingerprint)"
        }
        C::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            "the server presents a CA certificate (self-signed with CA:TRUE?) as its own: pin it with --tls-fingerprint, or give that very certificate with --ca-file"
        }
        _ => {
            "the certificate was refused: check it with openssl s_client, give its CA with --ca-file or pin it with --tls-fingerprint"
        }
    }
    .into()
}

fn tls_report(info: &TlsInfo, checked: bool) -> TlsReport {
    let leaf = info.chain.first();
    let mut report = TlsReport {
        version: info.version.clone(),
        cipher: info.cipher.clone(),
        subject: String::new(),
        issuer: String::new(),
        not_after: String::new(),
        days_left: 0,
        fingerprint: leaf.map(|der| Fingerprint::of(der)),
        self_signed: leaf.is_some_and(|der| is_self_signed(der)),
        checked,
    };
    if let Some(Ok((_, cert))) = info
        .chain
        .first()
        .map(|der| x509_parser::parse_x509_certificate(der))
    {
        report.subject = cert.subject().to_string();
        report.issuer = cert.issuer().to_string();
        let not_after = cert.validity().not_after;
        report.not_after = super::datetime::rfc3339_utc(not_after.timestamp());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        report.days_left = (not_after.timestamp() - now).div_euclid(86_400);
    }
    report
}
