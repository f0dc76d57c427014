//! Hand parsers for what imap-proto rejects or does not know: status lines (never lose a
//! tagged completion), unknown response codes, ESEARCH, NAMESPACE, and tolerant versions of
//! CAPABILITY, LIST, STATUS, SEARCH, VANISHED and FETCH.

use super::datetime::InternalDate;
use super::lexer::{Value, lex};
use super::scan::{WHOLE_MESSAGE_ITEMS, status_word};
use super::seqset::SequenceSet;
use super::types::{
    Code, ESearch, FetchData, ListEntry, Namespace, Namespaces, Status, StatusResponse, StatusText,
    Untagged,
};

fn strip_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits off the first space-separated word.
fn word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ') {
        Some(p) => (&line[..p], &line[p + 1..]),
        None => (line, &[]),
    }
}

/// Parses `TAG OK|NO|BAD [code] text`.
pub(crate) fn tagged(line: &[u8]) -> Option<(String, StatusText)> {
    let (tag, rest) = word(strip_crlf(line));
    if tag.is_empty() || tag == b"*" || tag == b"+" {
        return None;
    }
    let (status, rest) = word(rest);
    let status = status_word(status)?;
    let tag = String::from_utf8_lossy(tag).into_owned();
    Some((tag, resp_text(status, rest)))
}

/// Parses `[code] text` after a status word.
pub(crate) fn resp_text(status: Status, rest: &[u8]) -> StatusText {
    let rest = trim_spaces(rest);
    if let Some(inner) = rest.strip_prefix(b"[")
        && let Some(close) = inner.iter().position(|&b| b == b']')
    {
        let text = trim_spaces(&inner[close + 1..]);
        return StatusText {
            status,
            code: Some(code(&inner[..close])),
            text: String::from_utf8_lossy(text).into_owned(),
        };
    }
    StatusText {
        status,
        code: None,
        text: String::from_utf8_lossy(rest).into_owned(),
    }
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ').map_or(start, |p| p + 1);
    &b[start..end.max(start)]
}

fn texts(values: &[Value]) -> Vec<String> {
    values.iter().filter_map(Value::text).collect()
}

/// Parses the inside of a response code's brackets.
pub(crate) fn code(inner: &[u8]) -> Code {
    let (name, args) = word(trim_spaces(inner));
    let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
    let values = lex(args).unwrap_or_default();
    let num = |i: usize| values.get(i).and_then(Value::number::<u32>);
    let set = |i: usize| values.get(i).and_then(Value::bytes).and_then(parse_seqset);
    let known = match upper.as_str() {
        "ALERT" => Some(Code::Alert),
        "PARSE" => Some(Code::Parse),
        "READ-ONLY" => Some(Code::ReadOnly),
        "READ-WRITE" => Some(Code::ReadWrite),
        "TRYCREATE" => Some(Code::TryCreate),
        "UIDNOTSTICKY" => Some(Code::UidNotSticky),
        "CAPABILITY" => Some(Code::Capability(texts(&values))),
        "PERMANENTFLAGS" => values
            .first()
            .and_then(Value::list)
            .map(|l| Code::PermanentFlags(texts(l))),
        "UIDVALIDITY" => num(0).map(Code::UidValidity),
        "UIDNEXT" => num(0).map(Code::UidNext),
        "UNSEEN" => num(0).map(Code::Unseen),
        "HIGHESTMODSEQ" => values
            .first()
            .and_then(Value::number)
            .map(Code::HighestModSeq),
        "APPENDUID" => num(0)
            .zip(set(1))
            .map(|(uid_validity, uids)| Code::AppendUid { uid_validity, uids }),
        "COPYUID" => match (num(0), set(1), set(2)) {
            (Some(uid_validity), Some(source), Some(dest)) => Some(Code::CopyUid {
                uid_validity,
                source,
                dest,
            }),
            _ => None,
        },
        _ => None,
    };
    known.unwrap_or_else(|| Code::Other {
        name: String::from_utf8_lossy(name).into_owned(),
        args: (!args.is_empty()).then(|| String::from_utf8_lossy(args).into_owned()),
    })
}

/// Parses `1:3,5,9:12` (no `*`).
pub(crate) fn parse_seqset(text: &[u8]) -> Option<SequenceSet> {
    let mut ranges = Vec::new();
    for part in text.split(|&b| b == b',') {
        let mut ends = part.splitn(2, |&b| b == b':');
        let a = Value::Atom(ends.next()?.to_vec()).number::<u32>()?;
        let b = match ends.next() {
            Some(e) => Value::Atom(e.to_vec()).number::<u32>()?,
            None => a,
        };
        ranges.push(a.min(b)..=a.max(b));
    }
    Some(SequenceSet::from_ranges(ranges))
}

/// Parses an untagged response (`* …`) by hand.
pub(crate) fn untagged(line: &[u8]) -> Option<Untagged> {
    let rest = strip_crlf(line).strip_prefix(b"* ")?;
    let (first, after) = word(rest);
    if let Some(status) = status_word(first) {
        return Some(Untagged::Status(resp_text(status, after)));
    }
    let values = lex(rest)?;
    let head = values.first()?;
    if let Some(n) = head.number::<u32>() {
        let what = values.get(1)?;
        return if what.is_atom("EXISTS") {
            Some(Untagged::Exists(n))
        } else if what.is_atom("RECENT") {
            Some(Untagged::Recent(n))
        } else if what.is_atom("EXPUNGE") {
            Some(Untagged::Expunge(n))
        } else if what.is_atom("FETCH") {
            fetch(n, values.get(2)?.list()?).map(Untagged::Fetch)
        } else {
            None
        };
    }
    let args = &values[1..];
    let name = head.text()?.to_ascii_uppercase();
    match name.as_str() {
        "CAPABILITY" => Some(Untagged::Capability(texts(args))),
        "ENABLED" => Some(Untagged::Enabled(texts(args))),
        "FLAGS" => Some(Untagged::Flags(texts(args.first()?.list()?))),
        "LIST" | "LSUB" => list(args).map(Untagged::List),
        "STATUS" => status(args).map(Untagged::StatusResponse),
        "SEARCH" => Some(Untagged::Search(
            args.iter().map_while(Value::number).collect(),
        )),
        "ESEARCH" => Some(Untagged::ESearch(esearch(args))),
        "NAMESPACE" => namespaces(args).map(Untagged::Namespace),
        "VANISHED" => {
            let earlier = args.first()?.list().is_some();
            let set = args.get(usize::from(earlier))?.bytes()?;
            Some(Untagged::Vanished {
                earlier,
                uids: parse_seqset(set)?,
            })
        }
        _ => None,
    }
}

