//! Turns a framed response into the project's [`Response`]: imap-proto first, the hand
//! parsers of the tolerant path second, and a raw `tracing::warn!` when neither understands
//! it. A tagged completion is never lost: `TAG OK|NO|BAD text` always parses.
//!
//! imap-proto 0.17 panics on some inputs (`INTERNALDATE NIL`, `[ALERT]` followed by a
//! multi-byte character, non-UTF-8 METADATA values); its call is wrapped in
//! `catch_unwind`, so such a response takes the tolerant path instead of killing the task.

use std::borrow::Cow;

use imap_proto::{
    AttributeValue, Capability, MailboxDatum, Outcome, ResponseCode, SectionPath, StatusAttribute,
};
use imap_proto::{MessageSection, Response as ProtoResponse};

use super::datetime::InternalDate;
use super::fallback;
use super::framing::escaped_sample;
use super::scan;
use super::seqset::SequenceSet;
use super::types::{
    Code, FetchData, ListEntry, Response, Status, StatusResponse, StatusText, Untagged,
};

/// Parses one framed response (ending in CRLF). `None` means neither imap-proto nor the
/// tolerant parsers understood it; the raw line has then been logged.
pub fn parse(frame: &[u8]) -> Option<Response> {
    if let Some(rest) = frame.strip_prefix(b"+") {
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        let rest = rest.strip_suffix(b"\r\n").unwrap_or(rest);
        return Some(Response::Continuation {
            text: String::from_utf8_lossy(rest).into_owned(),
        });
    }
    if let Some(resp) = parse_with_imap_proto(frame) {
        return Some(resp);
    }
    let fallback = parse_tolerant(frame);
    // What a server sent is logged bounded and escaped: no control bytes reach a terminal.
    let (raw, len) = (escaped_sample(frame), frame.len());
    match &fallback {
        Some(_) => tracing::debug!(%raw, len, "parsed by the tolerant path"),
        None => tracing::warn!(%raw, len, "unparseable response skipped"),
    }
    fallback
}

/// The deepest parenthesis nesting handed to imap-proto, whose parser recurses once per
/// level (a BODYSTRUCTURE nested a few thousand deep overflows the stack, which no
/// `catch_unwind` catches). Real BODYSTRUCTUREs stay far below; deeper responses take the
/// tolerant path, whose lexer has the same bound and no recursion.
pub(crate) const MAX_NESTING: usize = 64;

/// imap-proto's verdict, with its panics caught; `None` without asking it when the response
/// nests deeper than [`MAX_NESTING`].
fn parse_with_imap_proto(frame: &[u8]) -> Option<Response> {
    if scan::nesting_depth(frame, MAX_NESTING) > MAX_NESTING {
        tracing::debug!("response nested deeper than {MAX_NESTING}: not handed to imap-proto");
        return None;
    }
    let parsed = std::panic::catch_unwind(|| match ProtoResponse::parse(frame) {
        Ok(([], resp)) => convert(frame, resp),
        _ => None,
    });
    parsed.ok().flatten()
}

/// The hand parsers' verdict.
pub(crate) fn parse_tolerant(frame: &[u8]) -> Option<Response> {
    if frame.starts_with(b"* ") {
        fallback::untagged(frame).map(Response::Untagged)
    } else {
        fallback::tagged(frame).map(|(tag, status)| Response::Tagged { tag, status })
    }
}

