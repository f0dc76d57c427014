//! A scripted proxy in front of a harness Dovecot that behaves as Exchange Online's IMAP
//! does where it matters to an upload (README, *Throttling* and *Uploading a batch*):
//! - with a budget, each target mailbox (told by its login) may APPEND N messages per
//!   second (a token bucket holding one second's worth, [`crate::exchange_budget`]); an
//!   APPEND over it gets the throttle answer below, suggesting the refill interval of one token (1000/N ms);
//! - a throttle answer comes after the answers to the APPENDs passed on before it (Exchange
//!   works in order);
//! - every Nth APPEND (or every Nth of each command kind it is told to throttle: SELECT,
//!   STORE, SEARCH, FETCH, LIST, CREATE …, as Exchange throttles any command) is answered
//!   `BAD Request is throttled. Suggested Backoff Time: M milliseconds` (or other words
//!   given, such as a garbled backoff), then
//!   `* BYE Connection closed. 14`, and the link is dropped;
//! - after [`MAX_ERRORS`] NO or BAD answers of its own on one connection it says `* BYE` and
//!   drops the link, as Exchange does after ten errors;
//! - an APPEND larger than a limit gets `BAD Command Argument Error. 11`;
//! - every Nth APPEND, or every APPEND of one size, may get `NO Server Unavailable. 15` (a
//!   refusal for now, no code);
//! - with `fold_case`, folder names compare without regard to case, as on Microsoft 365
//!   ([`KnownFolders`]): a CREATE of a case variant of a folder gets `NO Mailbox already
//!   exists.`, other commands naming one reach the server with the known spelling;
//! - `\Flagged` in an APPEND's flags is silently dropped (only a later STORE sets it);
//! - with `refuse_nonsync_literals`, an APPEND whose literal is non-synchronising (`{N+}`,
//!   though the server announces LITERAL+) is read and answered `BAD Command Error. 10`,
//!   as a target that announces LITERAL+ or LITERAL- and does not take them (with
//!   `refuse_nonsync_everywhere`, in any command);
//! - with `folder_cap`, a folder takes N APPENDs and the ones after get `NO [LIMIT]`, as a
//!   folder at its item limit (Exchange Online: 1,000,000 items);
//! - with `bye_after_appends`, each connection passes on N APPENDs, then (their answers
//!   out) says `* BYE Connection closed. 14` and drops the link, as Exchange does after its
//!   own per-session limits;
//! - `[APPENDUID …]` may be taken out of the answers (a target without UIDPLUS);
//! - `CREATE` of a reserved name (`Files`) is refused;
//! - a folder may be deleted on the server just before the first APPEND into it, as a
//!   user deleting it mid-run (the APPEND meets a real `NO [TRYCREATE]`).
//!
//! It understands just enough IMAP: client lines and the literals they announce.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

use crate::exchange_budget::{Budgets, InFlight, LoginWatch};
use crate::exchange_names::ALREADY_EXISTS;
pub use crate::exchange_names::KnownFolders;

/// NO or BAD answers (of the proxy's own) after which a connection is dropped.
pub const MAX_ERRORS: u32 = 10;

/// The line Exchange ends a throttled connection with.
const BYE: &[u8] = b"* BYE Connection closed. 14\r\n";

