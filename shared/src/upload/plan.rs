//! One mailbox's plan from the stage alone: where each folder goes (with Microsoft 365's
//! case merges), what would be sent, and what the target is expected not to store. The dry
//! run computes it with what the target announced (its folders, its APPENDLIMIT); `lint`
//! with what it assumes offline ([`TargetView::offline`]). Both call [`plan`], so they
//! predict the same skips from the same facts.

use std::collections::{HashMap, HashSet};

use super::case_merge::merge_case_variants;
use super::mapping::{MappedFolder, MappingRules, Role, TargetFolders, map_folders};
use super::predict::{Prediction, SizeLimit, predict_skips};
use super::{MailboxUpload, UploadCounts};
use crate::stage::index::{QueuedFolder, SourceFolder};
use crate::stage::{BlobStore, Index, Stage, StageError, StageHandle};

/// How many queued messages a plan reads (and scans for long lines) at a time, so planning
/// a mailbox holds no list of all of it.
pub(crate) const PLAN_CHUNK: usize = 4096;

/// Read access to the index for a plan: `lint` holds the index, a dry run reaches it
/// through the pipeline's mutex (taken for one read at a time).
pub(crate) trait ReadIndex {
    /// Runs `f` on the index.
    fn read<T>(&self, f: impl FnOnce(&Index) -> Result<T, StageError>) -> Result<T, StageError>;
}

impl ReadIndex for Index {
    fn read<T>(&self, f: impl FnOnce(&Index) -> Result<T, StageError>) -> Result<T, StageError> {
        f(self)
    }
}

impl ReadIndex for StageHandle {
    fn read<T>(&self, f: impl FnOnce(&Index) -> Result<T, StageError>) -> Result<T, StageError> {
        self.index(|i| f(i))
    }
}

/// What the target is, as far as a plan knows it.
#[derive(Clone, Debug, Default)]
pub struct TargetView {
    /// Its folders, roles and delimiter.
    pub folders: TargetFolders,
    /// Whether it is Microsoft 365 (its folder names, case merges, long lines).
    pub m365: bool,
    /// The largest message it accepts, when known.
    pub size_limit: Option<SizeLimit>,
}

impl TargetView {
    /// A target known only by its kind (no connection): for Microsoft 365 its delimiter `/`,
    /// `INBOX` and the folders of its special-use roles (`Sent Items`, `Deleted Items`, …),
    /// and Exchange Online's default size limit unless `size_limit` is given; for another
    /// IMAP server nothing (its delimiter, folders and APPENDLIMIT are unknown offline).
    pub fn offline(m365: bool, size_limit: Option<SizeLimit>) -> Self {
        if !m365 {
            return Self {
                size_limit,
                ..Self::default()
            };
        }
        let roles = [
            Role::Sent,
            Role::Drafts,
            Role::Trash,
            Role::Junk,
            Role::Archive,
        ];
        let folders = TargetFolders {
            delimiter: '/',
            roles: roles
                .iter()
                .map(|r| (*r, vec![r.m365_name().to_owned()]))
                .collect(),
            existing: roles
                .iter()
                .map(|r| vec![r.m365_name().to_owned()])
                .chain(std::iter::once(vec!["INBOX".to_owned()]))
                .collect(),
        };
        Self {
            folders,
            m365,
            size_limit: size_limit.or_else(|| SizeLimit::of_target(None, true)),
        }
    }
}

/// Maps a mailbox's source folders onto the target; on Microsoft 365 case variants are
/// merged ([`merge_case_variants`]).
pub(crate) fn map_mailbox(
    sources: &[SourceFolder],
    target: &TargetFolders,
    m365: bool,
    rules: &MappingRules,
) -> Vec<MappedFolder> {
    let mut mapped = map_folders(sources, target, m365, rules);
    if m365 {
        merge_case_variants(&mut mapped, target);
    }
    mapped
}

