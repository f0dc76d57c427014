//! APPEND on an IMAP target: several in flight on one connection where the server offers
//! LITERAL+ (each answer matched to its message by tag as it returns), else one at a time
//! with its answer kept until it is asked for.

use super::destination::{Delivery, Outgoing};
use super::imap_target::{ImapTarget, words_of};
use super::refusal::{self, Scope};
use super::{UploadError, is_flagged};
use crate::imap::{AppendOutcome, During as _, ImapError, Status};

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
            Err(e @ ImapError::Rejected { .. }) => {
                self.literal_was_not_the_cause(&e);
                refused(e, &name)
            }
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
            Err(e) if refuses_literal(&e) => Err(self.literals_must_wait(&e, &sent.folder)),
            Err(e) => refused(e, &sent.folder),
        };
        Ok((sent.ticket, answer))
    }

    /// The target refused a literal sent without waiting for `+`: from now on (this
    /// connection and every later one to this target in the run) literals wait for it. The
    /// message was not stored; the link may be out of step (the server may read the
    /// literal as commands), so it is sent again after a reconnect.
    fn literals_must_wait(&mut self, e: &ImapError, folder: &str) -> UploadError {
        tracing::warn!(%folder, "the target refused a non-synchronising literal ({e}); literals wait for `+` from now on");
        self.synchronizing_only
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.session.use_synchronizing_literals();
        UploadError::TryAgain(format!(
            "the target refused a literal sent without waiting for `+` ({}); sending it again \
             with synchronising literals",
            words_of(e)
        ))
    }

    /// A BAD to an APPEND whose literal waited for `+` is about the message (Exchange's
    /// `Command Argument Error. 11` for one over its size), so the BAD that made this run
    /// give up non-synchronising literals may have been too: later connections try them
    /// again (this one keeps waiting; a target that does refuse them costs one reconnect).
    fn literal_was_not_the_cause(&self, e: &ImapError) {
        if e.status().is_some_and(|s| s.status == Status::Bad) && refuses_literal(e) {
            self.synchronizing_only
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// True when an answer to an APPEND sent with a non-synchronising literal refuses that
/// literal: any BAD that is not a throttle (a server that announced LITERAL+ or LITERAL-
/// but does not take them reads the command as malformed), or a NO naming literals. A BAD
/// about the message itself comes again once the literal waits for `+`, and is then taken
/// as a refusal of the message.
fn refuses_literal(e: &ImapError) -> bool {
    let Some(status) = e.status() else {
        return false;
    };
    if e.throttle_backoff().is_some() || e.is_passing_refusal() {
        return false;
    }
    match status.status {
        Status::Bad => true,
        Status::No => status.text.to_ascii_lowercase().contains("literal"),
        _ => false,
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
