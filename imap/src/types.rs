//! The project's own response types: owned, independent of imap-proto's borrowed types.

use std::fmt;

use super::datetime::InternalDate;
use super::seqset::SequenceSet;
use crate::mutf7::{self, Mutf7Error};

/// The condition of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `PREAUTH` (greeting only)
    PreAuth,
    /// `BYE`
    Bye,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "OK",
            Self::No => "NO",
            Self::Bad => "BAD",
            Self::PreAuth => "PREAUTH",
            Self::Bye => "BYE",
        })
    }
}

/// A response code in brackets, e.g. `[UIDVALIDITY 3]` or `[AUTHENTICATIONFAILED]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// `ALERT`
    Alert,
    /// `PARSE`
    Parse,
    /// `READ-ONLY`
    ReadOnly,
    /// `READ-WRITE`
    ReadWrite,
    /// `TRYCREATE`
    TryCreate,
    /// `UIDNOTSTICKY`
    UidNotSticky,
    /// `CAPABILITY …`
    Capability(Vec<String>),
    /// `PERMANENTFLAGS (…)`
    PermanentFlags(Vec<String>),
    /// `UIDVALIDITY n`
    UidValidity(u32),
    /// `UIDNEXT n`
    UidNext(u32),
    /// `UNSEEN n`
    Unseen(u32),
    /// `HIGHESTMODSEQ n`
    HighestModSeq(u64),
    /// `APPENDUID uidvalidity uids` (RFC 4315)
    AppendUid {
        /// UIDVALIDITY of the target mailbox.
        uid_validity: u32,
        /// UIDs of the appended messages.
        uids: SequenceSet,
    },
    /// `COPYUID uidvalidity source dest` (RFC 4315)
    CopyUid {
        /// UIDVALIDITY of the target mailbox.
        uid_validity: u32,
        /// Source UIDs.
        source: SequenceSet,
        /// Target UIDs.
        dest: SequenceSet,
    },
    /// Any other code, e.g. `AUTHENTICATIONFAILED`, `NOMODSEQ`, `OVERQUOTA`.
    Other {
        /// The code's name, as sent.
        name: String,
        /// Whatever followed the name inside the brackets.
        args: Option<String>,
    },
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Alert => f.write_str("ALERT"),
            Self::Parse => f.write_str("PARSE"),
            Self::ReadOnly => f.write_str("READ-ONLY"),
            Self::ReadWrite => f.write_str("READ-WRITE"),
            Self::TryCreate => f.write_str("TRYCREATE"),
            Self::UidNotSticky => f.write_str("UIDNOTSTICKY"),
            Self::Capability(c) => write!(f, "CAPABILITY {}", c.join(" ")),
            Self::PermanentFlags(p) => write!(f, "PERMANENTFLAGS ({})", p.join(" ")),
            Self::UidValidity(n) => write!(f, "UIDVALIDITY {n}"),
            Self::UidNext(n) => write!(f, "UIDNEXT {n}"),
            Self::Unseen(n) => write!(f, "UNSEEN {n}"),
            Self::HighestModSeq(n) => write!(f, "HIGHESTMODSEQ {n}"),
            Self::AppendUid { uid_validity, uids } => write!(f, "APPENDUID {uid_validity} {uids}"),
            Self::CopyUid {
                uid_validity,
                source,
                dest,
            } => write!(f, "COPYUID {uid_validity} {source} {dest}"),
            Self::Other { name, args: None } => f.write_str(name),
            Self::Other {
                name,
                args: Some(a),
            } => write!(f, "{name} {a}"),
        }
    }
}

/// A status response's condition, optional code and human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText {
    /// OK, NO, BAD, PREAUTH or BYE.
    pub status: Status,
    /// The bracketed response code, if any.
    pub code: Option<Code>,
    /// The text after the code.
    pub text: String,
}

impl fmt::Display for StatusText {
    /// Renders like the wire: `NO [AUTHENTICATIONFAILED] Authentication failed.`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " [{code}]")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// A parsed server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A tagged completion: `A0001 OK …`.
    Tagged {
        /// The command tag it completes.
        tag: String,
        /// Condition, code and text.
        status: StatusText,
    },
    /// A continuation request: `+ text-or-base64`.
    Continuation {
        /// Everything after `+ ` (base64 for SASL).
        text: String,
    },
    /// Untagged data: `* …`.
    Untagged(Untagged),
}