fn convert(frame: &[u8], resp: ProtoResponse<'_>) -> Option<Response> {
    Some(match resp {
        ProtoResponse::Done {
            tag,
            status,
            outcome,
        } => Response::Tagged {
            tag: tag.0,
            status: status_text(status_of(status), outcome),
        },
        ProtoResponse::Data { status, outcome } => {
            Response::Untagged(Untagged::Status(status_text(status_of(status), outcome)))
        }
        ProtoResponse::Continue(_) => return None,
        ProtoResponse::Capabilities(caps) => {
            let caps = caps.into_iter().map(capability).collect();
            let enabled = frame.len() > 9 && frame[2..9].eq_ignore_ascii_case(b"ENABLED");
            Response::Untagged(if enabled {
                Untagged::Enabled(caps)
            } else {
                Untagged::Capability(caps)
            })
        }
        ProtoResponse::Expunge(n) => Response::Untagged(Untagged::Expunge(n)),
        ProtoResponse::Vanished { earlier, uids } => Response::Untagged(Untagged::Vanished {
            earlier,
            uids: SequenceSet::from_ranges(uids),
        }),
        ProtoResponse::Fetch(seq, attrs) => Response::Untagged(Untagged::Fetch(fetch(seq, attrs))),
        ProtoResponse::MailboxData(datum) => Response::Untagged(mailbox_datum(datum)?),
        ProtoResponse::Id(fields) => {
            let mut fields: Vec<(String, String)> = fields
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            fields.sort();
            Response::Untagged(Untagged::Id(fields))
        }
        _ => Response::Untagged(Untagged::Other),
    })
}

fn status_of(s: imap_proto::Status) -> Status {
    match s {
        imap_proto::Status::Ok => Status::Ok,
        imap_proto::Status::No => Status::No,
        imap_proto::Status::Bad => Status::Bad,
        imap_proto::Status::PreAuth => Status::PreAuth,
        imap_proto::Status::Bye => Status::Bye,
    }
}

fn strings(v: Vec<Cow<'_, str>>) -> Vec<String> {
    v.into_iter().map(Cow::into_owned).collect()
}

fn capability(c: Capability<'_>) -> String {
    match c {
        Capability::Imap4rev1 => "IMAP4rev1".to_string(),
        Capability::Auth(a) => format!("AUTH={a}"),
        Capability::Atom(a) => a.into_owned(),
    }
}

fn uid_set(members: Vec<imap_proto::rfc4315::UidSetMember>) -> SequenceSet {
    use imap_proto::rfc4315::UidSetMember;
    SequenceSet::from_ranges(members.into_iter().map(|m| match m {
        UidSetMember::UidRange(r) => r,
        UidSetMember::Uid(u) => u..=u,
    }))
}

fn status_text(status: Status, outcome: Outcome<'_>) -> StatusText {
    let text = outcome.information.map(Cow::into_owned).unwrap_or_default();
    let code = match outcome.code {
        Some(code) => code_of(code),
        // imap-proto leaves unknown codes ([AUTHENTICATIONFAILED], [NOMODSEQ], …) and
        // codes it rejects in the text.
        None if text.starts_with('[') => return fallback::resp_text(status, text.as_bytes()),
        None => None,
    };
    StatusText { status, code, text }
}

fn code_of(code: ResponseCode<'_>) -> Option<Code> {
    Some(match code {
        ResponseCode::Alert => Code::Alert,
        ResponseCode::Parse => Code::Parse,
        ResponseCode::ReadOnly => Code::ReadOnly,
        ResponseCode::ReadWrite => Code::ReadWrite,
        ResponseCode::TryCreate => Code::TryCreate,
        ResponseCode::UidNotSticky => Code::UidNotSticky,
        ResponseCode::Capabilities(c) => Code::Capability(c.into_iter().map(capability).collect()),
        ResponseCode::PermanentFlags(f) => Code::PermanentFlags(strings(f)),
        ResponseCode::UidValidity(n) => Code::UidValidity(n),
        ResponseCode::UidNext(n) => Code::UidNext(n),
        ResponseCode::Unseen(n) => Code::Unseen(n),
        ResponseCode::HighestModSeq(n) => Code::HighestModSeq(n),
        ResponseCode::AppendUid(uid_validity, uids) => Code::AppendUid {
            uid_validity,
            uids: uid_set(uids),
        },
        ResponseCode::CopyUid(uid_validity, source, dest) => Code::CopyUid {
            uid_validity,
            source: uid_set(source),
            dest: uid_set(dest),
        },
        other => Code::Other {
            name: format!("{other:?}"),
            args: None,
        },
    })
}

