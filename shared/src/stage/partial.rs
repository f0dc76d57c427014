//! Partial bodies: what arrived of a message whose link broke, kept in `tmp/partial/` so the
//! next attempt (in this run or a later one) continues from there with a ranged fetch.
//!
//! A partial is named by what identifies the message: folder row, UIDVALIDITY, UID and
//! announced size, plus a digest of the endpoint and mailbox, all formatted by us (nothing
//! from a server chooses a path). It becomes a blob only through [`BlobStore::persist`], when
//! the whole body arrived. A continued fetch starts [`OVERLAP`] bytes before the end of what
//! is kept and checks those bytes against the server's, so a partial that does not match the
//! server's message is dropped rather than completed with the wrong start. Stale partials
//! (a folder whose UIDVALIDITY changed, a message staged or skipped since, a folder gone) are
//! removed by `gc` and when the pass sees the UIDVALIDITY change.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::blobs::{BlobStore, BlobWriter, PendingBlob};
use super::error::{IoContext, Result, StageError};

/// Bytes a continued fetch asks for again, before the end of the partial, to check them.
pub const OVERLAP: u64 = 1024;

/// What identifies one message's partial body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialKey {
    /// The source endpoint (`host:port`): a partial is only continued from the same server.
    pub endpoint: String,
    /// The mailbox's row.
    pub mailbox_id: i64,
    /// The folder's row.
    pub folder_id: i64,
    /// The folder's UIDVALIDITY.
    pub uidvalidity: u32,
    /// The message's UID.
    pub uid: u32,
    /// Its RFC822.SIZE as announced.
    pub size: u64,
}

impl PartialKey {
    fn file_name(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.endpoint, self.mailbox_id));
        format!(
            "f{}-v{}-u{}-s{}-{}.partial",
            self.folder_id,
            self.uidvalidity,
            self.uid,
            self.size,
            hex::encode(&digest[..8])
        )
    }
}

/// Folder row, UIDVALIDITY and UID of a partial, read back from its file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartialOf {
    pub folder_id: i64,
    pub uidvalidity: u32,
    pub uid: u32,
}

impl PartialOf {
    fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_suffix(".partial")?.strip_prefix('f')?;
        let mut parts = rest.split('-');
        let folder_id = parts.next()?.parse().ok()?;
        let uidvalidity = parts.next()?.strip_prefix('v')?.parse().ok()?;
        let uid = parts.next()?.strip_prefix('u')?.parse().ok()?;
        Some(Self {
            folder_id,
            uidvalidity,
            uid,
        })
    }
}

/// One partial found in `tmp/partial/`.
pub(crate) struct PartialFile {
    pub path: PathBuf,
    /// `None` for a file whose name is not a partial's.
    pub of: Option<PartialOf>,
    pub len: u64,
}

impl BlobStore {
    fn partial_dir(&self) -> PathBuf {
        self.tmp_dir().join("partial")
    }

    fn partial_path(&self, key: &PartialKey) -> PathBuf {
        self.partial_dir().join(key.file_name())
    }

    /// Bytes kept of the message's body (0 when none).
    pub fn partial_len(&self, key: &PartialKey) -> u64 {
        fs::metadata(self.partial_path(key)).map_or(0, |m| m.len())
    }

    /// Where a continued fetch of the message starts: [`OVERLAP`] bytes before the end of
    /// its partial (0 when there is none).
    pub fn resume_origin(&self, key: &PartialKey) -> u64 {
        self.partial_len(key).saturating_sub(OVERLAP)
    }

    /// A writer for the message's body as the server sends it from byte `origin` (0: the
    /// whole body, replacing any partial). From a later origin, the partial must hold at
    /// least `origin` bytes; the bytes it holds past `origin` are checked against the
    /// server's as they arrive. Dropped unfinished, the writer keeps what arrived.
    pub fn partial_writer(&self, key: &PartialKey, origin: u64) -> Result<PartialWriter> {
        let path = self.partial_path(key);
        let mut kept = 0;
        let mut expect = Vec::new();
        if origin > 0 {
            kept = fs::metadata(&path).map_or(0, |m| m.len());
            if origin > kept {
                return Err(StageError::Refused(format!(
                    "the server continued UID {} at byte {origin}, but only {kept} bytes of it are kept",
                    key.uid
                )));
            }
            let mut file = fs::File::open(&path).at("open", &path)?;
            file.seek(SeekFrom::Start(origin)).at("seek", &path)?;
            file.take(kept - origin)
                .read_to_end(&mut expect)
                .at("read", &path)?;
        }
        Ok(PartialWriter {
            blob: BlobWriter::continue_at(
                path,
                origin,
                super::blobs::buffer_for(key.size.saturating_sub(origin)),
                self.durability().per_file(),
            )?,
            expect,
            checked: 0,
            kept,
        })
    }

