//! Session tests against a scripted peer over `tokio::io::duplex`.

use std::time::Duration;

use secrecy::SecretString;
use tokio::io::BufReader;

use super::*;
use crate::seqset::SequenceSet;
use crate::sink::MemorySink;
use crate::testio::{Peer, PiecewiseReader, WriteLog, connect, connect_with};

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

#[tokio::test]
async fn greeting_bye_and_capabilities() {
    let (client, server) = tokio::io::duplex(1024);
    let mut peer = Peer {
        io: BufReader::new(server),
    };
    peer.send("* BYE too many connections\r\n").await;
    let err = Session::connect(client, SessionConfig::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(&err, ImapError::Bye(t) if t == "too many connections"));
    assert!(err.is_transient());

    let (s, _peer) = connect("IMAP4rev1 LITERAL+ SASL-IR").await;
    assert!(s.has_capability("literal+"));
    assert_eq!(s.literal_mode(), LiteralMode::Plus);
    assert_eq!(s.greeting().text, "ready");
}

#[tokio::test]
async fn login_with_quoted_and_synchronising_literal_arguments() {
    let (mut s, mut peer) = connect("IMAP4rev1").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 LOGIN joe \"p w\\\"d\"").await;
        peer.send("A0001 OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE] Logged in\r\n")
            .await;
        peer.expect("A0002 LOGIN joe {6+}").await;
        peer.expect_bytes("pässw\r\n".as_bytes()).await;
        peer.send("A0002 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
            .await;
        peer
    });
    s.login("joe", &secret("p w\"d")).await.unwrap();
    assert!(s.has_capability("IDLE"));
    let err = s.login("joe", &secret("pässw")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "LOGIN: server said NO [AUTHENTICATIONFAILED] Authentication failed."
    );
    server.await.unwrap();
}

#[tokio::test]
async fn synchronising_literal_waits_for_continuation() {
    let (mut s, mut peer) = connect("IMAP4rev1").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 LOGIN {5}").await;
        peer.send("+ go ahead\r\n").await;
        peer.expect("jürg {4}").await;
        peer.send("* 3 EXISTS\r\n+ more\r\n").await;
        peer.expect_bytes(b"pw\r\n\r\n").await;
        peer.send("A0001 OK done\r\n").await;
        peer.expect("A0002 CAPABILITY").await;
        peer.send("* CAPABILITY IMAP4rev1  AUTH=PLAIN\r\nA0002 OK\r\n")
            .await;
        peer
    });
    s.login("jürg", &secret("pw\r\n"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.capabilities(), ["IMAP4rev1", "AUTH=PLAIN"]);
    server.await.unwrap();
}

#[tokio::test]
async fn untagged_data_before_a_continuation_is_kept() {
    let (mut s, mut peer) = connect("IMAP4rev1").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 LIST \"\" {3}").await;
        peer.send("* 4 EXISTS\r\n+\r\n").await;
        peer.expect_bytes(b"a\rb\r\n").await;
        peer.send("* LIST () \"/\" x\r\nA0001 OK\r\n").await;
    });
    let cmd = s.command("LIST").string(b"").string(b"a\rb").build();
    let done = s.execute(cmd).await.unwrap();
    assert_eq!(done.untagged.len(), 2);
    assert_eq!(done.untagged[0], Untagged::Exists(4));
    assert!(matches!(&done.untagged[1], Untagged::List(l) if l.name == b"x"));
    server.await.unwrap();
}

