//! The content-addressed blob store: `blobs/ab/<sha256>` holds a message's raw bytes (stages
//! made before index v12 used `blobs/ab/cd/<sha256>` until they are moved: `stage::layout`).
//!
//! Writing is two-step so that many blobs share one durability point (group commit):
//! [`BlobStore::writer`] streams chunks into `tmp/` while hashing them, [`BlobWriter::finish`]
//! closes the file, and [`BlobStore::persist`] makes a group of finished files durable,
//! renames each into place (or drops it when identical bytes are already stored) and makes
//! the names durable. How is the store's [`Durability`]: one `syncfs(2)` for the group's data
//! and one for its names where the kernel and filesystem can be trusted with it, else an
//! fsync per file and per directory. In that second mode a finished blob keeps its descriptor
//! until fsynced, and a caller that keeps many finished blobs waiting calls
//! [`PendingBlob::sync`] first (on a blocking thread) so that a waiting group holds none.
//! Only after `persist` returns may an index row name the blob (invariant 1). A blob in place
//! always has durable data (its data is synced before the rename), so a later group may
//! trust it for deduplication even when a crash lost the rename's durability.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::durable::Durability;
use super::error::{IoContext, Result};
use super::hash::BlobHash;
use super::rename::rename_no_replace;

/// Buffer between the socket-sized chunks a caller hands in and the write(2) calls.
const WRITE_BUFFER: usize = 256 * 1024;

/// The buffer for a blob of about `expected` bytes: no larger than the blob (a 300-byte
/// message does not allocate, fault in and free 256 KiB), at most [`WRITE_BUFFER`].
pub(crate) fn buffer_for(expected: u64) -> usize {
    usize::try_from(expected.saturating_add(1))
        .map_or(WRITE_BUFFER, |e| e.clamp(1024, WRITE_BUFFER))
}

/// The blob directory and the temporary directory of one stage.
#[derive(Debug)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    next_tmp: AtomicU64,
    durability: Durability,
    /// Whether blobs may still be at their two-level path (a stage from before index v12
    /// opened for reading only): lookups then try it when the one-level path is missing.
    two_levels: bool,
}

