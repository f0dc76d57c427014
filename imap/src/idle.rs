//! Inactivity timeouts: a stream wrapper under the session that fails a read or a write only
//! when it has made no progress for the limit, however long the whole response or command
//! takes. A 35 MB body over a slow link that keeps moving bytes is never cut; a link that
//! stalls is, within the limit, whether the stall is in a response or in an APPEND's literal.
//!
//! Bytes handed to the kernel still move after the write returns: an APPEND's last megabytes
//! drain from the socket's send buffer while the client already waits for the answer, and a
//! writer is woken only once much of the buffer is free. So on a TCP connection the wait is
//! also progress while the kernel's queue of unsent bytes shrinks ([`tcp_send_queue`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::error::ImapError;
use super::framing::FramingError;
use super::progress::{ReadStall, StallError};

/// How many bytes the kernel still holds to send on a connection (`None`: unknown).
pub type SendQueueProbe = Box<dyn Fn() -> Option<u64> + Send + Sync>;

/// A stream whose reads and writes fail with [`io::ErrorKind::TimedOut`] after `limit`
/// without a single byte moving in that direction (nor, with a probe, leaving the kernel's
/// send queue).
pub struct IdleTimeout<S> {
    inner: S,
    limit: Option<Duration>,
    read: Timer,
    write: Timer,
    send_queue: Option<SendQueueProbe>,
    stall: ReadStall,
}

impl<S: std::fmt::Debug> std::fmt::Debug for IdleTimeout<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("inner", &self.inner)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// The error of a direction in which nothing moved for `limit`.
fn timed_out(limit: Duration, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no {what} moved for {limit:?}"),
    )
}

/// One direction's timer: armed when an operation starts waiting, disarmed by progress.
#[derive(Debug, Default)]
struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// The send queue's length when the timer last looked.
    queued: Option<u64>,
}

impl Timer {
    /// The operation is waiting: true when it has waited `limit` since it (or the send
    /// queue) last moved.
    fn expired(
        &mut self,
        limit: Duration,
        cx: &mut Context<'_>,
        send_queue: Option<&SendQueueProbe>,
    ) -> bool {
        let deadline = Instant::now() + limit;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            sleep.as_mut().reset(deadline);
            self.armed = true;
            self.queued = send_queue.and_then(|q| q());
        }
        while sleep.as_mut().poll(cx).is_ready() {
            let queued = send_queue.and_then(|q| q());
            if queued.is_some_and(|q| q > 0) && queued != self.queued {
                // Still draining: that is progress.
                self.queued = queued;
                sleep.as_mut().reset(Instant::now() + limit);
                continue;
            }
            self.armed = false;
            return true;
        }
        false
    }

    fn progressed(&mut self) {
        self.armed = false;
    }

    /// What the inner stream's answer to a poll in this direction means: progress when it
    /// is ready; while it waits, a [`io::ErrorKind::TimedOut`] naming `what` once nothing
    /// has moved for `limit`.
    fn watch<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        limit: Option<Duration>,
        cx: &mut Context<'_>,
        send_queue: Option<&SendQueueProbe>,
        what: &str,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(r) => {
                self.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => match limit {
                Some(limit) if self.expired(limit, cx, send_queue) => {
                    Poll::Ready(Err(timed_out(limit, what)))
                }
                _ => Poll::Pending,
            },
        }
    }
}

impl<S> IdleTimeout<S> {
    /// Wraps `inner`; `None` never times out.
    pub fn new(inner: S, limit: Option<Duration>) -> Self {
        Self {
            inner,
            limit,
            read: Timer::default(),
            write: Timer::default(),
            send_queue: None,
            stall: ReadStall::default(),
        }
    }

    /// Counts the kernel's send queue shrinking as progress (see [`tcp_send_queue`]).
    pub fn watch_send_queue(&mut self, probe: Option<SendQueueProbe>) {
        self.send_queue = probe;
    }

    /// The command moved on (a response that was progress, a command sent): reads that
    /// trickled in a few bytes since no longer count toward a stall.
    pub fn progressed(&mut self) {
        self.stall.progressed();
    }

    /// The wrapped stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Gives the wrapped stream back.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) => this.stall.moved(buf.filled().len() - before),
            Poll::Ready(Err(_)) => {}
            Poll::Pending => this.stall.waiting(),
        }
        // A wait may last what the stall since the last progress leaves of the limit.
        let stalled = this.stall.stalled();
        let left = this.limit.map(|l| l.saturating_sub(stalled));
        let queue = this.send_queue.as_ref();
        let watched = this
            .read
            .watch(polled, left, cx, queue, "data from the server");
        match watched {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::TimedOut && !stalled.is_zero() => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, StallError)))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        let queue = this.send_queue.as_ref();
        this.write
            .watch(polled, this.limit, cx, queue, "data to the server")
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        let queue = this.send_queue.as_ref();
        this.write
            .watch(polled, this.limit, cx, queue, "data to the server")
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A probe of `tcp`'s unsent bytes (Linux `SIOCOUTQ`); `None` elsewhere. The probe holds
/// the descriptor's number, so it must live no longer than the connection (the session keeps
/// both together).
pub fn tcp_send_queue(tcp: &tokio::net::TcpStream) -> Option<SendQueueProbe> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = tcp.as_raw_fd();
        Some(Box::new(move || {
            let mut queued: libc::c_int = 0;
            // SAFETY: SIOCOUTQ writes one int through the pointer; `fd` is the session's
            // own open socket for as long as the probe lives.
            let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
            (rc == 0).then(|| u64::try_from(queued).unwrap_or(0))
        }))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tcp;
        None
    }
}

