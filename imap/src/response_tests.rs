use super::*;
use crate::framing::{FrameReader, FramingLimits};
use crate::sink::MemorySink;
use crate::testio::PiecewiseReader;
use crate::types::{ESearch, Namespace};
use proptest::prelude::*;

fn untagged(frame: &[u8]) -> Untagged {
    match parse(frame) {
        Some(Response::Untagged(u)) => u,
        other => panic!("not untagged: {other:?}"),
    }
}

fn status(status: Status, code: Option<Code>, text: &str) -> StatusText {
    StatusText {
        status,
        code,
        text: text.into(),
    }
}

/// Responses both imap-proto and the tolerant path understand must give the same result.
#[test]
fn imap_proto_and_tolerant_path_agree() {
    let corpus: &[&[u8]] = &[
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
        b"* OK [UIDNEXT 4392] Predicted next UID\r\n",
        b"* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
        b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] Dovecot ready.\r\n",
        b"* BYE Server shutting down\r\n",
        b"A0001 OK [APPENDUID 38505 3955] APPEND completed\r\n",
        b"A0002 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
        b"A0003 BAD Command line too long\r\n",
        b"* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN AUTH=XOAUTH2\r\n",
        b"* ENABLED CONDSTORE QRESYNC\r\n",
        b"* 172 EXISTS\r\n",
        b"* 1 RECENT\r\n",
        b"* 44 EXPUNGE\r\n",
        b"* VANISHED (EARLIER) 41,43:116\r\n",
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n",
        b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n",
        b"* LIST (\\Noselect \\HasChildren) \".\" Public\r\n",
        b"* LIST () NIL {7}\r\nFoo Bar\r\n",
        b"* STATUS INBOX (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 1 HIGHESTMODSEQ 9)\r\n",
        b"* SEARCH 2 84 882\r\n",
        b"* 12 FETCH (UID 5 FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 4286 MODSEQ (12121231000))\r\n",
        b"* 1 FETCH (BODY[] {0}\r\n UID 5 FLAGS (\\Seen) RFC822.SIZE 12)\r\n",
        b"* 3 FETCH (UID 9 BODY[HEADER] {7}\r\nFrom: a)\r\n",
        b"* 4 FETCH (UID 10 BODY[HEADER.FIELDS (DATE SUBJECT)] {14}\r\nSubject: a\r\n\r\n)\r\n",
    ];
    for frame in corpus {
        let proto = parse_with_imap_proto(frame);
        assert!(
            proto.is_some(),
            "imap-proto rejected {}",
            String::from_utf8_lossy(frame)
        );
        assert_eq!(
            proto,
            parse_tolerant(frame),
            "{}",
            String::from_utf8_lossy(frame)
        );
    }
}

#[test]
fn fetch_items_before_and_after_a_streamed_literal() {
    let Untagged::Fetch(f) = untagged(
        b"* 1 FETCH (BODY[] {0}\r\n UID 5 FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 12 MODSEQ (7))\r\n",
    ) else {
        panic!("not a fetch")
    };
    assert_eq!(f.seq, 1);
    assert_eq!(f.uid, Some(5));
    assert_eq!(f.flags, Some(vec!["\\Seen".to_string()]));
    assert_eq!(f.rfc822_size, Some(12));
    assert_eq!(f.modseq, Some(7));
    assert_eq!(f.body, Some(Vec::new()));
    let date = f.internal_date.unwrap();
    assert_eq!(date.raw, "17-Jul-1996 02:44:25 -0700");
    assert_eq!(date.unix, Some(837_596_665));
}

#[test]
fn header_fields_land_in_header_on_both_paths() {
    let frame: &[u8] = b"* 4 FETCH (UID 10 INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[HEADER.FIELDS (DATE SUBJECT FROM)] {15}\r\nSubject: ab\r\n\r\n)\r\n";
    for parsed in [parse_with_imap_proto(frame), parse_tolerant(frame)] {
        let Some(Response::Untagged(Untagged::Fetch(f))) = parsed else {
            panic!("not a fetch: {parsed:?}")
        };
        assert_eq!(f.uid, Some(10));
        assert_eq!(f.header.as_deref(), Some(&b"Subject: ab\r\n\r\n"[..]));
    }
}

