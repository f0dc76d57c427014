//! The header fingerprint in the resume key of a message without a usable Message-ID: its
//! Subject, Date and From compared *decoded*, so the key survives a target that rewrites the
//! message (Exchange converts it to MAPI and writes new MIME: other bytes, another size,
//! headers re-encoded and re-folded).

use std::io::{self, BufRead, Read};

use mail_parser::{Addr, Address, DateTime, MessageParser};

/// The header fields the fingerprint reads, as named in `HEADER.FIELDS`.
pub(crate) const FIELDS: [&str; 3] = ["DATE", "SUBJECT", "FROM"];

/// The most header bytes read from a staged message ([`read_header`]).
pub(crate) const MAX_HEADER: u64 = 1 << 20;

/// Subject, Date and From of a message, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderFingerprint {
    /// The Subject decoded (RFC 2047), runs of whitespace as one space, trimmed; empty when
    /// absent.
    pub subject: String,
    /// The Date header as seconds since the epoch, when it parses.
    pub date: Option<i64>,
    /// The first From address (addr-spec), lower-cased, when there is one.
    pub from: Option<String>,
}

impl HeaderFingerprint {
    /// The fingerprint of a header (or of some of its fields). Garbage gives empty fields,
    /// never a panic.
    pub fn of_header(header: &[u8]) -> Self {
        let Some(m) = MessageParser::default().parse_headers(header) else {
            return Self::default();
        };
        Self {
            subject: m.subject().map(collapse_whitespace).unwrap_or_default(),
            date: m
                .date()
                .filter(|d| d.is_valid())
                .map(DateTime::to_timestamp),
            from: m
                .from()
                .and_then(Address::first)
                .and_then(Addr::address)
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_lowercase),
        }
    }

    /// True when two messages with this `internaldate` agree: the same subject, the same
    /// From address (or neither has one), and the same Date instant, a missing Date counting
    /// as the INTERNALDATE (Exchange gives a message without a Date one from when it was
    /// stored). It is an equivalence, used alike for copies on the target and for confirmed
    /// staged messages, so the two counts it feeds agree: a staged message without a From
    /// never takes another's copy that has one for its own (it would be marked done without
    /// ever being stored); a server that adds other missing headers costs a duplicate,
    /// never a loss.
    pub fn matches(&self, other: &Self, internaldate: i64) -> bool {
        self.subject == other.subject
            && self.from == other.from
            && self.date.unwrap_or(internaldate) == other.date.unwrap_or(internaldate)
    }
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads a message's header: up to and including the first empty line (CRLF or bare LF), or
/// the whole message when it has no body. `None` when no empty line comes within `limit`
/// bytes; nothing past the header (at most `limit` bytes) is read.
pub(crate) fn read_header(message: impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut reader = io::BufReader::new(message.take(limit));
    let mut header = Vec::new();
    loop {
        let start = header.len();
        if reader.read_until(b'\n', &mut header)? == 0 || !header.ends_with(b"\n") {
            // The end of the message, or of the bytes allowed.
            return Ok(((header.len() as u64) < limit).then_some(header));
        }
        if matches!(&header[start..], b"\n" | b"\r\n") {
            return Ok(Some(header));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fp(header: &str) -> HeaderFingerprint {
        HeaderFingerprint::of_header(header.as_bytes())
    }

    /// An INTERNALDATE far from every Date in these tests.
    const NO_DATE: i64 = 0;

    const STAGED: &str = "From: Alice Example <Alice@Example.test>\r\n\
        Subject: Quarterly   report\r\n\
        Date: Tue, 02 Jan 2024 10:00:00 +0000\r\n\r\n";

    #[test]
    fn reads_the_decoded_fields() {
        assert_eq!(
            fp(STAGED),
            HeaderFingerprint {
                subject: "Quarterly report".into(),
                date: Some(1_704_189_600),
                from: Some("alice@example.test".into()),
            }
        );
    }

    #[test]
    fn an_encoded_subject_matches_the_plain_one() {
        let staged = fp("Subject: Grüße aus Köln\r\n\r\n");
        let q = fp("Subject: =?iso-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=\r\n\r\n");
        let b = fp("Subject: =?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n\r\n");
        assert_eq!(staged.subject, "Grüße aus Köln");
        assert!(
            staged.matches(&q, NO_DATE) && staged.matches(&b, NO_DATE),
            "{q:?} {b:?}"
        );
        assert!(!staged.matches(&fp("Subject: Grüße aus Bonn\r\n\r\n"), NO_DATE));
    }

    #[test]
    fn a_folded_subject_matches_the_unfolded_one() {
        let unfolded = fp("Subject: a long subject that goes on\r\n\r\n");
        let folded = fp("Subject: a long subject\r\n\tthat goes on \r\n\r\n");
        let split_words =
            fp("Subject: =?utf-8?Q?a_long_subject?=\r\n =?utf-8?Q?_that_goes_on?=\r\n\r\n");
        assert!(unfolded.matches(&folded, NO_DATE), "{folded:?}");
        assert!(unfolded.matches(&split_words, NO_DATE), "{split_words:?}");
    }

    #[test]
    fn dates_compare_as_instants() {
        let utc = fp("Date: Tue, 02 Jan 2024 10:00:00 +0000\r\n\r\n");
        let paris = fp("Date: Tue, 2 Jan 2024 11:00:00 +0100\r\n\r\n");
        let later = fp("Date: Tue, 02 Jan 2024 10:00:01 +0000\r\n\r\n");
        assert!(utc.matches(&paris, NO_DATE), "{paris:?}");
        assert!(!utc.matches(&later, NO_DATE));
        assert!(!utc.matches(&fp("\r\n"), NO_DATE), "a Date the copy lacks");
    }

    #[test]
    fn a_missing_date_is_the_internaldate_on_either_side() {
        let stored_at = 1_704_189_600; // Tue, 02 Jan 2024 10:00:00 +0000
        let undated = fp("Subject: Hi\r\n\r\n");
        let dated = fp("Subject: Hi\r\nDate: Tue, 02 Jan 2024 11:00:00 +0100\r\n\r\n");
        assert!(undated.matches(&dated, stored_at) && dated.matches(&undated, stored_at));
        assert!(!undated.matches(&dated, stored_at + 1));
        // A From on one side only never matches: that copy may be another message's.
        let with_from = fp("Subject: Hi\r\nFrom: a@x.test\r\n\r\n");
        assert!(!undated.matches(&with_from, stored_at) && !with_from.matches(&undated, stored_at));
    }

    #[test]
    fn from_compares_the_address_only() {
        let staged = fp("From: Alice Example <alice@example.test>\r\n\r\n");
        let renamed = fp("From: \"Example, Alice\" <ALICE@example.test>\r\n\r\n");
        let encoded = fp("From: =?utf-8?Q?Al=C3=AFce?= <alice@example.test>\r\n\r\n");
        let bare = fp("From: alice@example.test\r\n\r\n");
        for copy in [&renamed, &encoded, &bare] {
            assert!(staged.matches(copy, NO_DATE), "{copy:?}");
        }
        assert!(!staged.matches(&fp("From: Alice <bob@example.test>\r\n\r\n"), NO_DATE));
    }

    #[test]
    fn absent_fields_are_empty_and_must_be_absent_on_both_sides() {
        let none = fp("X-Other: 1\r\n\r\n");
        assert_eq!(none, HeaderFingerprint::default());
        assert!(none.matches(&fp("X-Added-By-Target: 1\r\nSubject:   \r\n\r\n"), NO_DATE));
        // A staged message without Date and From never takes a copy that has them: that
        // copy may be another message's.
        let no_date_or_from = STAGED
            .lines()
            .filter(|l| l.starts_with("Subject"))
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n\r\n";
        let partial = fp(&no_date_or_from);
        assert_eq!(partial.subject, fp(STAGED).subject);
        assert!(!partial.matches(&fp(STAGED), NO_DATE) && !fp(STAGED).matches(&partial, NO_DATE));
        assert!(
            !none.matches(&fp(STAGED), NO_DATE),
            "a subject the staged message lacks"
        );
        assert!(fp("Date: garbage\r\n\r\n").date.is_none());
        assert!(fp("From: undisclosed-recipients:;\r\n\r\n").from.is_none());
    }

    #[test]
    fn reads_the_header_only() {
        let read = |m: &[u8], limit| read_header(m, limit).unwrap();
        assert_eq!(
            read(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n", 100).unwrap(),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(
            read(b"A: 1\nB: 2\n\nbody\n", 100).unwrap(),
            b"A: 1\nB: 2\n\n"
        );
        assert_eq!(read(b"A: 1\r\nB: 2", 100).unwrap(), b"A: 1\r\nB: 2");
        assert_eq!(read(b"\r\nbody", 100).unwrap(), b"\r\n");
        assert_eq!(read(b"", 100).unwrap(), b"");
        assert_eq!(read(b"A: 1\r\nB: 2\r\n\r\nbody", 10), None);
        let long = [b"X: ".as_slice(), &[b'a'; 5000], b"\r\n\r\n"].concat();
        assert_eq!(read(&long, 1000), None);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let f = HeaderFingerprint::of_header(&bytes);
            prop_assert!(f.matches(&f, NO_DATE));
            let _ = read_header(bytes.as_slice(), 200).unwrap();
        }
    }
}
