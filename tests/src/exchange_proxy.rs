//! A scripted proxy in front of a harness Dovecot that behaves as Exchange Online's IMAP
//! does where it matters to an upload (README, *Throttling* and *Uploading a batch*):
//! - every Nth APPEND is answered `BAD Request is throttled. Suggested Backoff Time: M
//!   milliseconds` and the link is dropped;
//! - an APPEND larger than a limit gets `NO Maximum size of appendable message has been
//!   exceeded.`;
//! - `\Flagged` in an APPEND's flags is silently dropped (only a later STORE sets it);
//! - `CREATE` of a reserved name (`Files`) is refused.
//!
//! It understands just enough IMAP: client lines and the literals they announce.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does.
#[derive(Clone, Debug, Default)]
pub struct ExchangeRules {
    /// Throttle every Nth APPEND (counted over all connections).
    pub throttle_every: Option<u64>,
    /// The backoff the throttle response suggests.
    pub backoff: Duration,
    /// APPENDs above this many bytes are refused.
    pub max_append: Option<u64>,
    /// Drop `\Flagged` from APPEND flags.
    pub drop_flagged: bool,
    /// Folder names CREATE refuses (case-insensitive).
    pub reserved: Vec<String>,
}

/// What the proxy saw.
#[derive(Debug, Default)]
pub struct ExchangeStats {
    /// APPENDs received (including refused and throttled ones).
    pub appends: AtomicU64,
    /// APPENDs answered with the throttle response.
    pub throttled: AtomicU64,
    /// APPENDs refused as too large.
    pub oversize: AtomicU64,
    /// CREATEs refused for a reserved name.
    pub reserved_refused: AtomicU64,
    /// `\Flagged` flags dropped.
    pub flagged_dropped: AtomicU64,
    /// For each throttle: how long until the client connected again.
    pub pauses: Mutex<Vec<Duration>>,
    throttled_at: Mutex<Option<Instant>>,
}

/// A running proxy; stops when dropped.
pub struct ExchangeProxy {
    port: u16,
    stats: Arc<ExchangeStats>,
    _runtime: tokio::runtime::Runtime,
}

impl ExchangeProxy {
    /// Starts a proxy to `127.0.0.1:upstream` on a free loopback port.
    pub fn start(upstream: u16, rules: ExchangeRules) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let stats = Arc::new(ExchangeStats::default());
        let (st, rules) = (stats.clone(), Arc::new(rules));
        let server: SocketAddr = ([127, 0, 0, 1], upstream).into();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if let Some(at) = st.throttled_at.lock().unwrap().take() {
                    st.pauses.lock().unwrap().push(at.elapsed());
                }
                let (st, rules) = (st.clone(), rules.clone());
                tokio::spawn(async move {
                    let _ = relay(client, server, &rules, &st).await;
                });
            }
        });
        Ok(Self {
            port,
            stats,
            _runtime: runtime,
        })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What it saw.
    pub fn stats(&self) -> &ExchangeStats {
        &self.stats
    }
}

/// The literal a line announces at its end (`{N}` or `{N+}`), and whether it is
/// non-synchronizing.
fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let text = std::str::from_utf8(line)
        .ok()?
        .trim_end_matches(['\r', '\n']);
    let inner = text.strip_suffix('}')?;
    let (_, n) = inner.rsplit_once('{')?;
    let plus = n.ends_with('+');
    Some((n.trim_end_matches('+').parse().ok()?, plus))
}

