//! Test helpers: readers that deliver a byte stream in chosen pieces, a stream that logs its
//! writes.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream,
    ReadBuf,
};

use crate::session::{Session, SessionConfig};

/// An `AsyncRead` over fixed bytes that never returns more than up to the next cut point.
pub(crate) struct PiecewiseReader {
    data: Vec<u8>,
    pos: usize,
    cuts: Vec<usize>,
}

impl PiecewiseReader {
    /// Returns the data in pieces of `k` bytes.
    pub(crate) fn every(data: &[u8], k: usize) -> Self {
        let k = k.max(1);
        Self {
            data: data.to_vec(),
            pos: 0,
            cuts: (1..=data.len() / k).map(|i| i * k).collect(),
        }
    }

    /// Returns the data in two reads, split at `at`.
    pub(crate) fn split_at(data: &[u8], at: usize) -> Self {
        Self {
            data: data.to_vec(),
            pos: 0,
            cuts: vec![at],
        }
    }
}

impl AsyncRead for PiecewiseReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let pos = self.pos;
        let next_cut = self
            .cuts
            .iter()
            .copied()
            .find(|&c| c > pos)
            .unwrap_or(self.data.len());
        let n = (next_cut - pos).min(buf.remaining());
        buf.put_slice(&self.data[pos..pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// A stream that passes everything through and records the size of every write, to check
/// how many writes (syscalls, on a socket) a command takes.
pub(crate) struct WriteLog<S> {
    inner: S,
    writes: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl<S> WriteLog<S> {
    /// Wraps `inner`; the returned list fills with the sizes of the writes.
    pub(crate) fn new(inner: S) -> (Self, std::sync::Arc<std::sync::Mutex<Vec<usize>>>) {
        let writes = std::sync::Arc::default();
        let log = Self {
            inner,
            writes: std::sync::Arc::clone(&writes),
        };
        (log, writes)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteLog<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteLog<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.writes.lock().unwrap().push(n);
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The server side of a test connection: asserts on what the client sends.
pub(crate) struct Peer {
    pub(crate) io: BufReader<DuplexStream>,
}

impl Peer {
    pub(crate) async fn expect(&mut self, line: &str) {
        let mut got = Vec::new();
        self.io.read_until(b'\n', &mut got).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&got), format!("{line}\r\n"));
    }

    pub(crate) async fn expect_bytes(&mut self, expected: &[u8]) {
        let mut got = vec![0; expected.len()];
        self.io.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected);
    }

    pub(crate) async fn send(&mut self, data: &str) {
        self.io.get_mut().write_all(data.as_bytes()).await.unwrap();
    }
}

/// A session over a pipe to a scripted peer that announced `caps`, with `config`.
pub(crate) async fn connect_with(
    caps: &str,
    config: SessionConfig,
) -> (Session<DuplexStream>, Peer) {
    let (client, server) = tokio::io::duplex(1 << 16);
    let mut peer = Peer {
        io: BufReader::new(server),
    };
    peer.send(&format!("* OK [CAPABILITY {caps}] ready\r\n"))
        .await;
    let session = Session::connect(client, config).await.unwrap();
    (session, peer)
}

/// A session over a pipe to a scripted peer that announced `caps`.
pub(crate) async fn connect(caps: &str) -> (Session<DuplexStream>, Peer) {
    connect_with(caps, SessionConfig::default()).await
}
