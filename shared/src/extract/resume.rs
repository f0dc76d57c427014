//! Bodies that survive a broken link: each body whose UID is known before its literal is
//! written into its partial (`tmp/partial/`, [`PartialKey`]), so what arrived stays when the
//! link breaks; the next attempt, in this run or a later one, continues it with
//! `UID FETCH <uid> (UID BODY.PEEK[]<origin.length>)`, hashing as it goes, and the blob is
//! persisted only once the whole body arrived (and its overlap with the kept bytes matched).

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::bodies::{Decided, FolderTarget};
use super::context::Ctx;
use crate::imap::LiteralStart;
use crate::stage::{BlobWriter, PartialKey, PartialWriter, PendingBlob};

/// Bytes of a message's start kept to read its Message-ID.
const HEAD_MAX: usize = 64 * 1024;

/// Names the partial of each message of a group.
pub(crate) struct Keys {
    endpoint: String,
    mailbox_id: i64,
    folder_id: i64,
    uidvalidity: u32,
    sizes: std::collections::HashMap<u32, u64>,
}

impl Keys {
    /// The keys of `group`'s messages in `target`.
    pub fn new(ctx: &Ctx, target: &FolderTarget<'_>, group: &[Decided]) -> Self {
        Self {
            endpoint: format!("{}:{}", ctx.connect.host, ctx.connect.port),
            mailbox_id: target.mailbox_id,
            folder_id: target.folder_id,
            uidvalidity: target.uidvalidity,
            sizes: group.iter().map(|d| (d.meta.uid, d.meta.size)).collect(),
        }
    }

    /// The key of `uid`'s partial, when it is one of the group's.
    pub fn key(&self, uid: u32) -> Option<PartialKey> {
        Some(PartialKey {
            endpoint: self.endpoint.clone(),
            mailbox_id: self.mailbox_id,
            folder_id: self.folder_id,
            uidvalidity: self.uidvalidity,
            uid,
            size: *self.sizes.get(&uid)?,
        })
    }
}

/// Where a body's bytes go.
enum Sink {
    /// Its partial, resumable.
    Partial(PartialWriter),
    /// A plain temporary blob (the UID came after the literal: nothing to key it by).
    Plain(BlobWriter),
    /// Nowhere: writing failed, or the bytes did not match the partial; the reason.
    Failed(String),
}

/// A body being fetched, with the message's first bytes (for its Message-ID). Dropped
/// unfinished (the link broke), its partial keeps what arrived, counted in `gained`.
pub(crate) struct Body {
    sink: Sink,
    head: Vec<u8>,
    head_done: bool,
    gained: Arc<AtomicU64>,
}

/// The origin of a ranged FETCH item (`BODY[]<1024>` → 1024; a whole body → 0).
fn origin_of(item: &str) -> u64 {
    item.strip_suffix('>')
        .and_then(|i| i.rsplit_once('<'))
        .and_then(|(_, o)| o.parse().ok())
        .unwrap_or(0)
}

impl Body {
    /// Opens the writer for a literal that starts; never fails (a failure to open becomes
    /// the message's failure, so the rest of the FETCH goes on).
    pub fn open(ctx: &Ctx, keys: &Keys, start: &LiteralStart, gained: &Arc<AtomicU64>) -> Self {
        let origin = origin_of(&start.item);
        let sink = match start.uid_hint.and_then(|uid| keys.key(uid)) {
            Some(key) => match ctx.stage.blobs.partial_writer(&key, origin) {
                Ok(w) => Sink::Partial(w),
                Err(e) => Sink::Failed(format!("its partial body: {e}")),
            },
            None if origin > 0 => Sink::Failed(format!(
                "the server sent part of a body from byte {origin} without its UID first"
            )),
            None => match ctx.stage.blobs.writer() {
                Ok(w) => Sink::Plain(w),
                Err(e) => Sink::Failed(format!("writing its blob failed: {e}")),
            },
        };
        Self {
            sink,
            head: Vec::new(),
            head_done: origin > 0,
            gained: gained.clone(),
        }
    }

    /// The blob and Message-ID of a complete body, or why there is none.
    pub fn finish(mut self) -> Result<(PendingBlob, Option<String>), String> {
        let head = std::mem::take(&mut self.head);
        let pending = match std::mem::replace(&mut self.sink, Sink::Failed(String::new())) {
            Sink::Partial(w) => w.finish().map_err(|e| e.to_string())?,
            Sink::Plain(w) => w
                .finish()
                .map_err(|e| format!("writing its blob failed: {e}"))?,
            Sink::Failed(why) => return Err(why),
        };
        let id = if head.is_empty() {
            None
        } else {
            super::bodies::message_id(&head)
        };
        Ok((pending, id))
    }
}

impl Write for Body {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = match &mut self.sink {
            Sink::Partial(w) => w.write_chunk(buf),
            Sink::Plain(w) => w.write_chunk(buf),
            Sink::Failed(_) => return Ok(buf.len()),
        };
        if let Err(e) = written {
            // The partial (if any) is dropped; the message fails this time, not the FETCH.
            self.sink = Sink::Failed(e.to_string());
            return Ok(buf.len());
        }
        if !self.head_done {
            let take = buf.len().min(HEAD_MAX - self.head.len());
            self.head.extend_from_slice(&buf[..take]);
            let ends = |sep: &[u8]| self.head.windows(sep.len()).any(|w| w == sep);
            self.head_done = self.head.len() >= HEAD_MAX || ends(b"\r\n\r\n") || ends(b"\n\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Sink::Partial(w) = &self.sink {
            self.gained.fetch_add(w.gained(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_of_fetch_items() {
        assert_eq!(origin_of("BODY[]"), 0);
        assert_eq!(origin_of("BODY[]<1024>"), 1024);
        assert_eq!(origin_of("RFC822"), 0);
        assert_eq!(origin_of("BODY[]<x>"), 0);
    }
}