fn b64(s: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn authenticate_plain_with_and_without_sasl_ir() {
    let ir = b64(b"user1\0admin\0pw");
    let (mut s, mut peer) = connect("IMAP4rev1 SASL-IR AUTH=PLAIN").await;
    let expected = ir.clone();
    let server = tokio::spawn(async move {
        peer.expect(&format!("A0001 AUTHENTICATE PLAIN {expected}"))
            .await;
        peer.send("A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n")
            .await;
    });
    s.authenticate_plain(Some("user1"), "admin", &secret("pw"))
        .await
        .unwrap();
    server.await.unwrap();

    let (mut s, mut peer) = connect("IMAP4rev1 AUTH=PLAIN").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 AUTHENTICATE PLAIN").await;
        peer.send("+ \r\n").await;
        peer.expect(&ir).await;
        peer.send("A0001 OK [CAPABILITY IMAP4rev1] Logged in\r\n")
            .await;
    });
    s.authenticate_plain(Some("user1"), "admin", &secret("pw"))
        .await
        .unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn xoauth2_failure_surfaces_the_json_error() {
    let (mut s, mut peer) = connect("IMAP4rev1 SASL-IR AUTH=XOAUTH2").await;
    let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
    let challenge = b64(json.as_bytes());
    let server = tokio::spawn(async move {
        let ir = b64(b"user=u@example.com\x01auth=Bearer tok\x01\x01");
        peer.expect(&format!("A0001 AUTHENTICATE XOAUTH2 {ir}"))
            .await;
        peer.send(&format!("+ {challenge}\r\n")).await;
        peer.expect("").await;
        peer.send("A0001 NO [AUTHENTICATIONFAILED] AUTHENTICATE failed.\r\n")
            .await;
    });
    let err = s
        .authenticate_xoauth2("u@example.com", &secret("tok"))
        .await
        .unwrap_err();
    match &err {
        ImapError::AuthFailed { detail, status, .. } => {
            assert_eq!(detail.as_deref(), Some(json));
            assert_eq!(status.status, Status::No);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("NO [AUTHENTICATIONFAILED]"));
    assert_eq!(err.code_name().as_deref(), Some("AUTHENTICATIONFAILED"));
    server.await.unwrap();
}

#[tokio::test]
async fn examine_list_status_search_and_friends() {
    let (mut s, mut peer) =
        connect("IMAP4rev1 SPECIAL-USE ESEARCH CONDSTORE ENABLE NAMESPACE").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 ENABLE CONDSTORE").await;
        peer.send("* ENABLED CONDSTORE\r\nA0001 OK\r\n").await;
        peer.expect("A0002 NAMESPACE").await;
        peer.send("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nA0002 OK\r\n")
            .await;
        peer.expect("A0003 LIST \"\" \"*\" RETURN (SPECIAL-USE)")
            .await;
        peer.send("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n* LIST (\\Noselect) \"/\" {7}\r\nEntw&APw\r\n* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe\r\nA0003 OK\r\n").await;
        peer.expect("A0004 EXAMINE \"Sent Items\" (CONDSTORE)")
            .await;
        peer.send("* FLAGS (\\Seen \\Flagged)\r\n* 17 EXISTS\r\n* OK [UIDVALIDITY 3857529045] ok\r\n* OK [UIDNEXT 4392] ok\r\n* OK [HIGHESTMODSEQ 90060115205545359] ok\r\nA0004 OK [READ-ONLY] done\r\n").await;
        peer.expect("A0005 STATUS INBOX (MESSAGES UIDNEXT)").await;
        peer.send("* STATUS INBOX (MESSAGES 231 UIDNEXT 44292)\r\nA0005 OK\r\n")
            .await;
        peer.expect("A0006 UID SEARCH RETURN (ALL) UID 100:*").await;
        peer.send("* ESEARCH (TAG \"A0006\") UID ALL 100:102,110\r\nA0006 OK\r\n")
            .await;
        peer.expect("A0007 CREATE Archiv/2024").await;
        peer.send("A0007 NO [ALREADYEXISTS] Mailbox exists\r\n")
            .await;
        peer.expect("A0008 UID STORE 5:6 +FLAGS.SILENT (\\Flagged)")
            .await;
        peer.send("A0008 OK\r\n").await;
        peer.expect("A0009 LOGOUT").await;
        peer.send("* BYE Logging out\r\nA0009 OK\r\n").await;
    });
    assert_eq!(s.enable(&["CONDSTORE"]).await.unwrap(), ["CONDSTORE"]);
    let ns = s.namespace().await.unwrap();
    assert_eq!(ns.personal[0].delimiter.as_deref(), Some("/"));
    let list = s.list(b"", b"*").await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].special_use(), Some("\\Sent"));
    assert_eq!(list[0].name, b"Sent Items");
    assert!(!list[1].is_selectable());
    assert_eq!(list[2].decoded_name().unwrap(), "Entwürfe");
    let info = s.examine(&list[0].name, true).await.unwrap();
    assert_eq!(
        (
            info.exists,
            info.uid_validity,
            info.uid_next,
            info.highest_modseq
        ),
        (17, 3_857_529_045, Some(4392), Some(90_060_115_205_545_359))
    );
    assert!(info.read_only);
    assert_eq!(info.flags, ["\\Seen", "\\Flagged"]);
    let st = s.status(b"INBOX", &["MESSAGES", "UIDNEXT"]).await.unwrap();
    assert_eq!((st.messages, st.uid_next), (Some(231), Some(44292)));
    assert_eq!(
        s.uid_search("UID 100:*").await.unwrap(),
        [100, 101, 102, 110]
    );
    let err = s.create(b"Archiv/2024").await.unwrap_err();
    assert_eq!(err.code_name().as_deref(), Some("ALREADYEXISTS"));
    s.uid_store(
        &SequenceSet::from_uids([5, 6]),
        "+FLAGS.SILENT",
        &["\\Flagged"],
    )
    .await
    .unwrap();
    s.logout().await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn pipelined_fetch_streams_bodies_with_uid_after_literal() {
    let (mut s, mut peer) = connect("IMAP4rev1").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 UID FETCH 1:2 (UID FLAGS BODY.PEEK[])")
            .await;
        peer.expect("A0002 UID FETCH 5 (UID FLAGS BODY.PEEK[])")
            .await;
        peer.send("* 1 FETCH (BODY[] {5}\r\nHello UID 1 FLAGS (\\Seen))\r\n* 2 FETCH (UID 2 FLAGS () BODY[] \"inline\")\r\n* 2 FETCH (FLAGS (\\Deleted))\r\nA0001 OK done\r\n").await;
        peer.expect("A0003 UID FETCH 9 (UID FLAGS BODY.PEEK[])")
            .await;
        peer.send("* 3 FETCH (UID 5 FLAGS () BODY[] {0}\r\n)\r\nA0002 OK\r\n* 4 FETCH (UID 9 BODY[] {3}\r\nabc)\r\n* 9 EXPUNGE\r\nA0003 OK\r\n").await;
        peer.expect("A0004 NOOP").await;
        peer.send("A0004 OK\r\n").await;
    });
    let sets = [
        SequenceSet::from_uids([1, 2]),
        SequenceSet::from_uids([5]),
        SequenceSet::from_uids([9]),
    ];
    let mut got = Vec::new();
    let mut sink = MemorySink::new(1 << 20);
    s.uid_fetch(&sets, "(UID FLAGS BODY.PEEK[])", 2, &mut sink, |m| {
        got.push((m.fetch.uid, m.body.map(|b| (b.len, b.output))));
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        got,
        [
            (Some(1), Some((5, b"Hello".to_vec()))),
            (Some(2), Some((6, b"inline".to_vec()))),
            (None, None),
            (Some(5), Some((0, Vec::new()))),
            (Some(9), Some((3, b"abc".to_vec()))),
        ]
    );
    // The EXPUNGE among the FETCH responses was consumed there, not left for the next command.
    let done = s.execute(s.command("NOOP").build()).await.unwrap();
    assert!(done.untagged.is_empty(), "{:?}", done.untagged);
    server.await.unwrap();
}

