//! Which server certificates a client trusts: the system's roots plus an optional PEM file
//! of extra CAs, or (for a lab server, loudly) any certificate. One rustls configuration
//! (ring provider) for IMAP connections and for any other TLS client of the project (the
//! OAuth2 token endpoint's HTTPS).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Trust settings for a TLS client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with extra trusted CA certificates (internal CAs).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. Dangerous; for lab servers only.
    pub insecure: bool,
}

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// rustls refused the protocol versions (should not happen with ring).
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    /// The CA file cannot be read or holds no usable certificate.
    #[error("CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// Nothing to trust at all.
    #[error("no trusted CA certificates (system store empty, no CA file)")]
    NoRoots,
}

impl TlsConfig {
    /// Builds the rustls client configuration; `host` only names the server in the warning
    /// logged when certificate checks are off.
    pub fn client_config(&self, host: &str) -> Result<Arc<ClientConfig>, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        if self.insecure {
            tracing::warn!(host = %host, "TLS certificate verification is DISABLED (--insecure)");
            let verifier = Arc::new(AcceptAnyCertificate(provider));
            return Ok(Arc::new(
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            ));
        }
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!(error = %e, "loading system CA certificates");
        }
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &self.ca_file {
            let bad = |e: &dyn std::fmt::Display| TlsSetupError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
        }
        if roots.is_empty() {
            return Err(TlsSetupError::NoRoots);
        }
        Ok(Arc::new(
            builder.with_root_certificates(roots).with_no_client_auth(),
        ))
    }
}

/// Accepts every certificate but still checks handshake signatures (`--insecure`).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
