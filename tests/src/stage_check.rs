//! What a finished stage must look like after any interruption: its message rows (to
//! compare with an uninterrupted pass), no duplicates, no `tmp/` leftovers, exactly the blobs
//! the rows name, and a clean verify.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Result, ensure};
use mailstage::stage::verify::verify;
use mailstage::stage::{Access, BlobHash, Stage};

use crate::{Dovecot, served_form};

/// One message row: (mailbox, folder, UIDVALIDITY, UID, blob, flags, INTERNALDATE, state).
pub type Row = (
    String,
    String,
    u32,
    u32,
    Option<String>,
    String,
    Option<String>,
    String,
);

/// Every message row of the stage at `dir`, in (mailbox, folder, UID) order.
pub fn message_rows(dir: &Path) -> Result<Vec<Row>> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut stmt = conn.prepare(
        "SELECT mb.email, f.name, m.uidvalidity, m.uid, m.blob, m.flags, m.internaldate, m.state
         FROM messages m JOIN folders f ON f.id = m.folder_id
         JOIN mailboxes mb ON mb.id = f.mailbox_id
         ORDER BY mb.email, f.name, m.uidvalidity, m.uid",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The names of the files under `dir`, at any depth.
fn file_names(dir: &Path, out: &mut BTreeSet<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            file_names(&entry.path(), out)?;
        } else {
            out.insert(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// The blob files of the stage at `dir`, by name (their SHA-256).
pub fn blob_files(dir: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    file_names(&dir.join("blobs"), &mut out)?;
    Ok(out)
}

/// Checks a stage a pass has completed: no (mailbox, folder, UID) twice, nothing left in
/// `tmp/`, the blob directory holding exactly the blobs the rows name, and `verify` clean.
/// Returns its rows.
pub fn check_completed(dir: &Path) -> Result<Vec<Row>> {
    let rows = message_rows(dir)?;
    let keys: BTreeSet<_> = rows.iter().map(|r| (&r.0, &r.1, r.3)).collect();
    ensure!(keys.len() == rows.len(), "a (folder, UID) has two rows");
    let mut tmp = BTreeSet::new();
    file_names(&dir.join("tmp"), &mut tmp)?;
    ensure!(tmp.is_empty(), "leftovers in tmp/: {tmp:?}");
    let named: BTreeSet<String> = rows.iter().filter_map(|r| r.4.clone()).collect();
    let stored = blob_files(dir)?;
    ensure!(
        stored == named,
        "blobs no row names: {:?}; rows naming no blob: {:?}",
        stored.difference(&named).collect::<Vec<_>>(),
        named.difference(&stored).collect::<Vec<_>>()
    );
    let report = verify(&Stage::open(dir, Access::Read)?)?;
    ensure!(report.is_clean(), "{}", report.render_text());
    Ok(rows)
}

/// The SHA-256 of what Dovecot serves for every message of a user's folder.
pub fn served(d: &Dovecot, user: &str, folder: &str) -> Result<BTreeSet<BlobHash>> {
    Ok(d.server_messages(user, folder)?
        .iter()
        .map(|(_, bytes)| BlobHash::of(&served_form(bytes)))
        .collect())
}

/// (email, folder) → the SHA-256 of every staged message there.
pub fn staged_hashes(
    dir: &Path,
) -> Result<std::collections::BTreeMap<(String, String), BTreeSet<BlobHash>>> {
    let stage = Stage::open(dir, Access::Read)?;
    let mut out = std::collections::BTreeMap::<_, BTreeSet<BlobHash>>::new();
    for m in stage.index().staged_messages(None)? {
        out.entry((m.origin.email, m.origin.folder))
            .or_default()
            .insert(m.origin.blob);
    }
    Ok(out)
}

/// (email, folder, UID) → the staged flags (space-separated, as the index holds them), for
/// the staged messages of the stage at `dir`.
pub fn staged_flags(
    dir: &Path,
) -> Result<std::collections::BTreeMap<(String, String, u32), String>> {
    Ok(message_rows(dir)?
        .into_iter()
        .filter(|r| r.7 == "staged")
        .map(|r| ((r.0, r.1, r.3), r.5))
        .collect())
}

/// (email, folder, UID) of the messages the stage at `dir` records deleted on the source,
/// with their state (they stay `staged`).
pub fn deleted_on_source(dir: &Path) -> Result<Vec<(String, String, u32, String)>> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("index.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut stmt = conn.prepare(
        "SELECT mb.email, f.name, m.uid, m.state FROM messages m
         JOIN folders f ON f.id = m.folder_id JOIN mailboxes mb ON mb.id = f.mailbox_id
         WHERE m.deleted_on_source LIKE '____-__-__T__:__:__Z'
         ORDER BY mb.email, f.name, m.uid",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
