//! Session tests against a scripted peer over `tokio::io::duplex`.

use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

use super::*;
use crate::imap::sink::MemorySink;

/// The server side of a test connection: asserts on what the client sends.
struct Peer {
    io: BufReader<DuplexStream>,
}

impl Peer {
    async fn expect(&mut self, line: &str) {
        let mut got = Vec::new();
        self.io.read_until(b'\n', &mut got).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&got), format!("{line}\r\n"));
    }

    async fn expect_bytes(&mut self, expected: &[u8]) {
        let mut got = vec![0; expected.len()];
        self.io.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected);
    }

    async fn send(&mut self, data: &str) {
        self.io.get_mut().write_all(data.as_bytes()).await.unwrap();
    }
}

async fn connect_with(caps: &str, config: SessionConfig) -> (Session<DuplexStream>, Peer) {
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut peer = Peer {
        io: BufReader::new(server),
    };
    peer.send(&format!("* OK [CAPABILITY {caps}] ready\r\n"))
        .await;
    let session = Session::connect(client, config).await.unwrap();
    (session, peer)
}

async fn connect(caps: &str) -> (Session<DuplexStream>, Peer) {
    connect_with(caps, SessionConfig::default()).await
}

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
    assert_eq!(s.events().exists, Some(3));
    server.await.unwrap();
}