fn list(args: &[Value]) -> Option<ListEntry> {
    let attributes = texts(args.first()?.list()?);
    let delim = args.get(1)?;
    let delimiter = if delim.is_nil() {
        None
    } else {
        Some(delim.text()?)
    };
    let name = args.get(2)?.bytes()?.to_vec();
    Some(ListEntry {
        attributes,
        delimiter,
        name,
    })
}

fn status(args: &[Value]) -> Option<StatusResponse> {
    let mut st = StatusResponse {
        mailbox: args.first()?.bytes()?.to_vec(),
        ..StatusResponse::default()
    };
    for pair in args.get(1)?.list()?.chunks(2) {
        let [key, value] = pair else { return None };
        let key = key.text()?.to_ascii_uppercase();
        match key.as_str() {
            "MESSAGES" => st.messages = value.number(),
            "RECENT" => st.recent = value.number(),
            "UIDNEXT" => st.uid_next = value.number(),
            "UIDVALIDITY" => st.uid_validity = value.number(),
            "UNSEEN" => st.unseen = value.number(),
            "HIGHESTMODSEQ" => st.highest_modseq = value.number(),
            _ => {}
        }
    }
    Some(st)
}

fn esearch(mut args: &[Value]) -> ESearch {
    let mut es = ESearch::default();
    if let Some([key, tag]) = args.first().and_then(Value::list) {
        if key.is_atom("TAG") {
            es.tag = tag.text();
        }
        args = &args[1..];
    }
    if args.first().is_some_and(|v| v.is_atom("UID")) {
        es.uid = true;
        args = &args[1..];
    }
    for pair in args.chunks(2) {
        let [key, value] = pair else { break };
        if key.is_atom("MIN") {
            es.min = value.number();
        } else if key.is_atom("MAX") {
            es.max = value.number();
        } else if key.is_atom("COUNT") {
            es.count = value.number();
        } else if key.is_atom("ALL") {
            es.all = value.bytes().and_then(parse_seqset);
        }
    }
    es
}

fn namespaces(args: &[Value]) -> Option<Namespaces> {
    let group = |v: &Value| -> Option<Vec<Namespace>> {
        if v.is_nil() {
            return Some(Vec::new());
        }
        v.list()?
            .iter()
            .map(|ns| {
                let ns = ns.list()?;
                let delim = ns.get(1)?;
                Some(Namespace {
                    prefix: ns.first()?.text()?,
                    delimiter: if delim.is_nil() { None } else { delim.text() },
                })
            })
            .collect()
    };
    Some(Namespaces {
        personal: group(args.first()?)?,
        other_users: group(args.get(1)?)?,
        shared: group(args.get(2)?)?,
    })
}

/// `BODY[HEADER.FIELDS (…)]` or `BODY[HEADER.FIELDS.NOT (…)]` (imap-proto files both as the
/// header too).
fn is_header_fields(key: &[u8]) -> bool {
    let key = String::from_utf8_lossy(key).to_ascii_uppercase();
    ["BODY[", "BODY.PEEK["]
        .iter()
        .filter_map(|p| key.strip_prefix(p))
        .any(|rest| rest.starts_with("HEADER.FIELDS"))
}

fn section_is(key: &[u8], names: &[&str]) -> bool {
    let key = String::from_utf8_lossy(key).to_ascii_uppercase();
    let base = key.split('<').next().unwrap_or_default();
    names.contains(&base)
}

fn fetch(seq: u32, items: &[Value]) -> Option<FetchData> {
    let mut f = FetchData {
        seq,
        ..FetchData::default()
    };
    for pair in items.chunks(2) {
        let [key, value] = pair else { return None };
        let Value::Atom(k) = key else { return None };
        let nstring = || {
            (!value.is_nil())
                .then(|| value.bytes().map(<[u8]>::to_vec))
                .flatten()
        };
        if k.eq_ignore_ascii_case(b"UID") {
            f.uid = value.number();
        } else if k.eq_ignore_ascii_case(b"FLAGS") {
            f.flags = value.list().map(texts);
        } else if k.eq_ignore_ascii_case(b"INTERNALDATE") {
            f.internal_date = value
                .text()
                .filter(|_| !value.is_nil())
                .map(|t| InternalDate::new(&t));
        } else if k.eq_ignore_ascii_case(b"RFC822.SIZE") {
            f.rfc822_size = value.number();
        } else if k.eq_ignore_ascii_case(b"MODSEQ") {
            f.modseq = value.list()?.first()?.number();
        } else if section_is(k, &WHOLE_MESSAGE_ITEMS) {
            f.body = nstring();
        } else if section_is(k, &["BODY[HEADER]", "BODY.PEEK[HEADER]", "RFC822.HEADER"])
            || is_header_fields(k)
        {
            f.header = nstring();
        }
    }
    Some(f)
}