/// The target folder of each source folder that is not left out, by source folder row.
pub(crate) fn destinations(mapped: &[MappedFolder]) -> HashMap<i64, &Vec<String>> {
    mapped
        .iter()
        .filter_map(|m| Some((m.source_id, m.target.as_ref()?)))
        .collect()
}

/// One mailbox's plan: the folder mapping, what would be sent, and the predicted skips.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    /// Where each source folder goes.
    pub folders: Vec<MappedFolder>,
    /// Messages and bytes that would be sent.
    pub planned: (u64, u64),
    /// Messages in folders left out by the mapping.
    pub left_out: u64,
    /// The predicted skips.
    pub prediction: Prediction,
}

impl Plan {
    /// Adds the plan's figures to a mailbox's counts.
    pub fn count(&self, counts: &mut UploadCounts) {
        (counts.planned, counts.planned_bytes) = self.planned;
        counts.left_out = self.left_out;
        self.prediction.count(counts);
    }
}

/// Plans one mailbox's upload to the target named `target`: maps its folders onto `view`,
/// counts what would be sent (the messages refused last time too: a real run retries them)
/// and predicts what the target will not store, reading the queue `part` messages at a time
/// ([`PLAN_CHUNK`]) and, on Microsoft 365, blobs for long lines: call it off the async
/// runtime.
pub(crate) fn plan(
    index: &impl ReadIndex,
    blobs: &BlobStore,
    target: &str,
    mb: &MailboxUpload,
    view: &TargetView,
    rules: &MappingRules,
    part: usize,
) -> Result<Plan, StageError> {
    let sources = index.read(|i| i.upload_folders(mb.mailbox_id))?;
    let folders = map_mailbox(&sources, &view.folders, view.m365, rules);
    let dest_of = destinations(&folders);
    let queued = index.read(|i| i.upload_queue_folders(target, mb.mailbox_id, true))?;
    let (sendable, left_out): (Vec<&QueuedFolder>, Vec<&QueuedFolder>) = queued
        .iter()
        .partition(|q| dest_of.contains_key(&q.folder_id));
    let planned = (
        sendable.iter().map(|q| q.messages).sum(),
        sendable.iter().map(|q| q.bytes).sum(),
    );
    let sendable_ids: HashSet<i64> = sendable.iter().map(|q| q.folder_id).collect();
    let mut prediction = Prediction {
        size_limit: view.size_limit,
        skips: Vec::new(),
        last_refusal: index.read(|i| i.latest_refusal(target, mb.mailbox_id, &sendable_ids))?,
    };
    let by_source: HashMap<i64, &MappedFolder> = folders.iter().map(|m| (m.source_id, m)).collect();
    for folder in &sendable {
        let mut after = (0, 0);
        loop {
            let items = index.read(|i| {
                i.planned_queue_after(target, mb.mailbox_id, folder.folder_id, after, part)
            })?;
            let Some(last) = items.last() else { break };
            after = (last.item.uidvalidity, last.item.uid);
            let skips = predict_skips(blobs, view.m365, view.size_limit, &by_source, &items)?;
            prediction.skips.extend(skips);
        }
    }
    prediction.sort();
    Ok(Plan {
        folders,
        planned,
        left_out: left_out.iter().map(|q| q.messages).sum(),
        prediction,
    })
}

