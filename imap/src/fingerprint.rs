//! [`Fingerprint`]: a certificate's SHA-256 digest, the way an admin pins a server's
//! certificate without a file (`--tls-fingerprint sha256:…`).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The SHA-256 digest of a certificate's DER bytes, written `sha256:` and 64 lower-case hex
/// digits. Read also in OpenSSL's form (`openssl x509 -noout -fingerprint -sha256` prints
/// `sha256 Fingerprint=AB:CD:…`): upper or lower case, with or without colons.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint([u8; 32]);

/// A `--tls-fingerprint` that is not a SHA-256 fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{given:?} is not a SHA-256 certificate fingerprint: write sha256: and 64 hex digits \
     (colons allowed), as `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints them \
     or as test-server shows them"
)]
pub struct FingerprintError {
    /// What was given (a fingerprint is public: it may be shown).
    pub given: String,
}

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// The 32 digest bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refused = || FingerprintError {
            given: s.to_owned(),
        };
        let trimmed = s.trim();
        let lower = trimmed.to_ascii_lowercase();
        let digits = ["sha256 fingerprint=", "sha256:", "sha256=", "sha-256:"]
            .iter()
            .find_map(|prefix| lower.strip_prefix(prefix))
            .unwrap_or(&lower);
        let hex_digits: String = digits.chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&hex_digits, &mut out).map_err(|_| refused())?;
        Ok(Self(out))
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = FingerprintError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Fingerprint> for String {
    fn from(f: Fingerprint) -> Self {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_sha256_hex_and_read_in_openssl_forms_too() {
        let f = Fingerprint::of(b"certificate");
        let shown = f.to_string();
        assert!(
            shown.starts_with("sha256:") && shown.len() == 7 + 64,
            "{shown}"
        );
        assert_eq!(shown.parse::<Fingerprint>(), Ok(f));
        let openssl = format!(
            "sha256 Fingerprint={}",
            f.bytes()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        );
        assert_eq!(openssl.parse::<Fingerprint>(), Ok(f));
        assert_eq!(hex::encode(f.bytes()).parse::<Fingerprint>(), Ok(f));
        for bad in ["", "sha256:", "sha256:abc", "md5:00", &format!("{shown}00")] {
            let err = bad.parse::<Fingerprint>().unwrap_err();
            assert!(err.to_string().contains("64 hex digits"), "{err}");
        }
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, format!("\"{shown}\""));
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), f);
        assert!(serde_json::from_str::<Fingerprint>("\"sha256:zz\"").is_err());
    }
}
