//! Commands sent without waiting for the one before: STATUS for many mailboxes in one
//! stretch of round trips (the fallback where LIST-STATUS, RFC 5819, is not offered), and
//! EXAMINE plus a metadata `UID FETCH` for many mailboxes (a first pass over many folders).

use tokio::io::{AsyncRead, AsyncWrite};

use super::encode::{Command, Part};
use super::error::ImapError;
use super::fetch::{Fetch, FetchedMessage};
use super::mailboxes::{SelectedMailbox, selected_from};
use super::seqset::SequenceSet;
use super::session::{Completed, Session};
use super::sink::DiscardSink;
use super::sink::LiteralSink;
use super::types::{FetchData, Response, Status, StatusResponse, StatusText, Untagged};

/// At most this many commands wait for their completion at once: enough to hide a long
/// round trip, few enough that neither side's socket buffers fill while the other writes.
pub const PIPELINE_WINDOW: usize = 64;

/// One pipelined command: its tag and position, until its completion comes.
struct InFlight {
    tag: String,
    index: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// STATUS `items` of every mailbox in `mailboxes` (wire names), pipelined: up to
    /// [`PIPELINE_WINDOW`] commands in flight, so the whole list costs about one round trip
    /// plus the server's time. The outer error is the session's (the link, a BYE); each inner
    /// result is one mailbox's (a NO for a mailbox that went away meanwhile).
    pub async fn status_many(
        &mut self,
        mailboxes: &[Vec<u8>],
        items: &[&str],
    ) -> Result<Vec<Result<StatusResponse, ImapError>>, ImapError> {
        let items = format!("({})", items.join(" "));
        let mut results: Vec<Option<Result<StatusResponse, ImapError>>> =
            mailboxes.iter().map(|_| None).collect();
        let mut in_flight: Vec<InFlight> = Vec::new();
        // STATUS responses received and not yet matched to a completion.
        let mut received: Vec<StatusResponse> = Vec::new();
        let mut next = 0;
        while next < mailboxes.len() || !in_flight.is_empty() {
            while next < mailboxes.len() && in_flight.len() < PIPELINE_WINDOW {
                let cmd = self
                    .command("STATUS")
                    .mailbox_raw(&mailboxes[next])
                    .raw(&items)
                    .build();
                if has_sync_literal(&cmd) && !in_flight.is_empty() {
                    // Its `+` would come after the completions in flight: let them end first.
                    break;
                }
                let mut untagged = Vec::new();
                let tag = self.send(&cmd, &mut untagged).await?;
                received.extend(untagged.into_iter().filter_map(status_of));
                in_flight.push(InFlight { tag, index: next });
                next += 1;
            }
            if in_flight.is_empty() {
                continue;
            }
            match self.read(&mut DiscardSink).await?.response {
                Response::Tagged { tag, status } => {
                    let Some(at) = in_flight.iter().position(|f| f.tag == tag) else {
                        self.route_other(Response::Tagged { tag, status }, &mut Vec::new())?;
                        continue;
                    };
                    let done = in_flight.remove(at);
                    let wire = &mailboxes[done.index];
                    let result = match status.status {
                        Status::Ok => take_status(&mut received, wire).ok_or_else(|| {
                            ImapError::Protocol("STATUS without a STATUS response".into())
                        }),
                        _ => Err(ImapError::Rejected {
                            command: "STATUS".into(),
                            status: Box::new(status),
                        }),
                    };
                    results[done.index] = Some(result);
                }
                Response::Untagged(Untagged::StatusResponse(st)) => received.push(st),
                other => self.route_other(other, &mut Vec::new())?,
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ImapError::Protocol("STATUS never completed".into()))))
            .collect())
    }
}

/// A mailbox opened and listed by [`Session::examine_and_fetch_many`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedAndListed {
    /// What EXAMINE reported.
    pub mailbox: SelectedMailbox,
    /// The FETCH responses of the `UID FETCH` that followed it (`None`: not listed).
    pub fetched: Option<Vec<FetchData>>,
}

