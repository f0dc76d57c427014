//! Pipelined APPEND against a scripted peer.

use crate::error::ImapError;
use crate::testio::connect;

const MSG: &[u8] = b"Subject: x\r\n\r\nhi\r\n";

#[tokio::test]
async fn appends_sent_ahead_are_matched_to_their_answers_by_tag() {
    let (mut s, mut peer) = connect("IMAP4rev1 LITERAL+ UIDPLUS").await;
    assert!(s.append_pipelines(1 << 30));
    let server = tokio::spawn(async move {
        // All three arrive before any answer goes out.
        for tag in ["A0001", "A0002", "A0003"] {
            peer.expect(&format!("{tag} APPEND INBOX (\\Seen) {{18+}}"))
                .await;
            peer.expect_bytes(b"Subject: x\r\n\r\nhi\r\n\r\n").await;
        }
        // Out of order, with untagged data between, and one refusal.
        peer.send("* 3 EXISTS\r\nA0002 NO [TRYCREATE] no such folder\r\n")
            .await;
        peer.send("A0001 OK [APPENDUID 7 41] done\r\nA0003 OK [APPENDUID 7 42] done\r\n")
            .await;
        peer.send("* BYE Connection closed. 14\r\n").await;
    });
    let mut tags = Vec::new();
    for _ in 0..3 {
        tags.push(
            s.append_send(b"INBOX", &["\\Seen"], None, 18, MSG)
                .await
                .unwrap(),
        );
    }
    assert_eq!(tags, ["A0001", "A0002", "A0003"]);
    let (tag, second) = s.append_answer(&tags).await.unwrap();
    assert_eq!(tag, "A0002");
    let refused = second.unwrap_err();
    assert_eq!(refused.code_name().as_deref(), Some("TRYCREATE"));
    tags.retain(|t| *t != tag);
    let (tag, first) = s.append_answer(&tags).await.unwrap();
    assert_eq!((tag.as_str(), first.unwrap().uid), ("A0001", Some(41)));
    let (tag, third) = s.append_answer(&tags).await.unwrap();
    assert_eq!((tag.as_str(), third.unwrap().uid), ("A0003", Some(42)));
    // The link ends: an error of the session, not of a message.
    let bye = s.append_answer(&tags).await.unwrap_err();
    assert!(matches!(bye, ImapError::Bye(_)), "{bye}");
    server.await.unwrap();
}

#[tokio::test]
async fn without_literal_plus_nothing_is_sent_ahead() {
    let (mut s, _peer) = connect("IMAP4rev1").await;
    assert!(!s.append_pipelines(18));
    let err = s
        .append_send(b"INBOX", &[], None, 18, MSG)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("LITERAL+"), "{err}");

    let (s, _peer) = connect("IMAP4rev1 LITERAL-").await;
    assert!(s.append_pipelines(4096));
    assert!(!s.append_pipelines(4097));
}

#[tokio::test]
async fn a_throttle_answer_is_the_messages_and_the_bye_after_it_the_sessions() {
    let (mut s, mut peer) = connect("IMAP4rev1 LITERAL+").await;
    let server = tokio::spawn(async move {
        for tag in ["A0001", "A0002"] {
            peer.expect(&format!("{tag} APPEND INBOX {{18+}}")).await;
            peer.expect_bytes(b"Subject: x\r\n\r\nhi\r\n\r\n").await;
        }
        peer.send(
            "A0001 BAD Request is throttled. Suggested Backoff Time: 40 milliseconds\r\n\
             * BYE Connection closed. 14\r\n",
        )
        .await;
    });
    let mut tags = Vec::new();
    for _ in 0..2 {
        tags.push(s.append_send(b"INBOX", &[], None, 18, MSG).await.unwrap());
    }
    let (tag, first) = s.append_answer(&tags).await.unwrap();
    let throttled = first.unwrap_err();
    assert_eq!(tag, "A0001");
    assert_eq!(
        throttled.throttle_backoff(),
        Some(std::time::Duration::from_millis(40))
    );
    let err = s.append_answer(&tags[1..]).await.unwrap_err();
    assert!(matches!(err, ImapError::Bye(_)), "{err}");
    server.await.unwrap();
}

/// A target that keeps the link alive with `* OK` lines while the APPEND waits for its
/// tagged answer is cut after the read timeout, as a transient failure.
#[tokio::test(start_paused = true)]
async fn an_append_answered_only_with_keepalives_is_cut_after_the_read_timeout() {
    use std::time::Duration;
    let config = crate::session::SessionConfig {
        read_timeout: Some(Duration::from_secs(10)),
        ..crate::session::SessionConfig::default()
    };
    let (mut s, mut peer) = crate::testio::connect_with("IMAP4rev1 LITERAL+", config).await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 APPEND INBOX {18+}").await;
        peer.expect_bytes(b"Subject: x\r\n\r\nhi\r\n\r\n").await;
        // Every 2 s, for 40 s: never 10 s without a byte, never the answer.
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            peer.send("* OK still here\r\n").await;
        }
        peer
    });
    let started = tokio::time::Instant::now();
    let err = s.append(b"INBOX", &[], None, 18, MSG).await.unwrap_err();
    assert!(matches!(err, ImapError::Stalled(_)), "{err}");
    assert!(err.is_transient());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited <= Duration::from_secs(12),
        "{waited:?}"
    );
    drop(server.await.unwrap());
}

#[tokio::test]
async fn after_giving_up_non_synchronising_literals_an_append_waits_for_plus() {
    let (mut s, mut peer) = connect("IMAP4rev1 LITERAL+").await;
    s.use_synchronizing_literals();
    assert!(!s.append_pipelines(1));
    let server = tokio::spawn(async move {
        peer.expect("A0001 APPEND INBOX {18}").await;
        peer.send("+ go ahead\r\n").await;
        peer.expect_bytes(b"Subject: x\r\n\r\nhi\r\n\r\n").await;
        peer.send("A0001 OK [APPENDUID 7 1] done\r\n").await;
    });
    let done = s.append(b"INBOX", &[], None, 18, MSG).await.unwrap();
    assert_eq!(done.uid, Some(1));
    server.await.unwrap();
}

#[tokio::test]
async fn a_bad_to_the_delimiter_question_sent_with_literal_plus_turns_it_off() {
    let (mut s, mut peer) = connect("IMAP4rev1 LITERAL+").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 LIST \"\" {0+}").await;
        peer.expect("").await;
        peer.send("A0001 BAD Command Error. 10\r\n").await;
        peer.expect("A0002 LIST \"\" \"\"").await;
        peer.send("* LIST (\\Noselect) \".\" \"\"\r\nA0002 OK done\r\n")
            .await;
    });
    let (delimiter, works) = s.hierarchy_delimiter_checking_literals().await.unwrap();
    assert_eq!((delimiter, works), (Some('.'), false));
    assert!(!s.append_pipelines(1));
    server.await.unwrap();
}
