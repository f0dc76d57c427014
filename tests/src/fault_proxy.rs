//! A loopback TCP proxy that breaks links on purpose: put it in front of a harness Dovecot
//! and point the extractor at [`FaultProxy::port`].
//!
//! Each connection is forwarded byte for byte until its budget in one direction is spent
//! (`down_limit` server→client bytes, `up_limit` client→server bytes); then the proxy
//! forwards exactly the budget, optionally stalls (forwards nothing, closes nothing) for a
//! while, and cuts the link: both sockets are shut down, so the client sees the connection
//! end, mid-literal if that is where the budget ran out. It can also rewrite the sizes the
//! server announces and limit the rate (a slow link). It can also delay each direction
//! (distance: [`Faults::rtt`], a `delay_line`), and it counts the
//! commands clients send ([`FaultProxy::commands`]), so a test can count a pass's commands
//! and round trips. Plain threads, no runtime: the proxy outlives any number of passes, each
//! with its own tokio runtime.

use std::io::{self, Read};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::command_count::{CommandCounts, CommandScanner};
use crate::delay_line::Sink;
use crate::fixtures::Rng;

/// What the proxy does to each connection.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Cut after this many server→client bytes.
    pub down_limit: Option<u64>,
    /// Cut after this many client→server bytes.
    pub up_limit: Option<u64>,
    /// Before cutting, forward nothing for this long (the client's read timeout should fire).
    pub stall: Option<Duration>,
    /// Add this to every `RFC822.SIZE n` the server sends (a server announcing a size other
    /// than the literal's, as some Exchange versions do). Server→client bytes are then
    /// forwarded a line at a time.
    pub size_skew: Option<i64>,
    /// Forward at most this many bytes per second in each direction (a slow link).
    pub rate: Option<u64>,
    /// Cut each connection after a number of server→client bytes drawn between these two
    /// (uniformly, the same sequence for the same `seed`); overrides `down_limit`.
    pub cut_between: Option<(u64, u64)>,
    /// The seed of `cut_between`.
    pub seed: u64,
    /// Deliver each direction's bytes this long after they were read (a one-way delay: half
    /// the round trip). Throughput is unchanged; a cut drops what is still on the line.
    pub delay: Option<Duration>,
    /// Cut (and stall) the first connection only; later ones are forwarded uncut, with the
    /// delay and rate (a balancer whose first backend hangs, once).
    pub first_only: bool,
}

impl Faults {
    /// Cut every connection after `bytes` from the server.
    pub fn cut_down_after(bytes: u64) -> Self {
        Self {
            down_limit: Some(bytes),
            ..Self::default()
        }
    }

    /// A distant server: `rtt` between a byte sent and the answer to it (half each way),
    /// nothing else changed.
    pub fn rtt(rtt: Duration) -> Self {
        Self {
            delay: Some(rtt / 2),
            ..Self::default()
        }
    }
}

/// What the proxy has seen so far.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    open: AtomicU64,
    most_open: AtomicU64,
    cuts: AtomicU64,
    stalls: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
}

