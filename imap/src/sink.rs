//! Where streamed message bodies go: the [`LiteralSink`] trait and a few ready sinks.
//!
//! The framing layer ([`super::framing::FrameReader`]) calls a sink for every literal that
//! carries a whole message inside an untagged FETCH (`BODY[]`, `BODY[]<n>`, `RFC822`,
//! `BINARY[]`): [`LiteralSink::begin`] once, [`LiteralSink::chunk`] with pieces of at most the
//! configured chunk size, then [`LiteralSink::finish`] with the exact byte count, or
//! [`LiteralSink::abort`] when the body could not be completed. The value `finish` returns
//! travels with the parsed FETCH response, so the caller gets UID, FLAGS, INTERNALDATE and
//! the finished body together, even when the server sends the UID after the literal.
//!
//! The stage's blob writer plugs in through [`WriterSink`]: its factory opens a writer in
//! `begin` (content addressing needs no UID to start), chunks go to `write_all`, and
//! `finish` hands the writer back for the caller to commit (fsync, rename) next to the UID.

use std::io::{self, Write};

/// What the framing layer knows when a streamed literal starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralStart {
    /// Message sequence number from `* <seq> FETCH`.
    pub seq: u32,
    /// The UID, when it appeared before the literal in the same response (a hint only:
    /// the authoritative UID is in the parsed FETCH delivered with the finished body).
    pub uid_hint: Option<u32>,
    /// The FETCH item as the server named it, e.g. `BODY[]`, `RFC822`, `BINARY[]`.
    pub item: String,
    /// The announced literal length in bytes.
    pub len: u64,
}

/// Receives streamed message bodies chunk by chunk; memory use is the sink's own choice.
///
/// Calls run on the task that reads the connection: keep them short (buffered writes).
/// After `begin`, exactly one of `finish` or `abort` follows unless the reading future is
/// dropped (timeout, cancellation), in which case the sink is dropped by its owner too.
pub trait LiteralSink {
    /// What a finished body becomes (a staged blob handle, a buffer, a byte count).
    type Output;

    /// A body of `start.len` bytes begins.
    fn begin(&mut self, start: &LiteralStart) -> io::Result<()>;

    /// The next piece of the body, in order; never longer than the chunk size.
    fn chunk(&mut self, data: &[u8]) -> io::Result<()>;

    /// The body is complete; `len` is the exact number of bytes passed to `chunk`.
    fn finish(&mut self, len: u64) -> io::Result<Self::Output>;

    /// The body will not complete (an earlier `chunk` failed or the stream broke):
    /// discard what was written.
    fn abort(&mut self) {}
}

impl<K: LiteralSink + ?Sized> LiteralSink for &mut K {
    type Output = K::Output;
    fn begin(&mut self, start: &LiteralStart) -> io::Result<()> {
        (**self).begin(start)
    }
    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        (**self).chunk(data)
    }
    fn finish(&mut self, len: u64) -> io::Result<Self::Output> {
        (**self).finish(len)
    }
    fn abort(&mut self) {
        (**self).abort()
    }
}

/// Drops body bytes and reports only their length.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardSink;

impl LiteralSink for DiscardSink {
    type Output = u64;
    fn begin(&mut self, _start: &LiteralStart) -> io::Result<()> {
        Ok(())
    }
    fn chunk(&mut self, _data: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, len: u64) -> io::Result<u64> {
        Ok(len)
    }
}

/// Collects each body in memory, refusing bodies over `max` bytes (for tests and small data).
#[derive(Debug, Clone)]
pub struct MemorySink {
    max: usize,
    current: Vec<u8>,
}

impl MemorySink {
    /// A sink that holds bodies of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            current: Vec::new(),
        }
    }
}

impl LiteralSink for MemorySink {
    type Output = Vec<u8>;
    fn begin(&mut self, start: &LiteralStart) -> io::Result<()> {
        if start.len > self.max as u64 {
            return Err(io::Error::other(format!(
                "body of {} bytes exceeds the in-memory limit of {}",
                start.len, self.max
            )));
        }
        self.current.clear();
        Ok(())
    }
    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        self.current.extend_from_slice(data);
        Ok(())
    }
    fn finish(&mut self, _len: u64) -> io::Result<Vec<u8>> {
        Ok(std::mem::take(&mut self.current))
    }
    fn abort(&mut self) {
        self.current.clear();
    }
}

/// Adapts a factory of [`std::io::Write`] objects into a sink; the finished writer is the
/// output (e.g. the stage's blob writer, committed by the caller once the UID is known).
pub struct WriterSink<F, W> {
    factory: F,
    current: Option<W>,
}

impl<F, W> WriterSink<F, W>
where
    F: FnMut(&LiteralStart) -> io::Result<W>,
    W: Write,
{
    /// A sink that opens one writer per body through `factory`.
    pub fn new(factory: F) -> Self {
        Self {
            factory,
            current: None,
        }
    }
}

impl<F, W> LiteralSink for WriterSink<F, W>
where
    F: FnMut(&LiteralStart) -> io::Result<W>,
    W: Write,
{
    type Output = W;
    fn begin(&mut self, start: &LiteralStart) -> io::Result<()> {
        self.current = Some((self.factory)(start)?);
        Ok(())
    }
    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        match self.current.as_mut() {
            Some(w) => w.write_all(data),
            None => Err(io::Error::other("chunk without begin")),
        }
    }
    fn finish(&mut self, _len: u64) -> io::Result<W> {
        let mut w = self
            .current
            .take()
            .ok_or_else(|| io::Error::other("finish without begin"))?;
        w.flush()?;
        Ok(w)
    }
    fn abort(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(len: u64) -> LiteralStart {
        LiteralStart {
            seq: 1,
            uid_hint: Some(5),
            item: "BODY[]".into(),
            len,
        }
    }

    #[test]
    fn writer_sink_returns_the_writer() {
        let mut opened = Vec::new();
        let mut sink = WriterSink::new(|s: &LiteralStart| {
            opened.push(s.uid_hint);
            Ok(Vec::<u8>::new())
        });
        sink.begin(&start(5)).unwrap();
        sink.chunk(b"he").unwrap();
        sink.chunk(b"llo").unwrap();
        assert_eq!(sink.finish(5).unwrap(), b"hello");
        assert!(sink.chunk(b"x").is_err());
        drop(sink);
        assert_eq!(opened, [Some(5)]);
    }

    #[test]
    fn memory_sink_enforces_its_limit() {
        let mut sink = MemorySink::new(4);
        assert!(sink.begin(&start(5)).is_err());
        sink.begin(&start(4)).unwrap();
        sink.chunk(b"abcd").unwrap();
        assert_eq!(sink.finish(4).unwrap(), b"abcd");
        assert_eq!(DiscardSink.finish(7).unwrap(), 7);
    }
}
