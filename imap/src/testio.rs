//! Test helpers: readers that deliver a byte stream in chosen pieces, a stream that logs its
//! writes.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
