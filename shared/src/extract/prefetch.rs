//! A first pass over many folders without a round trip per folder: the folders the stage
//! holds nothing of yet are opened (EXAMINE) and listed (`UID FETCH 1:*` of their metadata,
//! unless LIST-STATUS said they are empty) in one pipeline, before the pass reads them one
//! by one.

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncWrite};

use super::ExtractError;
use super::folders::FolderPlan;
use crate::imap::pipeline::OpenedAndListed;
use crate::imap::types::StatusResponse;
use crate::imap::{During as _, Session};
use crate::stage::index::FolderSync;

/// Messages whose metadata the pipeline may list at most (it holds their parsed responses
/// until it ends, about 0.3 KiB each), counted from the STATUS the listing returned.
const PIPELINE_LISTED_MAX: u64 = 20_000;

/// Opens and lists, pipelined, the folders among `plans` the stage has no message of (no
/// row in `recorded`, or none up to a highest UID); returns them by wire name. `listed` holds the STATUS
/// the listing returned, if it did: a folder it shows empty is opened, not listed, and so is
/// one past [`PIPELINE_LISTED_MAX`] (the pass lists it on its own). A folder whose EXAMINE or
/// FETCH the server refused is left out: the pass opens it on its own and meets the error
/// there, naming it.
pub(super) async fn open_new_folders<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Session<S>,
    recorded: &HashMap<Vec<u8>, FolderSync>,
    plans: &[FolderPlan],
    listed: Option<&[StatusResponse]>,
    condstore: bool,
    items: &str,
) -> Result<HashMap<Vec<u8>, OpenedAndListed>, ExtractError> {
    let mut new = Vec::new();
    let mut budget = PIPELINE_LISTED_MAX;
    for plan in plans {
        if recorded.get(&plan.wire).is_none_or(|f| f.highest_uid == 0) {
            let messages = listed
                .and_then(|l| l.iter().find(|st| st.mailbox == plan.wire))
                .and_then(|st| st.messages);
            // Listed here while the budget lasts; a folder beyond it is only opened, and
            // listed on its own later, its metadata streamed into the index.
            let list = match messages {
                Some(0) => false,
                Some(n) if u64::from(n) > budget => false,
                Some(n) => {
                    budget -= u64::from(n);
                    true
                }
                None => true,
            };
            new.push((plan.wire.clone(), list));
        }
    }
    // One folder gains nothing from a pipeline.
    if new.len() < 2 {
        return Ok(HashMap::new());
    }
    let answers = s
        .examine_and_fetch_many(&new, condstore, "1:*", items)
        .await
        .during(|| format!("opening {} new folders", new.len()))?;
    Ok(new
        .into_iter()
        .zip(answers)
        .filter_map(|((wire, _), answer)| Some((wire, answer.ok()?)))
        .collect())
}
