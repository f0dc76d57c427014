//! A one-way delay line for the [`fault_proxy`](crate::fault_proxy): bytes written into it
//! reach the socket behind it `delay` later, in order, while the writer keeps reading. It
//! models distance, not a slow link: throughput is unchanged (up to [`IN_FLIGHT`] bytes ride
//! the line at once, a generous bandwidth-delay product), only each byte arrives late.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// At most this many bytes are on the line at once; a sender waits for room beyond it.
pub const IN_FLIGHT: usize = 32 << 20;

/// What rides the line.
enum Piece {
    Data(Vec<u8>),
    /// Shut the socket's write side (the sender's peer closed).
    ShutdownWrite,
    /// The sender is gone: the delivering thread stops once everything before arrived.
    End,
}

#[derive(Default)]
struct Line {
    pieces: VecDeque<(Instant, Piece)>,
    bytes: usize,
    /// Delivery failed (the socket is gone): senders get an error.
    broken: bool,
}

#[derive(Default)]
struct Shared {
    line: Mutex<Line>,
    changed: Condvar,
}

/// Where one direction of a proxied link writes: straight into the socket, or through a
/// delay line. `delivered` (if any) is set each time bytes are about to reach the socket.
pub(crate) enum Sink {
    /// No delay.
    Direct {
        socket: TcpStream,
        delivered: Option<Arc<AtomicBool>>,
    },
    /// Bytes arrive `delay` after they were sent.
    Delayed(DelayLine),
}

impl Sink {
    /// A sink writing into `socket`, `delay` late when there is one.
    pub(crate) fn new(
        socket: TcpStream,
        delay: Option<Duration>,
        delivered: Option<Arc<AtomicBool>>,
    ) -> Self {
        match delay {
            Some(delay) if !delay.is_zero() => {
                Sink::Delayed(DelayLine::new(socket, delay, delivered))
            }
            _ => Sink::Direct { socket, delivered },
        }
    }

    /// Sends all of `data` (for a delay line: queues it).
    pub(crate) fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Sink::Direct { socket, delivered } => {
                // Set before the write: once written, the client may answer before this
                // thread runs again.
                if let Some(flag) = delivered {
                    flag.store(true, Ordering::SeqCst);
                }
                socket.write_all(data)
            }
            Sink::Delayed(line) => line.send(data.to_vec()),
        }
    }

    /// Shuts the socket's write side once everything sent before has arrived.
    pub(crate) fn shutdown_write(&mut self) {
        match self {
            Sink::Direct { socket, .. } => {
                let _ = socket.shutdown(Shutdown::Write);
            }
            Sink::Delayed(line) => line.push(Piece::ShutdownWrite, 0),
        }
    }
}

/// A thread delivering what was sent into it `delay` later.
pub(crate) struct DelayLine {
    shared: Arc<Shared>,
    delay: Duration,
    deliver: Option<JoinHandle<()>>,
}

impl DelayLine {
    fn new(socket: TcpStream, delay: Duration, delivered: Option<Arc<AtomicBool>>) -> Self {
        let shared = Arc::new(Shared::default());
        let deliver = {
            let shared = shared.clone();
            std::thread::spawn(move || deliver(socket, &shared, delivered.as_deref()))
        };
        Self {
            shared,
            delay,
            deliver: Some(deliver),
        }
    }

    fn send(&self, data: Vec<u8>) -> io::Result<()> {
        let len = data.len();
        let mut line = self.shared.line.lock().unwrap_or_else(|e| e.into_inner());
        while line.bytes > 0 && line.bytes + len > IN_FLIGHT && !line.broken {
            line = self
                .shared
                .changed
                .wait(line)
                .unwrap_or_else(|e| e.into_inner());
        }
        if line.broken {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "delay line: the socket behind it is gone",
            ));
        }
        line.bytes += len;
        line.pieces
            .push_back((Instant::now() + self.delay, Piece::Data(data)));
        self.shared.changed.notify_all();
        Ok(())
    }

    fn push(&self, piece: Piece, len: usize) {
        let mut line = self.shared.line.lock().unwrap_or_else(|e| e.into_inner());
        line.bytes += len;
        line.pieces.push_back((Instant::now() + self.delay, piece));
        self.shared.changed.notify_all();
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.push(Piece::End, 0);
        if let Some(deliver) = self.deliver.take() {
            let _ = deliver.join();
        }
    }
}

/// The delivering thread: each piece at its time, in order, until `End` or a failed write.
fn deliver(mut socket: TcpStream, shared: &Shared, delivered: Option<&AtomicBool>) {
    loop {
        let (due, piece) = {
            let mut line = shared.line.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(next) = line.pieces.pop_front() {
                    break next;
                }
                line = shared.changed.wait(line).unwrap_or_else(|e| e.into_inner());
            }
        };
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let ok = match &piece {
            Piece::Data(data) => {
                if let Some(flag) = delivered {
                    flag.store(true, Ordering::SeqCst);
                }
                socket.write_all(data).is_ok()
            }
            Piece::ShutdownWrite => {
                let _ = socket.shutdown(Shutdown::Write);
                true
            }
            Piece::End => return,
        };
        let mut line = shared.line.lock().unwrap_or_else(|e| e.into_inner());
        if let Piece::Data(data) = &piece {
            line.bytes -= data.len();
        }
        if !ok {
            line.broken = true;
            line.pieces.clear();
            line.bytes = 0;
        }
        shared.changed.notify_all();
        if !ok {
            // Keep draining until End so the sender's Drop does not wait forever.
            drop(line);
            wait_for_end(shared);
            return;
        }
    }
}

/// After a failed write: discards what is still sent until the sender is gone.
fn wait_for_end(shared: &Shared) {
    let mut line = shared.line.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        while let Some((_, piece)) = line.pieces.pop_front() {
            if matches!(piece, Piece::End) {
                return;
            }
        }
        line.bytes = 0;
        line = shared.changed.wait(line).unwrap_or_else(|e| e.into_inner());
    }
}
