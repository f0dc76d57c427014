//! The no-change pass in a bounded number of round trips: which folders a pass can leave
//! closed because nothing in them changed since the last complete pass.
//!
//! The STATUS of every folder comes with the listing where the server offers LIST-STATUS
//! (RFC 5819: one command for all folders), otherwise from pipelined STATUS commands (about
//! one round trip for all folders). A folder is left closed when its UIDVALIDITY, its
//! HIGHESTMODSEQ and its message count are those its last complete pass recorded and none of
//! its messages failed: a new message, an expunge and a flag change all raise HIGHESTMODSEQ
//! (RFC 7162), and the count catches an expunge on a server that would not.
//!
//! Without CONDSTORE nothing of that is known: STATUS shows neither flag changes nor which
//! messages went, so every folder is opened and its flags read, each pass (correctness
//! first: a pass that skipped folders there would miss flag changes).

use std::collections::{HashMap, HashSet};

use tokio::io::{AsyncRead, AsyncWrite};

use super::ExtractError;
use super::context::Ctx;
use super::folders::FolderPlan;
use crate::imap::types::StatusResponse;
use crate::imap::{During as _, Session};
use crate::stage::index::FolderSync;

/// The STATUS items a pass compares (HIGHESTMODSEQ only where the server has CONDSTORE).
pub(super) fn status_items(condstore: bool) -> &'static [&'static str] {
    if condstore {
        &["MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"]
    } else {
        &["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
    }
}

/// The wire names of the folders among `plans` that need not be opened this pass; records
/// their source counts as STATUS gave them. `recorded` is what the index holds of the
/// mailbox's folders ([`crate::stage::index::Index::folder_syncs`]); `listed` holds the STATUS the listing returned
/// (LIST-STATUS), if it did.
pub(super) async fn unchanged_folders<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Ctx,
    s: &mut Session<S>,
    mailbox_id: i64,
    plans: &[FolderPlan],
    recorded: &HashMap<Vec<u8>, FolderSync>,
    listed: Option<&[StatusResponse]>,
    condstore: bool,
) -> Result<HashSet<Vec<u8>>, ExtractError> {
    if !condstore {
        return Ok(HashSet::new());
    }
    // Only folders a complete pass recorded with a HIGHESTMODSEQ, and with no message to
    // retry, can be left closed.
    let with_failed = ctx.stage.index(|i| i.folders_with_failed(mailbox_id))?;
    let mut candidates = Vec::new();
    for plan in plans {
        if let Some(stored) = recorded.get(&plan.wire).filter(|f| {
            f.state == "active"
                && f.highest_modseq.is_some()
                && f.uidvalidity.is_some()
                && !with_failed.contains(&f.id)
        }) {
            candidates.push((plan, stored));
        }
    }
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let statuses: HashMap<Vec<u8>, StatusResponse> = match listed {
        Some(listed) => listed
            .iter()
            .map(|st| (st.mailbox.clone(), st.clone()))
            .collect(),
        None => {
            let wires: Vec<Vec<u8>> = candidates.iter().map(|(p, _)| p.wire.clone()).collect();
            let answers = s
                .status_many(&wires, status_items(true))
                .await
                .during(|| format!("STATUS of {} folders", wires.len()))?;
            // A folder whose STATUS failed is opened (and its error met there).
            wires
                .into_iter()
                .zip(answers)
                .filter_map(|(w, a)| Some((w, a.ok()?)))
                .collect()
        }
    };
    let mut unchanged = HashSet::new();
    let mut counts = Vec::new();
    for (plan, stored) in candidates {
        let Some(st) = statuses
            .get(&plan.wire)
            .or_else(|| inbox_status(&statuses, &plan.wire))
        else {
            continue;
        };
        if same_as_recorded(st, stored) {
            counts.extend(st.messages.map(|m| (stored.id, m)));
            unchanged.insert(plan.wire.clone());
        }
    }
    // When the source was last counted, for the report: one transaction for all.
    ctx.stage.index(|i| i.set_folder_source_counts(&counts))?;
    Ok(unchanged)
}

/// INBOX's STATUS whatever case the server spelled it in.
fn inbox_status<'a>(
    statuses: &'a HashMap<Vec<u8>, StatusResponse>,
    wire: &[u8],
) -> Option<&'a StatusResponse> {
    if !wire.eq_ignore_ascii_case(b"INBOX") {
        return None;
    }
    statuses
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"INBOX"))
        .map(|(_, st)| st)
}

/// True when STATUS shows the folder as the last complete pass left it.
fn same_as_recorded(st: &StatusResponse, stored: &FolderSync) -> bool {
    st.uid_validity.is_some()
        && st.uid_validity == stored.uidvalidity
        && st.highest_modseq.is_some()
        && st.highest_modseq == stored.highest_modseq
        && st.messages.is_some()
        && st.messages == stored.source_messages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> FolderSync {
        FolderSync {
            id: 1,
            uidvalidity: Some(7),
            highest_uid: 10,
            highest_modseq: Some(40),
            source_messages: Some(10),
            state: "active".into(),
        }
    }

    fn status(uidvalidity: u32, modseq: Option<u64>, messages: u32) -> StatusResponse {
        StatusResponse {
            mailbox: b"INBOX".to_vec(),
            messages: Some(messages),
            uid_next: Some(11),
            uid_validity: Some(uidvalidity),
            highest_modseq: modseq,
            ..StatusResponse::default()
        }
    }

    #[test]
    fn only_an_identical_status_leaves_a_folder_closed() {
        assert!(same_as_recorded(&status(7, Some(40), 10), &stored()));
        assert!(
            !same_as_recorded(&status(8, Some(40), 10), &stored()),
            "UIDVALIDITY"
        );
        assert!(
            !same_as_recorded(&status(7, Some(41), 10), &stored()),
            "a change"
        );
        assert!(
            !same_as_recorded(&status(7, Some(40), 9), &stored()),
            "an expunge"
        );
        assert!(
            !same_as_recorded(&status(7, None, 10), &stored()),
            "no modseq"
        );
        let never_counted = FolderSync {
            source_messages: None,
            ..stored()
        };
        assert!(!same_as_recorded(&status(7, Some(40), 10), &never_counted));
    }
}
