use super::*;
use crate::sink::{DiscardSink, MemorySink};
use crate::testio::PiecewiseReader;
use proptest::prelude::*;

/// Frames a whole stream; returns the frames and the error that ended it.
async fn frame_all<R: AsyncRead + Unpin>(
    reader: R,
    limits: FramingLimits,
) -> (Vec<Frame<Vec<u8>>>, FramingError) {
    let mut fr = FrameReader::new(reader, limits);
    let mut sink = MemorySink::new(1 << 20);
    let mut frames = Vec::new();
    loop {
        match fr.next_frame(&mut sink).await {
            Ok(f) => {
                assert!(f.bytes.capacity() <= limits.max_frame);
                assert_eq!(fr.buffer_capacity(), limits.chunk_size.max(16));
                frames.push(f);
            }
            Err(e) => return (frames, e),
        }
    }
}

fn small_limits() -> FramingLimits {
    FramingLimits {
        max_line: 200,
        max_small_literal: 100,
        max_frame: 400,
        max_streamed_literal: 1000,
        chunk_size: 16,
    }
}

/// Frames `stream` in one read, then in pieces of every size k and split at every single
/// position, asserting the result never changes; returns the one-read result.
fn frame_every_way(stream: &[u8], limits: FramingLimits) -> (Vec<Frame<Vec<u8>>>, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (frames, err) = frame_all(stream, limits).await;
        let expect = (frames, format!("{err:?}"));
        for k in 1..=stream.len() {
            let (f, e) = frame_all(PiecewiseReader::every(stream, k), limits).await;
            assert_eq!((f, format!("{e:?}")), expect, "pieces of {k}");
        }
        for at in 0..=stream.len() {
            let (f, e) = frame_all(PiecewiseReader::split_at(stream, at), limits).await;
            assert_eq!((f, format!("{e:?}")), expect, "split at {at}");
        }
        expect
    })
}

const BODY: &[u8] = b"Hi!\r\nthere\r\n";

#[test]
fn fetch_literal_before_other_items() {
    let stream = b"* 1 FETCH (BODY[] {12}\r\nHi!\r\nthere\r\n UID 5 FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 12)\r\nA1 OK done\r\n";
    let (frames, err) = frame_every_way(stream, FramingLimits::default());
    assert_eq!(err, "Closed");
    assert_eq!(frames.len(), 2);
    assert_eq!(
        frames[0].bytes,
        b"* 1 FETCH (BODY[] {0}\r\n UID 5 FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 12)\r\n".to_vec()
    );
    assert_eq!(frames[0].bodies.len(), 1);
    assert_eq!(frames[0].bodies[0].output, BODY);
    assert_eq!(frames[0].bodies[0].len, 12);
    assert_eq!(frames[0].bodies[0].item, "BODY[]");
    assert_eq!(frames[1].bytes, b"A1 OK done\r\n".to_vec());
}

#[test]
fn fetch_literal_after_uid_with_small_chunks() {
    let stream = b"* 1 FETCH (UID 5 BODY[] {12}\r\nHi!\r\nthere\r\n)\r\n";
    let (frames, _) = frame_every_way(stream, small_limits());
    assert_eq!(
        frames[0].bytes,
        b"* 1 FETCH (UID 5 BODY[] {0}\r\n)\r\n".to_vec()
    );
    assert_eq!(frames[0].bodies[0].output, BODY);
}

#[test]
fn several_responses_bye_and_continuations() {
    let stream = b"* 3 EXISTS\r\n* OK [UIDNEXT 4] ok {5}\r\n+ Ready {3}\r\n+\r\n* BYE shutting down\r\nA2 NO [ALERT] bye {2}\r\n";
    let (frames, err) = frame_every_way(stream, small_limits());
    let lines: Vec<&[u8]> = frames.iter().map(|f| f.bytes.as_slice()).collect();
    assert_eq!(
        lines,
        [
            &b"* 3 EXISTS\r\n"[..],
            b"* OK [UIDNEXT 4] ok {5}\r\n",
            b"+ Ready {3}\r\n",
            b"+\r\n",
            b"* BYE shutting down\r\n",
            b"A2 NO [ALERT] bye {2}\r\n"
        ]
    );
    assert_eq!(err, "Closed");
}

