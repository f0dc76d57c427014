//! Blob names: the SHA-256 of a message's raw bytes.

use std::fmt;
use std::path::PathBuf;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
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

    /// Where the blob lives below `blobs/`: `ab/<hex>` (one fan-out level of 256 directories).
    pub fn relative_path(&self) -> PathBuf {
        let hex = self.to_hex();
        [&hex[0..2], &hex[..]].iter().collect()
    }

    /// Where stages made before index v12 kept it: `ab/cd/<hex>` (two fan-out levels), read
    /// until the stage's blobs are moved to [`BlobHash::relative_path`] (`stage::layout`).
    pub(crate) fn two_level_path(&self) -> PathBuf {
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

/// Stored in the index as its 64-digit hex form.
impl ToSql for BlobHash {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_hex()))
    }
}

/// Read from the index's hex form; anything else is a conversion error naming the value.
impl FromSql for BlobHash {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        BlobHash::parse(value.as_str()?).map_err(|e| FromSqlError::Other(Box::new(e)))
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
        assert_eq!(h.relative_path(), PathBuf::from(format!("ba/{hex}")));
        assert_eq!(h.two_level_path(), PathBuf::from(format!("ba/78/{hex}")));
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

    #[test]
    fn sql_roundtrip_and_a_bad_value_is_an_error_naming_it() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let h = BlobHash::of(b"abc");
        let back: BlobHash = conn.query_row("SELECT ?1", [h], |r| r.get(0)).unwrap();
        assert_eq!(back, h);
        let text: String = conn.query_row("SELECT ?1", [h], |r| r.get(0)).unwrap();
        assert_eq!(text, h.to_hex());
        let bad = "Z".repeat(64);
        let err = conn
            .query_row("SELECT ?1", [&bad], |r| r.get::<_, BlobHash>(0))
            .unwrap_err();
        assert!(
            matches!(err, rusqlite::Error::FromSqlConversionFailure(0, _, _)),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!(
                "not a blob name (64 lowercase hex digits): \"{bad}\""
            )),
            "{err}"
        );
        let err = conn
            .query_row("SELECT 42", [], |r| r.get::<_, BlobHash>(0))
            .unwrap_err();
        assert!(
            matches!(err, rusqlite::Error::InvalidColumnType(..)),
            "{err:?}"
        );
    }
}