#[test]
fn tolerant_path_handles_real_world_deviations() {
    assert_eq!(
        untagged(b"* CAPABILITY IMAP4rev1  SASL-IR\r\n"),
        Untagged::Capability(vec!["IMAP4rev1".into(), "SASL-IR".into()])
    );
    assert_eq!(
        untagged(b"* CAPABILITY IMAP4rev2 AUTH=PLAIN\r\n"),
        Untagged::Capability(vec!["IMAP4rev2".into(), "AUTH=PLAIN".into()])
    );
    assert_eq!(
        untagged(b"* OK [CAPABILITY IMAP4rev1  SASL-IR] ready\r\n"),
        Untagged::Status(status(
            Status::Ok,
            Some(Code::Capability(vec!["IMAP4rev1".into(), "SASL-IR".into()])),
            "ready"
        ))
    );
    // imap-proto panics on INTERNALDATE NIL and on [ALERT] before a multi-byte character.
    let Untagged::Fetch(f) = untagged(b"* 2 FETCH (UID 8 INTERNALDATE NIL)\r\n") else {
        panic!("not a fetch")
    };
    assert_eq!((f.uid, f.internal_date), (Some(8), None));
    assert_eq!(
        untagged("* OK [ALERT]é\r\n".as_bytes()),
        Untagged::Status(status(Status::Ok, Some(Code::Alert), "é"))
    );
    // A mailbox name that is not UTF-8 keeps its raw bytes.
    let Untagged::List(l) = untagged(b"* LIST (\\HasNoChildren) \"/\" \"Entw\xfcrfe\"\r\n") else {
        panic!("not a list")
    };
    assert_eq!(l.name, b"Entw\xfcrfe");
    // LIST-EXTENDED data after the name.
    let Untagged::List(l) =
        untagged(b"* LIST (\\Subscribed) \"/\" \"Old\" (\"OLDNAME\" (\"Older\"))\r\n")
    else {
        panic!("not a list")
    };
    assert_eq!(l.name, b"Old");
    assert!(parse(b"* FOO BAR (\r\n").is_none());
    assert!(parse(b"garbage\r\n").is_none());
}

#[test]
fn tagged_completions_are_never_lost() {
    for (frame, tag, st) in [
        (
            &b"A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"[..],
            "A1",
            status(
                Status::No,
                Some(Code::Other {
                    name: "AUTHENTICATIONFAILED".into(),
                    args: None,
                }),
                "Authentication failed.",
            ),
        ),
        (
            b"A2 BAD Request is throttled. Suggested Backoff Time: 2000 milliseconds\r\n",
            "A2",
            status(
                Status::Bad,
                None,
                "Request is throttled. Suggested Backoff Time: 2000 milliseconds",
            ),
        ),
        (b"A3 OK\r\n", "A3", status(Status::Ok, None, "")),
        (
            "A4 OK [ALERT]ü done  \r\n".as_bytes(),
            "A4",
            status(Status::Ok, Some(Code::Alert), "ü done"),
        ),
        (
            b"A5 NO [LIMIT X Y] too many\r\n",
            "A5",
            status(
                Status::No,
                Some(Code::Other {
                    name: "LIMIT".into(),
                    args: Some("X Y".into()),
                }),
                "too many",
            ),
        ),
    ] {
        assert_eq!(
            parse(frame),
            Some(Response::Tagged {
                tag: tag.into(),
                status: st
            }),
            "{}",
            String::from_utf8_lossy(frame)
        );
    }
    let st = status(
        Status::No,
        Some(Code::Other {
            name: "AUTHENTICATIONFAILED".into(),
            args: None,
        }),
        "Authentication failed.",
    );
    assert_eq!(
        st.to_string(),
        "NO [AUTHENTICATIONFAILED] Authentication failed."
    );
}

#[test]
fn esearch_namespace_and_continuations() {
    assert_eq!(
        untagged(b"* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3 ALL 2,10:11\r\n"),
        Untagged::ESearch(ESearch {
            tag: Some("A282".into()),
            uid: true,
            min: Some(2),
            max: None,
            count: Some(3),
            all: Some(SequenceSet::from_uids([2, 10, 11])),
        })
    );
    assert_eq!(
        untagged(b"* NAMESPACE ((\"\" \"/\")) NIL ((\"Shared/\" \"/\" \"X-EXT\" (\"a\")))\r\n"),
        Untagged::Namespace(crate::types::Namespaces {
            personal: vec![Namespace {
                prefix: String::new(),
                delimiter: Some("/".into())
            }],
            other_users: vec![],
            shared: vec![Namespace {
                prefix: "Shared/".into(),
                delimiter: Some("/".into())
            }],
        })
    );
    assert_eq!(
        parse(b"+ eyJzdGF0dXMiOiI0MDAifQ==\r\n"),
        Some(Response::Continuation {
            text: "eyJzdGF0dXMiOiI0MDAifQ==".into()
        })
    );
    assert_eq!(
        parse(b"+\r\n"),
        Some(Response::Continuation {
            text: String::new()
        })
    );
}

fn small_limits() -> FramingLimits {
    FramingLimits {
        max_line: 300,
        max_small_literal: 100,
        max_frame: 600,
        max_streamed_literal: 1000,
        chunk_size: 16,
    }
}

/// Frames and parses a whole stream, asserting the bounds after every response.
fn frame_and_parse(data: &[u8], k: usize) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let limits = small_limits();
        let mut fr = FrameReader::new(PiecewiseReader::every(data, k), limits);
        let mut sink = MemorySink::new(1000);
        let mut parsed = 0;
        while let Ok(frame) = fr.next_frame(&mut sink).await {
            assert!(frame.bytes.capacity() <= limits.max_frame);
            assert!(fr.buffer_capacity() <= limits.chunk_size);
            parsed += usize::from(parse(&frame.bytes).is_some());
        }
        parsed
    })
}