#[test]
fn list_with_literal_name_and_normalised_markers() {
    let stream = b"* LIST (\\HasNoChildren) \"/\" {7+}\r\nFoo\r\nBa\r\n* 1 FETCH (BINARY[] ~{3}\r\n\x00\xff\x01 BODY[HEADER] ~{2}\r\nab)\r\n";
    let (frames, _) = frame_every_way(stream, small_limits());
    assert_eq!(
        frames[0].bytes,
        b"* LIST (\\HasNoChildren) \"/\" {7}\r\nFoo\r\nBa\r\n".to_vec()
    );
    assert!(frames[0].bodies.is_empty());
    assert_eq!(
        frames[1].bytes,
        b"* 1 FETCH (BODY[] {0}\r\n BODY[HEADER] {2}\r\nab)\r\n".to_vec()
    );
    assert_eq!(frames[1].bodies[0].output, b"\x00\xff\x01");
    assert_eq!(frames[1].bodies[0].item, "BINARY[]");
}

#[test]
fn zero_length_literals_and_bare_lf() {
    let stream = b"* 2 FETCH (UID 6 BODY[] {0}\r\n)\n* LIST () NIL {0}\r\n\r\n";
    let (frames, err) = frame_every_way(stream, small_limits());
    assert_eq!(
        frames[0].bytes,
        b"* 2 FETCH (UID 6 BODY[] {0}\r\n)\r\n".to_vec()
    );
    assert_eq!(frames[0].bodies[0].len, 0);
    assert_eq!(frames[0].bodies[0].output, b"");
    assert_eq!(frames[1].bytes, b"* LIST () NIL {0}\r\n\r\n".to_vec());
    assert_eq!(err, "Closed");
}

#[test]
fn truncated_streams() {
    let (frames, err) = frame_every_way(b"* 1 FETCH (BODY[] {12}\r\nHi!", small_limits());
    assert!(frames.is_empty());
    assert_eq!(err, "Truncated");
    let (_, err) = frame_every_way(b"A1 OK", small_limits());
    assert_eq!(err, "Truncated");
}

#[test]
fn limits_are_errors_not_allocations() {
    let limits = small_limits();
    let long_line = [b"* OK ".as_slice(), &[b'x'; 300], b"\r\n"].concat();
    let (_, err) = frame_every_way(&long_line, limits);
    assert!(
        err.starts_with("LineTooLong { limit: 200, start: "),
        "{err}"
    );
    let (_, err) = frame_every_way(b"* LIST () NIL {101}\r\n", limits);
    assert_eq!(err, "LiteralTooLarge { len: 101, limit: 100 }");
    let (_, err) = frame_every_way(b"* 1 FETCH (RFC822 {4001}\r\n", limits);
    assert_eq!(err, "StreamedTooLarge { len: 4001, limit: 1000 }");
    let (_, err) = frame_every_way(b"* 1 FETCH (RFC822 {99999999999999999999999}\r\n", limits);
    assert!(err.starts_with("StreamedTooLarge"));
    let many = b"* LIST () NIL {90}\r\n".to_vec();
    let mut big = many.clone();
    for _ in 0..5 {
        big.extend_from_slice(&[b'a'; 90]);
        big.extend_from_slice(b" {90}\r\n");
    }
    let (_, err) = frame_every_way(&big, limits);
    assert_eq!(err, "FrameTooLarge { limit: 400 }");
}

/// A sink that fails on the first chunk of its first body and records chunk sizes.
#[derive(Default)]
struct FlakySink {
    bodies: usize,
    aborted: usize,
    max_chunk: usize,
}

impl LiteralSink for FlakySink {
    type Output = ();
    fn begin(&mut self, _start: &LiteralStart) -> io::Result<()> {
        self.bodies += 1;
        Ok(())
    }
    fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        self.max_chunk = self.max_chunk.max(data.len());
        if self.bodies == 1 {
            return Err(io::Error::other("disk full"));
        }
        Ok(())
    }
    fn finish(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn abort(&mut self) {
        self.aborted += 1;
    }
}