/// Untagged responses the client routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged {
    /// `* OK/NO/BAD/PREAUTH/BYE [code] text`.
    Status(StatusText),
    /// `* CAPABILITY …`
    Capability(Vec<String>),
    /// `* ENABLED …`
    Enabled(Vec<String>),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT`
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(u32),
    /// `* VANISHED [(EARLIER)] uids` (QRESYNC)
    Vanished {
        /// True for `(EARLIER)`.
        earlier: bool,
        /// The vanished UIDs.
        uids: SequenceSet,
    },
    /// `* FLAGS (…)`
    Flags(Vec<String>),
    /// `* LIST …` or `* LSUB …`
    List(ListEntry),
    /// `* STATUS mailbox (…)`
    StatusResponse(StatusResponse),
    /// `* SEARCH n …`
    Search(Vec<u32>),
    /// `* ESEARCH …` (RFC 4731)
    ESearch(ESearch),
    /// `* NAMESPACE …` (RFC 2342)
    Namespace(Namespaces),
    /// `* n FETCH (…)`
    Fetch(FetchData),
    /// `* ID (…)` (RFC 2971): the server's identification, field and value.
    Id(Vec<(String, String)>),
    /// Understood by the parser but not used by this client (QUOTA, ACL, …).
    Other,
}

/// One mailbox from LIST or LSUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Name attributes as sent, e.g. `\HasNoChildren`, `\Noselect`, `\Sent`.
    pub attributes: Vec<String>,
    /// Hierarchy delimiter; `None` for a flat namespace (NIL).
    pub delimiter: Option<String>,
    /// The mailbox name exactly as on the wire (modified UTF-7 unless UTF8=ACCEPT).
    pub name: Vec<u8>,
}

impl ListEntry {
    /// True when the entry has the attribute (case-insensitive, with the backslash).
    pub fn has_attribute(&self, attr: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }

    /// False for `\Noselect` and `\NonExistent` entries.
    pub fn is_selectable(&self) -> bool {
        !self.has_attribute("\\Noselect") && !self.has_attribute("\\NonExistent")
    }

    /// The special-use attribute (RFC 6154), if any: `\Sent`, `\Drafts`, `\Trash`, …
    pub fn special_use(&self) -> Option<&str> {
        const USES: [&str; 7] = [
            "\\All",
            "\\Archive",
            "\\Drafts",
            "\\Flagged",
            "\\Junk",
            "\\Sent",
            "\\Trash",
        ];
        self.attributes
            .iter()
            .find(|a| USES.iter().any(|u| u.eq_ignore_ascii_case(a)))
            .map(String::as_str)
    }

    /// The name decoded from modified UTF-7 (strict).
    pub fn decoded_name(&self) -> Result<String, Mutf7Error> {
        let text = std::str::from_utf8(&self.name)
            .map_err(|e| Mutf7Error::RawNonAscii(e.valid_up_to()))?;
        mutf7::decode(text)
    }
}

/// The answer to STATUS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusResponse {
    /// The mailbox name as on the wire.
    pub mailbox: Vec<u8>,
    /// MESSAGES
    pub messages: Option<u32>,
    /// RECENT
    pub recent: Option<u32>,
    /// UIDNEXT
    pub uid_next: Option<u32>,
    /// UIDVALIDITY
    pub uid_validity: Option<u32>,
    /// UNSEEN
    pub unseen: Option<u32>,
    /// HIGHESTMODSEQ
    pub highest_modseq: Option<u64>,
}

/// An ESEARCH result (RFC 4731).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ESearch {
    /// The tag of the command it answers.
    pub tag: Option<String>,
    /// True when the numbers are UIDs.
    pub uid: bool,
    /// MIN
    pub min: Option<u32>,
    /// MAX
    pub max: Option<u32>,
    /// COUNT
    pub count: Option<u32>,
    /// ALL
    pub all: Option<SequenceSet>,
}

/// One namespace: prefix and delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The prefix as on the wire, e.g. `""` or `INBOX.`.
    pub prefix: String,
    /// The hierarchy delimiter, if any.
    pub delimiter: Option<String>,
}

/// The answer to NAMESPACE: personal, other users' and shared namespaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// Personal namespaces.
    pub personal: Vec<Namespace>,
    /// Other users' namespaces.
    pub other_users: Vec<Namespace>,
    /// Shared namespaces.
    pub shared: Vec<Namespace>,
}

/// The items of one FETCH response that this client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchData {
    /// Message sequence number.
    pub seq: u32,
    /// UID
    pub uid: Option<u32>,
    /// FLAGS
    pub flags: Option<Vec<String>>,
    /// INTERNALDATE
    pub internal_date: Option<InternalDate>,
    /// RFC822.SIZE
    pub rfc822_size: Option<u32>,
    /// MODSEQ
    pub modseq: Option<u64>,
    /// A whole-message body that came inline (quoted) rather than streamed.
    pub body: Option<Vec<u8>>,
    /// `BODY[HEADER]`, `BODY[HEADER.FIELDS (…)]` or `RFC822.HEADER` bytes, when fetched.
    pub header: Option<Vec<u8>>,
}
