//! The caps, decided from metadata before any body is downloaded: messages over the size cap
//! are left behind; of the rest, at most `max_items` per mailbox are staged, the newest by
//! INTERNALDATE across all its folders (Microsoft's "500,000 items, newest first").
//!
//! The metadata a pass lists goes to the index (`listed_messages`) as the FETCH responses
//! arrive, [`LISTED_GROUP`] rows per transaction; the caps are decided there in SQL
//! ([`crate::stage::index::Index::decide_listed_caps`]); the bodies are then fetched walking
//! each folder's rows in chunks of [`FETCH_CHUNK`]. A pass's memory does not grow with the
//! mailbox. These rows are no record: `messages` is, and a crash before the bodies leaves
//! rows the next pass clears and lists again.

use super::ExtractError;
use super::bodies::{Decided, Meta};
use super::context::Ctx;
use super::flags::flags_text;
use crate::imap::FetchData;
use crate::stage::StageError;
use crate::stage::index::{ListedMessage, ListedVerdict, MessageState};

/// Listed messages written per transaction.
const LISTED_GROUP: usize = 4096;
/// Listed messages of a folder read back and fetched at a time.
pub(super) const FETCH_CHUNK: usize = 8192;

/// Writes a mailbox's listed metadata to the index in groups, folder by folder.
pub(super) struct Lister {
    mailbox_id: i64,
    folder_id: i64,
    folder_pos: u32,
    /// Folders listed so far.
    folders: u32,
    buffer: Vec<ListedMessage>,
    /// The highest UID of the current folder listed with its RFC822.SIZE or INTERNALDATE.
    answered_up_to: u32,
    /// A write that failed inside a FETCH callback, reported once the FETCH returns.
    failed: Option<StageError>,
}

impl Lister {
    /// A lister for one mailbox (its earlier listed rows must be cleared).
    pub(super) fn new(mailbox_id: i64) -> Self {
        Lister {
            mailbox_id,
            folder_id: 0,
            folder_pos: 0,
            folders: 0,
            buffer: Vec::new(),
            answered_up_to: 0,
            failed: None,
        }
    }

    /// What follows is listed in `folder_id`, the pass's next folder (the folders' order in
    /// the pass breaks ties on date).
    pub(super) fn next_folder(&mut self, folder_id: i64) {
        self.folder_id = folder_id;
        self.folder_pos = self.folders;
        self.folders += 1;
        self.answered_up_to = 0;
    }

    /// Whether a write failed.
    pub(super) fn failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Takes one FETCH response of a metadata listing, `answer` when it carries RFC822.SIZE
    /// or INTERNALDATE. One with neither, for a UID already listed, is a flag change another
    /// session made meanwhile (RFC 3501 7.4.2: unsolicited FETCH may come at any time), not
    /// the answer: it would replace the listed size and date, so it is left out. `false` when
    /// a write failed (the error comes from [`Lister::finish`]).
    pub(super) fn take(&mut self, ctx: &Ctx, m: Meta, answer: bool) -> bool {
        if answer {
            self.answered_up_to = self.answered_up_to.max(m.uid);
        } else if m.uid <= self.answered_up_to {
            return self.failed.is_none();
        }
        self.push(ctx, m)
    }

    /// Takes one message's metadata; a full group is written at once. `false` when a write
    /// failed (the error comes from [`Lister::finish`]).
    fn push(&mut self, ctx: &Ctx, m: Meta) -> bool {
        self.buffer.push(ListedMessage {
            folder_id: self.folder_id,
            folder_pos: self.folder_pos,
            uid: m.uid,
            size: m.size,
            internaldate: m.internaldate,
            internaldate_unix: m.unix,
            flags: m.flags,
        });
        if self.buffer.len() >= LISTED_GROUP {
            self.flush(ctx);
        }
        self.failed.is_none()
    }

    fn flush(&mut self, ctx: &Ctx) {
        if self.failed.is_some() || self.buffer.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.buffer);
        if let Err(e) = ctx.stage.index(|i| i.record_listed(self.mailbox_id, &rows)) {
            self.failed = Some(e);
        }
        self.buffer = rows;
        self.buffer.clear();
    }

    /// Writes what is buffered; the first write that failed, if any.
    pub(super) fn finish(&mut self, ctx: &Ctx) -> Result<(), ExtractError> {
        self.flush(ctx);
        self.check()
    }

    /// The first write that failed, if any.
    pub(super) fn check(&mut self) -> Result<(), ExtractError> {
        match self.failed.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// A metadata listing's FETCH response as [`Meta`], and whether it answers the listing (it
/// carries RFC822.SIZE or INTERNALDATE) rather than reporting a flag change.
pub(super) fn meta_of(f: &FetchData) -> Option<(Meta, bool)> {
    let meta = Meta {
        uid: f.uid?,
        size: u64::from(f.rfc822_size.unwrap_or(0)),
        internaldate: f.internal_date.as_ref().map(|d| d.raw.clone()),
        unix: f.internal_date.as_ref().and_then(|d| d.unix),
        flags: f.flags.as_deref().map(flags_text).unwrap_or_default(),
    };
    Some((meta, f.rfc822_size.is_some() || f.internal_date.is_some()))
}

/// The next chunk of a folder's listed messages after UID `after`, decided, in UID order.
pub(super) fn next_chunk(
    ctx: &Ctx,
    folder_id: i64,
    after: u32,
) -> Result<Vec<Decided>, ExtractError> {
    let rows = ctx
        .stage
        .index(|i| i.listed_after(folder_id, after, FETCH_CHUNK))?;
    let limits = &ctx.limits;
    Ok(rows
        .into_iter()
        .map(|(m, verdict)| {
            let skip = match verdict {
                ListedVerdict::Fetch => None,
                ListedVerdict::SkippedSize => Some((
                    MessageState::SkippedSize,
                    format!(
                        "{} bytes, over the {}-byte size cap",
                        m.size, limits.max_message_size
                    ),
                )),
                ListedVerdict::SkippedItemCap => Some((
                    MessageState::SkippedItemCap,
                    format!(
                        "beyond the newest {} items of the mailbox",
                        limits.max_items
                    ),
                )),
            };
            let meta = Meta {
                uid: m.uid,
                size: m.size,
                internaldate: m.internaldate,
                unix: m.internaldate_unix,
                flags: m.flags,
            };
            Decided { meta, skip }
        })
        .collect())
}
