//! Filling mailboxes and reading the server's copy back.
//!
//! Folder names here are IMAP names in UTF-8 with `/` as the hierarchy separator (`INBOX`, `Sent`,
//! `Entwürfe`, `Projects/2024`). With the harness's `LAYOUT=fs:UTF-8` storage, folder `A/B` is
//! the directory `Maildir/A/B` holding `cur/ new/ tmp/`, and INBOX is the Maildir root.
//!
//! What Dovecot 2.3.19 serves for `BODY[]` is the stored file with two changes (checked with the
//! fixtures): a bare LF goes out as CRLF and a NUL byte goes out as 0x80. APPEND stores with
//! CRLF (`mail_save_crlf = yes`), so appended files equal what the server serves unless the
//! message had NULs. [`served_form`] applies both changes to file bytes.

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};

use crate::dovecot::Dovecot;
use crate::fixtures::message_of_size;
use crate::probe::imap_date;

/// Maildir info letters of the IMAP system flags (keywords are not supported by the fast path).
const FLAG_LETTERS: &[(&str, char)] = &[
    ("\\Draft", 'D'),
    ("\\Flagged", 'F'),
    ("\\Answered", 'R'),
    ("\\Seen", 'S'),
    ("\\Deleted", 'T'),
];

/// Makes maildir file names unique within the process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The maildir info suffix (`SF`…, sorted) for IMAP system flags.
pub fn maildir_info(flags: &[&str]) -> Result<String> {
    let mut letters = flags
        .iter()
        .map(|f| {
            FLAG_LETTERS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(f))
                .map(|&(_, c)| c)
                .with_context(|| {
                    format!("flag {f} has no maildir letter (use append for keywords)")
                })
        })
        .collect::<Result<Vec<char>>>()?;
    letters.sort_unstable();
    letters.dedup();
    Ok(letters.into_iter().collect())
}

/// What Dovecot serves as `BODY[]` for a maildir file with these bytes: bare LF → CRLF, NUL → 0x80.
pub fn served_form(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(file.len() + file.len() / 32);
    for (i, &b) in file.iter().enumerate() {
        match b {
            b'\n' if i == 0 || file[i - 1] != b'\r' => out.extend_from_slice(b"\r\n"),
            0 => out.push(0x80),
            b => out.push(b),
        }
    }
    out
}

/// Rejects folder names that would leave the maildir or clash with maildir's own directories.
fn checked_relative(folder: &str) -> Result<PathBuf> {
    let rel = PathBuf::from(folder);
    ensure!(
        !folder.is_empty() && !folder.ends_with('/'),
        "bad folder name {folder:?}"
    );
    for c in rel.components() {
        let Component::Normal(part) = c else {
            bail!("folder {folder:?} is not a plain relative path")
        };
        ensure!(
            !matches!(part.to_str(), Some("cur" | "new" | "tmp")),
            "folder {folder:?} clashes with maildir dirs"
        );
    }
    Ok(rel)
}

impl Dovecot {
    /// The directory of `folder` in `user`'s maildir (`INBOX` is the Maildir root).
    pub fn folder_dir(&self, user: &str, folder: &str) -> Result<PathBuf> {
        let root = self.maildir_of(user);
        if folder.eq_ignore_ascii_case("INBOX") {
            return Ok(root);
        }
        Ok(root.join(checked_relative(folder)?))
    }

    /// Creates the missing directories from the mail root down to `path`, owned by the mail owner.
    fn make_dirs(&self, path: &Path) -> Result<()> {
        let mail = self.dir().join("mail");
        let rel = path
            .strip_prefix(&mail)
            .context("path outside the mail root")?;
        let mut at = mail;
        for part in rel.components() {
            at.push(part);
            if !at.is_dir() {
                fs::create_dir(&at).with_context(|| format!("mkdir {}", at.display()))?;
                self.owner().chown(&at)?;
            }
        }
        Ok(())
    }

    /// Creates `folder` (and INBOX) on disk so Dovecot sees it; parents stay bare directories,
    /// which Dovecot lists as `\Noselect \HasChildren`. Returns the folder's directory.
    pub fn create_folder(&self, user: &str, folder: &str) -> Result<PathBuf> {
        let dir = self.folder_dir(user, folder)?;
        for base in [self.maildir_of(user), dir.clone()] {
            for sub in ["cur", "new", "tmp"] {
                self.make_dirs(&base.join(sub))?;
            }
        }
        Ok(dir)
    }

