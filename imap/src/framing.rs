//! Response framing: splits the server's byte stream into complete responses.
//!
//! A response is a line up to CRLF; a line ending in a literal announcement `{N}` (also
//! `{N+}` and literal8 `~{N}`) continues after N literal bytes. Literals that carry a whole
//! message inside an untagged FETCH (`BODY[]`, `BODY[]<n>`, `RFC822`, `BINARY[]`) are
//! streamed to a [`LiteralSink`] in chunks and replaced by `BODY[] {0}` in the returned bytes,
//! so imap-proto still parses every other item, before and after the literal; one per
//! response (a second whole-message literal in the same response is read and dropped,
//! never opening another sink). Other literals
//! stay in memory up to a bound. Every buffer is bounded by [`FramingLimits`].
//!
//! Status responses (`* OK …`, `TAG NO …`, `+ …`) never carry literals: a `{N}` at the end
//! of their text is text, which keeps a chatty server from desynchronising the stream.

use std::io;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::scan::{self, LineKind};
use super::sink::{LiteralSink, LiteralStart};

/// Size bounds of the framing layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingLimits {
    /// Longest line segment (without CRLF) held in memory.
    pub max_line: usize,
    /// Largest literal kept in memory (mailbox names, headers).
    pub max_small_literal: usize,
    /// Largest response held in memory: all its lines and in-memory literals.
    pub max_frame: usize,
    /// Largest streamed message body.
    pub max_streamed_literal: u64,
    /// Read buffer size; also the largest piece handed to [`LiteralSink::chunk`].
    pub chunk_size: usize,
}

impl Default for FramingLimits {
    fn default() -> Self {
        Self {
            max_line: 1 << 20,
            max_small_literal: 1 << 20,
            max_frame: 4 << 20,
            max_streamed_literal: 64 << 20,
            chunk_size: 64 << 10,
        }
    }
}

/// Why a response could not be framed.
#[derive(Debug, Error)]
pub enum FramingError {
    /// Reading from the connection failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection between responses.
    #[error("connection closed by the server")]
    Closed,
    /// The server closed the connection in the middle of a response.
    #[error("connection closed in the middle of a response")]
    Truncated,
    /// A line went on past the limit without CRLF.
    #[error("response line longer than {limit} bytes, starting \"{start}\"")]
    LineTooLong {
        /// The configured limit.
        limit: usize,
        /// The line's first bytes, escaped (see [`escaped_sample`]).
        start: String,
    },
    /// An in-memory literal was announced larger than the limit.
    #[error("literal of {len} bytes exceeds the in-memory limit of {limit}")]
    LiteralTooLarge {
        /// Announced length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A streamed message body was announced larger than the limit.
    #[error("message body of {len} bytes exceeds the limit of {limit}")]
    StreamedTooLarge {
        /// Announced length.
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The whole response (lines and in-memory literals) exceeds the limit.
    #[error("response larger than {limit} bytes")]
    FrameTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The sink failed; the response was still read to its end, so the stream is in sync.
    #[error("writing a message body failed: {0}")]
    Sink(io::Error),
}

impl FramingError {
    /// True when the connection is still positioned at a response boundary.
    pub fn stream_in_sync(&self) -> bool {
        matches!(self, Self::Sink(_))
    }
}

/// One streamed body of a response: the FETCH item, its length and the sink's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedBody<O> {
    /// The FETCH item as the server named it (`BODY[]`, `RFC822`, …).
    pub item: String,
    /// Exact number of bytes streamed.
    pub len: u64,
    /// What the sink's `finish` returned.
    pub output: O,
}

/// A complete response: bytes for the parser (ending in CRLF) and its streamed bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<O> {
    /// The response with each streamed literal replaced by `BODY[] {0}\r\n`.
    pub bytes: Vec<u8>,
    /// Streamed bodies in the order they appeared.
    pub bodies: Vec<StreamedBody<O>>,
    /// The announced length of a whole-message body over the streaming limit that was read
    /// and dropped ([`OVERSIZED_DRAIN`]): the message's answer came without its body.
    pub oversized: Option<u64>,
}

/// A whole-message body longer than the streaming limit, up to this many times the limit,
/// is read and dropped, and the response goes on without it (a server whose RFC822.SIZE
/// understated the message costs that message, not the session); a longer one is an error
/// ([`FramingError::StreamedTooLarge`]), so a server announcing an endless literal is not
/// read for ever.
pub const OVERSIZED_DRAIN: u64 = 4;

/// Reads complete responses from any `AsyncRead` (TCP, TLS, test pipes) with its own buffer.
///
/// Not cancel-safe: if a `next_frame` future is dropped midway (e.g. by a timeout), the
/// connection must be abandoned.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    limits: FramingLimits,
}

