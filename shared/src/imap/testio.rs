//! Test helpers: readers that deliver a byte stream in chosen pieces.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

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