/// A running proxy; dropping it stops accepting (open links end with their peers).
pub struct FaultProxy {
    port: u16,
    counters: Arc<Counters>,
    commands: Arc<CommandCounts>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target` with `faults`.
    pub fn start(target: u16, faults: Faults) -> io::Result<Self> {
        Self::start_on(0, target, faults)
    }

    /// The same on loopback port `listen` (0: a free one), e.g. the port an earlier proxy
    /// had, so a client configured with it reaches the new one.
    pub fn start_on(listen: u16, target: u16, faults: Faults) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", listen))?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Counters::default());
        let commands = Arc::new(CommandCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (counters, commands, stop) = (counters.clone(), commands.clone(), stop.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let n = counters.connections.fetch_add(1, Ordering::SeqCst);
                    let open = counters.open.fetch_add(1, Ordering::SeqCst) + 1;
                    counters.most_open.fetch_max(open, Ordering::SeqCst);
                    let (counters, commands, mut faults) =
                        (counters.clone(), commands.clone(), faults.clone());
                    if let Some((low, high)) = faults.cut_between {
                        let mut rng = Rng::new(faults.seed.wrapping_add(n));
                        faults.down_limit = Some(low + rng.next_u64() % (high - low).max(1));
                    }
                    if faults.first_only && n > 0 {
                        (faults.down_limit, faults.up_limit) = (None, None);
                    }
                    std::thread::spawn(move || {
                        if let Err(e) = serve(client, target, &faults, &counters, commands) {
                            eprintln!("fault proxy: {e}");
                        }
                        counters.open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            })
        };
        Ok(Self {
            port,
            counters,
            commands,
            stop,
            accept: Some(accept),
        })
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// The most connections that were open at once.
    pub fn most_open(&self) -> u64 {
        self.counters.most_open.load(Ordering::SeqCst)
    }

    /// Links cut on purpose.
    pub fn cuts(&self) -> u64 {
        self.counters.cuts.load(Ordering::SeqCst)
    }

    /// Links stalled before their cut.
    pub fn stalls(&self) -> u64 {
        self.counters.stalls.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from the server, over all connections.
    pub fn bytes_down(&self) -> u64 {
        self.counters.bytes_down.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from the client, over all connections.
    pub fn bytes_up(&self) -> u64 {
        self.counters.bytes_up.load(Ordering::SeqCst)
    }

    /// The commands clients sent, over all connections ([`CommandCounts::reset`] to count
    /// one pass only).
    pub fn commands(&self) -> &CommandCounts {
        &self.commands
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One link: two pumps, each cutting the whole link when its budget is spent.
fn serve(
    client: TcpStream,
    target: u16,
    faults: &Faults,
    counters: &Arc<Counters>,
    commands: Arc<CommandCounts>,
) -> io::Result<()> {
    let server = TcpStream::connect(("127.0.0.1", target))?;
    for s in [&client, &server] {
        s.set_nodelay(true)?;
        if faults.rate.is_some() {
            // A slow link holds little in flight: without this, the kernel would buffer
            // megabytes the proxy has not forwarded yet.
            small_receive_buffer(s)?;
        }
    }
    let cut = Arc::new(AtomicBool::new(false));
    // Set when the server's bytes reached the client: the next command is a new turn.
    let server_spoke = Arc::new(AtomicBool::new(false));
    let link = Link {
        client: client.try_clone()?,
        server: server.try_clone()?,
        cut: cut.clone(),
        counters: counters.clone(),
        stall: faults.stall,
        size_skew: None,
        rate: faults.rate,
    };
    let up = {
        let link = link.clone_handles()?;
        let to = Sink::new(server.try_clone()?, faults.delay, None);
        let (from, limit) = (client.try_clone()?, faults.up_limit);
        let scan = Some((CommandScanner::default(), commands, server_spoke.clone()));
        std::thread::spawn(move || link.pump(from, to, limit, &link.counters.bytes_up, scan))
    };
    let down = Link {
        size_skew: faults.size_skew,
        ..link
    };
    let to = Sink::new(client, faults.delay, Some(server_spoke));
    down.pump(
        server,
        to,
        faults.down_limit,
        &down.counters.bytes_down,
        None,
    );
    let _ = up.join();
    Ok(())
}

/// The client→server pump's command scanner, the proxy's counts, and the link's flag the
/// server→client pump sets.
type Scan = (CommandScanner, Arc<CommandCounts>, Arc<AtomicBool>);

/// Both sockets of a link, to shut them down from either pump.
struct Link {
    client: TcpStream,
    server: TcpStream,
    cut: Arc<AtomicBool>,
    counters: Arc<Counters>,
    stall: Option<Duration>,
    size_skew: Option<i64>,
    rate: Option<u64>,
}

impl Link {
    fn clone_handles(&self) -> io::Result<Self> {
        Ok(Self {
            client: self.client.try_clone()?,
            server: self.server.try_clone()?,
            cut: self.cut.clone(),
            counters: self.counters.clone(),
            stall: self.stall,
            size_skew: None,
            rate: self.rate,
        })
    }

    /// Copies `from` to `to` until either ends or `limit` bytes went through (then cuts),
    /// counting commands in what it forwards when given a scanner.
    fn pump(
        &self,
        mut from: TcpStream,
        mut to: Sink,
        limit: Option<u64>,
        count: &AtomicU64,
        mut scan: Option<Scan>,
    ) {
        let mut left = limit.unwrap_or(u64::MAX);
        // Under a rate, pieces of a twentieth of a second keep the flow even.
        let piece = self
            .rate
            .map_or(64 * 1024, |r| (r / 20).clamp(1024, 64 * 1024));
        let mut buf = vec![0u8; piece as usize];
        let mut held = Vec::new();
        let (started, mut sent) = (Instant::now(), 0u64);
        while left > 0 {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let data = match self.size_skew {
                Some(skew) => skew_sizes(&mut held, &buf[..n], skew),
                None => buf[..n].to_vec(),
            };
            let take = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            if let Some((scanner, commands, server_spoke)) = &mut scan {
                scanner.feed(&data[..take], commands, server_spoke);
            }
            if to.send(&data[..take]).is_err() {
                break;
            }
            count.fetch_add(take as u64, Ordering::SeqCst);
            left -= take as u64;
            if let Some(rate) = self.rate {
                sent += take as u64;
                let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
        if left == 0 {
            self.cut_on_purpose();
        } else {
            // A peer closed: pass that on (after what is still on a delay line).
            to.shutdown_write();
            let _ = from.shutdown(Shutdown::Read);
        }
    }

    fn cut_on_purpose(&self) {
        if self.cut.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(stall) = self.stall {
            self.counters.stalls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(stall);
        }
        self.counters.cuts.fetch_add(1, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

/// Appends `data` to the held bytes and returns the complete lines among them with each
/// `RFC822.SIZE n` changed to `n + skew`; a line longer than 1 MiB goes out unchanged.
fn skew_sizes(held: &mut Vec<u8>, data: &[u8], skew: i64) -> Vec<u8> {
    held.extend_from_slice(data);
    let cut = match held.iter().rposition(|&b| b == b'\n') {
        Some(p) => p + 1,
        None if held.len() > 1 << 20 => held.len(),
        None => return Vec::new(),
    };
    let lines: Vec<u8> = held.drain(..cut).collect();
    const KEY: &[u8] = b"RFC822.SIZE ";
    let mut out = Vec::with_capacity(lines.len() + 16);
    let mut rest = &lines[..];
    while let Some(p) = rest.windows(KEY.len()).position(|w| w == KEY) {
        let digits = rest[p + KEY.len()..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let number = std::str::from_utf8(&rest[p + KEY.len()..p + KEY.len() + digits])
            .ok()
            .and_then(|d| d.parse::<i64>().ok());
        out.extend_from_slice(&rest[..p + KEY.len()]);
        match number {
            Some(n) => out.extend_from_slice((n + skew).max(0).to_string().as_bytes()),
            None => out.extend_from_slice(&rest[p + KEY.len()..p + KEY.len() + digits]),
        }
        rest = &rest[p + KEY.len() + digits..];
    }
    out.extend_from_slice(rest);
    out
}

/// Fixes the socket's receive buffer at 64 KiB (no autotuning).
fn small_receive_buffer(s: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 64 * 1024;
    // SAFETY: setsockopt on a socket this function borrows, with a c_int it points to.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