    /// Removes the partials of a folder row kept under another UIDVALIDITY than
    /// `uidvalidity` (its messages are not the same any more); returns how many.
    pub fn remove_partials_of_folder(&self, folder_id: i64, uidvalidity: u32) -> Result<u64> {
        let mut removed = 0;
        for p in self.partials()? {
            if let Some(of) = p.of
                && of.folder_id == folder_id
                && of.uidvalidity != uidvalidity
            {
                fs::remove_file(&p.path).at("remove stale partial", &p.path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every file in `tmp/partial/`.
    pub(crate) fn partials(&self) -> Result<Vec<PartialFile>> {
        let dir = self.partial_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at("read directory", &dir),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.at("read directory", &dir)?;
            let path = entry.path();
            let len = entry.metadata().at("stat", &path)?.len();
            let of = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(PartialOf::parse);
            out.push(PartialFile { path, of, len });
        }
        Ok(out)
    }
}

/// A message body being written into its partial, hashed as it goes.
#[derive(Debug)]
pub struct PartialWriter {
    blob: BlobWriter,
    /// Kept bytes past the origin, to check against the server's.
    expect: Vec<u8>,
    checked: usize,
    /// Bytes the partial held before this attempt (when continuing).
    kept: u64,
}

impl PartialWriter {
    /// Appends the next bytes from the server. The ones that overlap what was kept must
    /// match it; a mismatch drops the partial (the next attempt starts from byte 0).
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        let overlap = (self.expect.len() - self.checked).min(chunk.len());
        if overlap > 0 {
            let expected = &self.expect[self.checked..self.checked + overlap];
            if expected != &chunk[..overlap] {
                self.blob.discard_on_drop();
                return Err(StageError::Refused(format!(
                    "the server's bytes at offset {} differ from the partial body kept before; it is dropped",
                    self.blob.len()
                )));
            }
            self.checked += overlap;
        }
        let written = self.blob.write_chunk(chunk);
        if written.is_err() {
            self.blob.discard_on_drop();
        }
        written
    }

    /// Bytes of the body so far (kept ones included).
    pub fn len(&self) -> u64 {
        self.blob.len()
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.blob.is_empty()
    }

    /// Bytes the partial gained in this attempt beyond what was kept before.
    pub fn gained(&self) -> u64 {
        self.blob.len().saturating_sub(self.kept)
    }

    /// The body is complete: a blob to persist (not durable before [`BlobStore::persist`]).
    pub fn finish(self) -> Result<PendingBlob> {
        if self.checked < self.expect.len() {
            let mut blob = self.blob;
            blob.discard_on_drop();
            return Err(StageError::Refused(format!(
                "the body ended at {} bytes, before the {} bytes kept of it",
                blob.len(),
                blob.len() as usize + self.expect.len() - self.checked
            )));
        }
        self.blob.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uid: u32) -> PartialKey {
        PartialKey {
            endpoint: "imap.example:993".into(),
            mailbox_id: 3,
            folder_id: 7,
            uidvalidity: 42,
            uid,
            size: 5000,
        }
    }

    #[test]
    fn a_partial_is_continued_checked_and_completed_into_the_same_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let k = key(9);
        assert_eq!(store.resume_origin(&k), 0);
        {
            let mut w = store.partial_writer(&k, 0).unwrap();
            w.write_chunk(&body[..3000]).unwrap();
            // The link breaks: dropped unfinished, the bytes stay.
        }
        assert_eq!(store.partial_len(&k), 3000);
        let origin = store.resume_origin(&k);
        assert_eq!(origin, 3000 - OVERLAP);
        let mut w = store.partial_writer(&k, origin).unwrap();
        w.write_chunk(&body[origin as usize..4000]).unwrap();
        assert_eq!(w.gained(), 1000);
        w.write_chunk(&body[4000..]).unwrap();
        let pending = w.finish().unwrap();
        assert_eq!(pending.hash(), super::super::BlobHash::of(&body));
        let stored = store.persist(vec![pending]).unwrap();
        assert_eq!(stored[0].len, 5000);
        assert_eq!(store.partial_len(&k), 0, "the partial became the blob");
        // A body written in one go (its partial created read-only) and a continued one
        // (made read-only when finished) end up alike.
        let mut w = store.partial_writer(&key(11), 0).unwrap();
        w.write_chunk(b"in one go").unwrap();
        let once = store.persist(vec![w.finish().unwrap()]).unwrap()[0].hash;
        for hash in [stored[0].hash, once] {
            let mode = fs::metadata(store.path_of(&hash)).unwrap().permissions();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
                0o444
            );
        }
    }

    #[test]
    fn a_mismatch_in_the_overlap_drops_the_partial() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let k = key(10);
        let mut w = store.partial_writer(&k, 0).unwrap();
        w.write_chunk(&[1u8; 2048]).unwrap();
        drop(w);
        let mut w = store.partial_writer(&k, store.resume_origin(&k)).unwrap();
        let e = w.write_chunk(&[2u8; 100]).unwrap_err().to_string();
        assert!(
            e.contains("differ from the partial body kept before"),
            "{e}"
        );
        drop(w);
        assert_eq!(store.partial_len(&k), 0);
        assert!(store.partial_writer(&k, 5).is_err(), "nothing to continue");
    }

    #[test]
    fn partials_of_an_old_uidvalidity_are_removed_and_names_parse_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        for uid in [1, 2] {
            let mut w = store.partial_writer(&key(uid), 0).unwrap();
            w.write_chunk(b"abc").unwrap();
        }
        let found = store.partials().unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|p| {
            p.of.is_some_and(|o| o.folder_id == 7 && o.uidvalidity == 42 && p.len == 3)
        }));
        assert_eq!(store.remove_partials_of_folder(7, 42).unwrap(), 0);
        assert_eq!(store.remove_partials_of_folder(8, 43).unwrap(), 0);
        assert_eq!(store.remove_partials_of_folder(7, 43).unwrap(), 2);
        assert!(store.partials().unwrap().is_empty());
    }
}
