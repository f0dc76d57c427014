//! Transport tests against a scripted TLS server on 127.0.0.1 with a throwaway CA.

use std::io::Write;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use std::sync::Arc;

use super::*;
use crate::tls::TlsSetupError;

/// A CA (as PEM) and a server config whose certificate for `localhost` it signed.
fn pki() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

async fn expect_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, line: &str) {
    let mut got = String::new();
    r.read_line(&mut got).await.unwrap();
    assert_eq!(got, format!("{line}\r\n"));
}

fn options(port: u16, security: Security) -> ConnectOptions {
    let mut opts = ConnectOptions::new("localhost", port, security);
    opts.connect_timeout = Duration::from_secs(10);
    opts
}

#[tokio::test]
async fn both_ways_to_connect_set_nodelay_and_keepalive() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut opts = options(listener.local_addr().unwrap().port(), Security::None);
    opts.keepalive = Some(Duration::from_secs(77));
    let addrs = resolve(&opts).await.unwrap();
    assert!(!addrs.is_empty());
    for tcp in [
        open_tcp(&opts).await.unwrap(),
        connect_addrs(&addrs, &opts).await.unwrap(),
    ] {
        let sock = socket2::SockRef::from(&tcp);
        assert!(tcp.nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(77));
    }
}

#[tokio::test]
async fn starttls_upgrades_and_asks_for_capabilities_again() {
    let (ca_pem, server_config) = pki();
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    ca_file.write_all(ca_pem.as_bytes()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tcp = BufReader::new(tcp);
        tcp.get_mut()
            .write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n")
            .await
            .unwrap();
        expect_line(&mut tcp, "A0001 STARTTLS").await;
        tcp.get_mut()
            .write_all(b"A0001 OK Begin TLS\r\n")
            .await
            .unwrap();
        let tls = TlsAcceptor::from(server_config)
            .accept(tcp.into_inner())
            .await
            .unwrap();
        let mut tls = BufReader::new(tls);
        expect_line(&mut tls, "A0001 CAPABILITY").await;
        tls.get_mut()
            .write_all(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA0001 OK\r\n")
            .await
            .unwrap();
        expect_line(&mut tls, "A0002 NOOP").await;
        tls.get_mut().write_all(b"A0002 OK\r\n").await.unwrap();
    });
    let mut opts = options(port, Security::Tls);
    opts.tls.ca_file = Some(ca_file.path().to_path_buf());
    let mut session = connect(&opts, SessionConfig::default()).await.unwrap();
    assert!(matches!(session.stream(), Transport::Tls(_)));
    assert!(session.has_capability("AUTH=PLAIN"));
    assert!(!session.has_capability("LOGINDISABLED"));
    session
        .execute(session.command("NOOP").build())
        .await
        .unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn implicit_tls_verifies_unless_insecure() {
    let (_, server_config) = pki();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        // First client: rejects our certificate (unknown CA).
        let (tcp, _) = listener.accept().await.unwrap();
        assert!(
            TlsAcceptor::from(server_config.clone())
                .accept(tcp)
                .await
                .is_err()
        );
        // Second client: insecure, gets a greeting.
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = TlsAcceptor::from(server_config).accept(tcp).await.unwrap();
        tls.write_all(b"* OK ready\r\n").await.unwrap();
        tls.flush().await.unwrap();
        tls
    });
    let err = connect(&options(port, Security::Ssl), SessionConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, ImapError::Certificate { .. }) && err.to_string().contains("not trusted"),
        "{err}"
    );
    assert!(!err.is_transient(), "{err}");
    let mut opts = options(port, Security::Ssl);
    opts.tls.insecure = true;
    let session = connect(&opts, SessionConfig::default()).await.unwrap();
    assert_eq!(session.greeting().text, "ready");
    drop(server.await.unwrap());
}

#[tokio::test]
async fn starttls_refuses_injected_plaintext_and_missing_support() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tcp = BufReader::new(tcp);
        tcp.get_mut()
            .write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n")
            .await
            .unwrap();
        expect_line(&mut tcp, "A0001 STARTTLS").await;
        tcp.get_mut()
            .write_all(b"A0001 OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1] injected\r\n")
            .await
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tcp = BufReader::new(tcp);
        tcp.get_mut().write_all(b"* OK hi\r\n").await.unwrap();
        expect_line(&mut tcp, "A0001 CAPABILITY").await;
        tcp.get_mut()
            .write_all(b"* CAPABILITY IMAP4rev1\r\nA0001 OK\r\n")
            .await
            .unwrap();
    });
    let err = connect(&options(port, Security::Tls), SessionConfig::default())
        .await
        .err()
        .unwrap();
    // Normally caught as leftover bytes; should the injected line arrive in a later read,
    // it breaks the TLS handshake instead. Either way the session must not start.
    assert!(
        matches!(
            err,
            ImapError::Protocol(_) | ImapError::Io(_) | ImapError::Framing(_)
        ),
        "{err}"
    );
    let err = connect(&options(port, Security::Tls), SessionConfig::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, ImapError::Unsupported(w) if w == "STARTTLS"),
        "{err}"
    );
    server.await.unwrap();
}

#[test]
fn security_names_and_bad_ca_files() {
    assert_eq!("none".parse(), Ok(Security::None));
    assert_eq!("SSL".parse(), Ok(Security::Ssl));
    assert_eq!("tls".parse(), Ok(Security::Tls));
    assert!("tls1.3".parse::<Security>().is_err());
    let tls = TlsConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..TlsConfig::default()
    };
    assert!(matches!(
        tls.client_config("localhost"),
        Err(TlsSetupError::CaFile { .. })
    ));
}
