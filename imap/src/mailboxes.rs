//! Mailbox commands: ID, ENABLE, NAMESPACE, LIST, STATUS, SELECT/EXAMINE, UID SEARCH, CREATE,
//! UID STORE, LOGOUT.

use tokio::io::{AsyncRead, AsyncWrite};

use super::error::ImapError;
use super::framing::FramingError;
use super::seqset::SequenceSet;
use super::session::Session;
use super::types::{Code, ListEntry, Namespaces, Response, Status, StatusResponse, Untagged};

/// What SELECT or EXAMINE reported about a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectedMailbox {
    /// EXISTS
    pub exists: u32,
    /// True when the server sent no `* n EXISTS` (RFC 3501 requires one): `exists` is then
    /// 0 from a pipelined open, or the count of `UID SEARCH ALL` from
    /// [`Session::examine`] and [`Session::select`].
    pub exists_missing: bool,
    /// UIDVALIDITY (0 when the server omitted it)
    pub uid_validity: u32,
    /// UIDNEXT, when sent
    pub uid_next: Option<u32>,
    /// HIGHESTMODSEQ, when the server supports CONDSTORE for this mailbox
    pub highest_modseq: Option<u64>,
    /// FLAGS
    pub flags: Vec<String>,
    /// PERMANENTFLAGS
    pub permanent_flags: Vec<String>,
    /// True when opened read-only (EXAMINE, or `[READ-ONLY]`)
    pub read_only: bool,
    /// UIDs the server reported expunged since the given HIGHESTMODSEQ (`VANISHED
    /// (EARLIER)`, RFC 7162), when the mailbox was opened with QRESYNC parameters; kept as
    /// a set (a server may send `1:4294967295`)
    pub vanished: Option<SequenceSet>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// ENABLE (RFC 5161); returns what the server enabled.
    pub async fn enable(&mut self, extensions: &[&str]) -> Result<Vec<String>, ImapError> {
        let cmd = self.command("ENABLE").raw(&extensions.join(" ")).build();
        let done = self.execute(cmd).await?;
        Ok(done
            .untagged
            .into_iter()
            .filter_map(|u| match u {
                Untagged::Enabled(e) => Some(e),
                _ => None,
            })
            .flatten()
            .collect())
    }

    /// ID (RFC 2971): tells the server who we are (field/value pairs) and returns the
    /// server's own identification (empty when it sends `NIL`).
    pub async fn id(&mut self, ours: &[(&str, &str)]) -> Result<Vec<(String, String)>, ImapError> {
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let list = if ours.is_empty() {
            "NIL".to_owned()
        } else {
            let pairs: Vec<String> = ours
                .iter()
                .map(|(k, v)| format!("{} {}", quote(k), quote(v)))
                .collect();
            format!("({})", pairs.join(" "))
        };
        let done = self.execute(self.command("ID").raw(&list).build()).await?;
        Ok(done
            .untagged
            .into_iter()
            .find_map(|u| match u {
                Untagged::Id(fields) => Some(fields),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// NAMESPACE (RFC 2342).
    pub async fn namespace(&mut self) -> Result<Namespaces, ImapError> {
        let done = self.execute(self.command("NAMESPACE").build()).await?;
        namespaces_of(done)
    }

    /// NAMESPACE and LIST (as [`Session::list_with_status`] when `status` names items, else
    /// as [`Session::list`]) sent together: one round trip for both. The outer error is the
    /// LIST's or the session's; NAMESPACE's own refusal is the inner one.
    pub async fn namespace_and_list(
        &mut self,
        reference: &[u8],
        pattern: &[u8],
        status: Option<&[&str]>,
    ) -> Result<(Result<Namespaces, ImapError>, ListReply), ImapError> {
        let namespace = self.command("NAMESPACE").build();
        let list = self.list_command(reference, pattern, status);
        let (mut ns_untagged, mut list_untagged) = (Vec::new(), Vec::new());
        let ns_tag = self.send(&namespace, &mut ns_untagged).await?;
        let list_tag = self.send(&list, &mut list_untagged).await?;
        let ns_status = self.wait_tagged(&ns_tag, &mut ns_untagged).await?;
        let ns = self
            .complete("NAMESPACE", ns_status, ns_untagged)
            .and_then(namespaces_of);
        let list_status = self.wait_tagged(&list_tag, &mut list_untagged).await?;
        let done = self.complete("LIST", list_status, list_untagged)?;
        Ok((ns, list_reply(done)))
    }

    /// LIST with reference and pattern as wire bytes, adding `RETURN (SPECIAL-USE)` when
    /// the server offers SPECIAL-USE.
    pub async fn list(
        &mut self,
        reference: &[u8],
        pattern: &[u8],
    ) -> Result<Vec<ListEntry>, ImapError> {
        Ok(self.list_returning(reference, pattern, None).await?.0)
    }

    /// LIST that also returns the STATUS `items` of each selectable mailbox (RFC 5819, when
    /// the server offers LIST-STATUS): one command for what would be a STATUS per mailbox.
    /// The server leaves out the STATUS of a mailbox it cannot give one for.
    pub async fn list_with_status(
        &mut self,
        reference: &[u8],
        pattern: &[u8],
        items: &[&str],
    ) -> Result<ListReply, ImapError> {
        self.list_returning(reference, pattern, Some(items)).await
    }

    async fn list_returning(
        &mut self,
        reference: &[u8],
        pattern: &[u8],
        status: Option<&[&str]>,
    ) -> Result<ListReply, ImapError> {
        let cmd = self.list_command(reference, pattern, status);
        let done = self.execute(cmd).await?;
        Ok(list_reply(done))
    }

    /// `LIST reference pattern [RETURN (SPECIAL-USE STATUS (items))]`.
    fn list_command(
        &self,
        reference: &[u8],
        pattern: &[u8],
        status: Option<&[&str]>,
    ) -> super::encode::Command {
        let mut builder = self.command("LIST").string(reference).string(pattern);
        let mut returning = Vec::new();
        if self.has_capability("SPECIAL-USE") {
            returning.push("SPECIAL-USE".to_owned());
        }
        if let Some(items) = status {
            returning.push(format!("STATUS ({})", items.join(" ")));
        }
        if !returning.is_empty() {
            builder = builder.raw(&format!("RETURN ({})", returning.join(" ")));
        }
        builder.build()
    }

    /// The hierarchy delimiter, from `LIST "" ""` (RFC 3501 §6.3.8); `None` for a flat
    /// server. Sent without `RETURN` options, which make some servers (Dovecot 2.3) answer
    /// the empty pattern with nothing.
    pub async fn hierarchy_delimiter(&mut self) -> Result<Option<char>, ImapError> {
        let cmd = self.command("LIST").string(b"").string(b"").build();
        let done = self.execute(cmd).await?;
        Ok(delimiter_of(done.untagged))
    }

    /// [`Session::hierarchy_delimiter`], its empty pattern sent as a literal that does not
    /// wait for `+` when the server announces LITERAL+ or LITERAL-: one that then answers
    /// BAD does not take them, so from then on literals wait for `+`
    /// ([`Session::use_synchronizing_literals`]) and the plain `LIST "" ""` is asked. The
    /// check costs no round trip where they work. Returns the delimiter, and false when
    /// non-synchronising literals were found refused.
    pub async fn hierarchy_delimiter_checking_literals(
        &mut self,
    ) -> Result<(Option<char>, bool), ImapError> {
        if self.literal_mode() == super::encode::LiteralMode::Synchronizing {
            return Ok((self.hierarchy_delimiter().await?, true));
        }
        let cmd = self.command("LIST").string(b"").literal(b"").build();
        match self.execute(cmd).await {
            Ok(done) => Ok((delimiter_of(done.untagged), true)),
            Err(e)
                if e.status().is_some_and(|s| s.status == Status::Bad)
                    && e.throttle_backoff().is_none() =>
            {
                tracing::warn!(
                    "the server refused a non-synchronising literal ({e}); literals wait for `+` from now on"
                );
                self.use_synchronizing_literals();
                Ok((self.hierarchy_delimiter().await?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// STATUS for a mailbox (wire name), e.g. items `["MESSAGES", "UIDNEXT", "UIDVALIDITY"]`.
    pub async fn status(
        &mut self,
        mailbox: &[u8],
        items: &[&str],
    ) -> Result<StatusResponse, ImapError> {
        let cmd = self
            .command("STATUS")
            .mailbox_raw(mailbox)
            .raw(&format!("({})", items.join(" ")))
            .build();
        let done = self.execute(cmd).await?;
        done.untagged
            .into_iter()
            .find_map(|u| match u {
                Untagged::StatusResponse(s) => Some(s),
                _ => None,
            })
            .ok_or_else(|| ImapError::Protocol("STATUS without a STATUS response".into()))
    }

    /// EXAMINE (read-only) a mailbox by wire name; `condstore` adds `(CONDSTORE)`.
    pub async fn examine(
        &mut self,
        mailbox: &[u8],
        condstore: bool,
    ) -> Result<SelectedMailbox, ImapError> {
        self.open_mailbox(
            "EXAMINE",
            mailbox,
            condstore.then_some("(CONDSTORE)".into()),
        )
        .await
    }

    /// EXAMINE with QRESYNC parameters (RFC 7162; `ENABLE QRESYNC` first): the server
    /// reports the UIDs expunged since `modseq` as [`SelectedMailbox::vanished`], provided
    /// the mailbox's UIDVALIDITY is still `uid_validity`.
    pub async fn examine_qresync(
        &mut self,
        mailbox: &[u8],
        uid_validity: u32,
        modseq: u64,
    ) -> Result<SelectedMailbox, ImapError> {
        let params = format!("(QRESYNC ({uid_validity} {modseq}))");
        self.open_mailbox("EXAMINE", mailbox, Some(params)).await
    }

    /// SELECT (read-write) a mailbox by wire name; `condstore` adds `(CONDSTORE)`.
    pub async fn select(
        &mut self,
        mailbox: &[u8],
        condstore: bool,
    ) -> Result<SelectedMailbox, ImapError> {
        self.open_mailbox("SELECT", mailbox, condstore.then_some("(CONDSTORE)".into()))
            .await
    }

    async fn open_mailbox(
        &mut self,
        verb: &str,
        mailbox: &[u8],
        params: Option<String>,
    ) -> Result<SelectedMailbox, ImapError> {
        let mut builder = self.command(verb).mailbox_raw(mailbox);
        if let Some(params) = &params {
            builder = builder.raw(params);
        }
        let done = self.execute(builder.build()).await?;
        let mut info = selected_from(verb, &done);
        if info.exists_missing {
            // Without EXISTS the folder would read as empty: count its messages instead.
            let all = self.uid_search("ALL").await.map_err(|e| {
                ImapError::Protocol(format!(
                    "{verb} sent no message count (EXISTS), and UID SEARCH ALL failed: {e}"
                ))
            })?;
            info.exists = u32::try_from(all.len()).unwrap_or(u32::MAX);
        }
        Ok(info)
    }

    /// UID SEARCH with raw criteria (e.g. `UID 100:*` or `ALL`); uses ESEARCH's
    /// `RETURN (ALL)` when offered. Returns the UIDs in ascending order.
    pub async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let esearch = self.has_capability("ESEARCH");
        let mut builder = self.command("UID SEARCH");
        if esearch {
            builder = builder.raw("RETURN (ALL)");
        }
        let done = self.execute(builder.raw(criteria).build()).await?;
        let mut uids: Vec<u32> = Vec::new();
        for u in done.untagged {
            match u {
                Untagged::Search(v) => uids.extend(v),
                Untagged::ESearch(e) => {
                    uids.extend(
                        e.all
                            .iter()
                            .flat_map(|s| s.ranges().flatten().collect::<Vec<_>>()),
                    );
                }
                _ => {}
            }
        }
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// CREATE a mailbox by wire name. An existing mailbox is an error whose
    /// [`ImapError::code_name`] is usually `ALREADYEXISTS`.
    pub async fn create(&mut self, mailbox: &[u8]) -> Result<(), ImapError> {
        let cmd = self.command("CREATE").mailbox_raw(mailbox).build();
        self.execute(cmd).await.map(drop)
    }

    /// UID STORE, e.g. `action = "+FLAGS.SILENT"`, `flags = ["\\Flagged"]`.
    pub async fn uid_store(
        &mut self,
        uids: &SequenceSet,
        action: &str,
        flags: &[&str],
    ) -> Result<(), ImapError> {
        let cmd = self
            .command("UID STORE")
            .raw(&uids.to_string())
            .raw(action)
            .raw(&format!("({})", flags.join(" ")))
            .build();
        self.execute(cmd).await.map(drop)
    }

    /// Sends LOGOUT without waiting for its answer, for a client about to close the
    /// connection anyway (saves a round trip; the server ends the session either way).
    pub async fn send_logout(&mut self) -> Result<(), ImapError> {
        self.send(&self.command("LOGOUT").build(), &mut Vec::new())
            .await
            .map(drop)
    }

    /// LOGOUT: expects BYE and the tagged OK; a connection closed right after BYE is fine.
    pub async fn logout(&mut self) -> Result<(), ImapError> {
        let tag = self
            .send(&self.command("LOGOUT").build(), &mut Vec::new())
            .await?;
        loop {
            let resp = match self.read(&mut super::sink::DiscardSink).await {
                Ok(incoming) => incoming.response,
                Err(ImapError::Framing(FramingError::Closed)) => return Ok(()),
                Err(e) => return Err(e),
            };
            match resp {
                Response::Tagged { tag: t, status } if t == tag => {
                    return match status.status {
                        Status::Ok => Ok(()),
                        _ => Err(ImapError::Rejected {
                            command: "LOGOUT".into(),
                            status: Box::new(status),
                        }),
                    };
                }
                other => tracing::debug!(?other, "during LOGOUT"),
            }
        }
    }
}

/// What a LIST returned: the mailboxes, and their STATUS when asked for (LIST-STATUS).
pub type ListReply = (Vec<ListEntry>, Vec<StatusResponse>);

fn list_reply(done: super::session::Completed) -> ListReply {
    let (mut lists, mut statuses) = (Vec::new(), Vec::new());
    for u in done.untagged {
        match u {
            Untagged::List(l) => lists.push(l),
            Untagged::StatusResponse(st) => statuses.push(st),
            _ => {}
        }
    }
    (lists, statuses)
}

fn namespaces_of(done: super::session::Completed) -> Result<Namespaces, ImapError> {
    done.untagged
        .into_iter()
        .find_map(|u| match u {
            Untagged::Namespace(n) => Some(n),
            _ => None,
        })
        .ok_or_else(|| ImapError::Protocol("NAMESPACE without a NAMESPACE response".into()))
}

/// What a completed SELECT or EXAMINE (`verb`) reported.
pub(crate) fn selected_from(verb: &str, done: &super::session::Completed) -> SelectedMailbox {
    let mut info = SelectedMailbox {
        read_only: verb == "EXAMINE",
        exists_missing: !done
            .untagged
            .iter()
            .any(|u| matches!(u, Untagged::Exists(_))),
        ..SelectedMailbox::default()
    };
    let mut codes = Vec::new();
    for u in &done.untagged {
        match u {
            Untagged::Status(st) => codes.extend(st.code.as_ref()),
            Untagged::Exists(n) => info.exists = *n,
            Untagged::Flags(f) => info.flags.clone_from(f),
            Untagged::Vanished {
                earlier: true,
                uids,
            } => {
                let before = info.vanished.take().unwrap_or_default();
                info.vanished = Some(SequenceSet::from_ranges(
                    before.ranges().chain(uids.ranges()),
                ));
            }
            _ => {}
        }
    }
    codes.extend(done.status.code.as_ref());
    for code in codes {
        match code {
            Code::UidValidity(n) => info.uid_validity = *n,
            Code::UidNext(n) => info.uid_next = Some(*n),
            Code::HighestModSeq(n) => info.highest_modseq = Some(*n),
            Code::PermanentFlags(f) => info.permanent_flags.clone_from(f),
            Code::ReadOnly => info.read_only = true,
            Code::ReadWrite => info.read_only = false,
            _ => {}
        }
    }
    info
}

/// The delimiter an answer to `LIST "" ""` names (`None` for a flat server).
fn delimiter_of(untagged: Vec<Untagged>) -> Option<char> {
    untagged.into_iter().find_map(|u| match u {
        Untagged::List(l) => l.delimiter.as_deref()?.chars().next(),
        _ => None,
    })
}
