//! A group whose `UID FETCH` the server refuses as a whole. Servers answer `NO` to a fetch
//! of many bodies when one message among them cannot be read (Exchange and Zimbra with a
//! damaged item do, with no data for the others): failing the mailbox for it would leave
//! all its mail behind for one message. The folder is opened again (a pipelined EXAMINE of
//! the next folder may have run), then the group's messages not yet received are asked for
//! in halves, each refused half split again: the messages sent are staged, a message
//! refused on its own is recorded failed with the server's words (the next pass tries it
//! again), and the pass goes on. A refusal costs about two fetches per level of halving.

use tokio::io::{AsyncRead, AsyncWrite};

use super::bodies::{Decided, Fetched, FolderTarget, fetch_group};
use super::context::Ctx;
use super::{ExtractError, MailboxCounts};
use crate::imap::{During as _, ImapError, Session};

/// True for a command (a fetch, a folder's EXAMINE) the server refused for good (a tagged
/// NO or BAD that is not a throttle or another "not now").
pub(super) fn is_refusal(e: &ExtractError) -> bool {
    matches!(e, ExtractError::Imap(step)
        if matches!(step.source, ImapError::Rejected { .. }) && !step.is_transient())
}

/// True for a folder the server refused to open for good (EXAMINE answered NO or BAD that
/// is not a throttle or another "not now"): an ACL that lets the login list the folder but
/// not read it, a damaged folder, one deleted meanwhile. The pass reads the other folders
/// and fails the mailbox afterwards, naming it ([`ExtractError::FoldersNotOpened`]). While
/// folders are opened and listed, any such refusal of a folder's commands (its EXAMINE, its
/// metadata `UID FETCH`) counts: [`is_refusal`].
pub(super) fn is_refused_open(e: &ExtractError) -> bool {
    matches!(e, ExtractError::Imap(step)
        if matches!(&step.source, ImapError::Rejected { command, .. } if command == "EXAMINE")
            && !step.is_transient())
}

/// Fetches what `group` still lacks in `fetched` in ever smaller parts after `refusal`;
/// a message refused alone gets its failure in `fetched`.
pub(super) async fn fetch_in_parts<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    session: &mut Session<S>,
    group: &[Decided],
    target: &FolderTarget<'_>,
    counts: &mut MailboxCounts,
    fetched: &mut Fetched,
    refusal: &ExtractError,
) -> Result<(), ExtractError> {
    tracing::warn!(
        mailbox = target.email,
        folder = target.name,
        "{refusal}; asking for the group's messages in smaller parts"
    );
    let info = session
        .examine(target.wire, false)
        .await
        .during(|| format!("EXAMINE {:?}", target.name))?;
    if info.uid_validity != target.uidvalidity {
        return Err(ExtractError::UidValidityChanged {
            mailbox: target.email.to_owned(),
            folder: target.name.to_owned(),
            listed: target.uidvalidity,
            now: info.uid_validity,
        });
    }
    let todo: Vec<Decided> = group
        .iter()
        .filter(|d| d.skip.is_none() && !fetched.contains_key(&d.meta.uid))
        .cloned()
        .collect();
    // Parts still to fetch, the next on top, in UID order.
    let mut parts = vec![(0, todo.len())];
    while let Some((from, to)) = parts.pop() {
        let part: Vec<Decided> = todo[from..to]
            .iter()
            .filter(|d| !fetched.contains_key(&d.meta.uid))
            .cloned()
            .collect();
        if part.is_empty() {
            continue;
        }
        let (got, result) = fetch_group(ctx, session, &part, target, counts, None).await;
        fetched.extend(got);
        match result {
            Ok(_) => {}
            Err(e) if is_refusal(&e) && part.len() > 1 => {
                let middle = from + (to - from) / 2;
                parts.push((middle, to));
                parts.push((from, middle));
            }
            Err(e) if is_refusal(&e) => {
                let uid = part[0].meta.uid;
                tracing::warn!(
                    mailbox = target.email,
                    folder = target.name,
                    uid,
                    "the server refuses to send this message: {e}"
                );
                fetched.insert(uid, Err(format!("the server refused to send it: {e}")));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