/// What the proxy does.
#[derive(Clone, Debug, Default)]
pub struct ExchangeRules {
    /// Throttle every Nth command of each kind in `throttle_commands` (counted per kind
    /// over all connections).
    pub throttle_every: Option<u64>,
    /// The command kinds throttled (`APPEND`, `SELECT`, `STORE`, `SEARCH`, `FETCH`, `LIST`,
    /// `CREATE` …; `UID STORE` is `STORE`); empty means `APPEND` only.
    pub throttle_commands: Vec<String>,
    /// The backoff the throttle response suggests.
    pub backoff: Duration,
    /// The throttle answer's words after the tag, instead of `BAD Request is throttled.
    /// Suggested Backoff Time: M milliseconds` (a garbled or missing backoff, a code).
    pub throttle_reply: Option<String>,
    /// Throttle by an untagged `* BYE Request is throttled. Suggested Backoff Time: M
    /// milliseconds` alone, the command left unanswered.
    pub throttle_by_bye: bool,
    /// Take `[APPENDUID …]` out of the server's answers, as a target without UIDPLUS.
    pub strip_appenduid: bool,
    /// APPENDs above this many bytes are refused.
    pub max_append: Option<u64>,
    /// Drop `\Flagged` from APPEND flags.
    pub drop_flagged: bool,
    /// Folder names CREATE refuses (case-insensitive).
    pub reserved: Vec<String>,
    /// Folder names compare without regard to case (Microsoft 365).
    pub fold_case: bool,
    /// APPENDs per second each target mailbox may make.
    pub budget_per_second: Option<f64>,
    /// Answer every Nth APPEND (counted over all connections) `NO Server Unavailable. 15`,
    /// Exchange's "not now" without a code, and keep the link.
    pub unavailable_every: Option<u64>,
    /// Answer every APPEND of exactly this many bytes `NO Server Unavailable. 15`, as
    /// Exchange answers an item it cannot convert, again and again.
    pub unavailable_size: Option<u64>,
    /// Delete this folder on the server just before the first APPEND into it is passed on
    /// (as a user deleting it in Outlook mid-run): that APPEND meets a real `NO [TRYCREATE]`.
    pub vanish_folder: Option<String>,
    /// Answer every APPEND whose literal does not wait for `+` `BAD Command Error. 10`.
    pub refuse_nonsync_literals: bool,
    /// The same for every command (a target that does not take them at all).
    pub refuse_nonsync_everywhere: bool,
    /// This folder takes this many APPENDs; the ones after are answered
    /// `NO [LIMIT] Too many items in this folder.`
    pub folder_cap: Option<(String, u64)>,
    /// Each connection passes on this many APPENDs, then says `* BYE` and drops the link.
    pub bye_after_appends: Option<u64>,
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
    /// CREATEs of a case variant of a known folder (answered "already exists").
    pub case_variants_refused: AtomicU64,
    /// Commands whose folder name was respelled as the known folder's.
    pub respelled: AtomicU64,
    /// The target's folders, learned from LIST answers and CREATEs (with `fold_case`).
    pub folders: KnownFolders,
    /// `\Flagged` flags dropped.
    pub flagged_dropped: AtomicU64,
    /// Commands throttled, by kind.
    pub throttled_by: Mutex<BTreeMap<String, u64>>,
    /// APPENDs answered `NO Server Unavailable. 15`.
    pub unavailable: AtomicU64,
    /// Connections dropped after [`MAX_ERRORS`] errors.
    pub dropped_after_errors: AtomicU64,
    /// Commands seen, by kind.
    seen_by: Mutex<BTreeMap<String, u64>>,
    /// For each throttle: how long until the client connected again.
    pub pauses: Mutex<Vec<Duration>>,
    throttled_at: Mutex<Option<Instant>>,
    /// The per-mailbox budgets and what they admitted and throttled.
    pub budgets: Budgets,
    /// Folders deleted by [`ExchangeRules::vanish_folder`] (0 or 1).
    pub vanished: AtomicU64,
    /// The most APPENDs one connection had passed on to the server unanswered at once.
    pub most_appends_in_flight: AtomicU64,
    /// APPENDs refused for their non-synchronising literal.
    pub nonsync_refused: AtomicU64,
    /// APPENDs into [`ExchangeRules::folder_cap`]'s folder, and those answered `[LIMIT]`.
    pub capped: AtomicU64,
    /// APPENDs answered `NO [LIMIT]`.
    pub limited: AtomicU64,
    /// Connections dropped by [`ExchangeRules::bye_after_appends`].
    pub byes_after_appends: AtomicU64,
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
                    let _ = relay(client, server, rules, st).await;
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

impl ExchangeRules {
    /// True when commands of this kind are throttled.
    fn throttles(&self, kind: &str) -> bool {
        self.throttle_every.is_some()
            && if self.throttle_commands.is_empty() {
                kind == "APPEND"
            } else {
                self.throttle_commands
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(kind))
            }
    }
}

impl ExchangeStats {
    /// Commands throttled so far, by kind.
    pub fn throttled_kinds(&self) -> BTreeMap<String, u64> {
        self.throttled_by.lock().unwrap().clone()
    }

    /// Counts one more command of `kind`; true when it is the one to throttle.
    fn count(&self, kind: &str, rules: &ExchangeRules) -> bool {
        let mut seen = self.seen_by.lock().unwrap();
        let n = seen.entry(kind.to_owned()).or_default();
        *n += 1;
        rules.throttles(kind) && rules.throttle_every.is_some_and(|e| n.is_multiple_of(e))
    }
}

/// A command line's tag and kind: its verb upper-cased, `UID STORE` as `STORE`.
fn command_kind(text: &str) -> (&str, String) {
    let mut words = text.split_whitespace();
    let tag = words.next().unwrap_or("");
    let mut verb = words.next().unwrap_or("").to_ascii_uppercase();
    if verb == "UID" {
        verb = words.next().unwrap_or("").to_ascii_uppercase();
    }
    (tag, verb)
}

/// The folder name a command line names first (quoted or an atom), e.g. CREATE's.
fn created_name(text: &str) -> &str {
    let rest = text.splitn(3, ' ').nth(2).unwrap_or("").trim_end();
    match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or(""),
        None => rest.split(' ').next().unwrap_or(""),
    }
}