/// One command of an EXAMINE + UID FETCH pipeline, until its completion.
struct Pending {
    tag: String,
    /// The mailbox's position.
    index: usize,
    /// True for the EXAMINE, false for the UID FETCH.
    examine: bool,
    untagged: Vec<Untagged>,
    fetched: Vec<FetchData>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// For each mailbox (wire name, and whether to list it): `EXAMINE` (with `(CONDSTORE)`
    /// when asked) followed, when asked, by `UID FETCH <set> <items>`, pipelined: commands
    /// for up to [`PIPELINE_WINDOW`] / 2 mailboxes in flight. The server runs them in order, so each FETCH reads the mailbox
    /// the EXAMINE before it opened. Afterwards the last mailbox is the selected one (or
    /// none, if its EXAMINE failed). The outer error is the session's; each inner result is
    /// one mailbox's (its EXAMINE's or its FETCH's refusal).
    pub async fn examine_and_fetch_many(
        &mut self,
        mailboxes: &[(Vec<u8>, bool)],
        condstore: bool,
        set: &str,
        items: &str,
    ) -> Result<Vec<Result<OpenedAndListed, ImapError>>, ImapError> {
        let mut results: Vec<Option<Result<OpenedAndListed, ImapError>>> =
            mailboxes.iter().map(|_| None).collect();
        let mut opened: Vec<Option<Result<SelectedMailbox, ImapError>>> =
            mailboxes.iter().map(|_| None).collect();
        let mut in_flight: std::collections::VecDeque<Pending> = Default::default();
        let mut next = 0;
        while next < mailboxes.len() || !in_flight.is_empty() {
            while next < mailboxes.len() && in_flight.len() + 2 <= PIPELINE_WINDOW {
                let (wire, list) = &mailboxes[next];
                let mut examine = self.command("EXAMINE").mailbox_raw(wire);
                if condstore {
                    examine = examine.raw("(CONDSTORE)");
                }
                let examine = examine.build();
                if has_sync_literal(&examine) && !in_flight.is_empty() {
                    break;
                }
                let mut cmds = vec![(examine, true)];
                if *list {
                    cmds.push((self.command("UID FETCH").raw(set).raw(items).build(), false));
                }
                for (cmd, is_examine) in cmds {
                    let mut untagged = Vec::new();
                    let tag = self.send(&cmd, &mut untagged).await?;
                    in_flight.push_back(Pending {
                        tag,
                        index: next,
                        examine: is_examine,
                        untagged,
                        fetched: Vec::new(),
                    });
                }
                next += 1;
            }
            let response = self.read(&mut DiscardSink).await?.response;
            let Some(front) = in_flight.front_mut() else {
                self.route_other(response, &mut Vec::new())?;
                continue;
            };
            match response {
                Response::Tagged { tag, status } => {
                    let Some(at) = in_flight.iter().position(|p| p.tag == tag) else {
                        self.route_other(Response::Tagged { tag, status }, &mut Vec::new())?;
                        continue;
                    };
                    let Some(done) = in_flight.remove(at) else {
                        continue;
                    };
                    let list = mailboxes[done.index].1;
                    self.finish_pending(done, status, list, &mut opened, &mut results);
                }
                Response::Untagged(Untagged::Fetch(f)) if !front.examine => {
                    if f.uid.is_none() {
                        self.unsolicited()?;
                    }
                    front.fetched.push(f);
                }
                other => {
                    let mut untagged = std::mem::take(&mut front.untagged);
                    let routed = self.route_other(other, &mut untagged);
                    if let Some(front) = in_flight.front_mut() {
                        front.untagged = untagged;
                    }
                    routed?;
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(ImapError::Protocol("EXAMINE never completed".into())))
            })
            .collect())
    }

    /// Records one completed command of [`Session::examine_and_fetch_many`].
    fn finish_pending(
        &mut self,
        done: Pending,
        status: StatusText,
        list: bool,
        opened: &mut [Option<Result<SelectedMailbox, ImapError>>],
        results: &mut [Option<Result<OpenedAndListed, ImapError>>],
    ) {
        let name = if done.examine { "EXAMINE" } else { "UID FETCH" };
        let completed = self.complete(name, status, done.untagged);
        if done.examine {
            let mailbox = completed.map(|c: Completed| selected_from("EXAMINE", &c));
            if list {
                opened[done.index] = Some(mailbox);
            } else {
                results[done.index] = Some(mailbox.map(|mailbox| OpenedAndListed {
                    mailbox,
                    fetched: None,
                }));
            }
            return;
        }
        let mailbox = opened[done.index].take().unwrap_or_else(|| {
            Err(ImapError::Protocol(
                "UID FETCH completed before its EXAMINE".into(),
            ))
        });
        results[done.index] = Some(mailbox.and_then(|mailbox| {
            completed.map(|_| OpenedAndListed {
                mailbox,
                fetched: Some(done.fetched),
            })
        }));
    }
}

