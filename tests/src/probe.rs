//! A small blocking IMAP client: the test suite's independent oracle (plain TCP only).
//!
//! Responses are framed by length: a line ending in `{N}` (or `~{N}`) is followed by exactly
//! N literal bytes, which are kept aside byte-exact, and the response continues after them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;

/// Read/write timeout on the probe's socket.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One untagged (`*`) response: its text with literals left as `{N}`, and the literals.
#[derive(Clone, Debug, Default)]
pub struct Untagged {
    /// The response without the leading `* ` and the final CRLF, literals shown as `{N}`.
    pub text: String,
    /// The literal payloads in order, byte-exact.
    pub literals: Vec<Vec<u8>>,
}

/// The outcome of one tagged command.
#[derive(Clone, Debug)]
pub struct Response {
    /// `OK`, `NO` or `BAD`.
    pub status: String,
    /// The rest of the tagged line (response code and text).
    pub text: String,
    /// Untagged responses received while the command ran.
    pub untagged: Vec<Untagged>,
}

impl Response {
    /// Whether the tagged status is `OK`.
    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }

    /// `self` when OK, an error naming the status and text otherwise.
    pub fn ok(self) -> Result<Self> {
        ensure!(self.is_ok(), "IMAP {} {}", self.status, self.text);
        Ok(self)
    }
}

/// One `LIST` entry as sent on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Attributes, e.g. `\Noselect`, `\HasChildren`, `\Sent`.
    pub flags: Vec<String>,
    /// Hierarchy delimiter (`None` for NIL).
    pub delimiter: Option<String>,
    /// The name exactly as the server sent it (modified UTF-7, unquoted).
    pub name: String,
}

/// A blocking IMAP connection.
pub struct Probe {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    greeting: String,
    next_tag: u32,
}

