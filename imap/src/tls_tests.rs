//! Pinning against a scripted TLS server on 127.0.0.1 whose certificate is self-signed with
//! `CA:TRUE`, as `openssl req -x509` and Debian's snakeoil make them.

use std::io::Write;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::diagnose::classified;
use crate::error::ImapError;
use crate::security::Security;
use crate::session::SessionConfig;
use crate::transport::{ConnectOptions, connect};

/// A self-signed `CA:TRUE` certificate for localhost: its PEM, its DER and a server config.
fn snakeoil() -> (String, Vec<u8>, Arc<rustls::ServerConfig>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .unwrap();
    (cert.pem(), cert.der().to_vec(), Arc::new(config))
}

/// Serves implicit TLS with `config` to every client, greeting those that complete the
/// handshake.
async fn serve(config: Arc<rustls::ServerConfig>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = TlsAcceptor::from(config.clone());
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"* OK pinned\r\n").await;
                    let _ = tls.flush().await;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            });
        }
    });
    port
}

async fn try_connect(port: u16, tls: TlsConfig) -> Result<String, ImapError> {
    let mut opts = ConnectOptions::new("localhost", port, Security::Ssl);
    opts.connect_timeout = Duration::from_secs(10);
    opts.tls = tls;
    let session = connect(&opts, SessionConfig::default()).await?;
    Ok(session.greeting().text.clone())
}

fn pem_file(pem: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(pem.as_bytes()).unwrap();
    file
}

#[tokio::test]
async fn a_self_signed_ca_certificate_is_trusted_by_its_file_or_its_fingerprint() {
    let (pem, der, config) = snakeoil();
    let port = serve(config).await;
    let ours = Fingerprint::of(&der);

    // Without trust: refused, and the refusal names the certificate and suggests a pin.
    let err = try_connect(port, TlsConfig::default()).await.unwrap_err();
    let ImapError::Certificate {
        refusal: Some(refusal),
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert!(refusal.self_signed && refusal.presented == ours, "{err}");
    let failure = classified(&err, "localhost");
    assert!(
        failure.message.contains(&ours.to_string())
            && failure.hint.contains(&format!("--tls-fingerprint {ours}")),
        "{failure:?}"
    );

    // The certificate itself as the CA file: pinned, whatever its CA flag.
    let file = pem_file(&pem);
    let tls = TlsConfig {
        ca_file: Some(file.path().to_path_buf()),
        ..TlsConfig::default()
    };
    assert_eq!(try_connect(port, tls).await.unwrap(), "pinned");

    // Its fingerprint alone.
    let tls = TlsConfig {
        fingerprint: Some(ours),
        ..TlsConfig::default()
    };
    assert_eq!(try_connect(port, tls).await.unwrap(), "pinned");
}

#[tokio::test]
async fn another_certificate_is_refused_naming_both_fingerprints() {
    let (_, der, config) = snakeoil();
    let port = serve(config).await;
    let presented = Fingerprint::of(&der);
    let (other_pem, other_der, _) = snakeoil();
    let other = Fingerprint::of(&other_der);

    let file = pem_file(&other_pem);
    let by_file = TlsConfig {
        ca_file: Some(file.path().to_path_buf()),
        ..TlsConfig::default()
    };
    let by_fingerprint = TlsConfig {
        fingerprint: Some(other),
        ..TlsConfig::default()
    };
    for tls in [by_file, by_fingerprint] {
        let err = try_connect(port, tls).await.unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains(&presented.to_string()) && shown.contains(&other.to_string()),
            "{shown}"
        );
        assert!(!err.is_transient(), "{shown}");
    }
    let err = try_connect(
        port,
        TlsConfig {
            fingerprint: Some(other),
            ..TlsConfig::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("not the pinned"),
        "a fingerprint is a strict pin: {err}"
    );
    let hint = classified(&err, "localhost").hint;
    assert!(hint.contains("not the pinned one"), "{hint}");
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let file = pem_file("not a certificate\n");
    let tls = TlsConfig {
        ca_file: Some(file.path().to_path_buf()),
        ..TlsConfig::default()
    };
    let err = tls.client_config("localhost").unwrap_err();
    assert!(
        err.to_string().contains("holds no PEM certificate"),
        "{err}"
    );
}
