//! A dry run's (and `lint`'s) prediction of what the target will not store: messages over
//! its size limit, messages with lines Exchange Online refuses, and messages it refused last
//! time (which a real run retries). Nothing here talks to the target: it reads the index's
//! records and the blobs, and takes the size limit as given.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::UploadCounts;
use super::long_lines::{EXCHANGE_MAX_LINE, longest_lines};
use super::mapping::MappedFolder;
use crate::report::table::human_bytes;
use crate::stage::index::{PlanItem, UploadItem};
use crate::stage::{BlobHash, BlobStore, StageError};

/// Exchange Online's default maximum message size, used for a Microsoft 365 target that
/// announces no APPENDLIMIT: 35 MiB, the default MaxReceiveSize of a mailbox (Microsoft
/// documents 35 MB to send and 36 MB to receive; the lower figure is taken, so a prediction
/// errs towards a warning). Admins raise it per mailbox (`Set-Mailbox -MaxReceiveSize`, up
/// to 150 MB), which a dry run cannot see.
pub const EXCHANGE_DEFAULT_MAX_SIZE: u64 = 35 * 1024 * 1024;

/// Why a dry run expects a message not to be stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Larger than the target's size limit.
    OverSizeLimit,
    /// Holds a line longer than Exchange Online accepts ([`EXCHANGE_MAX_LINE`]).
    LongLine,
    /// The target refused it last time; a real run sends it again.
    RefusedBefore,
}

/// Where a target's size limit comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// The target announced `APPENDLIMIT=N` (RFC 7889).
    Appendlimit,
    /// Microsoft 365 without APPENDLIMIT: [`EXCHANGE_DEFAULT_MAX_SIZE`].
    ExchangeDefault,
    /// Given by the admin (`lint --size-limit`), e.g. a raised MaxReceiveSize.
    Given,
}

/// The largest message a target accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SizeLimit {
    /// Bytes; a message of exactly this size is accepted.
    pub bytes: u64,
    /// Where the figure comes from.
    pub source: LimitSource,
}

impl SizeLimit {
    /// The limit of a target: its APPENDLIMIT, else Exchange Online's default for
    /// Microsoft 365, else none known.
    pub fn of_target(append_limit: Option<u64>, m365: bool) -> Option<Self> {
        match (append_limit, m365) {
            (Some(bytes), _) => Some(Self {
                bytes,
                source: LimitSource::Appendlimit,
            }),
            (None, true) => Some(Self {
                bytes: EXCHANGE_DEFAULT_MAX_SIZE,
                source: LimitSource::ExchangeDefault,
            }),
            (None, false) => None,
        }
    }

    /// Where the figure comes from, as an admin reads it.
    pub fn describe_source(&self) -> &'static str {
        match self.source {
            LimitSource::Appendlimit => "the target's APPENDLIMIT",
            LimitSource::ExchangeDefault => {
                "Exchange Online's default; an admin can raise MaxReceiveSize for the mailbox"
            }
            LimitSource::Given => "given with --size-limit",
        }
    }
}

/// A message a dry run expects the target not to store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PredictedSkip {
    /// The source folder.
    pub folder: String,
    /// The target folder it would be sent to (levels joined by `/`).
    pub target_folder: String,
    /// Its UID in the source folder.
    pub uid: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Why it is expected not to arrive.
    pub reason: SkipReason,
    /// The reason as an admin reads it.
    pub text: String,
    /// The server's words when it refused the message last time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_last_time: Option<String>,
}

/// What a dry run found for one mailbox.
#[derive(Clone, Debug, Default)]
pub(crate) struct Prediction {
    /// The target's size limit, when one is known.
    pub size_limit: Option<SizeLimit>,
    /// Predicted skips, by source folder name, then UID ([`Prediction::sort`]).
    pub skips: Vec<PredictedSkip>,
    /// The server's words at the most recent refusal of a message it will be sent again.
    pub last_refusal: Option<String>,
}

impl Prediction {
    /// Puts the skips in their order: by source folder name, then UID.
    pub fn sort(&mut self) {
        self.skips
            .sort_by(|a, b| (&a.folder, a.uid).cmp(&(&b.folder, b.uid)));
    }

    /// Adds the prediction's figures to a mailbox's counts.
    pub fn count(&self, counts: &mut UploadCounts) {
        let refusals = |s: &&PredictedSkip| s.reason != SkipReason::RefusedBefore;
        counts.predicted_refusals = self.skips.iter().filter(refusals).count() as u64;
        counts.refused_before = self
            .skips
            .iter()
            .filter(|s| s.refused_last_time.is_some())
            .count() as u64;
    }
}