/// An I/O error of a timed-out read or write becomes [`ImapError::Timeout`] with the limit.
pub(crate) fn name_timeout(e: ImapError, limit: Option<Duration>) -> ImapError {
    let io = match &e {
        ImapError::Io(io) | ImapError::Framing(FramingError::Io(io)) => io,
        _ => return e,
    };
    let stalled = io.get_ref().is_some_and(|e| e.is::<StallError>());
    match limit {
        Some(limit) if stalled => ImapError::Stalled(limit),
        Some(limit) if io.kind() == io::ErrorKind::TimedOut => ImapError::Timeout(limit),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_slow_stream_that_keeps_moving_is_never_cut_a_stalled_one_is() {
        use crate::progress::PROGRESS_BYTES;
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let mut s = IdleTimeout::new(client, Some(Duration::from_secs(1)));
        let feeder = tokio::spawn(async move {
            // 20 chunks, one every 0.6 s: 12 s in all, never 1 s without progress.
            for b in 0..20u8 {
                tokio::time::sleep(Duration::from_millis(600)).await;
                server.write_all(&[b; PROGRESS_BYTES]).await.unwrap();
            }
            server
        });
        let started = Instant::now();
        let mut got = Vec::new();
        while got.len() < 20 {
            let mut chunk = [0u8; PROGRESS_BYTES];
            s.read_exact(&mut chunk).await.unwrap();
            got.push(chunk[0]);
        }
        assert!(started.elapsed() >= Duration::from_secs(12));
        assert_eq!(got, (0..20).collect::<Vec<u8>>());
        let _server = feeder.await.unwrap();
        // Nothing more comes: the next read fails after the limit.
        let started = Instant::now();
        let e = s.read_u8().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_after_the_limit_of_waits_a_late_answer_is_not() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut s = IdleTimeout::new(client, Some(Duration::from_secs(10)));
        let feeder = tokio::spawn(async move {
            // One byte every 3 s, for ever.
            for b in 0..u8::MAX {
                tokio::time::sleep(Duration::from_secs(3)).await;
                if server.write_all(&[b]).await.is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut byte = [0u8; 1];
        let e = loop {
            if let Err(e) = s.read_exact(&mut byte).await {
                break e;
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let named = name_timeout(ImapError::Io(e), Some(Duration::from_secs(10)));
        assert!(matches!(named, ImapError::Stalled(_)), "{named}");
        drop(s);
        feeder.await.unwrap();

        // A first byte after 9 s, then a burst: not cut, and the wait is forgotten.
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let mut s = IdleTimeout::new(client, Some(Duration::from_secs(10)));
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(9)).await;
            server.write_all(&[7u8; 8192]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(9)).await;
            server.write_all(b"x").await.unwrap();
            server
        });
        let mut got = vec![0u8; 8193];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(got[8192], b'x');
        drop(writer.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_times_out() {
        let (client, _server) = tokio::io::duplex(16);
        let mut s = IdleTimeout::new(client, Some(Duration::from_secs(2)));
        let e = s.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let named = name_timeout(ImapError::Io(e), Some(Duration::from_secs(2)));
        assert!(matches!(named, ImapError::Timeout(d) if d == Duration::from_secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shrinking_send_queue_counts_as_progress() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let (client, _server) = tokio::io::duplex(64);
        let mut s = IdleTimeout::new(client, Some(Duration::from_secs(1)));
        let queue = Arc::new(AtomicU64::new(5_000));
        let probe = queue.clone();
        s.watch_send_queue(Some(Box::new(move || Some(probe.load(Ordering::SeqCst)))));
        let drain = tokio::spawn(async move {
            // 1000 bytes leave the queue every 0.8 s, then it stays empty.
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(800)).await;
                queue.fetch_sub(1000, Ordering::SeqCst);
            }
        });
        let started = Instant::now();
        let e = s.read_u8().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(4) && waited <= Duration::from_secs(6),
            "no answer came, but the queue drained for 4 s: {waited:?}"
        );
        drain.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_time_between_reads_does_not_count() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut s = IdleTimeout::new(client, Some(Duration::from_secs(1)));
        server.write_all(b"a").await.unwrap();
        assert_eq!(s.read_u8().await.unwrap(), b'a');
        // The caller is busy elsewhere for 5 s, then reads: the wait starts now.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(900)).await;
            server.write_all(b"b").await.unwrap();
            server
        });
        assert_eq!(s.read_u8().await.unwrap(), b'b');
        drop(writer.await.unwrap());
    }
}