/// A name imap-proto decoded lossily (invalid UTF-8) is not the wire name: give up and let
/// the tolerant path take the raw bytes.
fn raw_name(name: Cow<'_, str>) -> Option<Vec<u8>> {
    match name {
        Cow::Borrowed(s) => Some(s.as_bytes().to_vec()),
        Cow::Owned(s) if s == "INBOX" => Some(s.into_bytes()),
        Cow::Owned(_) => None,
    }
}

fn mailbox_datum(datum: MailboxDatum<'_>) -> Option<Untagged> {
    Some(match datum {
        MailboxDatum::Exists(n) => Untagged::Exists(n),
        MailboxDatum::Recent(n) => Untagged::Recent(n),
        MailboxDatum::Flags(f) => Untagged::Flags(strings(f)),
        MailboxDatum::Search(v) => Untagged::Search(v),
        MailboxDatum::List(l) => Untagged::List(ListEntry {
            attributes: l
                .name_attributes
                .into_iter()
                .map(|a| name_attribute(&a))
                .collect(),
            delimiter: l.delimiter.map(Cow::into_owned),
            name: raw_name(l.name)?,
        }),
        MailboxDatum::Status { mailbox, status } => {
            let mut st = StatusResponse {
                mailbox: raw_name(mailbox)?,
                ..StatusResponse::default()
            };
            for attr in status {
                match attr {
                    StatusAttribute::Messages(n) => st.messages = Some(n),
                    StatusAttribute::Recent(n) => st.recent = Some(n),
                    StatusAttribute::UidNext(n) => st.uid_next = Some(n),
                    StatusAttribute::UidValidity(n) => st.uid_validity = Some(n),
                    StatusAttribute::Unseen(n) => st.unseen = Some(n),
                    StatusAttribute::HighestModSeq(n) => st.highest_modseq = Some(n),
                    _ => {}
                }
            }
            Untagged::StatusResponse(st)
        }
        _ => Untagged::Other,
    })
}

fn name_attribute(a: &imap_proto::NameAttribute<'_>) -> String {
    use imap_proto::NameAttribute as N;
    match a {
        N::NoInferiors => "\\Noinferiors",
        N::NoSelect => "\\Noselect",
        N::Marked => "\\Marked",
        N::Unmarked => "\\Unmarked",
        N::All => "\\All",
        N::Archive => "\\Archive",
        N::Drafts => "\\Drafts",
        N::Flagged => "\\Flagged",
        N::Junk => "\\Junk",
        N::Sent => "\\Sent",
        N::Trash => "\\Trash",
        N::Extension(e) => return e.to_string(),
        _ => "\\Unknown",
    }
    .to_string()
}

fn fetch(seq: u32, attrs: Vec<AttributeValue<'_>>) -> FetchData {
    let mut f = FetchData {
        seq,
        ..FetchData::default()
    };
    for attr in attrs {
        match attr {
            AttributeValue::Uid(u) => f.uid = Some(u),
            AttributeValue::Flags(fl) => f.flags = Some(strings(fl)),
            AttributeValue::InternalDate(d) => f.internal_date = Some(InternalDate::new(&d)),
            AttributeValue::Rfc822Size(n) => f.rfc822_size = Some(n),
            AttributeValue::ModSeq(n) => f.modseq = Some(n),
            AttributeValue::Rfc822(d) => f.body = d.map(Cow::into_owned),
            AttributeValue::Rfc822Header(d) => f.header = d.map(Cow::into_owned),
            AttributeValue::BodySection {
                section: None,
                index: _,
                data,
            } => f.body = data.map(Cow::into_owned),
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Header)),
                index: _,
                data,
            } => f.header = data.map(Cow::into_owned),
            _ => {}
        }
    }
    f
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
