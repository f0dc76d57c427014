//! The maildir audit view: `OUT/<EmailAddress>/<Folder>/{cur,new,tmp}`, built from the index
//! with hard links into the blobs (copies when `OUT` is on another file system), so any mail
//! client that reads maildir can open the staged mail.
//!
//! Folder paths become one directory each, Maildir++-style: the components of the decoded
//! name, each made safe by [`safe_component`] (which escapes `.`), joined with `.` — so
//! `INBOX/Sub.Folder` is `INBOX.Sub%2EFolder`. Message files are named
//! `<internaldate>.<uidvalidity>_<uid>.mailstage:2,<flags>`.
//!
//! The view is built next to `OUT` and renamed into place, so `OUT` is never half-written.
//! Blob files are read-only: open the view read-only (`mutt -R`).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::Stage;
use super::error::{IoContext, Result, StageError};
use super::index::StagedMessage;
use super::safe_name::{capped, safe_component, safe_file_name};

/// The file that marks a directory as a view this tool built (and may replace).
const MARKER: &str = ".mailstage-maildir";

/// What a maildir build produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MaildirReport {
    /// Mailboxes written.
    pub mailboxes: u64,
    /// Folders written.
    pub folders: u64,
    /// Message files written.
    pub messages: u64,
    /// Of those, hard links into the stage.
    pub linked: u64,
    /// Of those, copies (the output is on another file system).
    pub copied: u64,
}

/// The maildir flag letters (in the order maildir wants them) for IMAP flags.
pub fn maildir_flags(imap_flags: &str) -> String {
    let mut letters: Vec<char> = imap_flags
        .split_ascii_whitespace()
        .filter_map(|f| match f.to_ascii_lowercase().as_str() {
            "\\draft" => Some('D'),
            "\\flagged" => Some('F'),
            "$forwarded" => Some('P'),
            "\\answered" => Some('R'),
            "\\seen" => Some('S'),
            "\\deleted" => Some('T'),
            _ => None,
        })
        .collect();
    letters.sort_unstable();
    letters.dedup();
    letters.into_iter().collect()
}

/// The directory name of a folder: safe components joined with `.`, the whole capped like
/// one component (a deep or long hierarchy would otherwise exceed the file system's 255
/// bytes and stop the view).
pub fn folder_dir_name(name: &str, delimiter: Option<char>) -> String {
    let parts: Vec<String> = match delimiter {
        Some(d) => name.split(d).map(safe_component).collect(),
        None => vec![safe_component(name)],
    };
    let joined = parts.join(".");
    capped(joined.clone(), &joined)
}

/// The file name of one message in the view.
fn message_file_name(m: &StagedMessage) -> String {
    format!(
        "{}.{}_{}.mailstage:2,{}",
        m.internaldate_unix.unwrap_or(0).max(0),
        m.origin.uidvalidity,
        m.origin.uid,
        maildir_flags(&m.flags)
    )
}

/// Builds (or rebuilds) the view of the stage, or of one batch, at `out`.
pub fn build_maildir(stage: &Stage, out: &Path, batch: Option<&str>) -> Result<MaildirReport> {
    if let Some(name) = batch {
        stage.index().batch_id(name)?;
    }
    if out.exists() && !out.join(MARKER).is_file() && !is_empty_dir(out)? {
        return Err(StageError::Refused(format!(
            "{} exists and is not a maildir view made by mailstage; give a new or empty directory",
            out.display()
        )));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = out
        .file_name()
        .ok_or_else(|| StageError::Refused(format!("{} is not a directory name", out.display())))?
        .to_string_lossy()
        .into_owned();
    let building = parent.join(format!(".{base}.building-{}", std::process::id()));
    if building.exists() {
        fs::remove_dir_all(&building).at("remove", &building)?;
    }
    let report = write_view(stage, &building, batch);
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(&building);
            return Err(e);
        }
    };
    if out.exists() {
        let old = parent.join(format!(".{base}.old-{}", std::process::id()));
        fs::rename(out, &old).at("move aside", out)?;
        fs::rename(&building, out).at("rename into place", out)?;
        fs::remove_dir_all(&old).at("remove old view", &old)?;
    } else {
        fs::rename(&building, out).at("rename into place", out)?;
    }
    Ok(report)
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    Ok(fs::read_dir(dir)
        .at("read directory", dir)?
        .next()
        .is_none())
}

fn write_view(stage: &Stage, root: &Path, batch: Option<&str>) -> Result<MaildirReport> {
    fs::create_dir_all(root).at("create directory", root)?;
    fs::write(
        root.join(MARKER),
        "Built by `mailstage-extract maildir` from the stage's index; rebuilt on each run.\n\
         Files are hard links to read-only blobs: open read-only (mutt -R).\n",
    )
    .at("write", root.join(MARKER))?;
    let mut report = MaildirReport::default();
    let mut mailboxes = BTreeSet::new();
    let mut folders = BTreeSet::new();
    for m in stage.index().staged_messages(batch)? {
        let mailbox_dir = root.join(safe_file_name(&m.origin.email));
        let folder_dir = mailbox_dir.join(folder_dir_name(&m.origin.folder, m.delimiter));
        if folders.insert(folder_dir.clone()) {
            for sub in ["cur", "new", "tmp"] {
                let dir = folder_dir.join(sub);
                fs::create_dir_all(&dir).at("create directory", &dir)?;
            }
        }
        mailboxes.insert(mailbox_dir);
        let source = stage.blobs().path_of(&m.origin.blob);
        let target = folder_dir.join("cur").join(message_file_name(&m));
        match fs::hard_link(&source, &target) {
            Ok(()) => report.linked += 1,
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                fs::copy(&source, &target).at("copy", &target)?;
                report.copied += 1;
            }
            Err(e) => return Err(e).at("link", &target),
        }
        report.messages += 1;
    }
    report.mailboxes = mailboxes.len() as u64;
    report.folders = folders.len() as u64;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_sorted_letters() {
        assert_eq!(maildir_flags("\\Seen \\Answered \\Flagged"), "FRS");
        assert_eq!(maildir_flags("$Forwarded \\Draft \\Deleted $Junk"), "DPT");
        assert_eq!(maildir_flags(""), "");
    }

    #[test]
    fn folder_names_are_one_safe_directory() {
        assert_eq!(
            folder_dir_name("INBOX/Sub.Folder", Some('/')),
            "INBOX.Sub%2EFolder"
        );
        assert_eq!(folder_dir_name("../../etc", Some('/')), "%2E%2E.%2E%2E.etc");
        assert_eq!(folder_dir_name("a.b", None), "a%2Eb");
        assert_ne!(
            folder_dir_name("a/b", Some('/')),
            folder_dir_name("a.b", Some('/'))
        );
    }

    #[test]
    fn a_deep_or_long_hierarchy_still_makes_one_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deep: Vec<String> = (0..40).map(|i| format!("Projekte {i:02} ü")).collect();
        let deep = deep.join("/");
        let other = format!("{deep}x");
        let long = format!("{}/{}", "A".repeat(250), "ü".repeat(120));
        for name in [&deep, &other, &long] {
            let made = folder_dir_name(name, Some('/'));
            assert!(made.len() <= 200, "{} bytes", made.len());
            std::fs::create_dir(dir.path().join(&made)).unwrap();
        }
        assert_ne!(
            folder_dir_name(&deep, Some('/')),
            folder_dir_name(&other, Some('/'))
        );
        assert_eq!(folder_dir_name("INBOX/Sub", Some('/')), "INBOX.Sub");
    }
}
