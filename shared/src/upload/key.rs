//! The resume key: what a message left in flight by a crash is looked for by on the target,
//! and counted by among the uploads the index has confirmed in the same folder.
//!
//! One rule for every target: the Message-ID when the message has a usable one, else its
//! INTERNALDATE to the second and its decoded Subject, Date and From. Neither depends on
//! the bytes the target keeps, so the key holds on Microsoft 365 (which rewrites the MIME)
//! as on servers that store messages as sent.

use super::fingerprint::{self, HeaderFingerprint, MAX_HEADER};
use crate::stage::index::UploadItem;
use crate::stage::{BlobHash, BlobStore, StageError};

/// What identifies a message on the target, whatever the server did to its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResumeKey {
    /// Its Message-ID (non-empty printable ASCII), as staged.
    MessageId(String),
    /// Without a usable Message-ID: INTERNALDATE to the second and the header fingerprint.
    Headers {
        /// INTERNALDATE, seconds since the epoch.
        internaldate: i64,
        /// The staged message's decoded Subject, Date and From.
        fingerprint: HeaderFingerprint,
    },
}

impl ResumeKey {
    /// The key of a staged message: its Message-ID when usable, else its INTERNALDATE and the
    /// fingerprint of the header read from its blob. `None` when it has neither a usable
    /// Message-ID nor an INTERNALDATE, or a header over 1 MiB: such a message cannot be
    /// looked for, so it counts as absent and is sent again.
    pub fn of(item: &UploadItem, blobs: &BlobStore) -> Result<Option<Self>, StageError> {
        if let Some(id) = item
            .message_id
            .as_deref()
            .filter(|id| usable_message_id(id))
        {
            return Ok(Some(Self::MessageId(id.to_owned())));
        }
        let Some(internaldate) = item.internaldate_unix else {
            return Ok(None);
        };
        Ok(
            staged_fingerprint(blobs, &item.blob)?.map(|fingerprint| Self::Headers {
                internaldate,
                fingerprint,
            }),
        )
    }
}

/// True for a Message-ID the target can be searched by: non-empty printable ASCII.
pub(crate) fn usable_message_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// How many of these staged messages have a header `fingerprint` matches. One whose header
/// is too long to read counts as matching: the in-flight message is then sent again rather
/// than taken for present.
pub(crate) fn count_same_headers(
    blobs: &BlobStore,
    candidates: &[BlobHash],
    fingerprint: &HeaderFingerprint,
    internaldate: i64,
) -> Result<u64, StageError> {
    let mut n = 0;
    for blob in candidates {
        if staged_fingerprint(blobs, blob)?.is_none_or(|f| fingerprint.matches(&f, internaldate)) {
            n += 1;
        }
    }
    Ok(n)
}

/// The fingerprint of a staged message, from the start of its blob; `None` when its header
/// is over [`MAX_HEADER`] bytes.
fn staged_fingerprint(
    blobs: &BlobStore,
    blob: &BlobHash,
) -> Result<Option<HeaderFingerprint>, StageError> {
    let file = blobs.open_blob(blob)?;
    let header = fingerprint::read_header(file, MAX_HEADER).map_err(|source| StageError::Io {
        action: "read the header of blob",
        path: blobs.path_of(blob),
        source,
    })?;
    Ok(header.map(|h| HeaderFingerprint::of_header(&h)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::index::UploadState;

    fn item(blob: BlobHash, message_id: Option<&str>, internaldate: Option<i64>) -> UploadItem {
        UploadItem {
            message_row: 1,
            folder_id: 1,
            uid: 1,
            uidvalidity: 1,
            blob,
            size: 0,
            internaldate: None,
            internaldate_unix: internaldate,
            flags: String::new(),
            message_id: message_id.map(str::to_owned),
            state: UploadState::InFlight,
            sent_to: None,
            lost_sends: 0,
        }
    }

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        (dir, blobs)
    }

    #[test]
    fn message_id_first_then_date_and_headers_else_none() {
        let (_dir, blobs) = store();
        let blob = blobs
            .put(b"Subject: Hi\r\nFrom: a@x.test\r\n\r\nbody\r\n")
            .unwrap()
            .hash;
        let key = |id, date| ResumeKey::of(&item(blob, id, date), &blobs).unwrap();
        assert_eq!(
            key(Some("a@x.test"), None),
            Some(ResumeKey::MessageId("a@x.test".into()))
        );
        let headers = Some(ResumeKey::Headers {
            internaldate: 7,
            fingerprint: HeaderFingerprint {
                subject: "Hi".into(),
                date: None,
                from: Some("a@x.test".into()),
            },
        });
        assert_eq!(key(None, Some(7)), headers);
        assert_eq!(key(Some("é@x"), Some(7)), headers, "an unusable Message-ID");
        assert_eq!(key(Some(""), Some(7)), headers);
        assert_eq!(key(Some("a\r\nb@x"), Some(7)), headers);
        assert_eq!(key(None, None), None, "no INTERNALDATE: sent again");
    }

    #[test]
    fn confirmed_candidates_count_when_their_headers_match() {
        let (_dir, blobs) = store();
        let put = |bytes: &[u8]| blobs.put(bytes).unwrap().hash;
        let same = put(b"Subject: Hi\r\n\r\none\r\n");
        let other = put(b"Subject: Ho\r\n\r\ntwo\r\n");
        let long = [
            b"X: ".as_slice(),
            &vec![b'a'; MAX_HEADER as usize],
            b"\r\n\r\n",
        ]
        .concat();
        let too_long = put(&long);
        let hi = HeaderFingerprint::of_header(b"Subject: Hi\r\n\r\n");
        let count =
            |candidates: &[BlobHash]| count_same_headers(&blobs, candidates, &hi, 0).unwrap();
        assert_eq!(count(&[]), 0);
        assert_eq!(count(&[same, other, same]), 2);
        assert_eq!(
            count(&[too_long]),
            1,
            "an unreadable header counts as matching"
        );
    }
}
