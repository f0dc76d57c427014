//! Offline verification: re-hash every blob, check every row against its blob.
//!
//! Blobs are immutable once written and the stage lock keeps writers out while verify holds
//! a read lock, so each blob is mapped with memmap2 and hashed in parallel with rayon.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::Stage;
use super::error::Result;
use super::gc::{BlobFile, list_blob_files};
use super::hash::BlobHash;
use super::index::BlobRef;

/// What is wrong with a blob that rows depend on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Damage {
    /// No file under the blob's name.
    Missing,
    /// The file could not be read.
    Unreadable {
        /// The operating system's error.
        error: String,
    },
    /// The bytes no longer hash to the blob's name (flipped, truncated, overwritten).
    ContentMismatch {
        /// SHA-256 of what the file holds now.
        actual_sha256: String,
        /// Its length now.
        actual_len: u64,
    },
    /// The blob is intact but a row records another size for it.
    RowSizeMismatch {
        /// The file's length.
        actual_len: u64,
    },
}

/// A damaged blob with every message that depends on it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DamagedBlob {
    /// The blob's name (its expected SHA-256).
    pub blob: String,
    /// What is wrong.
    pub damage: Damage,
    /// The rows (mailbox / folder / UID) that name it.
    pub messages: Vec<BlobRef>,
}

/// A blob that no row names: garbage for `gc`, not a loss.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OrphanBlob {
    /// The blob's name.
    pub blob: String,
    /// Its length.
    pub len: u64,
}

/// The result of a verify run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Blob files re-hashed.
    pub blobs_checked: u64,
    /// Bytes re-hashed.
    pub bytes_hashed: u64,
    /// Staged message rows checked.
    pub rows_checked: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Blobs that rows need and that are missing or damaged.
    pub damaged: Vec<DamagedBlob>,
    /// Blob files no row names.
    pub orphans: Vec<OrphanBlob>,
    /// Files under `blobs/` that are not blobs.
    pub foreign_files: Vec<PathBuf>,
    /// Files left in `tmp/` by an interrupted run.
    pub tmp_leftovers: u64,
    /// Bodies cut part-way, kept in `tmp/partial/` for the next pass to resume (not
    /// garbage; `gc` removes the ones no pass can resume any more).
    pub partials: u64,
}

impl VerifyReport {
    /// True when every row's blob is present and intact and there is no garbage either.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
            && self.orphans.is_empty()
            && self.foreign_files.is_empty()
            && self.tmp_leftovers == 0
    }

    /// 0 clean; 1 when a message's bytes are missing or damaged; 2 when only garbage was found.
    pub fn exit_code(&self) -> i32 {
        if !self.damaged.is_empty() {
            1
        } else if self.is_clean() {
            0
        } else {
            2
        }
    }

    /// The report as an admin reads it: every problem with the messages it affects.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for d in &self.damaged {
            let what = match &d.damage {
                Damage::Missing => "MISSING: no file".to_owned(),
                Damage::Unreadable { error } => format!("UNREADABLE: {error}"),
                Damage::ContentMismatch {
                    actual_sha256,
                    actual_len,
                } => format!("DAMAGED: now {actual_len} bytes hashing to {actual_sha256}"),
                Damage::RowSizeMismatch { actual_len } => {
                    format!("SIZE MISMATCH: file has {actual_len} bytes")
                }
            };
            let _ = writeln!(out, "blob {} {what}", d.blob);
            for m in &d.messages {
                let _ = writeln!(out, "  needed by {m} (row says {} bytes)", m.size);
            }
        }
        for o in &self.orphans {
            let _ = writeln!(
                out,
                "orphan blob {} ({} bytes): no message row names it",
                o.blob, o.len
            );
        }
        for f in &self.foreign_files {
            let _ = writeln!(
                out,
                "foreign file {}: not a blob name, left alone",
                f.display()
            );
        }
        if self.tmp_leftovers > 0 {
            let _ = writeln!(
                out,
                "{} leftover file(s) in tmp/ from an interrupted run",
                self.tmp_leftovers
            );
        }
        if self.partials > 0 {
            let _ = writeln!(
                out,
                "{} partial bod(ies) in tmp/partial/, for the next pass to resume",
                self.partials
            );
        }
        let mib = self.bytes_hashed as f64 / (1024.0 * 1024.0);
        let _ = writeln!(
            out,
            "verified {} blobs ({mib:.1} MiB) and {} message rows in {:.2} s ({:.0} MiB/s)",
            self.blobs_checked,
            self.rows_checked,
            self.seconds,
            mib / self.seconds.max(1e-9),
        );
        let verdict = match self.exit_code() {
            0 => "clean".to_owned(),
            1 => format!(
                "{} damaged or missing blob(s): the messages listed above must be extracted again",
                self.damaged.len()
            ),
            _ => "messages intact; garbage found: run `mailstage-extract gc` to remove it".into(),
        };
        let _ = writeln!(out, "result: {verdict}");
        out
    }
}

