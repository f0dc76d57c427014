//! Which server certificates a client trusts: the system's roots plus an optional PEM file
//! of extra CAs, pinned certificates, or (for a lab server, loudly) any certificate. One
//! rustls configuration (ring provider) for IMAP connections and for any other TLS client of
//! the project (the OAuth2 token endpoint's HTTPS).
//!
//! A certificate is *pinned* when its SHA-256 fingerprint is given (`--tls-fingerprint`) or
//! when it is itself one of the certificates of the CA file. A pinned certificate is trusted
//! as it is: neither its CA flag (a self-signed certificate made by `openssl req -x509`, or
//! Debian's snakeoil, says `CA:TRUE`, which rustls refuses in a server's own certificate),
//! nor its name or dates are judged; the exact bytes are the check. A fingerprint is a strict
//! pin: any other certificate is refused, even one a trusted CA signed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};

pub use crate::fingerprint::{Fingerprint, FingerprintError};

/// Trust settings for a TLS client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with extra trusted CA certificates (internal CAs); a certificate in it that
    /// is the server's own is pinned.
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. Dangerous; for lab servers only.
    pub insecure: bool,
    /// Accept exactly the certificate with this SHA-256 fingerprint (and those of the CA
    /// file), nothing else.
    pub fingerprint: Option<Fingerprint>,
}

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// rustls refused the protocol versions (should not happen with ring).
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    /// The certificate verifier could not be built from the roots.
    #[error("TLS setup: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
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

/// Why a server certificate was refused, with what was presented and what was pinned; it
/// travels inside rustls's [`CertificateError::Other`] and comes out of a handshake as
/// [`crate::ImapError::Certificate`].
#[derive(Clone, Debug)]
pub struct CertificateRefusal {
    /// The fingerprint of the server's certificate.
    pub presented: Fingerprint,
    /// The pinned fingerprints (the one given, the CA file's certificates).
    pub pinned: Vec<Fingerprint>,
    /// Why the usual checks refused it, or `None` when only pinned certificates were
    /// acceptable (a fingerprint was given) and this is not one.
    pub cause: Option<CertificateError>,
    /// The certificate's issuer is its subject.
    pub self_signed: bool,
}

impl CertificateRefusal {
    /// The usual checks' reason, or `ApplicationVerificationFailure` for a pin mismatch.
    pub fn reason(&self) -> CertificateError {
        self.cause
            .clone()
            .unwrap_or(CertificateError::ApplicationVerificationFailure)
    }
}

impl fmt::Display for CertificateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pinned = self
            .pinned
            .iter()
            .map(Fingerprint::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        let signed = if self.self_signed { "self-signed " } else { "" };
        match &self.cause {
            None => write!(
                f,
                "the server presented the {signed}certificate {}, not the pinned {pinned}",
                self.presented
            ),
            Some(cause) => {
                let cause = match cause {
                    CertificateError::Other(other) => other.to_string(),
                    cause => format!("{cause:?}"),
                };
                write!(
                    f,
                    "{cause}; the server presented the {signed}certificate {}",
                    self.presented
                )?;
                if !pinned.is_empty() {
                    write!(f, "; the CA file holds {pinned}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CertificateRefusal {}

impl TlsConfig {
    /// Builds the rustls client configuration; `host` only names the server in the warning
    /// logged when certificate checks are off.
    pub fn client_config(&self, host: &str) -> Result<Arc<ClientConfig>, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let trust = if self.insecure {
            tracing::warn!(host = %host, "TLS certificate verification is DISABLED (--insecure)");
            Trust::Any
        } else {
            self.pinned_trust(&provider)?
        };
        let verifier = Arc::new(Verifier { provider, trust });
        Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ))
    }

    /// The system's CAs and `--ca-file`'s certificates (each also a pin), and the
    /// fingerprint, which makes the pins the only choice.
    fn pinned_trust(&self, provider: &Arc<CryptoProvider>) -> Result<Trust, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!(error = %e, "loading system CA certificates");
        }
        roots.add_parsable_certificates(native.certs);
        let mut pins: Vec<Fingerprint> = self.fingerprint.into_iter().collect();
        if let Some(path) = &self.ca_file {
            let bad = |e: &dyn fmt::Display| TlsSetupError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            };
            let mut found = 0;
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                let cert = cert.map_err(|e| bad(&e))?;
                found += 1;
                pins.push(Fingerprint::of(&cert));
                // A certificate that cannot anchor a chain (an odd self-signed one) still
                // counts as a pin.
                if let Err(e) = roots.add(cert) {
                    tracing::debug!(file = %path.display(), error = %e, "not usable as a CA");
                }
            }
            if found == 0 {
                return Err(bad(
                    &"holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
        }
        if roots.is_empty() && pins.is_empty() {
            return Err(TlsSetupError::NoRoots);
        }
        let chains = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()?,
            )
        };
        Ok(Trust::Pinned {
            chains,
            pins,
            strict: self.fingerprint.is_some(),
        })
    }
}

/// Which server certificates a [`Verifier`] accepts.
#[derive(Debug)]
enum Trust {
    /// Every one (`--insecure`).
    Any,
    /// A pinned certificate as it is; otherwise (unless `strict`: a fingerprint makes the
    /// pins the only choice) the usual chain, name and date checks.
    Pinned {
        chains: Option<Arc<WebPkiServerVerifier>>,
        pins: Vec<Fingerprint>,
        strict: bool,
    },
}

/// Checks the server's certificate as its [`Trust`] says, and handshake signatures in every
/// case.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    trust: Trust,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Trust::Pinned {
            chains,
            pins,
            strict,
        } = &self.trust
        else {
            return Ok(ServerCertVerified::assertion());
        };
        let presented = Fingerprint::of(end_entity);
        if pins.contains(&presented) {
            return Ok(ServerCertVerified::assertion());
        }
        let cause = match (chains, strict) {
            (_, true) => None,
            (None, false) => Some(CertificateError::UnknownIssuer),
            (Some(chains), false) => match chains.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Ok(verified) => return Ok(verified),
                Err(rustls::Error::InvalidCertificate(cause)) => Some(cause),
                Err(other) => return Err(other),
            },
        };
        let refusal = CertificateRefusal {
            presented,
            pinned: pins.clone(),
            cause,
            self_signed: is_self_signed(end_entity),
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(refusal)),
        )))
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// True when a DER certificate names itself as its issuer.
pub fn is_self_signed(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, cert)| cert.subject().as_raw() == cert.issuer().as_raw())
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