impl BlobStore {
    /// Opens (creating when missing) `root/blobs`, `root/tmp` and `root/tmp/partial`, and
    /// chooses how groups are made durable there.
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, Durability::choose)
    }

    /// [`BlobStore::open`] with the durability `choose` returns for the stage's directories.
    pub(crate) fn open_with(
        root: &Path,
        choose: impl FnOnce(&[&Path]) -> Durability,
    ) -> Result<Self> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        let partial = tmp.join("partial");
        for dir in [&blobs, &tmp, &partial] {
            fs::create_dir_all(dir).at("create directory", dir)?;
        }
        let durability = choose(&[&blobs, &tmp, &partial]);
        Ok(Self {
            blobs,
            tmp,
            next_tmp: AtomicU64::new(0),
            durability,
            two_levels: false,
        })
    }

    /// How [`BlobStore::persist`] makes groups durable.
    pub fn durability(&self) -> &Durability {
        &self.durability
    }

    /// The `blobs/` directory.
    pub fn blobs_dir(&self) -> &Path {
        &self.blobs
    }

    /// The `tmp/` directory, where blobs are written before they are persisted.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Where a blob lives: its one-level path `blobs/ab/<sha256>`, or, in a stage whose blobs
    /// were not all moved yet, its two-level path when only that one exists. The one-level
    /// path when neither exists.
    pub fn path_of(&self, hash: &BlobHash) -> PathBuf {
        let path = self.blobs.join(hash.relative_path());
        if self.two_levels && !path.exists() {
            let old = self.blobs.join(hash.two_level_path());
            if old.exists() {
                return old;
            }
        }
        path
    }

    /// Records whether blobs may still be at their two-level path (see [`BlobStore::path_of`]).
    pub(crate) fn set_two_levels(&mut self, two_levels: bool) {
        self.two_levels = two_levels;
    }

    /// How deep blob files lie below `blobs/`: 1, or 2 while blobs may be at their two-level
    /// path.
    pub(crate) fn fan_out_depth(&self) -> usize {
        if self.two_levels { 2 } else { 1 }
    }

    /// Whether `path` is where a blob named `hash` belongs (either layout while blobs may be
    /// at their two-level path): a file elsewhere is not a blob.
    pub(crate) fn is_place_of(&self, hash: &BlobHash, path: &Path) -> bool {
        path == self.blobs.join(hash.relative_path())
            || (self.two_levels && path == self.blobs.join(hash.two_level_path()))
    }

    /// Whether a blob with this hash is stored.
    pub fn contains(&self, hash: &BlobHash) -> bool {
        self.path_of(hash).is_file()
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, hash: &BlobHash) -> Result<File> {
        let path = self.path_of(hash);
        File::open(&path).at("open blob", path)
    }

    /// Starts a new blob: a fresh file in `tmp/` that chunks are streamed into.
    pub fn writer(&self) -> Result<BlobWriter> {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!("{}-{n}.part", std::process::id()));
        let file = create_read_only(&path).at("create", &path)?;
        Ok(BlobWriter {
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            path,
            hasher: Sha256::new(),
            len: 0,
            done: false,
            keep: false,
            keep_fd: self.durability.per_file(),
            read_only: true,
        })
    }

    /// Stores one whole byte slice durably (a convenience over writer + persist).
    pub fn put(&self, bytes: &[u8]) -> Result<StoredBlob> {
        let mut writer = self.writer()?;
        writer.write_chunk(bytes)?;
        let stored = self.persist(vec![writer.finish()?])?;
        Ok(stored
            .into_iter()
            .next()
            .expect("persist returns one entry per input"))
    }

    /// Makes a group of finished blobs durable and visible under their hash.
    ///
    /// The files' data is made durable (one `syncfs`, or an fsync each), then each is renamed
    /// into place unless identical bytes are already stored (then the temporary copy is
    /// dropped), then the names are made durable (one `syncfs`, or an fsync of every directory
    /// touched). When this returns `Ok`, every returned blob survives a crash.
    pub fn persist(&self, group: Vec<PendingBlob>) -> Result<Vec<StoredBlob>> {
        match &self.durability {
            Durability::Syncfs(fs) => {
                fs.sync().at("sync the group's data", &self.tmp)?;
                crate::crash_point::hit("group-data-synced");
                let stored = self.rename_into_place(group, &mut BTreeSet::new())?;
                crate::crash_point::hit("group-renamed");
                fs.sync().at("sync the group's names", &self.blobs)?;
                Ok(stored)
            }
            Durability::PerFile(_) => {
                for blob in &group {
                    if let Some(file) = &blob.file {
                        file.sync_data().at("fsync", &blob.path)?;
                    }
                }
                crate::crash_point::hit("group-data-synced");
                let mut dirs = BTreeSet::new();
                let stored = self.rename_into_place(group, &mut dirs)?;
                crate::crash_point::hit("group-renamed");
                for dir in &dirs {
                    fsync_dir(dir)?;
                }
                Ok(stored)
            }
        }
    }

    /// Renames each blob into place, or drops it when identical bytes are stored; the
    /// directories a name was added to go into `dirs`.
    fn rename_into_place(
        &self,
        group: Vec<PendingBlob>,
        dirs: &mut BTreeSet<PathBuf>,
    ) -> Result<Vec<StoredBlob>> {
        let mut stored = Vec::with_capacity(group.len());
        for mut blob in group {
            let target = self.blobs.join(blob.hash.relative_path());
            let parent = target
                .parent()
                .expect("blob paths have a parent")
                .to_path_buf();
            let deduplicated = !self.rename_creating_parent(&blob.path, &target, &parent, dirs)?;
            if deduplicated {
                fs::remove_file(&blob.path).at("remove duplicate", &blob.path)?;
            }
            blob.persisted = true;
            dirs.insert(parent);
            stored.push(StoredBlob {
                hash: blob.hash,
                len: blob.len,
                deduplicated,
            });
        }
        Ok(stored)
    }

    /// Renames `from` to `target` unless identical bytes are stored there already
    /// (`Ok(false)`, `from` left in place); when the fan-out directory `parent` is missing (a
    /// store opened without [`BlobStore::create_fan_out`]) it is created first and `blobs/`
    /// goes into `dirs` for fsync.
    fn rename_creating_parent(
        &self,
        from: &Path,
        target: &Path,
        parent: &Path,
        dirs: &mut BTreeSet<PathBuf>,
    ) -> Result<bool> {
        match rename_no_replace(from, target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !parent.is_dir() => {
                create_dir_if_missing(parent)?;
                dirs.insert(self.blobs.clone());
                rename_no_replace(from, target).at("rename into place", target)
            }
            other => other.at("rename into place", target),
        }
    }

    /// Creates the 256 fan-out directories `blobs/00` … `blobs/ff` that are missing, so that
    /// persisting a blob is a rename and never a `mkdir`; when any was created, `blobs/` is
    /// fsynced. Returns how many were created.
    pub(crate) fn create_fan_out(&self) -> Result<u32> {
        let mut created = 0;
        for byte in 0..=255u8 {
            let dir = self.blobs.join(hex::encode([byte]));
            if create_dir_if_missing(&dir)? {
                created += 1;
            }
        }
        if created > 0 {
            fsync_dir(&self.blobs)?;
        }
        Ok(created)
    }
}

/// Creates one directory; `Ok(false)` when it was already there.
fn create_dir_if_missing(dir: &Path) -> Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).at("create directory", dir),
    }
}

/// Creates a new file, read-only (mode 0444), open for writing.
fn create_read_only(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
}

/// Fsyncs a directory so that the names created in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("fsync directory", dir)
}

/// A blob being written: chunks in, SHA-256 computed in the same pass.
///
/// Dropping it before [`BlobWriter::finish`] removes the temporary file, unless it is a kept
/// partial body (`BlobWriter::continue_at`), whose bytes stay to be resumed.
#[derive(Debug)]
pub struct BlobWriter {
    out: BufWriter<File>,
    path: PathBuf,
    hasher: Sha256,
    len: u64,
    done: bool,
    keep: bool,
    /// Whether the finished blob keeps its descriptor (to fsync it: per-file durability).
    keep_fd: bool,
    /// Whether the file was created read-only (else [`BlobWriter::finish`] makes it so).
    read_only: bool,
}