impl Probe {
    /// Connects to 127.0.0.1:`port` and reads the greeting.
    pub fn connect(port: u16) -> Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).context("connect")?;
        Self::from_stream(stream)
    }

    /// Wraps a connected stream and reads the greeting.
    pub fn from_stream(stream: TcpStream) -> Result<Self> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let writer = stream.try_clone()?;
        let mut probe = Self {
            reader: BufReader::new(stream),
            writer,
            greeting: String::new(),
            next_tag: 1,
        };
        probe.greeting = String::from_utf8_lossy(&probe.read_line()?)
            .trim_end()
            .to_string();
        ensure!(
            probe.greeting.starts_with("* "),
            "bad greeting {:?}",
            probe.greeting
        );
        Ok(probe)
    }

    /// The greeting line (without CRLF).
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Reads one CRLF-terminated line (the CRLF included).
    fn read_line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        ensure!(
            line.ends_with(b"\n"),
            "connection closed after {:?}",
            String::from_utf8_lossy(&line)
        );
        Ok(line)
    }

    /// Reads one whole response (a line plus any literals and continuation lines).
    fn read_response(&mut self) -> Result<Untagged> {
        let mut out = Untagged::default();
        loop {
            let line = self.read_line()?;
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let len = literal_len(&text);
            out.text.push_str(&text);
            let Some(n) = len else { return Ok(out) };
            let mut literal = vec![0; n];
            self.reader.read_exact(&mut literal)?;
            out.literals.push(literal);
        }
    }

    fn new_tag(&mut self) -> String {
        self.next_tag += 1;
        format!("p{}", self.next_tag - 1)
    }

    /// Reads responses up to the tagged one for `tag`.
    fn finish(&mut self, tag: &str) -> Result<Response> {
        let mut untagged = Vec::new();
        loop {
            let r = self.read_response()?;
            if let Some(rest) = r.text.strip_prefix(&format!("{tag} ")) {
                let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
                return Ok(Response {
                    status: status.into(),
                    text: text.into(),
                    untagged,
                });
            }
            match r.text.strip_prefix("* ") {
                Some(t) => untagged.push(Untagged {
                    text: t.into(),
                    literals: r.literals,
                }),
                None => bail!("unexpected line {:?} while waiting for {tag}", r.text),
            }
        }
    }

    /// Sends `TAG command` (no literals) and collects the responses.
    pub fn command(&mut self, command: &str) -> Result<Response> {
        let tag = self.new_tag();
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())?;
        self.finish(&tag)
    }

    /// Waits for a `+` continuation, failing with the tagged answer if one comes instead.
    fn expect_continuation(&mut self, tag: &str) -> Result<()> {
        let r = self.read_response()?;
        if r.text.starts_with('+') {
            return Ok(());
        }
        bail!("expected continuation for {tag}, got {:?}", r.text)
    }

    /// `LOGIN user pass`; a `NO` is returned, not an error.
    pub fn login(&mut self, user: &str, pass: &str) -> Result<Response> {
        self.command(&format!("LOGIN {} {}", quote(user), quote(pass)))
    }

    /// `AUTHENTICATE PLAIN` with authzid (may be empty), using SASL-IR when offered.
    pub fn authenticate_plain(
        &mut self,
        authzid: &str,
        authcid: &str,
        pass: &str,
    ) -> Result<Response> {
        let ir = base64::engine::general_purpose::STANDARD
            .encode(format!("{authzid}\0{authcid}\0{pass}"));
        if self.greeting.contains("SASL-IR") {
            return self.command(&format!("AUTHENTICATE PLAIN {ir}"));
        }
        let tag = self.new_tag();
        self.writer
            .write_all(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes())?;
        self.expect_continuation(&tag)?;
        self.writer.write_all(format!("{ir}\r\n").as_bytes())?;
        self.finish(&tag)
    }

    /// `LIST "" "*"`, entries in server order.
    pub fn list(&mut self) -> Result<Vec<ListEntry>> {
        let r = self.command("LIST \"\" \"*\"")?.ok()?;
        r.untagged
            .iter()
            .filter(|u| u.text.starts_with("LIST "))
            .map(parse_list)
            .collect()
    }

    /// `SELECT folder` (wire name).
    pub fn select(&mut self, folder: &str) -> Result<Response> {
        self.command(&format!("SELECT {}", quote(folder)))?.ok()
    }

    /// `EXAMINE folder` (wire name).
    pub fn examine(&mut self, folder: &str) -> Result<Response> {
        self.command(&format!("EXAMINE {}", quote(folder)))?.ok()
    }

    /// `CREATE folder` (wire name).
    pub fn create(&mut self, folder: &str) -> Result<Response> {
        self.command(&format!("CREATE {}", quote(folder)))?.ok()
    }

    /// UIDs of the selected folder (`UID SEARCH ALL`), ascending.
    pub fn uids(&mut self) -> Result<Vec<u32>> {
        let r = self.command("UID SEARCH ALL")?.ok()?;
        let mut uids: Vec<u32> = r
            .untagged
            .iter()
            .filter_map(|u| u.text.strip_prefix("SEARCH"))
            .flat_map(|s| s.split_whitespace().map(str::parse))
            .collect::<Result<_, _>>()?;
        uids.sort_unstable();
        Ok(uids)
    }

    /// The raw bytes of message `uid` in the selected folder (`BODY.PEEK[]`), byte-exact.
    pub fn fetch_body(&mut self, uid: u32) -> Result<Vec<u8>> {
        let fetch = self.fetch_one(uid, "BODY.PEEK[]")?;
        ensure!(
            fetch.text.contains("BODY[] {"),
            "no BODY[] literal in {:?}",
            fetch.text
        );
        Ok(fetch
            .literals
            .into_iter()
            .next()
            .expect("literal counted by text"))
    }

    /// FLAGS and INTERNALDATE of message `uid` in the selected folder.
    pub fn fetch_flags_date(&mut self, uid: u32) -> Result<(Vec<String>, String)> {
        let fetch = self.fetch_one(uid, "FLAGS INTERNALDATE")?;
        let t = &fetch.text;
        let flags = between(t, "FLAGS (", ")").context("no FLAGS")?;
        let date = between(t, "INTERNALDATE \"", "\"").context("no INTERNALDATE")?;
        Ok((
            flags.split_whitespace().map(String::from).collect(),
            date.to_string(),
        ))
    }

    /// `UID FETCH uid (items)` and its one FETCH response for that UID.
    fn fetch_one(&mut self, uid: u32, items: &str) -> Result<Untagged> {
        let r = self.command(&format!("UID FETCH {uid} ({items})"))?.ok()?;
        let want = format!("UID {uid} ");
        r.untagged
            .into_iter()
            .find(|u| {
                u.text.contains(" FETCH (")
                    && (u.text.contains(&want) || u.text.contains(&format!("UID {uid})")))
            })
            .with_context(|| format!("no FETCH response for UID {uid}"))
    }

    /// `APPEND folder (flags) "date" {N}` with a synchronizing literal; returns the APPENDUID.
    pub fn append(
        &mut self,
        folder: &str,
        flags: &[&str],
        date: Option<&str>,
        bytes: &[u8],
    ) -> Result<Option<u32>> {
        let tag = self.new_tag();
        let date = date.map(|d| format!(" \"{d}\"")).unwrap_or_default();
        let head = format!(
            "{tag} APPEND {} ({}){date} {{{}}}\r\n",
            quote(folder),
            flags.join(" "),
            bytes.len()
        );
        self.writer.write_all(head.as_bytes())?;
        self.expect_continuation(&tag)?;
        self.writer.write_all(bytes)?;
        self.writer.write_all(b"\r\n")?;
        let r = self.finish(&tag)?.ok()?;
        Ok(between(&r.text, "[APPENDUID ", "]")
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok()))
    }

    /// `LOGOUT` (the connection is closed afterwards).
    pub fn logout(mut self) -> Result<()> {
        self.command("LOGOUT")?.ok().map(drop)
    }
}