const VALID: &[u8] = b"* OK [CAPABILITY IMAP4rev1 LITERAL+] hi\r\n* 1 FETCH (BODY[] {12}\r\nHi!\r\nthere\r\n UID 5 FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\")\r\n* LIST (\\HasNoChildren) \"/\" {3}\r\nFoo\r\n* ESEARCH (TAG \"A1\") UID ALL 1:3\r\n* STATUS INBOX (MESSAGES 2)\r\nA1 OK done\r\n";

#[test]
fn valid_stream_parses_completely() {
    assert_eq!(frame_and_parse(VALID, 7), 6);
}

proptest! {
    #[test]
    fn parser_survives_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..400), k in 1usize..30) {
        frame_and_parse(&data, k);
    }

    #[test]
    fn parser_survives_mutations(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..10),
        k in 1usize..30,
    ) {
        let mut data = VALID.to_vec();
        for (pos, byte, op) in edits {
            let at = pos % (data.len() + 1);
            match op {
                0 => data.insert(at, byte),
                1 if at < data.len() => { data.remove(at); }
                _ if at < data.len() => data[at] = byte,
                _ => data.push(byte),
            }
        }
        frame_and_parse(&data, k);
    }

    #[test]
    fn parser_survives_printable_garbage_lines(line in "[*+A-Z0-9 ()\\[\\]\"{}\\\\.:-]{0,80}") {
        let frame = format!("{line}\r\n");
        let _ = parse(frame.as_bytes());
    }
}

/// Documents imap-proto 0.17's panics that `parse` must survive; if this starts failing,
/// imap-proto was fixed and the comment in response.rs can go.
#[test]
fn imap_proto_still_panics_on_these_inputs() {
    for frame in [
        &b"* 2 FETCH (UID 8 INTERNALDATE NIL)\r\n"[..],
        "* OK [ALERT]é\r\n".as_bytes(),
    ] {
        let outcome = std::panic::catch_unwind(|| ProtoResponse::parse(frame).map(|_| ()));
        assert!(outcome.is_err(), "{}", String::from_utf8_lossy(frame));
    }
}

#[test]
fn list_of_the_empty_name_gives_the_delimiter() {
    let Untagged::List(l) = untagged(b"* LIST (\\Noselect) \".\" \"\"\r\n") else {
        panic!("not a LIST");
    };
    assert_eq!(l.delimiter.as_deref(), Some("."));
}

/// A response nested thousands deep never reaches imap-proto's recursive parser: the
/// tolerant path skips the deep list and keeps the rest, on a thread with a small stack.
#[test]
fn deep_nesting_never_reaches_imap_proto_and_the_rest_survives() {
    let handle = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            for depth in [super::MAX_NESTING + 1, 5_000, 200_000] {
                let mut frame = b"* 1 FETCH (UID 5 BODYSTRUCTURE ".to_vec();
                frame.extend(std::iter::repeat_n(b'(', depth));
                frame.extend_from_slice(b"\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1");
                frame.extend(std::iter::repeat_n(b')', depth));
                frame.extend_from_slice(b")\r\n");
                assert!(
                    matches!(
                        parse(&frame),
                        Some(Response::Untagged(Untagged::Fetch(FetchData { uid: Some(5), .. })))
                    ),
                    "depth {depth}"
                );
                assert_eq!(parse_with_imap_proto(&frame), None);
            }
            // Within the bound, imap-proto still does the work, on the same small stack.
            let mut frame = b"* 1 FETCH (UID 5 X ".to_vec();
            frame.extend(std::iter::repeat_n(b'(', super::MAX_NESTING - 1));
            frame.extend(std::iter::repeat_n(b')', super::MAX_NESTING - 1));
            frame.extend_from_slice(b")\r\n");
            let _ = parse(&frame);
            let ok = b"* 1 FETCH (UID 5 BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1) \"MIXED\"))\r\n";
            assert!(matches!(
                parse(ok),
                Some(Response::Untagged(Untagged::Fetch(FetchData { uid: Some(5), .. })))
            ));
        })
        .unwrap();
    handle.join().expect("no stack overflow, no panic");
}

/// INTERNALDATEs no parser can read are kept raw on both paths, never a panic.
#[test]
fn odd_internaldates_are_kept_raw() {
    for date in [
        "17-Jul-1996 02:44:25 +1é2",
        "99-Jul-1996 25:61:61 +9999",
        "31-Feb-2024 00:00:00 +0000",
        "é",
    ] {
        let frame = format!("* 1 FETCH (UID 9 INTERNALDATE \"{date}\" RFC822.SIZE 3)\r\n");
        let Untagged::Fetch(f) = untagged(frame.as_bytes()) else {
            panic!("not a FETCH: {date}");
        };
        let d = f.internal_date.expect("kept");
        assert_eq!((d.raw.as_str(), d.unix), (date, None));
        assert_eq!(f.uid, Some(9));
        let tolerant = parse_tolerant(frame.as_bytes());
        assert!(matches!(
            tolerant,
            Some(Response::Untagged(Untagged::Fetch(_)))
        ));
    }
}