    /// Creates a bare directory: a `\Noselect` parent once it has a child folder.
    pub fn create_noselect(&self, user: &str, folder: &str) -> Result<PathBuf> {
        let dir = self.folder_dir(user, folder)?;
        self.make_dirs(&dir)?;
        Ok(dir)
    }

    /// Writes one message straight into `user`'s `folder` (created if needed) as a maildir file
    /// in `cur/` with the given system flags; its mtime, which Dovecot reports as INTERNALDATE,
    /// is `internal_date`. Returns the file's path.
    pub fn write_message(
        &self,
        user: &str,
        folder: &str,
        flags: &[&str],
        internal_date: SystemTime,
        bytes: &[u8],
    ) -> Result<PathBuf> {
        let dir = self.create_folder(user, folder)?;
        let info = maildir_info(flags)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        let unique = format!(
            "{}.M{}P{}Q{}.mailstage",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let tmp = dir.join("tmp").join(&unique);
        let file = fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        std::io::Write::write_all(&mut &file, bytes)?;
        file.set_modified(internal_date)?;
        drop(file);
        self.owner().chown(&tmp)?;
        let dest = dir.join("cur").join(format!("{unique}:2,{info}"));
        fs::rename(&tmp, &dest)?;
        Ok(dest)
    }

    /// [`Dovecot::write_message`] with an INTERNALDATE given as seconds since the epoch.
    pub fn write_message_at(
        &self,
        user: &str,
        folder: &str,
        flags: &[&str],
        unix_secs: u64,
        bytes: &[u8],
    ) -> Result<PathBuf> {
        self.write_message(
            user,
            folder,
            flags,
            UNIX_EPOCH + Duration::from_secs(unix_secs),
            bytes,
        )
    }

    /// APPENDs over IMAP as `user` (exact server-side flags, keywords and date); `folder` is
    /// the wire (modified UTF-7) name. Returns the new UID.
    pub fn append(
        &self,
        user: &str,
        folder: &str,
        flags: &[&str],
        unix_secs: Option<i64>,
        bytes: &[u8],
    ) -> Result<u32> {
        let mut probe = self.login(user)?;
        let date = unix_secs.map(imap_date);
        let uid = probe.append(folder, flags, date.as_deref(), bytes)?;
        probe.logout()?;
        uid.context("APPEND answered without APPENDUID")
    }

    /// Writes one [`message_of_size`] per entry of `sizes` into `user`'s `folders` in turn
    /// (created if needed), with varied flags and INTERNALDATEs an hour apart; the content
    /// depends on `seed`. Returns the bytes written.
    pub fn write_sized(
        &self,
        user: &str,
        folders: &[&str],
        sizes: &[usize],
        seed: u64,
    ) -> Result<u64> {
        ensure!(!folders.is_empty(), "write_sized needs a folder");
        let mut bytes = 0;
        for (i, &size) in sizes.iter().enumerate() {
            let flags: &[&str] = match i % 4 {
                0 => &[],
                1 => &["\\Seen"],
                2 => &["\\Seen", "\\Answered"],
                _ => &["\\Flagged"],
            };
            let body = message_of_size(size, seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
            let folder = folders[i % folders.len()];
            self.write_message_at(user, folder, flags, 1_600_000_000 + i as u64 * 3600, &body)?;
            bytes += size as u64;
        }
        Ok(bytes)
    }

    /// The server's copy of every message in `user`'s `folder`: (path, file bytes) of each file
    /// in `cur/` and `new/`, sorted by path. Compare with staged blobs via [`served_form`].
    pub fn server_messages(&self, user: &str, folder: &str) -> Result<Vec<(PathBuf, Vec<u8>)>> {
        let dir = self.folder_dir(user, folder)?;
        let mut out = Vec::new();
        for sub in ["cur", "new"] {
            let Ok(entries) = fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for entry in entries {
                let path = entry?.path();
                let bytes = fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                out.push((path, bytes));
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_served_form() {
        assert_eq!(
            maildir_info(&["\\Seen", "\\Flagged", "\\seen"]).unwrap(),
            "FS"
        );
        assert!(maildir_info(&["$Label1"]).is_err());
        assert_eq!(served_form(b"a\nb\r\nc\0"), b"a\r\nb\r\nc\x80");
        assert!(checked_relative("../x").is_err());
        assert!(checked_relative("a/cur").is_err());
        assert!(checked_relative("Projects/2024").is_ok());
    }
}
