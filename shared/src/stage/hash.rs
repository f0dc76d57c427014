//! Blob names: the SHA-256 of a message's raw bytes.

use std::fmt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::error::StageError;

/// The SHA-256 digest that names a blob (shown as 64 lowercase hex digits, as `sha256sum` does).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash([u8; 32]);

impl BlobHash {
    /// Hashes a whole byte slice at once.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Wraps a finished digest.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// Parses 64 lowercase hex digits (the form used in file names and the index).
    pub fn parse(text: &str) -> Result<Self, StageError> {
        let bad = || StageError::BadBlobName(text.to_owned());
        if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|_| bad())?;
        Ok(Self(out))
    }

    /// The 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Where the blob lives below `blobs/`: `ab/cd/<hex>`.
    pub fn relative_path(&self) -> PathBuf {
        let hex = self.to_hex();
        [&hex[0..2], &hex[2..4], &hex[..]].iter().collect()
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_layout() {
        let h = BlobHash::of(b"abc");
        let hex = h.to_hex();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(BlobHash::parse(&hex).unwrap(), h);
        assert_eq!(h.relative_path(), PathBuf::from(format!("ba/78/{hex}")));
    }

    #[test]
    fn rejects_non_digests() {
        for bad in [
            "",
            "../etc/passwd",
            &"A".repeat(64),
            &"a".repeat(63),
            &"g".repeat(64),
        ] {
            assert!(BlobHash::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
