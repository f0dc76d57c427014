//! APPEND on an IMAP target: several in flight on one connection where the server offers
//! LITERAL+ (each answer matched to its message by tag as it returns), else one at a time
//! with its answer kept until it is asked for.

use super::destination::{Delivery, Outgoing};
use super::imap_target::{ImapTarget, words_of};
use super::refusal::{self, Scope};
use super::{UploadError, is_flagged};
use crate::imap::{AppendOutcome, During as _, ImapError};

/// An APPEND sent and not answered yet.
pub(crate) struct Unanswered {
    /// Its command tag.
    tag: String,
    /// The caller's ticket for the message.
    ticket: u64,
    /// The target folder, as the admin reads it (for errors).
    folder: String,
    /// `\Flagged` is to be set by a STORE once it is stored (Microsoft 365).
    flag: bool,
}

/// A message's ticket and what became of it.
pub(crate) type Answer = (u64, Result<Delivery, UploadError>);

impl ImapTarget {
    /// Sends a message: ahead of the answers to those before it when the server takes a
    /// non-synchronising literal of its size, otherwise alone (nothing may be unanswered
    /// then), keeping its answer for [`ImapTarget::next_answer`].
    pub(super) async fn start(
        &mut self,
        folder: &[String],
        message: Outgoing,
        ticket: u64,
    ) -> Result<(), UploadError> {
        let wire = self.wire(folder);
        let name = folder.join("/");
        let step = || format!("APPEND to {name:?}");
        let flag = self.store_flagged && is_flagged(&message.flags);
        let flags: Vec<&str> = message.flags.iter().map(String::as_str).collect();
        let date = message.internaldate.as_deref();
        let data = tokio::io::BufReader::new(tokio::fs::File::from_std(message.blob));
        let size = message.size;
        if self.session.append_pipelines(size) {
            let tag = self
                .session
                .append_send(&wire, &flags, date, size, data)
                .await
                .during(step)?;
            self.unanswered.push(Unanswered {
                tag,
                ticket,
                folder: name,
                flag,
            });
            return Ok(());
        }
        if !self.unanswered.is_empty() {
            return Err(ImapError::Protocol(
                "an APPEND that waits for `+` cannot follow unanswered ones".into(),
            ))
            .during(step)
            .map_err(UploadError::from);
        }
        let answer = match self.session.append(&wire, &flags, date, size, data).await {
            Ok(outcome) => Ok(stored(&outcome, flag)),
            Err(e @ ImapError::Rejected { .. }) => refused(e, &name),
            Err(e) => return Err(e).during(step).map_err(UploadError::from),
        };
        self.answered.push_back((ticket, answer));
        Ok(())
    }

    /// The next answer to a message sent by [`ImapTarget::start`].
    pub(super) async fn next_answer(&mut self) -> Result<Answer, UploadError> {
        if let Some(answer) = self.answered.pop_front() {
            return Ok(answer);
        }
        let tags: Vec<String> = self.unanswered.iter().map(|u| u.tag.clone()).collect();
        if tags.is_empty() {
            // Only after a failed send: the link is gone.
            return Err(ImapError::Unusable)
                .during(|| "waiting for APPEND answers".into())
                .map_err(UploadError::from);
        }
        let (tag, result) = self
            .session
            .append_answer(&tags)
            .await
            .during(|| format!("waiting for the answers to {} APPENDs", tags.len()))?;
        let at = self
            .unanswered
            .iter()
            .position(|u| u.tag == tag)
            .unwrap_or_default();
        let sent = self.unanswered.remove(at);
        let answer = match result {
            Ok(outcome) => Ok(stored(&outcome, sent.flag)),
            Err(e) => refused(e, &sent.folder),
        };
        Ok((sent.ticket, answer))
    }
}

/// A stored message: its id from `[APPENDUID]`, and whether `\Flagged` is still to be set.
/// Without a usable APPENDUID the flag stays owed under [`NO_APPENDUID`], which no STORE
/// can use: the run reports it pending rather than the message silently done without it.
fn stored(outcome: &AppendOutcome, flag: bool) -> Delivery {
    let id = outcome
        .uid_validity
        .zip(outcome.uid)
        .map(|(v, u)| format!("{v}:{u}"));
    match outcome.uid {
        Some(uid) if flag => Delivery::StoredToFlag(id.unwrap_or_else(|| format!("0:{uid}"))),
        None if flag => Delivery::StoredToFlag(NO_APPENDUID.into()),
        _ => Delivery::Stored(id),
    }
}

/// The id recorded for a stored message whose APPEND answer carried no usable
/// `[APPENDUID]` (a server without UIDPLUS, a malformed code).
pub(super) const NO_APPENDUID: &str = "no-appenduid";

/// What a NO or BAD to an APPEND in `folder` means: a refusal of the message, its folder or
/// the whole mailbox, a passing one, or (a throttle among them) an error of that message.
fn refused(e: ImapError, folder: &str) -> Result<Delivery, UploadError> {
    match refusal::scope(&e) {
        Some(Scope::Message) => Ok(Delivery::Refused(words_of(&e))),
        Some(Scope::Folder) if refusal::folder_missing(&e) => {
            Ok(Delivery::FolderMissing(words_of(&e)))
        }
        Some(Scope::Folder) => Ok(Delivery::FolderRefused(words_of(&e))),
        Some(Scope::Mailbox) => Ok(Delivery::MailboxFull(words_of(&e))),
        Some(Scope::Passing) => Err(UploadError::TryAgain(words_of(&e))),
        None => Err(e)
            .during(|| format!("APPEND to {folder:?}"))
            .map_err(UploadError::from),
    }
}