#[tokio::test]
async fn header_fields_fetch_peeks_and_returns_the_lines() {
    let (mut s, mut peer) = connect("IMAP4rev1").await;
    let server = tokio::spawn(async move {
        peer.expect(
            "A0001 UID FETCH 3,7 (UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE SUBJECT)])",
        )
        .await;
        peer.send("* 1 FETCH (UID 3 INTERNALDATE \"02-Jan-2024 10:00:00 +0000\" BODY[HEADER.FIELDS (DATE SUBJECT)] {14}\r\nSubject: x\r\n\r\n)\r\n* 2 FETCH (UID 7 INTERNALDATE \"02-Jan-2024 10:00:01 +0000\" BODY[HEADER.FIELDS (DATE SUBJECT)] {2}\r\n\r\n)\r\nA0001 OK done\r\n").await;
    });
    let got = s
        .uid_fetch_header_fields(&SequenceSet::from_uids([3, 7]), &["DATE", "SUBJECT"])
        .await
        .unwrap();
    let seen: Vec<_> = got
        .iter()
        .map(|f| {
            (
                f.uid,
                f.internal_date.as_ref().and_then(|d| d.unix),
                f.header.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                Some(3),
                Some(1_704_189_600),
                Some(b"Subject: x\r\n\r\n".to_vec())
            ),
            (Some(7), Some(1_704_189_601), Some(b"\r\n".to_vec())),
        ]
    );
    server.await.unwrap();
}