/// Plans one mailbox from a stage opened for reading (`lint`): its records for `target`
/// (none for a target never used) and its blobs, with no connection.
pub(crate) fn plan_offline(
    stage: &Stage,
    target: &str,
    mb: &MailboxUpload,
    view: &TargetView,
    rules: &MappingRules,
) -> Result<Plan, StageError> {
    plan(
        stage.index(),
        stage.blobs(),
        target,
        mb,
        view,
        rules,
        PLAN_CHUNK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::index::MessageState;
    use crate::stage::index::test_rows::{index, messages, one_mailbox};
    use crate::upload::predict::{LimitSource, SkipReason};

    #[test]
    fn a_plan_read_in_parts_is_the_plan_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = index(dir.path());
        let mailbox_id = one_mailbox(&mut idx, "alice@x");
        // UIDs 1..=10; the even ones are over the limit below.
        let rows: Vec<_> = (1..=10u64)
            .map(|n| {
                (
                    MessageState::Staged,
                    if n % 2 == 0 { 5000 } else { 10 },
                    Some(0xab),
                )
            })
            .collect();
        messages(&mut idx, mailbox_id, 1, &rows);
        let queue = idx.upload_queue("t", mailbox_id, false).unwrap();
        let row = |uid: u32| queue.iter().find(|i| i.uid == uid).unwrap().message_row;
        let inbox = "[\"INBOX\"]";
        idx.refuse_unsent("t", "alice@x", inbox, &[row(3)], "NO first")
            .unwrap();
        idx.refuse_unsent("t", "alice@x", inbox, &[row(7)], "NO second")
            .unwrap();
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let mb = MailboxUpload {
            mailbox_id,
            email: "alice@x".into(),
            target_mailbox: "alice@x".into(),
        };
        let view = TargetView {
            size_limit: Some(SizeLimit {
                bytes: 1000,
                source: LimitSource::Given,
            }),
            ..TargetView::default()
        };
        let rules = MappingRules::default();
        let whole = plan(&idx, &blobs, "t", &mb, &view, &rules, PLAN_CHUNK).unwrap();
        let parts = plan(&idx, &blobs, "t", &mb, &view, &rules, 3).unwrap();
        for p in [&whole, &parts] {
            assert_eq!(p.planned, (10, 5 * 5000 + 5 * 10));
            assert_eq!(p.left_out, 0);
            let skips: Vec<(u32, SkipReason)> = p
                .prediction
                .skips
                .iter()
                .map(|s| (s.uid, s.reason))
                .collect();
            let mut expected: Vec<(u32, SkipReason)> = [2, 4, 6, 8, 10]
                .map(|u| (u, SkipReason::OverSizeLimit))
                .into();
            expected.extend([
                (3, SkipReason::RefusedBefore),
                (7, SkipReason::RefusedBefore),
            ]);
            expected.sort_by_key(|s| s.0);
            assert_eq!(skips, expected);
            assert_eq!(p.prediction.last_refusal.as_deref(), Some("NO second"));
        }
        let texts = |p: &Plan| {
            p.prediction
                .skips
                .iter()
                .map(|s| s.text.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(texts(&whole), texts(&parts));
    }

    #[test]
    fn an_offline_microsoft_365_knows_its_role_folders_and_default_limit() {
        let view = TargetView::offline(true, None);
        assert_eq!(view.folders.delimiter, '/');
        assert!(
            view.folders
                .existing
                .contains(&vec!["Sent Items".to_owned()])
        );
        assert!(view.folders.existing.contains(&vec!["INBOX".to_owned()]));
        assert_eq!(
            view.size_limit,
            SizeLimit::of_target(None, true),
            "Exchange Online's default"
        );
        let other = TargetView::offline(false, None);
        assert!(other.folders.existing.is_empty() && other.size_limit.is_none());
    }

    #[test]
    fn case_variants_merge_into_an_offline_microsoft_365s_existing_folder() {
        let sources: Vec<SourceFolder> = ["Projects", "projects", "sent items"]
            .iter()
            .zip(1..)
            .map(|(name, id)| SourceFolder {
                id,
                name: (*name).to_owned(),
                delimiter: Some('/'),
                special_use: None,
            })
            .collect();
        let view = TargetView::offline(true, None);
        let mapped = map_mailbox(&sources, &view.folders, true, &MappingRules::default());
        let targets: Vec<String> = mapped
            .iter()
            .map(|m| m.target.as_ref().unwrap().join("/"))
            .collect();
        assert_eq!(targets, ["Projects", "Projects", "Sent Items"]);
        assert!(
            mapped[1]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("ignore case")),
            "{mapped:?}"
        );
    }
}
