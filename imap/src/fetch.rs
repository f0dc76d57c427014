//! Pipelined UID FETCH: several commands in flight, message bodies streamed to a sink and
//! handed to the caller together with the parsed FETCH items.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncWrite};

use super::encode::Command;
use super::error::ImapError;
use super::framing::StreamedBody;
use super::seqset::SequenceSet;
use super::session::{Completed, Session};
use super::sink::{LiteralSink, LiteralStart};
use super::types::{FetchData, Response, Untagged};

/// The `UID FETCH` commands of [`Session::uid_fetch`]: one per set, `items` raw, at most
/// `max_in_flight` outstanding.
pub(crate) struct Fetch<'a> {
    pub(crate) sets: &'a [SequenceSet],
    pub(crate) items: &'a str,
    pub(crate) max_in_flight: usize,
}

/// One FETCH response: its items and, when a whole message was fetched, the sink's output.
///
/// The body is delivered with the parsed response, so `fetch.uid` is known even when the
/// server sent `UID` after the literal.
#[derive(Debug)]
pub struct FetchedMessage<O> {
    /// UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ, …
    pub fetch: FetchData,
    /// The streamed (or inline) whole-message body: item name, exact length, sink output.
    pub body: Option<StreamedBody<O>>,
    /// The length of a whole-message body the server sent over the framing's limit, read
    /// and dropped ([`super::framing::OVERSIZED_DRAIN`]); `body` is then `None`.
    pub oversized: Option<u64>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Sends `UID FETCH <set> <items>` for each set, keeping at most `max_in_flight`
    /// commands outstanding, and calls `on_message` for every FETCH response in arrival
    /// order. `items` is raw, e.g. `(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`.
    ///
    /// A NO/BAD for one chunk, a sink failure or an error from `on_message` stops sending
    /// further chunks; the commands already in flight are drained so the session stays
    /// usable, then the first error is returned.
    pub async fn uid_fetch<K, F>(
        &mut self,
        sets: &[SequenceSet],
        items: &str,
        max_in_flight: usize,
        sink: &mut K,
        on_message: F,
    ) -> Result<(), ImapError>
    where
        K: LiteralSink,
        F: FnMut(FetchedMessage<K::Output>) -> Result<(), ImapError>,
    {
        let fetch = Fetch {
            sets,
            items,
            max_in_flight,
        };
        self.uid_fetch_then(fetch, None, sink, on_message)
            .await
            .map(drop)
    }

