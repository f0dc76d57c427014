//! Noticing messages expunged on the source since the last pass where QRESYNC does not name
//! them (`VANISHED (EARLIER)`, read when the folder is opened), at no cost when none were:
//! the server's message count up to the last recorded UID is compared with the rows the
//! stage holds for it, and only a shortfall costs a `UID SEARCH UID 1:N` (or nothing, when
//! the FLAGS of every staged UID were just fetched anyway, as without CONDSTORE).

use tokio::io::{AsyncRead, AsyncWrite};

use super::ExtractError;
use super::context::Ctx;
use crate::imap::{During as _, Session};

/// What a folder's incremental pass knows about the UIDs up to `highest`.
pub(crate) struct Seen<'a> {
    /// The folder's name, for messages.
    pub name: &'a str,
    /// Its row id.
    pub folder_id: i64,
    /// Its UIDVALIDITY.
    pub uidvalidity: u32,
    /// The highest UID recorded before this pass.
    pub highest: u32,
    /// Messages the server holds with a UID up to `highest` (EXISTS minus the new ones).
    pub on_server: u64,
    /// The UIDs up to `highest` the server holds, when a FLAGS fetch just listed them all.
    pub listed: Option<Vec<u32>>,
}

/// Stamps `deleted_on_source` on the rows whose message the server no longer holds and
/// returns how many.
pub(crate) async fn notice_deletions<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    seen: Seen<'_>,
) -> Result<u64, ExtractError> {
    let Seen {
        name,
        folder_id,
        uidvalidity,
        highest,
        on_server,
        listed,
    } = seen;
    let present = match listed {
        Some(uids) => uids,
        None => {
            let recorded = ctx
                .stage
                .index(|i| i.present_count(folder_id, uidvalidity, highest))?;
            if on_server >= recorded {
                return Ok(0);
            }
            s.uid_search(&format!("UID 1:{highest}"))
                .await
                .during(|| format!("listing the messages of {name:?}"))?
        }
    };
    let stamped = ctx
        .stage
        .index(|i| i.mark_deleted_on_source(folder_id, uidvalidity, highest, &present))?;
    if stamped > 0 {
        tracing::info!(folder = %name, stamped, "messages deleted on the source since the last pass");
    }
    Ok(stamped)
}
