//! One mailbox's plan from the stage alone: where each folder goes (with Microsoft 365's
//! case merges), what would be sent, and what the target is expected not to store. The dry
//! run computes it with what the target announced (its folders, its APPENDLIMIT); `lint`
//! with what it assumes offline ([`TargetView::offline`]). Both call [`plan`], so they
//! predict the same skips from the same facts.

use std::collections::HashMap;

use super::case_merge::merge_case_variants;
use super::mapping::{MappedFolder, MappingRules, Role, TargetFolders, map_folders};
use super::predict::{Prediction, SizeLimit, predict};
use super::{MailboxUpload, UploadCounts};
use crate::stage::index::{RecordedRefusal, SourceFolder, UploadItem};
use crate::stage::{BlobStore, Index, Stage, StageError};

/// What the index says about one mailbox's upload to a target.
#[derive(Clone, Debug, Default)]
pub(crate) struct Staged {
    /// Its source folders that hold staged mail.
    pub sources: Vec<SourceFolder>,
    /// Its staged messages the target has not confirmed, by folder and UID.
    pub queue: Vec<UploadItem>,
    /// Those the target refused before (read for a plan only; a real run retries them).
    pub refusals: Vec<RecordedRefusal>,
}

impl Staged {
    /// Reads a mailbox's folders and queue for `target`; for a plan (`planning`) the queue
    /// holds the messages refused last time too, and their refusals are read.
    pub fn read(
        index: &Index,
        target: &str,
        mb: &MailboxUpload,
        planning: bool,
    ) -> Result<Self, StageError> {
        Ok(Self {
            sources: index.upload_folders(mb.mailbox_id)?,
            queue: index.upload_queue(target, mb.mailbox_id, planning)?,
            refusals: if planning {
                index.refused_uploads(target, mb.mailbox_id)?
            } else {
                Vec::new()
            },
        })
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

/// Plans one mailbox: maps its folders onto `target`, counts what would be sent and predicts
/// what the target will not store (reading blobs for long lines on Microsoft 365: call it
/// off the async runtime).
pub(crate) fn plan(
    staged: &Staged,
    blobs: &BlobStore,
    target: &TargetView,
    rules: &MappingRules,
) -> Result<Plan, StageError> {
    let folders = map_mailbox(&staged.sources, &target.folders, target.m365, rules);
    let dest_of = destinations(&folders);
    let (sendable, left_out): (Vec<&UploadItem>, Vec<&UploadItem>) = staged
        .queue
        .iter()
        .partition(|i| dest_of.contains_key(&i.folder_id));
    let planned = (sendable.len() as u64, sendable.iter().map(|i| i.size).sum());
    let prediction = predict(
        blobs,
        target.m365,
        target.size_limit,
        &folders,
        &sendable,
        &staged.refusals,
    )?;
    Ok(Plan {
        folders,
        planned,
        left_out: left_out.len() as u64,
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
    let staged = Staged::read(stage.index(), target, mb, true)?;
    plan(&staged, stage.blobs(), view, rules)
}

#[cfg(test)]
mod tests {
    use super::*;

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