/// Fails every body whose first chunk starts with `bad`.
struct PickySink;

impl LiteralSink for PickySink {
    type Output = ();
    fn begin(&mut self, _start: &crate::sink::LiteralStart) -> std::io::Result<()> {
        Ok(())
    }
    fn chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        if data.starts_with(b"bad") {
            return Err(std::io::Error::other("disk full"));
        }
        Ok(())
    }
    fn finish(&mut self, _len: u64) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn fetch_errors_drain_in_flight_commands_and_keep_the_session() {
    let (mut s, mut peer) = connect("IMAP4rev1").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 UID FETCH 1 BODY.PEEK[]").await;
        peer.expect("A0002 UID FETCH 2 BODY.PEEK[]").await;
        peer.send("* 1 FETCH (UID 1 BODY[] {3}\r\nbad)\r\nA0001 OK\r\n* 2 FETCH (UID 2 BODY[] {3}\r\nyes)\r\nA0002 NO [SERVERBUG] oops\r\n").await;
        peer.expect("A0003 UID FETCH 4 BODY.PEEK[]").await;
        peer.send("* 4 FETCH (UID 4 BODY[] {2}\r\nok)\r\nA0003 BAD [SERVERBUG] nope\r\n")
            .await;
        peer.expect("A0004 NOOP").await;
        peer.send("A0004 OK\r\n").await;
    });
    let sets = [1, 2, 3].map(|u| SequenceSet::from_uids([u]));
    let mut delivered = Vec::new();
    let err = s
        .uid_fetch(&sets, "BODY.PEEK[]", 2, &mut PickySink, |m| {
            delivered.push(m.fetch.uid);
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::Sink(_)), "{err}");
    assert!(
        delivered.is_empty(),
        "nothing after the first error: {delivered:?}"
    );
    let err = s
        .uid_fetch(
            &[SequenceSet::from_uids([4])],
            "BODY.PEEK[]",
            2,
            &mut PickySink,
            |_| Err(ImapError::Protocol("caller says stop".into())),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ImapError::Protocol(_)), "{err}");
    s.execute(s.command("NOOP").build()).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn append_synchronising_plus_and_rejected() {
    let msg = b"Subject: x\r\n\r\nhi\r\n";
    let (mut s, mut peer) = connect("IMAP4rev1 UIDPLUS").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 APPEND INBOX (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {18}")
            .await;
        peer.send("+ Ready for literal data\r\n").await;
        peer.expect_bytes(b"Subject: x\r\n\r\nhi\r\n\r\n").await;
        peer.send("A0001 OK [APPENDUID 38505 3955] APPEND completed\r\n")
            .await;
        peer.expect("A0002 APPEND Nope {18}").await;
        peer.send("A0002 NO [TRYCREATE] Mailbox doesn't exist\r\n")
            .await;
    });
    let out = s
        .append(
            b"INBOX",
            &["\\Seen"],
            Some("17-Jul-1996 02:44:25 -0700"),
            18,
            &msg[..],
        )
        .await
        .unwrap();
    assert_eq!((out.uid_validity, out.uid), (Some(38505), Some(3955)));
    let err = s
        .append(b"Nope", &[], None, 18, &msg[..])
        .await
        .unwrap_err();
    assert_eq!(err.code_name().as_deref(), Some("TRYCREATE"));
    server.await.unwrap();

    let (mut s, mut peer) = connect("IMAP4rev1 LITERAL+").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 APPEND INBOX {18+}").await;
        peer.expect_bytes(b"Subject: x\r\n\r\nhi\r\n\r\n").await;
        peer.send("A0001 NO Maximum size of appendable message has been exceeded.\r\n")
            .await;
    });
    let err = s
        .append(b"INBOX", &[], None, 18, &msg[..])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Maximum size"));
    server.await.unwrap();
}

