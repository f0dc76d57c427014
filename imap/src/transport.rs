//! Connections: plain TCP (`none`), implicit TLS (`ssl`) and STARTTLS (`tls`), with a
//! connect timeout and TCP keepalive. TLS is rustls with the ring provider, trusting the
//! system's certificates plus an optional extra CA file and pinned certificates (see
//! [`crate::tls`]); certificate checks are off only when explicitly asked (`insecure`), and
//! that is logged loudly.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::ImapError;
use crate::idle::tcp_send_queue;
use crate::security::Security;
use crate::session::{Session, SessionConfig};
use crate::tls::{CertificateRefusal, TlsConfig};

/// Where to connect and how.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name (also the TLS server name) or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// none, ssl or STARTTLS.
    pub security: Security,
    /// Which server certificates to trust.
    pub tls: TlsConfig,
    /// Limit for TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// TCP keepalive idle time; `None` leaves the system default.
    pub keepalive: Option<Duration>,
}

impl ConnectOptions {
    /// Options with a 30 s connect timeout and 60 s keepalive, verifying certificates.
    pub fn new(host: &str, port: u16, security: Security) -> Self {
        Self {
            host: host.to_string(),
            port,
            security,
            tls: TlsConfig::default(),
            connect_timeout: Duration::from_secs(30),
            keepalive: Some(Duration::from_secs(60)),
        }
    }
}

/// A plain or TLS connection; what a production [`Session`] runs on.
pub enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connects, secures the connection as asked and reads the greeting. After STARTTLS the
/// capabilities are asked for again, as RFC 3501 requires.
pub async fn connect(
    opts: &ConnectOptions,
    config: SessionConfig,
) -> Result<Session<Transport>, ImapError> {
    let tcp = open_tcp(opts).await?;
    secure(opts, tcp, config).await
}

/// The TCP step alone: resolves the host, connects (both within the connect timeout), sets
/// TCP_NODELAY and keepalive.
pub async fn open_tcp(opts: &ConnectOptions) -> Result<TcpStream, ImapError> {
    within(opts.connect_timeout, async {
        let addrs = resolve(opts).await?;
        tcp_to(&addrs, opts).await
    })
    .await
}

/// Resolves the host and port to the addresses a connection tries, in order (no time limit
/// of its own).
pub async fn resolve(opts: &ConnectOptions) -> io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((opts.host.as_str(), opts.port))
        .await?
        .collect())
}

/// Connects to the first of `addrs` that accepts, within the connect timeout, and sets
/// TCP_NODELAY and keepalive as [`open_tcp`] does (for callers that time the steps apart).
pub async fn connect_addrs(
    addrs: &[SocketAddr],
    opts: &ConnectOptions,
) -> Result<TcpStream, ImapError> {
    within(opts.connect_timeout, tcp_to(addrs, opts)).await
}

/// The steps after TCP: TLS as the options ask (implicit, or STARTTLS after the greeting),
/// then the greeting of the session that runs on top.
pub async fn secure(
    opts: &ConnectOptions,
    tcp: TcpStream,
    config: SessionConfig,
) -> Result<Session<Transport>, ImapError> {
    let mut session = secure_session(opts, tcp, config).await?;
    let probe = match session.stream() {
        Transport::Plain(tcp) => tcp_send_queue(tcp),
        Transport::Tls(tls) => tcp_send_queue(tls.get_ref().0),
    };
    session.watch_send_queue(probe);
    Ok(session)
}

async fn secure_session(
    opts: &ConnectOptions,
    tcp: TcpStream,
    config: SessionConfig,
) -> Result<Session<Transport>, ImapError> {
    match opts.security {
        Security::None => Session::connect(Transport::Plain(tcp), config).await,
        Security::Ssl => {
            let tls = within(opts.connect_timeout, handshake(opts, tcp)).await?;
            Session::connect(Transport::Tls(Box::new(tls)), config).await
        }
        Security::Tls => {
            let mut session = Session::connect(Transport::Plain(tcp), config.clone()).await?;
            if !session.has_capability("STARTTLS") {
                session.capability().await?;
            }
            if !session.has_capability("STARTTLS") {
                return Err(ImapError::Unsupported("STARTTLS".into()));
            }
            session.execute(session.command("STARTTLS").build()).await?;
            let (stream, leftover) = session.into_parts();
            if !leftover.is_empty() {
                return Err(ImapError::Protocol(
                    "server sent data right after STARTTLS".into(),
                ));
            }
            let Transport::Plain(tcp) = stream else {
                return Err(ImapError::Protocol("STARTTLS on a TLS connection".into()));
            };
            let tls = within(opts.connect_timeout, handshake(opts, tcp)).await?;
            let mut session = Session::established(Transport::Tls(Box::new(tls)), config);
            session.capability().await?;
            Ok(session)
        }
    }
}

/// What was negotiated on a TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version, e.g. `TLSv1_3`.
    pub version: String,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The server's certificate chain, leaf first, DER-encoded.
    pub chain: Vec<Vec<u8>>,
}

impl Transport {
    /// The negotiated TLS parameters, or `None` on a plain connection.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        let Self::Tls(stream) = self else {
            return None;
        };
        let conn = stream.get_ref().1;
        Some(TlsInfo {
            version: conn
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            cipher: conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default(),
            chain: conn
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
                .unwrap_or_default(),
        })
    }
}

async fn within<T, F>(limit: Duration, fut: F) -> Result<T, ImapError>
where
    F: Future<Output = Result<T, ImapError>>,
{
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| ImapError::Timeout(limit))?
}

/// Connects to the first of `addrs` that accepts; sets TCP_NODELAY (each command is one
/// write and waits for its answer) and the keepalive of the options.
async fn tcp_to(addrs: &[SocketAddr], opts: &ConnectOptions) -> Result<TcpStream, ImapError> {
    let tcp = TcpStream::connect(addrs).await?;
    tcp.set_nodelay(true)?;
    if let Some(idle) = opts.keepalive {
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(idle);
        socket2::SockRef::from(&tcp).set_tcp_keepalive(&ka)?;
    }
    Ok(tcp)
}

async fn handshake(
    opts: &ConnectOptions,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ImapError> {
    let config = opts
        .tls
        .client_config(&opts.host)
        .map_err(|e| ImapError::Tls(e.to_string()))?;
    let name = ServerName::try_from(opts.host.clone())
        .map_err(|e| ImapError::Tls(format!("invalid server name {:?}: {e}", opts.host)))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| certificate_error(opts, e))
}

/// A refused server certificate is [`ImapError::Certificate`] (retrying will not help), not
/// an I/O error; other handshake failures stay I/O errors.
fn certificate_error(opts: &ConnectOptions, e: io::Error) -> ImapError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            let refusal = match reason {
                rustls::CertificateError::Other(other) => other
                    .0
                    .downcast_ref::<CertificateRefusal>()
                    .map(|r| Box::new(r.clone())),
                _ => None,
            };
            ImapError::Certificate {
                host: opts.host.clone(),
                reason: refusal
                    .as_ref()
                    .map_or_else(|| reason.clone(), |r| r.reason()),
                refusal,
            }
        }
        _ => ImapError::Io(e),
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
