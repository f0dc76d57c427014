//! A scripted IMAP server that misbehaves on purpose: behaviour no real server shows on
//! demand (responses nested thousands deep, garbage, lines that never end, floods).
//!
//! It serves one mailbox (any login is accepted) with one folder, `INBOX`, holding the
//! [`Mail`]s it was given, well enough for `mailstage-extract`'s whole pass (greeting,
//! CAPABILITY, NOOP, LOGIN, LIST, EXAMINE, `UID FETCH` of metadata and of bodies, LOGOUT);
//! a [`Hostility`] then spoils one step. Plain threads, one per connection, no runtime.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// One message of the served `INBOX`.
#[derive(Clone, Debug)]
pub struct Mail {
    /// Its UID (any `u32`, up to 4294967295).
    pub uid: u32,
    /// Its INTERNALDATE as sent, between the quotes (it may be anything).
    pub date: String,
    /// Its bytes.
    pub body: Vec<u8>,
}

impl Mail {
    /// A small message with a well-formed date.
    pub fn new(uid: u32, body: &[u8]) -> Self {
        Self::dated(uid, "17-Jul-1996 02:44:25 -0700", body)
    }

    /// A message with the INTERNALDATE text `date`.
    pub fn dated(uid: u32, date: &str, body: &[u8]) -> Self {
        Self {
            uid,
            date: date.into(),
            body: body.to_vec(),
        }
    }
}

#[path = "hostile_server/hostility.rs"]
mod hostility;
pub use hostility::{Hostility, OVERSIZED};

/// What the server has seen.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    bytes_sent: AtomicU64,
}