/// The answer the proxy gives itself instead of the server's, if any (without the tag).
fn own_answer(
    rules: &ExchangeRules,
    stats: &ExchangeStats,
    kind: &str,
    text: &str,
    literal: Option<(u64, bool)>,
) -> Option<String> {
    if kind == "CREATE" && rules.fold_case && stats.folders.is_case_variant(created_name(text)) {
        stats.case_variants_refused.fetch_add(1, Ordering::Relaxed);
        return Some(ALREADY_EXISTS.into());
    }
    if kind == "CREATE" {
        let name = created_name(text);
        if rules.reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            stats.reserved_refused.fetch_add(1, Ordering::Relaxed);
            return Some(format!("NO Folder name {name} is reserved."));
        }
    }
    if kind == "APPEND"
        && let Some((folder, cap)) = &rules.folder_cap
        && created_name(text).eq_ignore_ascii_case(folder)
        && stats.capped.fetch_add(1, Ordering::Relaxed) >= *cap
    {
        stats.limited.fetch_add(1, Ordering::Relaxed);
        return Some("NO [LIMIT] Too many items in this folder.".into());
    }
    if (kind == "APPEND" && rules.refuse_nonsync_literals || rules.refuse_nonsync_everywhere)
        && literal.is_some_and(|(_, plus)| plus)
    {
        stats.nonsync_refused.fetch_add(1, Ordering::Relaxed);
        return Some("BAD Command Error. 10".into());
    }
    if kind == "APPEND"
        && let Some((len, _)) = literal
        && (rules
            .unavailable_every
            .is_some_and(|e| stats.appends.load(Ordering::Relaxed).is_multiple_of(e))
            || rules.unavailable_size == Some(len))
    {
        stats.unavailable.fetch_add(1, Ordering::Relaxed);
        return Some("NO Server Unavailable. 15".into());
    }
    if kind == "APPEND"
        && let Some((len, _)) = literal
        && rules.max_append.is_some_and(|max| len > max)
    {
        stats.oversize.fetch_add(1, Ordering::Relaxed);
        return Some("BAD Command Argument Error. 11".into());
    }
    None
}

/// Commands whose first argument is a folder name.
const NAMING: [&str; 6] = ["CREATE", "SELECT", "EXAMINE", "APPEND", "STATUS", "DELETE"];

