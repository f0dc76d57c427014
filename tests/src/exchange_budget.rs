//! The Exchange emulator's per-mailbox throttle budget, and its count of the APPENDs a
//! connection has in flight (how deep a client pipelines). The budget: a token bucket of N APPENDs per
//! second (holding at most one second's worth) for each target mailbox, the mailbox told
//! by the login (`LOGIN user*admin`, `AUTHENTICATE PLAIN` with or without an initial
//! response, `AUTHENTICATE XOAUTH2`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// One mailbox's bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every mailbox's bucket, and what they counted.
#[derive(Debug, Default)]
pub struct Budgets {
    buckets: Mutex<HashMap<String, Bucket>>,
    /// APPENDs admitted, by mailbox.
    admitted: Mutex<BTreeMap<String, u64>>,
    /// APPENDs throttled, by mailbox.
    throttled: Mutex<BTreeMap<String, u64>>,
}

impl Budgets {
    /// Takes a token from `mailbox`'s bucket (refilled at `per_second`, holding at most
    /// `per_second` tokens, full at first); when it is empty, the refill interval of one
    /// token (what the throttle answer suggests: at most one APPEND per that long).
    pub fn take(&self, mailbox: &str, per_second: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap();
        let b = buckets.entry(mailbox.to_owned()).or_insert(Bucket {
            tokens: per_second,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * per_second;
        b.tokens = (b.tokens + refill).min(per_second);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            *self
                .admitted
                .lock()
                .unwrap()
                .entry(mailbox.into())
                .or_default() += 1;
            Ok(())
        } else {
            *self
                .throttled
                .lock()
                .unwrap()
                .entry(mailbox.into())
                .or_default() += 1;
            Err(Duration::from_secs_f64(1.0 / per_second))
        }
    }

    /// APPENDs admitted, by mailbox.
    pub fn admitted(&self) -> BTreeMap<String, u64> {
        self.admitted.lock().unwrap().clone()
    }

    /// APPENDs throttled, by mailbox.
    pub fn throttled(&self) -> BTreeMap<String, u64> {
        self.throttled.lock().unwrap().clone()
    }
}

/// Follows a connection's login to learn which mailbox it works on.
#[derive(Default)]
pub struct LoginWatch {
    /// The mailbox, once known.
    pub mailbox: Option<String>,
    /// An AUTHENTICATE whose response comes on the next client line (its mechanism).
    awaiting: Option<String>,
}

impl LoginWatch {
    /// Looks at a client line (a command, or the response to an AUTHENTICATE's `+`).
    pub fn see(&mut self, line: &str) {
        let line = line.trim_end();
        if let Some(mech) = self.awaiting.take() {
            self.learn(&mech, line);
            return;
        }
        let words: Vec<&str> = line.split(' ').collect();
        match words.get(1).map(|w| w.to_ascii_uppercase()).as_deref() {
            Some("LOGIN") => {
                let user = words.get(2).unwrap_or(&"").trim_matches('"');
                self.mailbox = Some(without_admin(user).to_owned());
            }
            Some("AUTHENTICATE") => {
                let mech = words.get(2).unwrap_or(&"").to_ascii_uppercase();
                match words.get(3) {
                    Some(initial) => self.learn(&mech, initial),
                    None => self.awaiting = Some(mech),
                }
            }
            _ => {}
        }
    }

    /// Reads the mailbox from a SASL response.
    fn learn(&mut self, mech: &str, response: &str) {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(response) else {
            return;
        };
        let text = String::from_utf8_lossy(&bytes);
        let user = match mech {
            "PLAIN" => {
                let mut parts = text.split('\0');
                let (authz, authc) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                if authz.is_empty() { authc } else { authz }.to_owned()
            }
            "XOAUTH2" => text
                .split('\u{1}')
                .find_map(|p| p.strip_prefix("user="))
                .unwrap_or("")
                .to_owned(),
            _ => return,
        };
        self.mailbox = Some(without_admin(&user).to_owned());
    }
}

/// One connection's APPENDs passed on to the server and not answered yet.
#[derive(Debug, Default)]
pub struct InFlight {
    tags: Mutex<HashSet<String>>,
    /// The server's last line so far, when a read ended inside it.
    partial: Mutex<Vec<u8>>,
}

impl InFlight {
    /// An APPEND with this tag went to the server; returns how many are unanswered now.
    pub fn sent(&self, tag: &str) -> usize {
        let mut tags = self.tags.lock().unwrap();
        tags.insert(tag.to_owned());
        tags.len()
    }

    /// True when every APPEND passed on was answered.
    pub fn is_empty(&self) -> bool {
        self.tags.lock().unwrap().is_empty()
    }

    /// Reads the server's bytes for the tagged answers of APPENDs in flight.
    pub fn scan_server(&self, bytes: &[u8]) {
        let mut partial = self.partial.lock().unwrap();
        partial.extend_from_slice(bytes);
        let Some(end) = partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = partial.drain(..=end).collect();
        let mut tags = self.tags.lock().unwrap();
        for line in complete.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            if let Some((tag, _)) = line.split_once(' ') {
                tags.remove(tag);
            }
        }
    }
}

/// `user*admin` → `user`.
fn without_admin(user: &str) -> &str {
    user.split_once('*').map_or(user, |(u, _)| u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mailbox_is_read_from_each_login_form() {
        let mut w = LoginWatch::default();
        w.see("A1 LOGIN \"alice@x.test*admin\" \"pw\"\r\n");
        assert_eq!(w.mailbox.as_deref(), Some("alice@x.test"));
        let plain = base64::engine::general_purpose::STANDARD.encode("bob@x.test\0admin\0pw");
        let mut w = LoginWatch::default();
        w.see("A1 AUTHENTICATE PLAIN\r\n");
        w.see(&format!("{plain}\r\n"));
        assert_eq!(w.mailbox.as_deref(), Some("bob@x.test"));
        let oauth = base64::engine::general_purpose::STANDARD
            .encode("user=carol@x.test\u{1}auth=Bearer t\u{1}\u{1}");
        let mut w = LoginWatch::default();
        w.see(&format!("A1 AUTHENTICATE XOAUTH2 {oauth}\r\n"));
        assert_eq!(w.mailbox.as_deref(), Some("carol@x.test"));
    }

    #[test]
    fn appends_leave_the_count_when_their_tagged_answer_passes() {
        let f = InFlight::default();
        assert_eq!(f.sent("A1"), 1);
        assert_eq!(f.sent("A2"), 2);
        // A1's answer is not whole yet.
        f.scan_server(b"* 3 EXISTS\r\nA1 OK [APPENDUID 1 3] do");
        assert_eq!(f.sent("A3"), 3);
        f.scan_server(b"ne\r\nA2 OK done\r\n");
        assert_eq!(f.sent("A4"), 2, "A3 and A4");
    }

    #[test]
    fn a_bucket_holds_a_second_and_refills_at_the_rate() {
        let b = Budgets::default();
        for _ in 0..25 {
            b.take("a", 25.0).unwrap();
        }
        let wait = b.take("a", 25.0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(40));
        assert!(b.take("b", 25.0).is_ok(), "each mailbox has its own");
        std::thread::sleep(Duration::from_millis(45));
        assert!(b.take("a", 25.0).is_ok());
        assert_eq!(b.throttled()["a"], 1);
    }
}