impl BlobWriter {
    /// Writes the blob at `path` from byte `from` on: the first `from` bytes already there
    /// are read back and hashed, anything after them is cut off (`from` 0 starts afresh).
    /// Dropped before [`BlobWriter::finish`], the file stays, with what was written.
    /// `buffer` is the write buffer's size ([`buffer_for`]).
    pub(crate) fn continue_at(
        path: PathBuf,
        from: u64,
        buffer: usize,
        keep_fd: bool,
    ) -> Result<BlobWriter> {
        if from == 0 {
            // The usual case, a new file: created read-only (its descriptor still writes),
            // so finishing it needs no chmod.
            let created = match create_read_only(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let dir = path.parent().unwrap_or(Path::new("."));
                    fs::create_dir_all(dir).at("create directory", dir)?;
                    create_read_only(&path)
                }
                other => other,
            };
            match created {
                Ok(file) => {
                    return Ok(BlobWriter {
                        out: BufWriter::with_capacity(buffer, file),
                        path,
                        hasher: Sha256::new(),
                        len: 0,
                        done: false,
                        keep: true,
                        keep_fd,
                        read_only: true,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).at("create", &path),
            }
        }
        if path.exists() {
            // A body finished but never persisted (a kill between the two) is read-only.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
                .at("make writable", &path)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(from == 0)
            .open(&path)
            .at("open", &path)?;
        let mut hasher = Sha256::new();
        if from > 0 {
            let read = io::copy(&mut io::Read::take(&mut file, from), &mut hasher)
                .at("read back", &path)?;
            if read != from {
                return Err(super::StageError::Refused(format!(
                    "{} holds {read} bytes, fewer than the {from} to continue from",
                    path.display()
                )));
            }
            file.set_len(from).at("truncate", &path)?;
        }
        io::Seek::seek(&mut file, io::SeekFrom::Start(from)).at("seek", &path)?;
        Ok(BlobWriter {
            out: BufWriter::with_capacity(buffer, file),
            path,
            hasher,
            len: from,
            done: false,
            keep: true,
            keep_fd,
            read_only: false,
        })
    }

    /// Removes the file when the writer is dropped unfinished (its bytes cannot be trusted).
    pub(crate) fn discard_on_drop(&mut self) {
        self.keep = false;
    }

    /// Appends one chunk (any size; the writer never needs the whole message at once).
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<()> {
        self.out.write_all(chunk).at("write", &self.path)?;
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Closes the temporary file (flushed, read-only) and names it by its hash; under
    /// per-file durability its descriptor is kept for the fsync.
    /// The blob is not durable until it goes through [`BlobStore::persist`].
    pub fn finish(mut self) -> Result<PendingBlob> {
        self.out.flush().at("write", &self.path)?;
        if !self.read_only {
            self.out
                .get_ref()
                .set_permissions(fs::Permissions::from_mode(0o444))
                .at("make read-only", &self.path)?;
        }
        let file = if self.keep_fd {
            Some(self.out.get_ref().try_clone().at("reopen", &self.path)?)
        } else {
            None
        };
        let hash = BlobHash::from_digest(std::mem::take(&mut self.hasher).finalize().into());
        self.done = true;
        Ok(PendingBlob {
            file,
            path: std::mem::take(&mut self.path),
            hash,
            len: self.len,
            persisted: false,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_chunk(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.keep {
            let _ = self.out.flush();
        } else {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A finished blob in `tmp/`, waiting for [`BlobStore::persist`].
///
/// Dropping it without persisting removes the temporary file.
#[derive(Debug)]
pub struct PendingBlob {
    /// Open until the data is fsynced ([`PendingBlob::sync`] or [`BlobStore::persist`]).
    file: Option<File>,
    path: PathBuf,
    hash: BlobHash,
    len: u64,
    persisted: bool,
}

impl PendingBlob {
    /// The SHA-256 of the bytes written.
    pub fn hash(&self) -> BlobHash {
        self.hash
    }

    /// The number of bytes written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the blob is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it holds a descriptor to fsync before it is persisted (per-file durability);
    /// when not, [`PendingBlob::sync`] does nothing.
    pub fn needs_sync(&self) -> bool {
        self.file.is_some()
    }

    /// Fsyncs the blob's data and closes its descriptor (blocking: call it on a blocking
    /// thread). [`BlobStore::persist`] then only renames it into place. On error the
    /// temporary file is removed.
    pub fn sync(mut self) -> Result<Self> {
        if let Some(file) = self.file.take() {
            file.sync_data().at("fsync", &self.path)?;
        }
        Ok(self)
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A blob that is durable under its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    /// Its name.
    pub hash: BlobHash,
    /// Its length in bytes.
    pub len: u64,
    /// True when identical bytes were stored already and this copy was dropped.
    pub deduplicated: bool,
}

#[cfg(test)]
#[path = "blobs_tests.rs"]
mod tests;