#[tokio::test]
async fn sink_errors_keep_the_stream_in_sync_and_chunks_are_bounded() {
    let body = vec![b'z'; 100];
    let mut stream = b"* 1 FETCH (BODY[] {100}\r\n".to_vec();
    stream.extend_from_slice(&body);
    stream.extend_from_slice(b" UID 1)\r\n* 2 FETCH (UID 2 BODY[] {100}\r\n");
    stream.extend_from_slice(&body);
    stream.extend_from_slice(b")\r\n");
    let mut fr = FrameReader::new(stream.as_slice(), small_limits());
    let mut sink = FlakySink::default();
    let err = fr.next_frame(&mut sink).await.unwrap_err();
    assert!(err.stream_in_sync(), "{err:?}");
    assert_eq!(sink.aborted, 1);
    let frame = fr.next_frame(&mut sink).await.unwrap();
    assert_eq!(
        frame.bytes,
        b"* 2 FETCH (UID 2 BODY[] {0}\r\n)\r\n".to_vec()
    );
    assert_eq!(frame.bodies.len(), 1);
    assert_eq!(sink.max_chunk, 16);
    assert!(matches!(
        fr.next_frame(&mut DiscardSink).await,
        Err(FramingError::Closed)
    ));
}

#[tokio::test]
async fn one_fetch_response_streams_one_body_and_drops_the_rest() {
    let mut stream = b"* 1 FETCH (UID 1 BODY[] {12}\r\n".to_vec();
    stream.extend_from_slice(BODY);
    for _ in 0..10 {
        stream.extend_from_slice(b" BODY[] {12}\r\nXXXXXXXXXXXX RFC822 {3}\r\nabc");
    }
    stream.extend_from_slice(b" FLAGS (\\Seen))\r\nA1 OK done\r\n");
    let mut fr = FrameReader::new(stream.as_slice(), small_limits());
    let mut sink = FlakySink {
        bodies: 1, // past its failing first body
        ..FlakySink::default()
    };
    let frame = fr.next_frame(&mut sink).await.unwrap();
    assert_eq!(sink.bodies, 2, "one sink opened for this response");
    assert_eq!(frame.bodies.len(), 1);
    assert!(frame.bytes.ends_with(b" FLAGS (\\Seen))\r\n"));
    let done = fr.next_frame(&mut sink).await.unwrap();
    assert_eq!(done.bytes, b"A1 OK done\r\n".to_vec());
}

fn corpus() -> Vec<&'static [u8]> {
    vec![
        b"* 1 FETCH (BODY[] {12}\r\nHi!\r\nthere\r\n UID 5 FLAGS (\\Seen))\r\n",
        b"* LIST (\\HasNoChildren) \"/\" {3}\r\nFoo\r\n",
        b"* OK [UIDVALIDITY 3] x\r\nA1 OK done\r\n",
        b"* 2 FETCH (BINARY[] ~{3}\r\nabc)\r\n+ go\r\n",
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        k in 1usize..40,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(frame_all(PiecewiseReader::every(&data, k), small_limits()));
    }

    #[test]
    fn mutated_responses_never_panic_and_stay_bounded(
        pick in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
        k in 1usize..40,
    ) {
        let mut data = corpus()[pick].to_vec();
        for (pos, byte, op) in edits {
            let at = pos % (data.len() + 1);
            match op {
                0 => data.insert(at, byte),
                1 if at < data.len() => { data.remove(at); }
                _ if at < data.len() => data[at] = byte,
                _ => data.push(byte),
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(frame_all(PiecewiseReader::every(&data, k), small_limits()));
    }
}

/// A body over the streaming limit (up to [`OVERSIZED_DRAIN`] times it) is read and dropped:
/// its response comes without a body, its length in `oversized`, and the next one is framed.
#[test]
fn a_body_over_the_limit_is_read_and_dropped() {
    let mut stream = b"* 1 FETCH (UID 5 BODY[] {1500}\r\n".to_vec();
    stream.extend_from_slice(&[b'x'; 1500]);
    stream
        .extend_from_slice(b" FLAGS ())\r\n* 2 FETCH (UID 6 BODY[] {12}\r\nHi!\r\nthere\r\n)\r\n");
    let (frames, err) = frame_every_way(&stream, small_limits());
    assert_eq!(err, "Closed");
    assert_eq!(
        frames[0].bytes,
        b"* 1 FETCH (UID 5 BODY[] {0}\r\n FLAGS ())\r\n".to_vec()
    );
    assert!(frames[0].bodies.is_empty());
    assert_eq!(frames[0].oversized, Some(1500));
    assert_eq!(frames[1].bodies[0].output, BODY);
    assert_eq!(frames[1].oversized, None);
}
