//! Flag changes of a folder's staged messages: what changed since the stored HIGHESTMODSEQ
//! (CONDSTORE), in one fetch, or every staged message's FLAGS, read in parts of
//! [`FLAG_PART`] staged UIDs so that a folder of any size holds one part's responses at a
//! time. Each part is one UID range from its first to its last recorded UID: no UID between
//! two recorded ones can exist on the server (UIDs only grow, and every listed UID has a row).

use tokio::io::{AsyncRead, AsyncWrite};

use super::context::Ctx;
use super::{ExtractError, MailboxCounts};
use crate::imap::{During as _, SequenceSet, Session};

/// Staged UIDs whose FLAGS one fetch reads when every staged message's flags are read.
const FLAG_PART: usize = 5_000;

/// The folder whose flags are read.
pub(super) struct FlagsOf<'a> {
    /// Its name, for errors.
    pub name: &'a str,
    pub folder_id: i64,
    pub uidvalidity: u32,
    /// The highest UID staged.
    pub highest: u32,
}

/// Reads the flag changes `items` asks for (`(UID FLAGS)`, with `(CHANGEDSINCE n)` under
/// CONDSTORE) into the index. Without CONDSTORE, returns every UID the server listed (its
/// messages up to `highest`, for noticing deletions).
pub(super) async fn read_flags<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    at: &FlagsOf<'_>,
    items: &str,
    condstore: bool,
    counts: &mut MailboxCounts,
) -> Result<Option<Vec<u32>>, ExtractError> {
    let parts: Vec<(u32, u32)> = if items.contains("CHANGEDSINCE") {
        vec![(1, at.highest)]
    } else {
        let uids = ctx
            .stage
            .index(|i| i.known_uids(at.folder_id, at.uidvalidity))?;
        uids.chunks(FLAG_PART)
            .filter_map(|p| Some((*p.first()?, *p.last()?)))
            .collect()
    };
    let mut listed = Vec::new();
    for (first, last) in parts {
        let set = SequenceSet::from_ranges([first..=last]);
        let changed = s
            .uid_fetch_meta(&set, items)
            .await
            .during(|| format!("reading flag changes of {:?}", at.name))?;
        let changes: Vec<(u32, String)> = changed
            .iter()
            .filter_map(|m| Some((m.uid?, flags_text(m.flags.as_ref()?))))
            .collect();
        counts.flags_updated += ctx
            .stage
            .index(|i| i.update_flags(at.folder_id, at.uidvalidity, &changes))?;
        if !condstore {
            listed.extend(changes.iter().map(|(uid, _)| *uid));
        }
    }
    Ok((!condstore).then_some(listed))
}

/// A message's flags as stored: space-separated, without `\Recent` (which says which session
/// saw the message first, not anything about the message).
pub(super) fn flags_text(flags: &[String]) -> String {
    let kept: Vec<&str> = flags
        .iter()
        .map(String::as_str)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    kept.join(" ")
}