/// The skips among one part of the messages a run would send (`sendable`, each in a folder
/// of `folders` that has a target; the words of a refusal last time with each). Blobs are
/// scanned for long lines only for Microsoft 365 (in parallel, blocking: call it off the
/// async runtime). Skips come in the order of `sendable`.
pub(crate) fn predict_skips(
    blobs: &BlobStore,
    m365: bool,
    size_limit: Option<SizeLimit>,
    folders: &HashMap<i64, &MappedFolder>,
    sendable: &[PlanItem],
) -> Result<Vec<PredictedSkip>, StageError> {
    let longest = if m365 {
        let within = |p: &&PlanItem| size_limit.is_none_or(|l| p.item.size <= l.bytes);
        longest_line_of(blobs, sendable.iter().filter(within).map(|p| &p.item))?
    } else {
        HashMap::new()
    };
    Ok(sendable
        .iter()
        .filter_map(|PlanItem { item, refused_with }| {
            let words = refused_with.as_deref();
            let line = longest.get(&item.blob).copied();
            let (reason, text) = judge(item.size, size_limit, line, words)?;
            let folder = folders.get(&item.folder_id)?;
            Some(PredictedSkip {
                folder: folder.source.clone(),
                target_folder: folder.target.as_ref()?.join("/"),
                uid: item.uid,
                size: item.size,
                reason,
                text,
                refused_last_time: refused_with.clone(),
            })
        })
        .collect())
}

/// The longest line of each distinct blob of `items`; an unreadable blob is a stage error
/// naming it (a real run would stop on it too).
fn longest_line_of<'a>(
    blobs: &BlobStore,
    items: impl Iterator<Item = &'a UploadItem>,
) -> Result<HashMap<BlobHash, usize>, StageError> {
    let hashes: Vec<BlobHash> = items
        .map(|i| i.blob)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let paths: Vec<PathBuf> = hashes.iter().map(|b| blobs.path_of(b)).collect();
    let found = longest_lines(&paths);
    hashes
        .into_iter()
        .zip(paths.into_iter().zip(found))
        .map(|(hash, (path, r))| {
            r.map(|n| (hash, n)).map_err(|source| StageError::Io {
                action: "scan blob",
                path,
                source,
            })
        })
        .collect()
}

/// Why one message is expected not to arrive, if it is: too large first, then a long line,
/// then a refusal last time. A message refused last time for which neither of the first
/// two holds is reported as [`SkipReason::RefusedBefore`], to be retried.
fn judge(
    size: u64,
    limit: Option<SizeLimit>,
    longest_line: Option<usize>,
    refused_with: Option<&str>,
) -> Option<(SkipReason, String)> {
    let again = refused_with
        .map(|w| format!("; refused last time too: {w}"))
        .unwrap_or_default();
    if let Some(l) = limit.filter(|l| size > l.bytes) {
        let text = format!(
            "over the size limit of {} bytes ({}, {}){again}",
            l.bytes,
            human_bytes(l.bytes),
            l.describe_source()
        );
        return Some((SkipReason::OverSizeLimit, text));
    }
    if let Some(n) = longest_line.filter(|n| *n > EXCHANGE_MAX_LINE) {
        let text = format!(
            "a line of {n} characters; Exchange Online refuses lines over {EXCHANGE_MAX_LINE}{again}"
        );
        return Some((SkipReason::LongLine, text));
    }
    let words = refused_with?;
    Some((
        SkipReason::RefusedBefore,
        format!("refused last time, will be retried: {words}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: SizeLimit = SizeLimit {
        bytes: 1000,
        source: LimitSource::Appendlimit,
    };

    #[test]
    fn size_limit_comes_from_appendlimit_then_exchange_default() {
        assert_eq!(SizeLimit::of_target(Some(1000), false), Some(LIMIT));
        assert_eq!(SizeLimit::of_target(Some(1000), true), Some(LIMIT));
        assert_eq!(
            SizeLimit::of_target(None, true).map(|l| (l.bytes, l.source)),
            Some((36_700_160, LimitSource::ExchangeDefault))
        );
        assert_eq!(SizeLimit::of_target(None, false), None);
    }

    #[test]
    fn judge_orders_reasons_and_keeps_the_servers_words() {
        assert_eq!(judge(1000, Some(LIMIT), None, None), None, "at the limit");
        let (reason, text) = judge(1001, Some(LIMIT), None, None).unwrap();
        assert_eq!(reason, SkipReason::OverSizeLimit);
        assert!(
            text.contains("limit of 1000 bytes") && text.contains("APPENDLIMIT"),
            "{text}"
        );
        assert_eq!(judge(5, None, Some(EXCHANGE_MAX_LINE), None), None);
        let (reason, text) = judge(5, None, Some(EXCHANGE_MAX_LINE + 1), None).unwrap();
        assert_eq!(reason, SkipReason::LongLine);
        assert!(text.contains("10001 characters"), "{text}");
        let (reason, text) = judge(5, Some(LIMIT), Some(3), Some("NO too big")).unwrap();
        assert_eq!(reason, SkipReason::RefusedBefore);
        assert!(text.contains("will be retried: NO too big"), "{text}");
        let (reason, text) = judge(2000, Some(LIMIT), Some(20_000), Some("NO too big")).unwrap();
        assert_eq!(reason, SkipReason::OverSizeLimit);
        assert!(
            text.ends_with("refused last time too: NO too big"),
            "{text}"
        );
    }

    #[test]
    fn reasons_have_snake_case_names() {
        let names: Vec<String> = [
            SkipReason::OverSizeLimit,
            SkipReason::LongLine,
            SkipReason::RefusedBefore,
        ]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                r#""over_size_limit""#,
                r#""long_line""#,
                r#""refused_before""#
            ]
        );
    }
}
