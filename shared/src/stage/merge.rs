//! `stage merge`: folding another stage (a shard's, or one copied from another machine) into
//! this one. Blobs first: each blob the other stage's rows name and this one lacks is copied
//! through a [`BlobWriter`](super::BlobWriter), hashed on the way (a blob damaged in transit
//! or on the other disk is refused, naming it) and made durable in groups; then the rows, in
//! one transaction ([`Index::merge_rows_from`](super::Index::merge_rows_from)). A crash
//! before the rows commit leaves at most blobs no row names, which `gc` removes and a second
//! merge reuses; merging again adds nothing.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{IoContext, Result, StageError};
use super::hash::BlobHash;
use super::index::{MergeScope, RowsMerged};
use super::{Access, PendingBlob, Stage};

/// Blobs made durable together (one fsync of their directories per group).
const GROUP_BLOBS: usize = 256;
/// Or this many bytes, whichever comes first.
const GROUP_BYTES: u64 = 64 << 20;

/// What merging one stage did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergedStage {
    /// The stage merged from.
    pub source: PathBuf,
    /// Blobs copied (this stage did not hold them).
    pub blobs_copied: u64,
    /// Their bytes.
    pub bytes_copied: u64,
    /// Blobs this stage already held.
    pub blobs_present: u64,
    /// The rows added or brought forward.
    pub rows: RowsMerged,
}

impl Stage {
    /// Merges the stage at `other` into this one (opened for writing): blobs, then rows. The
    /// other stage is opened for reading for the whole merge, so no process writes it
    /// meanwhile.
    pub fn merge_from(&mut self, other: &Path) -> Result<MergedStage> {
        if self.access != Access::Write {
            return Err(StageError::Refused(
                "merging needs the stage opened for writing".into(),
            ));
        }
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same(&self.root, other) {
            return Err(StageError::Refused(format!(
                "{} is the stage being merged into",
                other.display()
            )));
        }
        let source = Stage::open(other, Access::Read)?;
        let mut merged = MergedStage {
            source: other.to_path_buf(),
            ..MergedStage::default()
        };
        let mut group = Vec::new();
        let mut group_bytes = 0;
        for name in source.index().blob_names()? {
            let hash = BlobHash::parse(&name)?;
            if self.blobs.contains(&hash) {
                merged.blobs_present += 1;
                continue;
            }
            let pending = self.copy_blob(&source, &hash)?;
            merged.blobs_copied += 1;
            merged.bytes_copied += pending.len();
            group_bytes += pending.len();
            group.push(pending.sync()?);
            if group.len() >= GROUP_BLOBS || group_bytes >= GROUP_BYTES {
                self.blobs.persist(std::mem::take(&mut group))?;
                group_bytes = 0;
            }
        }
        self.blobs.persist(group)?;
        crate::crash_point::hit("merge-blobs-durable");
        merged.rows = self
            .index
            .merge_rows_from(source.index().path(), MergeScope::Everything)?;
        Ok(merged)
    }

    /// Copies one blob of `source` into `tmp/`, hashing it; refused when the bytes do not
    /// hash to the blob's name.
    fn copy_blob(&self, source: &Stage, hash: &BlobHash) -> Result<PendingBlob> {
        let from = source.blobs.path_of(hash);
        let mut file = File::open(&from).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StageError::Refused(format!(
                "stage {} names blob {} but does not hold it (run verify there)",
                source.root.display(),
                hash.to_hex()
            )),
            _ => StageError::Io {
                action: "open blob",
                path: from.clone(),
                source: e,
            },
        })?;
        let mut writer = self.blobs.writer()?;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = file.read(&mut buf).at("read blob", &from)?;
            if n == 0 {
                break;
            }
            writer.write_chunk(&buf[..n])?;
        }
        let pending = writer.finish()?;
        if pending.hash() != *hash {
            return Err(StageError::Refused(format!(
                "blob {} of stage {} does not hash to its name (damaged; run verify there)",
                hash.to_hex(),
                source.root.display()
            )));
        }
        Ok(pending)
    }
}