async fn relay(
    client: TcpStream,
    server: SocketAddr,
    rules: Arc<ExchangeRules>,
    st: Arc<ExchangeStats>,
) -> Result<()> {
    let (rules, stats) = (&*rules, &*st);
    let upstream = TcpStream::connect(server).await?;
    let (up_read, mut up_write) = upstream.into_split();
    let (client_read, client_write) = client.into_split();
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let in_flight = Arc::new(InFlight::default());
    let down = {
        let client_write = client_write.clone();
        let learn = rules.fold_case.then(|| st.clone());
        let strip = rules.strip_appenduid;
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            let mut up_read = up_read;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match up_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Some(st) = &learn {
                    st.folders.scan_server(&buf[..n]);
                }
                let out = if strip {
                    without_appenduid(&buf[..n])
                } else {
                    buf[..n].to_vec()
                };
                if client_write.lock().await.write_all(&out).await.is_err() {
                    break;
                }
                // (After the client has them: a throttle answer waits for these.)
                in_flight.scan_server(&buf[..n]);
            }
        })
    };
    let mut reader = BufReader::new(client_read);
    let mut line = Vec::new();
    let mut errors = 0;
    let mut passed_on = 0;
    let mut login = LoginWatch::default();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line).to_string();
        login.see(&text);
        let (tag, kind) = command_kind(&text);
        let literal = literal_at_end(&line);
        if kind == "APPEND" && literal.is_some() {
            stats.appends.fetch_add(1, Ordering::Relaxed);
        }
        let mut backoff = stats.count(&kind, rules).then_some(rules.backoff);
        if let Some(rate) = rules.budget_per_second
            && kind == "APPEND"
            && backoff.is_none()
        {
            let mailbox = login.mailbox.as_deref().unwrap_or_default();
            backoff = stats.budgets.take(mailbox, rate).err();
        }
        if let Some(backoff) = backoff {
            consume_command(&mut reader, &line, &client_write).await?;
            // Exchange works in order: the commands before this one are answered first.
            for _ in 0..500 {
                if in_flight.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stats.throttled.fetch_add(1, Ordering::Relaxed);
            *stats.throttled_by.lock().unwrap().entry(kind).or_default() += 1;
            let reply = match &rules.throttle_reply {
                Some(words) => format!("{tag} {words}\r\n"),
                None => format!(
                    "{tag} BAD Request is throttled. Suggested Backoff Time: {} milliseconds\r\n",
                    backoff.as_millis().max(1)
                ),
            };
            let mut w = client_write.lock().await;
            if rules.throttle_by_bye {
                let words = reply.split_once(" BAD ").map_or("", |(_, w)| w);
                w.write_all(format!("* BYE {words}").as_bytes()).await?;
            } else {
                w.write_all(reply.as_bytes()).await?;
                w.write_all(BYE).await?;
            }
            *stats.throttled_at.lock().unwrap() = Some(Instant::now());
            return drop_link(&mut w, up_write, down).await;
        }
        if kind == "APPEND" && rules.bye_after_appends.is_some_and(|n| passed_on >= n) {
            for _ in 0..500 {
                if in_flight.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            stats.byes_after_appends.fetch_add(1, Ordering::Relaxed);
            let mut w = client_write.lock().await;
            w.write_all(BYE).await?;
            return drop_link(&mut w, up_write, down).await;
        }
        if let Some(answer) = own_answer(rules, stats, &kind, &text, literal) {
            consume_command(&mut reader, &line, &client_write).await?;
            let mut w = client_write.lock().await;
            w.write_all(format!("{tag} {answer}\r\n").as_bytes())
                .await?;
            errors += 1;
            if errors >= MAX_ERRORS {
                w.write_all(BYE).await?;
                stats.dropped_after_errors.fetch_add(1, Ordering::Relaxed);
                return drop_link(&mut w, up_write, down).await;
            }
            continue;
        }
        if rules.fold_case && NAMING.contains(&kind.as_str()) {
            let name = created_name(&text);
            let known = stats.folders.canonical(name);
            if !name.is_empty() && known != name {
                stats.respelled.fetch_add(1, Ordering::Relaxed);
                line = text.replacen(name, &known, 1).into_bytes();
            }
            if kind == "CREATE" {
                stats.folders.learn(&known);
            }
        }
        let text = String::from_utf8_lossy(&line).to_string();
        if kind == "APPEND" && rules.drop_flagged && text.contains("\\Flagged") {
            stats.flagged_dropped.fetch_add(1, Ordering::Relaxed);
            let cleaned = text
                .replacen("\\Flagged", "", 1)
                .replace("( ", "(")
                .replace(" )", ")");
            line = cleaned.into_bytes();
        }
        if kind == "APPEND" {
            passed_on += 1;
            let n = in_flight.sent(tag) as u64;
            stats.most_appends_in_flight.fetch_max(n, Ordering::Relaxed);
        }
        if kind == "APPEND"
            && let Some(folder) = &rules.vanish_folder
            && created_name(&text).eq_ignore_ascii_case(folder)
            && stats
                .vanished
                .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // Its tagged OK reaches the client as an answer to no command of its own.
            let delete = format!("vanish1 DELETE \"{folder}\"\r\n");
            up_write.write_all(delete.as_bytes()).await?;
        }
        up_write.write_all(&line).await?;
        if let Some((len, _)) = literal {
            forward(&mut reader, &mut up_write, len).await?;
        }
    }
    down.abort();
    Ok(())
}

/// `bytes` with every `[APPENDUID …] ` response code taken out.
fn without_appenduid(bytes: &[u8]) -> Vec<u8> {
    const CODE: &[u8] = b"[APPENDUID ";
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.windows(CODE.len()).position(|w| w == CODE) {
        out.extend_from_slice(&rest[..at]);
        let after = &rest[at..];
        let end = after
            .iter()
            .position(|&b| b == b']')
            .map_or(after.len(), |e| e + 1);
        rest = &after[end..];
        rest = rest.strip_prefix(b" ").unwrap_or(rest);
    }
    out.extend_from_slice(rest);
    out
}

/// Reads the rest of a command the proxy answers itself: each literal it announces (asking
/// for a synchronizing one first) and the line after it.
async fn consume_command<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    first: &[u8],
    client: &tokio::sync::Mutex<OwnedWriteHalf>,
) -> Result<()> {
    let mut literal = literal_at_end(first);
    while let Some((len, plus)) = literal {
        if !plus {
            client.lock().await.write_all(b"+ Ready\r\n").await?;
        }
        swallow(reader, len).await?;
        let mut rest = Vec::new();
        reader.read_until(b'\n', &mut rest).await?;
        literal = literal_at_end(&rest);
    }
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

    #[test]
    fn appenduid_codes_are_taken_out() {
        assert_eq!(
            without_appenduid(b"A1 OK [APPENDUID 7 41] Append completed.\r\nA2 OK done\r\n"),
            b"A1 OK Append completed.\r\nA2 OK done\r\n"
        );
    }
}