/// `N` when `line` ends with a literal announcement `{N}`, `{N+}` or `~{N}`.
fn literal_len(line: &str) -> Option<usize> {
    let inner = line.strip_suffix('}')?;
    let (_, n) = inner.rsplit_once('{')?;
    n.trim_end_matches('+').parse().ok()
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &s[s.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

/// An IMAP quoted string (the caller passes ASCII / modified UTF-7 names).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Parses `LIST (flags) delim name` where name is an atom, a quoted string or a literal.
fn parse_list(u: &Untagged) -> Result<ListEntry> {
    let rest = u.text.strip_prefix("LIST (").context("not a LIST")?;
    let (flags, rest) = rest.split_once(") ").context("LIST flags")?;
    let (delimiter, name) = if let Some(r) = rest.strip_prefix("NIL ") {
        (None, r)
    } else {
        let (d, r) = read_string(rest)?;
        (Some(d), r.strip_prefix(' ').context("LIST delimiter")?)
    };
    let name = if literal_len(name).is_some() {
        String::from_utf8(u.literals.first().context("LIST literal")?.clone())?
    } else {
        read_string(name)?.0
    };
    Ok(ListEntry {
        flags: flags.split_whitespace().map(String::from).collect(),
        delimiter,
        name,
    })
}

/// A quoted string or atom at the start of `s`, and what follows it.
fn read_string(s: &str) -> Result<(String, &str)> {
    let Some(q) = s.strip_prefix('"') else {
        let end = s.find(' ').unwrap_or(s.len());
        return Ok((s[..end].to_string(), &s[end..]));
    };
    let mut out = String::new();
    let mut chars = q.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &q[i + 1..])),
            '\\' => out.push(chars.next().context("dangling backslash")?.1),
            c => out.push(c),
        }
    }
    bail!("unterminated quoted string {s:?}")
}

/// Formats seconds since the epoch as an IMAP date-time in UTC: `"05-Mar-2021 09:11:12 +0000"`.
pub fn imap_date(unix_secs: i64) -> String {
    mailstage::imap::datetime::format(unix_secs, 0)
}

/// Flags as a set, without `\Recent` (which depends on who opened the folder first).
pub fn flag_set<S: AsRef<str>>(flags: &[S]) -> std::collections::BTreeSet<String> {
    flags
        .iter()
        .map(|f| f.as_ref().to_string())
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_literals() {
        assert_eq!(imap_date(0), "01-Jan-1970 00:00:00 +0000");
        assert_eq!(imap_date(1_614_935_472), "05-Mar-2021 09:11:12 +0000");
        assert_eq!(imap_date(951_782_400), "29-Feb-2000 00:00:00 +0000");
        assert_eq!(literal_len("* 1 FETCH (BODY[] {34}"), Some(34));
        assert_eq!(literal_len("* 1 FETCH (BINARY[] ~{7}"), Some(7));
        assert_eq!(literal_len("* OK {fine}"), None);
    }

    #[test]
    fn list_lines() {
        let u = Untagged {
            text: r#"LIST (\Noselect \HasChildren) "/" "With \"Q\"""#.into(),
            literals: vec![],
        };
        let e = parse_list(&u).unwrap();
        assert_eq!(e.flags, ["\\Noselect", "\\HasChildren"]);
        assert_eq!(
            (e.delimiter.as_deref(), e.name.as_str()),
            (Some("/"), "With \"Q\"")
        );
        let u = Untagged {
            text: "LIST () NIL {3}".into(),
            literals: vec![b"a b".to_vec()],
        };
        assert_eq!(parse_list(&u).unwrap().name, "a b");
    }
}