/// The mailbox to open right behind a body fetch: its wire name and whether to ask for
/// CONDSTORE.
#[derive(Debug, Clone, Copy)]
pub struct OpenNext<'a> {
    /// The mailbox's name as the server sent it.
    pub wire: &'a [u8],
    /// EXAMINE with `(CONDSTORE)`.
    pub condstore: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// [`Session::uid_fetch`] of the selected mailbox with `EXAMINE next` sent right behind
    /// its last `UID FETCH`, so the next mailbox is open one round trip sooner: the EXAMINE's
    /// answer, or `None` when it was not sent (a chunk failed first, or it needed a
    /// synchronising literal: the caller opens it on its own).
    ///
    /// Why the answers cannot be mixed up: the server runs a connection's commands in order
    /// (RFC 3501 §5.5; EXAMINE changes the selected mailbox only when it runs), so every
    /// FETCH response of the fetches arrives before their last tagged completion, and that
    /// completion before anything of the EXAMINE. Until then the mailbox read is still the
    /// fetched one; `UID FETCH` names messages by UID, never by a sequence number a
    /// pipelined command could shift.
    pub async fn uid_fetch_then_examine<K, F>(
        &mut self,
        sets: &[SequenceSet],
        items: &str,
        max_in_flight: usize,
        sink: &mut K,
        on_message: F,
        next: OpenNext<'_>,
    ) -> Result<Option<Result<SelectedMailbox, ImapError>>, ImapError>
    where
        K: LiteralSink,
        F: FnMut(FetchedMessage<K::Output>) -> Result<(), ImapError>,
    {
        let mut examine = self.command("EXAMINE").mailbox_raw(next.wire);
        if next.condstore {
            examine = examine.raw("(CONDSTORE)");
        }
        let examine = examine.build();
        let then = (!has_sync_literal(&examine)).then_some(examine);
        let fetch = Fetch {
            sets,
            items,
            max_in_flight,
        };
        let done = self.uid_fetch_then(fetch, then, sink, on_message).await?;
        Ok(done.map(|r| r.map(|c| selected_from("EXAMINE", &c))))
    }
}

fn has_sync_literal(cmd: &Command) -> bool {
    cmd.parts
        .iter()
        .any(|p| matches!(p, Part::Literal { sync: true, .. }))
}

fn status_of(u: Untagged) -> Option<StatusResponse> {
    match u {
        Untagged::StatusResponse(st) => Some(st),
        _ => None,
    }
}