/// A running server; dropping it stops accepting.
pub struct HostileServer {
    port: u16,
    script: Arc<Script>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl HostileServer {
    /// Listens on a free loopback port and serves `mails` with `hostility`.
    pub fn start(mails: Vec<Mail>, hostility: Hostility) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(Script {
            mails,
            hostility,
            examines: AtomicU64::new(0),
            doomed: AtomicU64::new(0),
            hide_last: AtomicBool::new(false),
        });
        let script_handle = script.clone();
        let accept = {
            let (counters, stop) = (counters.clone(), stop.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    counters.connections.fetch_add(1, Ordering::SeqCst);
                    let (script, counters) = (script.clone(), counters.clone());
                    std::thread::spawn(move || {
                        let mut conn = Conn {
                            out: Counted {
                                inner: &client,
                                counters: &counters,
                            },
                            script: &script,
                            selected: String::new(),
                        };
                        // The client hanging up mid-script is the usual end here.
                        let _ = conn.serve(&client);
                    });
                }
            })
        };
        Ok(Self {
            port,
            script: script_handle,
            counters,
            stop,
            accept: Some(accept),
        })
    }

    /// The port to point the extractor at (plain IMAP on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the last mail is hidden (not yet delivered) from now on.
    pub fn hide_last(&self, hidden: bool) {
        self.script.hide_last.store(hidden, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// Bytes sent to clients so far.
    pub fn bytes_sent(&self) -> u64 {
        self.counters.bytes_sent.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

struct Script {
    mails: Vec<Mail>,
    hostility: Hostility,
    /// EXAMINE/SELECT commands answered, over all connections.
    examines: AtomicU64,
    /// EXAMINEs of `Doomed` answered ([`Hostility::DeletedMidPass`]).
    doomed: AtomicU64,
    /// The last mail is not there yet ([`HostileServer::hide_last`]).
    hide_last: AtomicBool,
}

impl Script {
    /// The mails served now.
    fn mails(&self) -> &[Mail] {
        let hidden = usize::from(self.hide_last.load(Ordering::SeqCst));
        &self.mails[..self.mails.len().saturating_sub(hidden)]
    }
}

/// A writer that counts what it sends.
struct Counted<'a> {
    inner: &'a TcpStream,
    counters: &'a Counters,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counters
            .bytes_sent
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Conn<'a> {
    out: Counted<'a>,
    script: &'a Script,
    /// The EXAMINE argument last answered.
    selected: String,
}

/// Longest command line read (the extractor's are short).
const MAX_COMMAND: u64 = 64 << 10;

impl Conn<'_> {
    fn serve(&mut self, client: &TcpStream) -> io::Result<()> {
        match &self.script.hostility {
            Hostility::Silent => return hold_open(client),
            Hostility::Banner(banner) => {
                self.out.write_all(banner)?;
                return hold_open(client);
            }
            _ => {}
        }
        self.send(b"* OK [CAPABILITY IMAP4rev1] hostile server ready\r\n")?;
        let mut reader = BufReader::new(client);
        loop {
            let mut line = Vec::new();
            (&mut reader)
                .take(MAX_COMMAND)
                .read_until(b'\n', &mut line)?;
            if line.is_empty() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line);
            let mut words = text.trim_end().splitn(3, ' ');
            let tag = words.next().unwrap_or_default().to_string();
            let verb = words.next().unwrap_or_default().to_ascii_uppercase();
            let rest = words.next().unwrap_or_default().to_string();
            match verb.as_str() {
                "CAPABILITY" => self.send_lines(&["* CAPABILITY IMAP4rev1", &ok(&tag)])?,
                "NOOP" => self.send_lines(&[&ok(&tag)])?,
                "LOGIN" => {
                    self.send_lines(&[&format!("{tag} OK [CAPABILITY IMAP4rev1] logged in")])?
                }
                "LIST" => self.list(client, &tag)?,
                "EXAMINE" | "SELECT" => self.examine(&tag, &rest)?,
                "UID" => self.uid_command(&tag, &rest)?,
                "LOGOUT" => {
                    self.send_lines(&["* BYE bye", &ok(&tag)])?;
                    return Ok(());
                }
                _ => self.send_lines(&[&format!("{tag} BAD unknown command")])?,
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    fn send_lines(&mut self, lines: &[&str]) -> io::Result<()> {
        let mut data = Vec::new();
        for l in lines {
            data.extend_from_slice(l.as_bytes());
            data.extend_from_slice(b"\r\n");
        }
        self.send(&data)
    }

    fn list(&mut self, client: &TcpStream, tag: &str) -> io::Result<()> {
        match self.script.hostility {
            Hostility::EndlessLine => {
                self.send(b"* LIST (\\HasNoChildren) \"/\" \"")?;
                let chunk = vec![b'x'; 64 << 10];
                loop {
                    self.send(&chunk)?; // until the client hangs up
                }
            }
            Hostility::GarbageAfterList(n) => {
                self.send(b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n")?;
                self.send(&random_bytes(n, 0x9e37_79b9_7f4a_7c15))?;
                hold_open(client)
            }
            Hostility::ListedTwice => self.send_lines(&[
                "* LIST (\\HasNoChildren) \"/\" INBOX",
                "* LIST (\\HasNoChildren) \"/\" INBOX",
                &ok(tag),
            ]),
            Hostility::FolderRefused | Hostility::ListingRefused => {
                let other = match self.script.hostility {
                    Hostility::FolderRefused => "Locked",
                    _ => "Damaged",
                };
                self.send_lines(&[
                    "* LIST (\\HasNoChildren) \"/\" INBOX",
                    &format!("* LIST (\\HasNoChildren) \"/\" {other}"),
                    &ok(tag),
                ])
            }
            Hostility::DeletedMidPass => self.send_lines(&[
                "* LIST (\\HasNoChildren) \"/\" INBOX",
                "* LIST (\\HasNoChildren) \"/\" Doomed",
                "* LIST (\\HasNoChildren) \"/\" Later",
                &ok(tag),
            ]),
            _ => self.send_lines(&["* LIST (\\HasNoChildren) \"/\" INBOX", &ok(tag)]),
        }
    }

    fn examine(&mut self, tag: &str, name: &str) -> io::Result<()> {
        if self.script.hostility == Hostility::FolderRefused && name.contains("Locked") {
            return self.send_lines(&[&format!("{tag} NO [NOPERM] Permission denied")]);
        }
        if self.script.hostility == Hostility::DeletedMidPass
            && name.contains("Doomed")
            && self.script.doomed.fetch_add(1, Ordering::SeqCst) > 0
        {
            return self.send_lines(&[&format!("{tag} NO [NONEXISTENT] Mailbox doesn't exist")]);
        }
        self.selected = name.to_owned();
        let mails = self.script.mails();
        let earlier = self.script.examines.fetch_add(1, Ordering::SeqCst);
        let recreated =
            self.script.hostility == Hostility::RecreatedAfterFirstExamine && earlier > 0;
        let validity = if recreated { 8 } else { 7 };
        let validity = match self.script.hostility {
            Hostility::ZeroUidValidity => 0,
            _ => validity,
        };
        let mut lines = vec!["* FLAGS (\\Seen \\Flagged)".to_string()];
        if self.script.hostility != Hostility::NoExists {
            lines.push(format!("* {} EXISTS", mails.len()));
        }
        let told = self.script.hostility != Hostility::NoUidValidity;
        if told {
            lines.push(format!("* OK [UIDVALIDITY {validity}] UIDs valid"));
        }
        let highest = mails.iter().map(|m| m.uid).max().unwrap_or(0);
        if self.script.hostility == Hostility::StaleUidNext {
            lines.push("* OK [UIDNEXT 1] predicted".into());
        } else if let Some(next) = highest.checked_add(1).filter(|_| told) {
            lines.push(format!("* OK [UIDNEXT {next}] predicted"));
        }
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.send_lines(&lines)?;
        if self.script.hostility == Hostility::ExistsFlood {
            let burst: Vec<u8> = (0..1000)
                .flat_map(|n: u32| format!("* {} EXISTS\r\n", n + 1).into_bytes())
                .collect();
            loop {
                self.send(&burst)?; // until the client hangs up
            }
        }
        self.send_lines(&[&format!("{tag} OK [READ-ONLY] EXAMINE done")])
    }

    /// `UID FETCH <set> <items>`.
    fn uid_command(&mut self, tag: &str, rest: &str) -> io::Result<()> {
        let mut words = rest.splitn(3, ' ');
        let (cmd, set, items) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        let mails = self.script.mails();
        if cmd.eq_ignore_ascii_case("SEARCH") && set.eq_ignore_ascii_case("ALL") {
            let uids: String = mails.iter().map(|m| format!(" {}", m.uid)).collect();
            return self.send_lines(&[&format!("* SEARCH{uids}"), &ok(tag)]);
        }
        if !cmd.eq_ignore_ascii_case("FETCH") {
            return self.send_lines(&[&format!("{tag} BAD only UID FETCH here")]);
        }
        let highest = mails.iter().map(|m| m.uid).max().unwrap_or(0);
        let bodies = items.to_ascii_uppercase().contains("BODY.PEEK[]");
        let hostility = &self.script.hostility;
        let deep = match self.script.hostility {
            Hostility::DeepFetch(depth) => {
                let mut deep = b"BODYSTRUCTURE ".to_vec();
                deep.extend(std::iter::repeat_n(b'(', depth));
                deep.extend_from_slice(b"\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 1 1");
                deep.extend(std::iter::repeat_n(b')', depth));
                deep.push(b' ');
                deep
            }
            _ => Vec::new(),
        };
        if bodies && !deep.is_empty() {
            self.send(&[&b"* 1 FETCH ("[..], &deep, b"FLAGS (\\Seen))\r\n"].concat())?;
        }
        if !bodies && self.script.hostility == Hostility::FetchFlood {
            for uid in 1u32.. {
                let line = format!(
                    "* {uid} FETCH (UID {uid} RFC822.SIZE 9 INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" FLAGS ())\r\n"
                );
                self.send(line.as_bytes())?; // until the client hangs up
            }
        }
        if bodies
            && [
                Hostility::KeepaliveFlood,
                Hostility::FlagsOnlyFlood,
                Hostility::ByteTrickle,
            ]
            .contains(hostility)
        {
            return self.stall(mails);
        }
        if !bodies
            && self.script.hostility == Hostility::ListingRefused
            && self.selected.contains("Damaged")
        {
            return self.send_lines(&[&format!("{tag} NO [SERVERBUG] Internal error")]);
        }
        if let Hostility::UnreadableBody(bad) = self.script.hostility
            && bodies
            && in_set(set, bad, highest)
        {
            return self.send_lines(&[&format!(
                "{tag} NO [SERVERBUG] UID FETCH failed: message {bad} could not be read"
            )]);
        }
        let mut out = Vec::new();
        let expunging = bodies && self.script.hostility == Hostility::ExpungeBetweenBodies;
        for (seq, m) in mails.iter().enumerate() {
            if !in_set(set, m.uid, highest) {
                continue;
            }
            // Renumbered by the EXPUNGE of message 1 sent after its body.
            let (expunge, seq) = match (expunging, seq) {
                (true, 0) => (true, 1),
                (true, n) => (false, n),
                (false, n) => (false, n + 1),
            };
            if bodies && self.script.hostility == Hostility::ExpungeIssued(m.uid) {
                continue;
            }
            let nil = Hostility::NilBody(m.uid);
            if bodies
                && [nil, Hostility::NilBodyAmidUpdates(m.uid)].contains(&self.script.hostility)
            {
                out.extend_from_slice(
                    format!("* {seq} FETCH (UID {} BODY[] NIL)\r\n", m.uid).as_bytes(),
                );
            } else if bodies && self.script.hostility == Hostility::OddBodyAnswers {
                let head = format!(
                    "* {seq} FETCH (FLAGS (\\Seen) BODY[]<0> {{{}}}\r\n",
                    m.body.len()
                );
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(&m.body);
                out.extend_from_slice(format!(" UID {})\r\n", m.uid).as_bytes());
            } else if bodies && self.script.hostility == Hostility::OversizedBody(m.uid) {
                let head = format!("* {seq} FETCH (UID {} BODY[] {{{OVERSIZED}}}\r\n", m.uid);
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(&m.body);
                out.resize(out.len() + OVERSIZED - m.body.len(), b'x');
                out.extend_from_slice(b")\r\n");
            } else if bodies && self.script.hostility == Hostility::EmptyBody(m.uid) {
                out.extend_from_slice(
                    format!("* {seq} FETCH (UID {} BODY[] {{0}}\r\n)\r\n", m.uid).as_bytes(),
                );
            } else if bodies {
                let at = out.len();
                out.extend_from_slice(format!("* {seq} FETCH (UID {} ", m.uid).as_bytes());
                out.extend_from_slice(&deep);
                out.extend_from_slice(format!("BODY[] {{{}}}\r\n", m.body.len()).as_bytes());
                out.extend_from_slice(&m.body);
                if let Hostility::ManyLiterals(n) = self.script.hostility {
                    for _ in 0..n {
                        out.extend_from_slice(
                            format!(" BODY[] {{{}}}\r\n", m.body.len()).as_bytes(),
                        );
                        out.extend_from_slice(&m.body);
                    }
                }
                out.extend_from_slice(b")\r\n");
                if self.script.hostility == Hostility::DuplicateBodies {
                    out.extend_from_within(at..);
                }
                if expunge {
                    out.extend_from_slice(b"* 1 EXPUNGE\r\n");
                }
                if self.script.hostility == Hostility::ByeAfterFirstBody {
                    out.extend_from_slice(b"* BYE shutting down\r\n");
                    self.send(&out)?;
                    return Err(io::Error::other("closed after BYE"));
                }
            } else {
                let mut line = format!(
                    "* {seq} FETCH (UID {} RFC822.SIZE {} INTERNALDATE \"",
                    m.uid,
                    m.body.len()
                )
                .into_bytes();
                line.extend_from_slice(m.date.as_bytes());
                line.extend_from_slice(b"\" FLAGS (\\Seen))\r\n");
                out.extend_from_slice(&line);
                if let Hostility::NilBodyAmidUpdates(_) = self.script.hostility {
                    for (other, o) in mails.iter().enumerate().filter(|(_, o)| o.uid != m.uid) {
                        let update =
                            format!("* {} FETCH (UID {} FLAGS (\\Seen))\r\n", other + 1, o.uid);
                        out.extend_from_slice(update.as_bytes());
                    }
                }
            }
            if self.script.hostility == Hostility::FlagUpdates {
                let update = format!("* {seq} FETCH (UID {} FLAGS (\\Seen \\Flagged))\r\n", m.uid);
                out.extend_from_slice(update.as_bytes());
            }
        }
        let done = match self.script.hostility {
            Hostility::ExpungeIssued(gone) if bodies && in_set(set, gone, highest) => {
                format!("{tag} NO [EXPUNGEISSUED] Some of the requested messages no longer exist")
            }
            _ => format!("{tag} OK UID FETCH done"),
        };
        out.extend_from_slice(format!("{done}\r\n").as_bytes());
        self.send(&out)
    }

    /// Answers a body FETCH without end and without progress, until the client hangs up:
    /// keepalives ([`Hostility::KeepaliveFlood`]) or the first body a byte at a time
    /// ([`Hostility::ByteTrickle`]).
    fn stall(&mut self, mails: &[Mail]) -> io::Result<()> {
        if self.script.hostility == Hostility::ByteTrickle {
            let body = mails.first().map(|m| m.body.clone()).unwrap_or_default();
            self.send(format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\n", body.len()).as_bytes())?;
            for byte in body {
                std::thread::sleep(Duration::from_millis(250));
                self.send(&[byte])?;
            }
            return hold_open(self.out.inner);
        }
        let flags = if self.script.hostility == Hostility::FlagsOnlyFlood {
            "* 1 FETCH (UID 1 FLAGS (\\Seen))"
        } else {
            "* 1 FETCH (FLAGS (\\Seen))"
        };
        let lines = [
            "* OK still here",
            "* 2 EXISTS",
            "* OK [ALERT] the system is busy",
            flags,
        ];
        for line in lines.iter().cycle() {
            std::thread::sleep(Duration::from_millis(100));
            self.send_lines(&[line])?; // until the client hangs up
        }
        Ok(())
    }
}

fn ok(tag: &str) -> String {
    format!("{tag} OK done")
}

/// Keeps a connection open, reading and ignoring, until the client hangs up.
fn hold_open(client: &TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut sink = io::sink();
    io::copy(&mut &*client, &mut sink)?;
    Ok(())
}

/// Whether `uid` is in a UID set such as `1:*`, `3,5:7` (`*` is the highest UID).
fn in_set(set: &str, uid: u32, highest: u32) -> bool {
    let num = |s: &str| {
        if s == "*" {
            Some(highest)
        } else {
            s.parse::<u32>().ok()
        }
    };
    set.split(',').any(|part| {
        let mut ends = part.splitn(2, ':');
        let a = ends.next().and_then(num);
        let b = match ends.next() {
            Some(e) => num(e),
            None => a,
        };
        match (a, b) {
            (Some(a), Some(b)) => (a.min(b)..=a.max(b)).contains(&uid),
            _ => false,
        }
    })
}

/// `n` bytes from a xorshift generator: the same garbage on every run.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets() {
        assert!(in_set("1:*", 5, 9));
        assert!(
            in_set("12:*", 9, 9),
            "n:* holds the highest UID even past it"
        );
        assert!(!in_set("3,5:7", 4, 9));
        assert!(in_set("3,5:7", 6, 9));
        assert!(in_set("4294967295", u32::MAX, u32::MAX));
    }
}
