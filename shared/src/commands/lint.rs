//! `mailstage-upload lint`: the dry run's predictions from the stage alone, with no
//! connection and no credentials: where each folder goes (names Microsoft 365 reserves,
//! case variants it merges, delimiters), messages over the target's size limit, lines
//! Exchange Online refuses, and messages the target refused before. The same plan as the
//! dry run ([`crate::upload::TargetView`] stands in for what the target would announce).

use std::path::Path;

use super::error::{CommandError, Result};
use super::upload_run::select_mailboxes;
use crate::stage::{Access, Stage};
use crate::upload::{
    LimitSource, MappingRules, SizeLimit, TargetView, UploadCounts, UploadOutcome, plan_offline,
};

/// What to lint.
#[derive(Clone, Debug, Default)]
pub struct LintRequest {
    /// The batch.
    pub batch: String,
    /// The target whose kind (and refusal records) to use; `None` with `assume_m365`.
    pub target: Option<String>,
    /// Without a target: assume Microsoft 365.
    pub assume_m365: bool,
    /// Only these mailboxes (EmailAddress); empty: all.
    pub users: Vec<String>,
    /// `Old/Path=New/Path` renames, as `run --map`.
    pub maps: Vec<String>,
    /// Folder patterns left out, as `run --exclude`.
    pub excludes: Vec<String>,
    /// The target's size limit when the admin knows it (a raised MaxReceiveSize, an
    /// APPENDLIMIT); else Exchange Online's default for Microsoft 365, none for others.
    pub size_limit: Option<u64>,
}

/// What `lint` found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LintReport {
    /// The batch.
    pub batch: String,
    /// The target, when one was named.
    pub target: Option<String>,
    /// Whether Microsoft 365's rules were applied.
    pub m365: bool,
    /// What an offline plan cannot know, in words (a dry run asks the target).
    pub assumptions: Vec<String>,
    /// Each mailbox's plan, as `run --dry-run` reports it.
    pub mailboxes: Vec<UploadOutcome>,
}

impl LintReport {
    /// 0 nothing predicted, 2 messages are expected not to arrive (or were refused before
    /// and will be retried). Folder renames and merges are shown but do not count.
    pub fn exit_code(&self) -> u8 {
        let found = self.mailboxes.iter().any(|o| !o.predicted_skips.is_empty());
        if found { 2 } else { 0 }
    }

    /// One CSV row per finding: a folder the plan renames, merges or leaves out, and a
    /// message predicted not to arrive.
    pub fn to_csv(&self) -> std::io::Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(LINT_CSV_COLUMNS)?;
        for o in &self.mailboxes {
            for f in o.folders.iter().filter(|f| f.note.is_some()) {
                let to = f.target.as_ref().map(|t| t.join("/")).unwrap_or_default();
                let kind = if f.target.is_some() {
                    "folder"
                } else {
                    "folder_left_out"
                };
                let note = f.note.clone().unwrap_or_default();
                w.write_record([&o.email, kind, &f.source, "", &to, "", "", &note])?;
            }
            for s in &o.predicted_skips {
                let reason = serde_json::to_value(s.reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let (uid, size) = (s.uid.to_string(), s.size.to_string());
                w.write_record([
                    o.email.as_str(),
                    "message",
                    &s.folder,
                    &uid,
                    &s.target_folder,
                    &size,
                    &reason,
                    &s.text,
                ])?;
            }
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        String::from_utf8(bytes).map_err(std::io::Error::other)
    }
}

/// The columns of `lint --format csv`.
pub const LINT_CSV_COLUMNS: &[&str] = &[
    "mailbox",
    "kind",
    "folder",
    "uid",
    "target_folder",
    "size",
    "reason",
    "text",
];

/// Plans every mailbox of the batch (or those in `users`) from the stage at `dir`, opened
/// for reading: no connection is made and no secret is read.
pub fn lint(dir: &Path, req: &LintRequest) -> Result<LintReport> {
    let stage = Stage::open(dir, Access::Read)?;
    let m365 = match (&req.target, req.assume_m365) {
        (Some(t), _) => stage.index().target(t)?.is_m365(),
        (None, true) => true,
        (None, false) => {
            return Err(CommandError::Refused(
                "name the target (--target T) or what to assume (--assume m365)".into(),
            ));
        }
    };
    let mailboxes = select_mailboxes(stage.index(), &req.batch, &req.users)?;
    let rules = MappingRules::from_args(&req.maps, &req.excludes).map_err(CommandError::Refused)?;
    let size_limit = req.size_limit.map(|bytes| SizeLimit {
        bytes,
        source: LimitSource::Given,
    });
    let view = TargetView::offline(m365, size_limit);
    // Without a target there are no upload records: every staged message is pending.
    let target = req.target.as_deref().unwrap_or("");
    let mailboxes = mailboxes
        .iter()
        .map(|mb| {
            let plan = plan_offline(&stage, target, mb, &view, &rules)?;
            let mut counts = UploadCounts::default();
            plan.count(&mut counts);
            Ok(UploadOutcome {
                email: mb.email.clone(),
                target_mailbox: mb.target_mailbox.clone(),
                counts,
                folders: plan.folders,
                refused_folders: Vec::new(),
                error: None,
                size_limit: plan.prediction.size_limit,
                predicted_skips: plan.prediction.skips,
                last_refusal: plan.prediction.last_refusal,
                dry_run: true,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LintReport {
        batch: req.batch.clone(),
        target: req.target.clone(),
        m365,
        assumptions: assumptions(m365, size_limit.is_some()),
        mailboxes,
    })
}

/// What the offline plan cannot see, in words.
fn assumptions(m365: bool, limit_given: bool) -> Vec<String> {
    let mut out = vec![
        "offline: the target's own folders are not listed; a folder that exists there only \
         in another case is not merged here (run --dry-run lists them)"
            .to_owned(),
    ];
    if m365 {
        if !limit_given {
            out.push(
                "size limit: Exchange Online's default (35 MiB); give --size-limit when a \
                 mailbox's MaxReceiveSize was raised"
                    .to_owned(),
            );
        }
    } else {
        out.push(
            "not Microsoft 365: long lines are not looked for; the target's delimiter and \
             APPENDLIMIT are unknown offline (give --size-limit if you know it)"
                .to_owned(),
        );
    }
    out
}