/// The STATUS response for `wire` among those received (INBOX in any case); failing a match
/// by name, the latest one (servers answer in order).
fn take_status(received: &mut Vec<StatusResponse>, wire: &[u8]) -> Option<StatusResponse> {
    let same = |st: &StatusResponse| {
        st.mailbox == wire
            || (st.mailbox.eq_ignore_ascii_case(b"INBOX") && wire.eq_ignore_ascii_case(b"INBOX"))
    };
    let at = received
        .iter()
        .position(same)
        .or_else(|| received.len().checked_sub(1))?;
    Some(received.remove(at))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::session::SessionConfig;

    /// The server's side: a greeting with `capabilities`, then `lines` command lines read
    /// before any answer.
    async fn greet_then_read(
        server: tokio::io::DuplexStream,
        capabilities: &str,
        lines: usize,
    ) -> (BufReader<tokio::io::DuplexStream>, Vec<String>) {
        let mut io = BufReader::new(server);
        let greeting = format!("* OK [CAPABILITY {capabilities}] hi\r\n");
        io.get_mut().write_all(greeting.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..lines {
            let mut line = String::new();
            io.read_line(&mut line).await.unwrap();
            got.push(line);
        }
        (io, got)
    }

    #[tokio::test]
    async fn status_many_sends_before_reading_and_matches_answers() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let peer = tokio::spawn(async move {
            // All three commands arrive before any answer is sent: they were pipelined.
            let (mut io, got) = greet_then_read(server, "IMAP4rev1 LIST-STATUS", 3).await;
            assert_eq!(
                got,
                [
                    "A0001 STATUS INBOX (MESSAGES HIGHESTMODSEQ)\r\n",
                    "A0002 STATUS Gone (MESSAGES HIGHESTMODSEQ)\r\n",
                    "A0003 STATUS \"Sent Items\" (MESSAGES HIGHESTMODSEQ)\r\n",
                ]
            );
            let answers = "* STATUS inbox (MESSAGES 3 HIGHESTMODSEQ 9)\r\nA0001 OK\r\n\
                           A0002 NO [NONEXISTENT] no such mailbox\r\n\
                           * STATUS \"Sent Items\" (MESSAGES 0 HIGHESTMODSEQ 1)\r\nA0003 OK\r\n\
                           A0004 OK LIST done\r\n";
            io.get_mut().write_all(answers.as_bytes()).await.unwrap();
            let mut line = String::new();
            io.read_line(&mut line).await.unwrap();
            assert!(
                line.starts_with("A0004 LIST \"\" \"*\" RETURN (STATUS (MESSAGES))"),
                "{line}"
            );
        });
        let mut s = Session::connect(client, SessionConfig::default())
            .await
            .unwrap();
        let names = [b"INBOX".to_vec(), b"Gone".to_vec(), b"Sent Items".to_vec()];
        let got = s
            .status_many(&names, &["MESSAGES", "HIGHESTMODSEQ"])
            .await
            .unwrap();
        let inbox = got[0].as_ref().unwrap();
        assert_eq!((inbox.messages, inbox.highest_modseq), (Some(3), Some(9)));
        assert!(
            matches!(got[1], Err(ImapError::Rejected { .. })),
            "{:?}",
            got[1]
        );
        let sent = got[2].as_ref().unwrap();
        assert_eq!(
            (sent.mailbox.as_slice(), sent.messages),
            (&b"Sent Items"[..], Some(0))
        );
        let (listed, statuses) = s.list_with_status(b"", b"*", &["MESSAGES"]).await.unwrap();
        assert!(listed.is_empty() && statuses.is_empty());
        peer.await.unwrap();
    }

    #[tokio::test]
    async fn examine_goes_out_behind_the_fetches_and_gets_its_own_answers() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let peer = tokio::spawn(async move {
            // Both fetches and the EXAMINE arrive before any answer: pipelined.
            let (mut io, got) = greet_then_read(server, "IMAP4rev1", 3).await;
            assert_eq!(
                got,
                [
                    "A0001 UID FETCH 1:2 (UID BODY.PEEK[])\r\n",
                    "A0002 UID FETCH 7 (UID BODY.PEEK[])\r\n",
                    "A0003 EXAMINE Next\r\n",
                ]
            );
            let answers = "* 1 FETCH (UID 1 BODY[] {2}\r\nab)\r\n\
                           * 2 FETCH (UID 2 BODY[] {1}\r\nc)\r\nA0001 OK\r\n\
                           * 3 FETCH (UID 7 BODY[] {1}\r\nd)\r\n* 4 EXPUNGE\r\nA0002 OK\r\n\
                           * 0 EXISTS\r\n* OK [UIDVALIDITY 42] v\r\n\
                           * OK [UIDNEXT 9] n\r\nA0003 OK [READ-ONLY] done\r\n";
            io.get_mut().write_all(answers.as_bytes()).await.unwrap();
        });
        let mut s = Session::connect(client, SessionConfig::default())
            .await
            .unwrap();
        let sets = [SequenceSet::from_uids([1, 2]), SequenceSet::from_uids([7])];
        let mut uids = Vec::new();
        let next = OpenNext {
            wire: b"Next",
            condstore: false,
        };
        let opened = s
            .uid_fetch_then_examine(
                &sets,
                "(UID BODY.PEEK[])",
                4,
                &mut crate::sink::MemorySink::new(1024),
                |m| {
                    uids.push(m.fetch.uid);
                    Ok(())
                },
                next,
            )
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(uids, [Some(1), Some(2), Some(7)]);
        assert_eq!(
            (opened.uid_validity, opened.uid_next, opened.exists),
            (42, Some(9), 0)
        );
        peer.await.unwrap();
    }
}