/// Outcome of re-hashing one file.
enum Hashed {
    Ok { hash: BlobHash, len: u64 },
    Err(String),
}

/// Hashes a file through a read-only memory map (or directly when it is empty).
fn hash_file(path: &Path) -> Hashed {
    let run = || -> std::io::Result<(BlobHash, u64)> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok((BlobHash::of(&[]), 0));
        }
        // SAFETY: blobs are immutable once renamed into place, and the caller holds the stage
        // lock, which keeps every mailstage writer (and gc) away while the map is alive.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok((BlobHash::from_digest(Sha256::digest(&map[..]).into()), len))
    };
    match run() {
        Ok((hash, len)) => Hashed::Ok { hash, len },
        Err(e) => Hashed::Err(e.to_string()),
    }
}

/// Verifies the whole stage. The stage may be open for reading or writing.
pub fn verify(stage: &Stage) -> Result<VerifyReport> {
    let started = Instant::now();
    let rows = stage.index().staged_messages(None)?;
    let rows_checked = rows.len() as u64;
    let mut by_blob: HashMap<BlobHash, Vec<BlobRef>> = HashMap::new();
    for row in rows {
        by_blob.entry(row.origin.blob).or_default().push(row.origin);
    }
    let referenced = stage.index().referenced_blobs()?;
    let files = list_blob_files(stage.blobs())?;
    let hashed: Vec<(&BlobFile, Hashed)> = files
        .par_iter()
        .filter(|f| f.hash.is_some())
        .map(|f| (f, hash_file(&f.path)))
        .collect();

    let mut report = VerifyReport {
        rows_checked,
        tmp_leftovers: std::fs::read_dir(stage.blobs().tmp_dir())
            .map(|d| {
                d.filter(|e| e.as_ref().is_ok_and(|e| e.path().is_file()))
                    .count() as u64
            })
            .unwrap_or(0),
        partials: stage.blobs().partials()?.len() as u64,
        foreign_files: files
            .iter()
            .filter(|f| f.hash.is_none())
            .map(|f| f.path.clone())
            .collect(),
        ..VerifyReport::default()
    };
    let mut seen = std::collections::HashSet::new();
    for (file, outcome) in hashed {
        let name = file.hash.expect("filtered to blob names");
        seen.insert(name);
        report.blobs_checked += 1;
        let damage = match outcome {
            Hashed::Err(error) => Some(Damage::Unreadable { error }),
            Hashed::Ok { hash, len } => {
                report.bytes_hashed += len;
                if hash != name {
                    Some(Damage::ContentMismatch {
                        actual_sha256: hash.to_hex(),
                        actual_len: len,
                    })
                } else if by_blob
                    .get(&name)
                    .is_some_and(|refs| refs.iter().any(|r| r.size != len))
                {
                    Some(Damage::RowSizeMismatch { actual_len: len })
                } else {
                    None
                }
            }
        };
        match (damage, referenced.contains(&name)) {
            (Some(damage), _) if by_blob.contains_key(&name) => report.damaged.push(DamagedBlob {
                blob: name.to_hex(),
                damage,
                messages: by_blob[&name].clone(),
            }),
            (_, false) => report.orphans.push(OrphanBlob {
                blob: name.to_hex(),
                len: file.len,
            }),
            _ => {}
        }
    }
    for (blob, refs) in &by_blob {
        if !seen.contains(blob) {
            report.damaged.push(DamagedBlob {
                blob: blob.to_hex(),
                damage: Damage::Missing,
                messages: refs.clone(),
            });
        }
    }
    report.damaged.sort_by(|a, b| a.blob.cmp(&b.blob));
    report.orphans.sort_by(|a, b| a.blob.cmp(&b.blob));
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