impl<R> FrameReader<R> {
    /// Wraps a stream with the given limits.
    pub fn new(inner: R, limits: FramingLimits) -> Self {
        Self {
            inner,
            buf: vec![0; limits.chunk_size.max(16)].into_boxed_slice(),
            start: 0,
            end: 0,
            limits,
        }
    }

    /// The underlying stream (to write commands on a duplex connection).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Gives the stream back, with bytes read but not yet framed (empty after a clean
    /// exchange; STARTTLS must refuse to continue if they are not).
    pub fn into_parts(self) -> (R, Vec<u8>) {
        let rest = self.buf[self.start..self.end].to_vec();
        (self.inner, rest)
    }

    /// Bytes of memory held by the reader itself (its read buffer).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.len()
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads the next complete response, streaming whole-message literals into `sink`.
    pub async fn next_frame<K: LiteralSink>(
        &mut self,
        sink: &mut K,
    ) -> Result<Frame<K::Output>, FramingError> {
        let mut frame = Vec::new();
        let mut bodies = Vec::new();
        let mut kind = None;
        let mut uid_hint = None;
        let mut sink_error = None;
        let mut streamed = 0u64;
        let mut oversized = None;
        loop {
            let seg_start = frame.len();
            self.read_line(&mut frame, seg_start).await?;
            let line = &frame[seg_start..frame.len() - 2];
            let kind = *kind.get_or_insert_with(|| scan::classify(line));
            if let LineKind::Fetch(_) = kind {
                uid_hint = uid_hint.or_else(|| scan::find_uid(line));
            }
            let marker = match kind {
                LineKind::Status => None,
                _ => scan::literal_marker(line),
            };
            let Some(marker) = marker else {
                if streamed > 1 {
                    let dropped = streamed - 1;
                    tracing::warn!(
                        dropped,
                        "message bodies after the first of one FETCH response dropped"
                    );
                }
                if let Some(e) = sink_error {
                    return Err(FramingError::Sink(e));
                }
                return Ok(Frame {
                    bytes: frame,
                    bodies,
                    oversized,
                });
            };
            let item = match kind {
                LineKind::Fetch(seq) => scan::streamable_item(&line[..marker.start])
                    .map(|(pos, item)| (seq, seg_start + pos, item)),
                _ => None,
            };
            match item {
                Some((seq, item_pos, item)) => {
                    let limit = self.limits.max_streamed_literal;
                    if marker.len > limit.saturating_mul(OVERSIZED_DRAIN) {
                        return Err(FramingError::StreamedTooLarge {
                            len: marker.len,
                            limit,
                        });
                    }
                    frame.truncate(item_pos);
                    push_bounded(&mut frame, b"BODY[] {0}\r\n", self.limits.max_frame)?;
                    if marker.len > limit {
                        tracing::warn!(
                            seq,
                            len = marker.len,
                            limit,
                            "a message body over the limit: read and dropped"
                        );
                        self.skip_literal(marker.len).await?;
                        oversized.get_or_insert(marker.len);
                    } else if streamed > 0 {
                        // One body per FETCH response: a server sending many would cost a
                        // temporary file and a buffer each. The rest are read and dropped.
                        self.skip_literal(marker.len).await?;
                    } else {
                        let start = LiteralStart {
                            seq,
                            uid_hint,
                            item,
                            len: marker.len,
                        };
                        let out = self.stream_literal(&start, sink, &mut sink_error).await?;
                        if let Some(output) = out {
                            bodies.push(StreamedBody {
                                item: start.item,
                                len: start.len,
                                output,
                            });
                        }
                    }
                    streamed += 1;
                }
                None => {
                    if marker.len > self.limits.max_small_literal as u64 {
                        return Err(FramingError::LiteralTooLarge {
                            len: marker.len,
                            limit: self.limits.max_small_literal as u64,
                        });
                    }
                    // Normalise `~{N}` / `{N+}` to `{N}` for imap-proto.
                    frame.truncate(seg_start + marker.start);
                    let announce = format!("{{{}}}\r\n", marker.len);
                    push_bounded(&mut frame, announce.as_bytes(), self.limits.max_frame)?;
                    self.copy_literal(&mut frame, marker.len).await?;
                }
            }
        }
    }