#[tokio::test]
async fn a_command_is_one_write_and_an_append_streams_in_chunks() {
    let (client, server) = tokio::io::duplex(1 << 20);
    let (client, writes) = WriteLog::new(client);
    let mut peer = Peer {
        io: BufReader::new(server),
    };
    peer.send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n")
        .await;
    let mut s = Session::connect(client, SessionConfig::default())
        .await
        .unwrap();
    let (small, big) = (b"Subject: x\r\n\r\nhi\r\n", vec![b'x'; 150_000]);
    let server = tokio::spawn(async move {
        peer.expect("A0001 NOOP").await;
        peer.send("A0001 OK\r\n").await;
        peer.expect("A0002 APPEND INBOX {18+}").await;
        peer.expect_bytes(b"Subject: x\r\n\r\nhi\r\n\r\n").await;
        peer.send("A0002 OK\r\n").await;
        peer.expect("A0003 APPEND INBOX {150000+}").await;
        peer.expect_bytes(&[[b'x'; 150_000].as_slice(), b"\r\n"].concat())
            .await;
        peer.send("A0003 OK\r\n").await;
    });
    s.execute(s.command("NOOP").build()).await.unwrap();
    s.append(b"INBOX", &[], None, 18, &small[..]).await.unwrap();
    let source = PiecewiseReader::every(&big, 1000);
    s.append(b"INBOX", &[], None, 150_000, source)
        .await
        .unwrap();
    server.await.unwrap();
    let chunk = crate::append::APPEND_CHUNK;
    assert_eq!(
        *writes.lock().unwrap(),
        [
            "A0001 NOOP\r\n".len(),
            "A0002 APPEND INBOX {18+}\r\n".len() + 18 + 2,
            "A0003 APPEND INBOX {150000+}\r\n".len() + chunk,
            chunk,
            150_000 - 2 * chunk + 2,
        ]
    );
}

#[tokio::test]
async fn bye_mid_command_is_a_typed_transient_error() {
    let (mut s, mut peer) = connect("IMAP4rev1").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 UID FETCH 1:* (UID)").await;
        peer.send("* 1 FETCH (UID 1)\r\n* BYE Server shutting down\r\n")
            .await;
    });
    let err = s
        .uid_fetch_meta(&SequenceSet::from_start(1), "(UID)")
        .await
        .unwrap_err();
    assert!(matches!(&err, ImapError::Bye(t) if t == "Server shutting down"));
    assert!(err.is_transient());
    assert!(matches!(
        s.execute(s.command("NOOP").build()).await,
        Err(ImapError::Unusable)
    ));
    server.await.unwrap();
}

#[tokio::test]
async fn unparseable_responses_are_skipped_and_timeouts_poison() {
    let config = SessionConfig {
        read_timeout: Some(Duration::from_millis(100)),
        ..SessionConfig::default()
    };
    let (mut s, mut peer) = connect_with("IMAP4rev1", config).await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 NOOP").await;
        peer.send("* WEIRD (stuff\r\n* 4 EXISTS\r\nA0001 OK [ALERT]ü fine\r\n")
            .await;
        peer.expect("A0002 NOOP").await;
        peer
    });
    let done = s.execute(s.command("NOOP").build()).await.unwrap();
    assert_eq!(done.untagged, [Untagged::Exists(4)]);
    assert_eq!(done.status.text, "ü fine");
    let err = s.execute(s.command("NOOP").build()).await.unwrap_err();
    assert!(matches!(err, ImapError::Timeout(_)), "{err}");
    assert!(matches!(
        s.execute(s.command("NOOP").build()).await,
        Err(ImapError::Unusable)
    ));
    server.await.unwrap();
}

#[tokio::test]
async fn id_sends_ours_and_returns_the_servers() {
    let (mut session, mut peer) = connect("IMAP4rev1 ID").await;
    let server = tokio::spawn(async move {
        peer.expect(r#"A0001 ID ("name" "mailstage" "note" "say \"hi\"")"#)
            .await;
        peer.send(
            "* ID (\"vendor\" \"Dovecot\" \"name\" \"Dovecot\")\r\nA0001 OK ID completed\r\n",
        )
        .await;
        peer.expect("A0002 ID NIL").await;
        peer.send("* ID NIL\r\nA0002 OK done\r\n").await;
    });
    let theirs = session
        .id(&[("name", "mailstage"), ("note", "say \"hi\"")])
        .await
        .unwrap();
    assert_eq!(
        theirs,
        vec![
            ("name".to_string(), "Dovecot".to_string()),
            ("vendor".to_string(), "Dovecot".to_string())
        ]
    );
    assert!(session.id(&[]).await.unwrap().is_empty());
    server.await.unwrap();
}

#[path = "session_qresync_tests.rs"]
mod qresync;