    /// [`Session::uid_fetch`], then `then` sent right behind the last `UID FETCH` (before
    /// their completions are read) and read to its completion too: its result, or `None`
    /// when it was not sent (a chunk failed first). The server answers commands in order, so
    /// every response that arrives before the last `UID FETCH` completes belongs to the
    /// fetches, and every untagged response after it to `then`.
    pub(crate) async fn uid_fetch_then<K, F>(
        &mut self,
        fetch: Fetch<'_>,
        then: Option<Command>,
        sink: &mut K,
        mut on_message: F,
    ) -> Result<Option<Result<Completed, ImapError>>, ImapError>
    where
        K: LiteralSink,
        F: FnMut(FetchedMessage<K::Output>) -> Result<(), ImapError>,
    {
        let Fetch {
            sets,
            items,
            max_in_flight,
        } = fetch;
        let max_in_flight = max_in_flight.max(1);
        let sets: Vec<&SequenceSet> = sets.iter().filter(|s| !s.is_empty()).collect();
        let mut next = sets.into_iter().peekable();
        let mut pending: VecDeque<String> = VecDeque::new();
        let mut first_error: Option<ImapError> = None;
        // `then` until it is sent; then its tag, name and the untagged responses it gathers.
        let mut then = then;
        let mut then_sent: Option<(String, String, Vec<Untagged>)> = None;
        let mut then_result = None;
        // A mailbox of N messages answers with at most N FETCH responses; past that (plus
        // EXISTS announced meanwhile) they count as unsolicited, so an endless stream ends.
        let mut answered = 0u64;
        for set in next.by_ref().take(max_in_flight) {
            pending.push_back(self.send_fetch(set, items).await?);
        }
        loop {
            if next.peek().is_none()
                && first_error.is_none()
                && let Some(cmd) = then.take()
            {
                let mut untagged = Vec::new();
                let tag = self.send(&cmd, &mut untagged).await?;
                then_sent = Some((tag, cmd.name.clone(), untagged));
            }
            if pending.is_empty() && then_sent.is_none() {
                break;
            }
            let incoming = self.read(sink).await?;
            match incoming.response {
                Response::Untagged(Untagged::Fetch(fetch)) if !pending.is_empty() => {
                    answered += u64::from(fetch.uid.is_some());
                    let beyond = answered > u64::from(self.exists().unwrap_or(u32::MAX));
                    if fetch.uid.is_none() || beyond {
                        self.unsolicited()?; // a UID FETCH answers with UIDs
                    }
                    let oversized = incoming.frame.oversized;
                    let mut bodies = incoming.frame.bodies.into_iter();
                    let mut body = bodies.next();
                    if bodies.next().is_some() {
                        tracing::warn!(
                            seq = fetch.seq,
                            "several message bodies in one FETCH; keeping the first"
                        );
                    }
                    if first_error.is_some() {
                        continue;
                    }
                    let mut fetch = fetch;
                    let inline = fetch.body.take();
                    // An oversized body left `BODY[] {0}` in its place: no inline body.
                    if body.is_none()
                        && oversized.is_none()
                        && let Some(data) = inline
                    {
                        match feed_inline(sink, &fetch, &data) {
                            Ok(b) => body = Some(b),
                            Err(e) => first_error = Some(ImapError::Sink(e)),
                        }
                    }
                    if first_error.is_none()
                        && let Err(e) = on_message(FetchedMessage {
                            fetch,
                            body,
                            oversized,
                        })
                    {
                        first_error = Some(e);
                    }
                }
                Response::Tagged { tag, status } if pending.contains(&tag) => {
                    pending.retain(|t| *t != tag);
                    if let Err(e) = self.complete("UID FETCH", status, Vec::new()) {
                        first_error.get_or_insert(e);
                    }
                    if first_error.is_none()
                        && let Some(set) = next.next()
                    {
                        pending.push_back(self.send_fetch(set, items).await?);
                    }
                }
                Response::Tagged { tag, status }
                    if then_sent.as_ref().is_some_and(|(t, ..)| *t == tag) =>
                {
                    if let Some((_, name, untagged)) = then_sent.take() {
                        then_result = Some(self.complete(&name, status, untagged));
                    }
                }
                // After the last fetch completed, untagged data is `then`'s.
                other => match then_sent.as_mut() {
                    Some((_, _, untagged)) if pending.is_empty() => {
                        self.route_other(other, untagged)?;
                    }
                    _ => self.route_other(other, &mut Vec::new())?,
                },
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(then_result),
        }
    }

    async fn send_fetch(&mut self, set: &SequenceSet, items: &str) -> Result<String, ImapError> {
        let cmd = self
            .command("UID FETCH")
            .raw(&set.to_string())
            .raw(items)
            .build();
        self.send(&cmd, &mut Vec::new()).await
    }

    /// UID FETCH of metadata only (no bodies): returns every FETCH response.
    pub async fn uid_fetch_meta(
        &mut self,
        set: &SequenceSet,
        items: &str,
    ) -> Result<Vec<FetchData>, ImapError> {
        let mut out = Vec::new();
        let mut sink = super::sink::DiscardSink;
        self.uid_fetch(std::slice::from_ref(set), items, 1, &mut sink, |m| {
            out.push(m.fetch);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// `UID FETCH <set> (UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (<fields>)])`: every FETCH
    /// response, with the fields' lines (and the empty line after them) in
    /// [`FetchData::header`]. `PEEK` leaves `\Seen` alone; `fields` are atoms (`SUBJECT`).
    pub async fn uid_fetch_header_fields(
        &mut self,
        set: &SequenceSet,
        fields: &[&str],
    ) -> Result<Vec<FetchData>, ImapError> {
        let items = format!(
            "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS ({})])",
            fields.join(" ")
        );
        self.uid_fetch_meta(set, &items).await
    }
}

/// Passes a body the server sent inline (quoted) through the sink, like a streamed one.
fn feed_inline<K: LiteralSink>(
    sink: &mut K,
    fetch: &FetchData,
    data: &[u8],
) -> std::io::Result<StreamedBody<K::Output>> {
    let start = LiteralStart {
        seq: fetch.seq,
        uid_hint: fetch.uid,
        item: "BODY[]".into(),
        len: data.len() as u64,
    };
    sink.begin(&start)?;
    if let Err(e) = sink.chunk(data) {
        sink.abort();
        return Err(e);
    }
    Ok(StreamedBody {
        item: start.item,
        len: start.len,
        output: sink.finish(start.len)?,
    })
}