    /// Appends one line (through LF) to `frame`, ending it in CRLF even if the server sent
    /// a bare LF.
    async fn read_line(
        &mut self,
        frame: &mut Vec<u8>,
        seg_start: usize,
    ) -> Result<(), FramingError> {
        let max_seg = self.limits.max_line + 2;
        loop {
            let avail = &self.buf[self.start..self.end];
            let (take, done) = match memchr_lf(avail) {
                Some(p) => (p + 1, true),
                None => (avail.len(), false),
            };
            if frame.len() - seg_start + take > max_seg {
                let line = &frame[seg_start..];
                let line = if line.is_empty() { avail } else { line };
                return Err(FramingError::LineTooLong {
                    limit: self.limits.max_line,
                    start: escaped_sample(line),
                });
            }
            push_bounded(frame, &avail[..take], self.limits.max_frame)?;
            self.start += take;
            if done {
                let n = frame.len();
                if n - seg_start < 2 || frame[n - 2] != b'\r' {
                    frame.pop();
                    push_bounded(frame, b"\r\n", self.limits.max_frame)?;
                }
                return Ok(());
            }
            let empty = frame.is_empty();
            self.fill(empty).await?;
        }
    }

    /// Copies a literal of `len` bytes into the frame.
    async fn copy_literal(&mut self, frame: &mut Vec<u8>, len: u64) -> Result<(), FramingError> {
        let mut remaining = len;
        while remaining > 0 {
            if self.start == self.end {
                self.fill(false).await?;
            }
            let n = (self.end - self.start).min(usize::try_from(remaining).unwrap_or(usize::MAX));
            push_bounded(
                frame,
                &self.buf[self.start..self.start + n],
                self.limits.max_frame,
            )?;
            self.start += n;
            remaining -= n as u64;
        }
        Ok(())
    }

    /// Reads a literal of `len` bytes and drops it.
    async fn skip_literal(&mut self, len: u64) -> Result<(), FramingError> {
        let mut remaining = len;
        while remaining > 0 {
            if self.start == self.end {
                self.fill(false).await?;
            }
            let n = (self.end - self.start).min(usize::try_from(remaining).unwrap_or(usize::MAX));
            self.start += n;
            remaining -= n as u64;
        }
        Ok(())
    }

    /// Streams a literal into the sink. On a sink error the rest of the literal is drained
    /// and the error is kept in `sink_error` (returned once the response is complete).
    async fn stream_literal<K: LiteralSink>(
        &mut self,
        start: &LiteralStart,
        sink: &mut K,
        sink_error: &mut Option<io::Error>,
    ) -> Result<Option<K::Output>, FramingError> {
        let mut healthy = sink_error.is_none();
        if healthy && let Err(e) = sink.begin(start) {
            *sink_error = Some(e);
            healthy = false;
        }
        let mut remaining = start.len;
        while remaining > 0 {
            if self.start == self.end
                && let Err(e) = self.fill(false).await
            {
                if healthy {
                    sink.abort();
                }
                return Err(e);
            }
            let n = (self.end - self.start).min(usize::try_from(remaining).unwrap_or(usize::MAX));
            if healthy && let Err(e) = sink.chunk(&self.buf[self.start..self.start + n]) {
                sink.abort();
                *sink_error = Some(e);
                healthy = false;
            }
            self.start += n;
            remaining -= n as u64;
        }
        if !healthy {
            return Ok(None);
        }
        match sink.finish(start.len) {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                *sink_error = Some(e);
                Ok(None)
            }
        }
    }

    /// Reads more bytes into the buffer (compacting it first); EOF is an error.
    async fn fill(&mut self, at_boundary: bool) -> Result<(), FramingError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.inner.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(if at_boundary && self.start == self.end {
                FramingError::Closed
            } else {
                FramingError::Truncated
            });
        }
        self.end += n;
        Ok(())
    }
}

/// Bytes shown in errors about what a server sent.
pub const SAMPLE_LEN: usize = 80;

/// The first [`SAMPLE_LEN`] bytes of what a server sent, printable: ASCII as is, anything
/// else escaped (`\x16\x03\x01`, `\r\n`), an ellipsis when cut.
pub fn escaped_sample(bytes: &[u8]) -> String {
    let cut = bytes.len() > SAMPLE_LEN;
    let mut out = bytes[..bytes.len().min(SAMPLE_LEN)]
        .escape_ascii()
        .to_string();
    if cut {
        out.push('…');
    }
    out
}

fn memchr_lf(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

/// Appends `data`, never letting the vector's length or capacity exceed `limit`.
fn push_bounded(v: &mut Vec<u8>, data: &[u8], limit: usize) -> Result<(), FramingError> {
    let needed = v.len() + data.len();
    if needed > limit {
        return Err(FramingError::FrameTooLarge { limit });
    }
    if needed > v.capacity() {
        let target = (v.capacity() * 2).max(needed).max(256).min(limit);
        v.reserve_exact(target - v.len());
    }
    v.extend_from_slice(data);
    Ok(())
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
