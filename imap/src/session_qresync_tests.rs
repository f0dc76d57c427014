//! QRESYNC (RFC 7162) against the scripted peer of the session tests.

use super::*;

#[tokio::test]
async fn examine_with_qresync_reports_what_vanished_earlier() {
    let (mut s, mut peer) = connect("IMAP4rev1 CONDSTORE QRESYNC ENABLE").await;
    let server = tokio::spawn(async move {
        peer.expect("A0001 ENABLE QRESYNC").await;
        peer.send("* ENABLED QRESYNC\r\nA0001 OK\r\n").await;
        peer.expect("A0002 EXAMINE INBOX (QRESYNC (67890007 20050715194045000))")
            .await;
        peer.send(
            "* 314 EXISTS\r\n* OK [UIDVALIDITY 67890007] ok\r\n\
             * OK [HIGHESTMODSEQ 20050715194045319] ok\r\n\
             * VANISHED (EARLIER) 41,43:116,118,120:211\r\n* VANISHED (EARLIER) 4000000000:4294967295\r\n\
             * 49 FETCH (UID 117 FLAGS (\\Seen) MODSEQ (90060115194045001))\r\n\
             A0002 OK [READ-ONLY] done\r\n",
        )
        .await;
        peer.expect("A0003 EXAMINE Sent").await;
        peer.send("* 0 EXISTS\r\n* VANISHED 3\r\nA0003 OK [READ-ONLY] done\r\n")
            .await;
    });
    assert_eq!(s.enable(&["QRESYNC"]).await.unwrap(), ["QRESYNC"]);
    let info = s
        .examine_qresync(b"INBOX", 67890007, 20050715194045000)
        .await
        .unwrap();
    assert_eq!(info.exists, 314);
    let vanished = info.vanished.expect("VANISHED (EARLIER) read");
    assert!(vanished.contains(41) && vanished.contains(100) && vanished.contains(211));
    assert!(!vanished.contains(42) && !vanished.contains(117) && !vanished.contains(212));
    assert!(
        vanished.contains(u32::MAX),
        "a huge range is kept as a range"
    );
    let plain = s.examine(b"Sent", false).await.unwrap();
    assert_eq!(
        plain.vanished, None,
        "a VANISHED without (EARLIER) is not a resync"
    );
    server.await.unwrap();
}