async fn relay(
    client: TcpStream,
    server: SocketAddr,
    rules: &ExchangeRules,
    stats: &ExchangeStats,
) -> Result<()> {
    let upstream = TcpStream::connect(server).await?;
    let (up_read, mut up_write) = upstream.into_split();
    let (client_read, client_write) = client.into_split();
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let down = {
        let client_write = client_write.clone();
        tokio::spawn(async move {
            let mut up_read = up_read;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match up_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if client_write
                    .lock()
                    .await
                    .write_all(&buf[..n])
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
    };
    let mut reader = BufReader::new(client_read);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line).to_string();
        let mut words = text.split_whitespace();
        let (tag, verb) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let verb = verb.to_ascii_uppercase();
        if verb == "CREATE" {
            let rest = text.splitn(3, ' ').nth(2).unwrap_or("").trim_end();
            let name = match rest.strip_prefix('"') {
                Some(quoted) => quoted.split('"').next().unwrap_or(""),
                None => rest,
            };
            if rules.reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                stats.reserved_refused.fetch_add(1, Ordering::Relaxed);
                let reply = format!("{tag} NO Folder name {name} is reserved.\r\n");
                client_write
                    .lock()
                    .await
                    .write_all(reply.as_bytes())
                    .await?;
                continue;
            }
        }
        let literal = literal_at_end(&line);
        if verb == "APPEND"
            && let Some((len, plus)) = literal
        {
            let n = stats.appends.fetch_add(1, Ordering::Relaxed) + 1;
            let throttle = rules
                .throttle_every
                .is_some_and(|every| n.is_multiple_of(every));
            let too_big = rules.max_append.is_some_and(|max| len > max);
            if throttle || too_big {
                if !plus {
                    client_write.lock().await.write_all(b"+ Ready\r\n").await?;
                }
                swallow(&mut reader, len).await?;
                let mut rest = Vec::new();
                reader.read_until(b'\n', &mut rest).await?;
                let mut w = client_write.lock().await;
                if throttle {
                    stats.throttled.fetch_add(1, Ordering::Relaxed);
                    let reply = format!(
                        "{tag} BAD Request is throttled. Suggested Backoff Time: {} milliseconds\r\n",
                        rules.backoff.as_millis()
                    );
                    w.write_all(reply.as_bytes()).await?;
                    *stats.throttled_at.lock().unwrap() = Some(Instant::now());
                    return drop_link(&mut w, up_write, down).await;
                }
                stats.oversize.fetch_add(1, Ordering::Relaxed);
                let reply =
                    format!("{tag} NO Maximum size of appendable message has been exceeded.\r\n");
                w.write_all(reply.as_bytes()).await?;
                continue;
            }
            if rules.drop_flagged && text.contains("\\Flagged") {
                stats.flagged_dropped.fetch_add(1, Ordering::Relaxed);
                let cleaned = text
                    .replacen("\\Flagged", "", 1)
                    .replace("( ", "(")
                    .replace(" )", ")");
                line = cleaned.into_bytes();
            }
        }
        up_write.write_all(&line).await?;
        if let Some((len, _)) = literal {
            forward(&mut reader, &mut up_write, len).await?;
        }
    }
    down.abort();
    Ok(())
}

/// Reads and discards `len` bytes from the client.
async fn swallow<R: tokio::io::AsyncRead + Unpin>(reader: &mut R, len: u64) -> Result<()> {
    tokio::io::copy(&mut reader.take(len), &mut tokio::io::sink()).await?;
    Ok(())
}

/// Copies `len` bytes from the client to the server.
async fn forward<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    up: &mut tokio::net::tcp::OwnedWriteHalf,
    len: u64,
) -> Result<()> {
    let copied = tokio::io::copy(&mut reader.take(len), up).await?;
    anyhow::ensure!(
        copied == len,
        "client sent {copied} of a {len}-byte literal"
    );
    Ok(())
}

/// Drops both sides of the link, as Exchange does after a throttle response.
async fn drop_link(
    client: &mut OwnedWriteHalf,
    mut up: OwnedWriteHalf,
    down: tokio::task::JoinHandle<()>,
) -> Result<()> {
    down.abort();
    let _ = client.shutdown().await;
    let _ = up.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_found_at_the_end_of_a_line() {
        assert_eq!(
            literal_at_end(b"a APPEND INBOX {12}\r\n"),
            Some((12, false))
        );
        assert_eq!(
            literal_at_end(b"a APPEND INBOX () {7+}\r\n"),
            Some((7, true))
        );
        assert_eq!(literal_at_end(b"a NOOP\r\n"), None);
    }
}
