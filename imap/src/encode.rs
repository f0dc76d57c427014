//! Command encoding: atoms, quoted strings and literals, following the server's literal
//! capabilities (RFC 3501 §4.3, RFC 7888 LITERAL+ / LITERAL-).

use crate::mutf7;

/// Which literal forms the server accepts, derived from its capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiteralMode {
    /// Only synchronising literals `{N}`: wait for `+` before sending the bytes.
    #[default]
    Synchronizing,
    /// LITERAL+: non-synchronising `{N+}` of any size.
    Plus,
    /// LITERAL-: non-synchronising `{N+}` up to 4096 bytes.
    Minus,
}

impl LiteralMode {
    /// Picks the mode from capability atoms (case-insensitive).
    pub fn from_capabilities<'a, I: IntoIterator<Item = &'a str>>(caps: I) -> Self {
        let mut mode = Self::Synchronizing;
        for cap in caps {
            if cap.eq_ignore_ascii_case("LITERAL+") {
                return Self::Plus;
            }
            if cap.eq_ignore_ascii_case("LITERAL-") {
                mode = Self::Minus;
            }
        }
        mode
    }

    /// True when a literal of `len` bytes may be sent as `{N+}` without waiting.
    pub fn non_sync(self, len: u64) -> bool {
        match self {
            Self::Synchronizing => false,
            Self::Plus => true,
            Self::Minus => len <= 4096,
        }
    }
}

/// One piece of an encoded command, sent in order. `Debug` shows sizes only: a part may
/// hold a password.
#[derive(Clone, PartialEq, Eq)]
pub enum Part {
    /// Command text; when a literal follows, it ends with the `{N}\r\n` announcement.
    Text(Vec<u8>),
    /// Literal bytes; `sync` means: wait for a `+` continuation before sending them.
    Literal {
        /// The literal's bytes.
        data: Vec<u8>,
        /// Whether the server must first answer with `+`.
        sync: bool,
    },
}

/// An encoded command without its tag, ready for a session to send. `Debug` shows its log
/// line ([`Command::log_line`]): a LOGIN's password never.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// The command name (e.g. `UID FETCH`), for logs and errors.
    pub name: String,
    /// The pieces; always ends with a text part (possibly empty) that lacks the final CRLF.
    pub parts: Vec<Part>,
    /// True when arguments are secret (LOGIN, AUTHENTICATE) and must not be logged.
    pub redacted: bool,
}

impl Drop for Command {
    /// Wipes the bytes of commands that carry secrets (LOGIN, AUTHENTICATE).
    fn drop(&mut self) {
        if self.redacted {
            for part in &mut self.parts {
                match part {
                    Part::Text(t) => zeroize::Zeroize::zeroize(t),
                    Part::Literal { data, .. } => zeroize::Zeroize::zeroize(data),
                }
            }
        }
    }
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Part::Literal { data, sync } => {
                write!(f, "Literal {{ {} bytes, sync: {sync} }}", data.len())
            }
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("line", &self.log_line())
            .field("redacted", &self.redacted)
            .finish()
    }
}

impl Command {
    /// The command as it would be logged: secret arguments masked, literals summarised.
    pub fn log_line(&self) -> String {
        if self.redacted {
            return format!("{} <redacted>", self.name);
        }
        let mut line = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => line.push_str(&String::from_utf8_lossy(t)),
                Part::Literal { data, .. } => line.push_str(&format!("<{} bytes>", data.len())),
            }
        }
        line.trim_end().to_string()
    }
}

/// Builds a [`Command`], choosing atom, quoted or literal form for each argument. `Debug`
/// shows the name only (the arguments may be secret).
pub struct CommandBuilder {
    name: String,
    mode: LiteralMode,
    parts: Vec<Part>,
    text: Vec<u8>,
    redacted: bool,
}

impl std::fmt::Debug for CommandBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// True for ASTRING-CHAR: ATOM-CHAR or `]`.
pub fn is_astring_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

/// True when `data` can go in a quoted string: 7-bit, no NUL, CR or LF.
pub fn is_quotable(data: &[u8]) -> bool {
    data.iter()
        .all(|&b| b != 0 && b < 0x80 && b != b'\r' && b != b'\n')
}

impl CommandBuilder {
    /// Starts a command; `name` is written verbatim (e.g. `UID FETCH`).
    pub fn new(name: &str, mode: LiteralMode) -> Self {
        Self {
            name: name.to_string(),
            mode,
            parts: Vec::new(),
            text: name.as_bytes().to_vec(),
            redacted: false,
        }
    }

    /// Appends SP and raw text the caller guarantees is valid syntax (atoms, lists, numbers).
    pub fn raw(mut self, text: &str) -> Self {
        self.text.push(b' ');
        self.text.extend_from_slice(text.as_bytes());
        self
    }

    /// Appends an astring: an atom when possible, else a quoted string or a literal.
    pub fn astring(self, data: &[u8]) -> Self {
        if !data.is_empty() && data.iter().all(|&b| is_astring_char(b)) {
            let mut s = self;
            s.text.push(b' ');
            s.text.extend_from_slice(data);
            s
        } else {
            self.string(data)
        }
    }

    /// Appends a string: quoted (with `\` and `"` escaped) when possible, else a literal.
    pub fn string(mut self, data: &[u8]) -> Self {
        if !is_quotable(data) {
            return self.literal(data);
        }
        self.text.extend_from_slice(b" \"");
        for &b in data {
            if b == b'"' || b == b'\\' {
                self.text.push(b'\\');
            }
            self.text.push(b);
        }
        self.text.push(b'"');
        self
    }

    /// Appends a mailbox name, encoded as modified UTF-7, as an astring.
    pub fn mailbox(self, name: &str) -> Self {
        let wire = mutf7::encode(name);
        self.astring(wire.as_bytes())
    }

    /// Appends a mailbox name exactly as the server sent it in LIST (raw wire bytes).
    pub fn mailbox_raw(self, wire: &[u8]) -> Self {
        self.astring(wire)
    }

    /// Appends a literal, `{N+}` when the server's literal mode allows it, else `{N}`.
    pub fn literal(mut self, data: &[u8]) -> Self {
        let sync = self.announce_literal(data.len() as u64, "");
        self.parts.push(Part::Literal {
            data: data.to_vec(),
            sync,
        });
        self
    }

    /// Writes SP, an optional prefix (e.g. `~` for literal8) and `{N}` or `{N+}` and CRLF,
    /// closes the current text part; returns whether the literal is synchronising.
    pub(crate) fn announce_literal(&mut self, len: u64, prefix: &str) -> bool {
        let non_sync = self.mode.non_sync(len);
        let plus = if non_sync { "+" } else { "" };
        self.text
            .extend_from_slice(format!(" {prefix}{{{len}{plus}}}\r\n").as_bytes());
        self.parts.push(Part::Text(std::mem::take(&mut self.text)));
        !non_sync
    }

    /// Makes room for `additional` more bytes at once, before a secret is appended, so no
    /// reallocation leaves a freed, unwiped copy of it behind.
    pub fn reserve(mut self, additional: usize) -> Self {
        self.text.reserve(additional);
        self
    }

    /// Marks the command's arguments as secret: they are never logged.
    pub fn redact(mut self) -> Self {
        self.redacted = true;
        self
    }

    /// Finishes the command (the session adds the tag and the final CRLF).
    pub fn build(mut self) -> Command {
        self.parts.push(Part::Text(std::mem::take(&mut self.text)));
        Command {
            name: self.name,
            parts: self.parts,
            redacted: self.redacted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(cmd: &Command) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &cmd.parts {
            match part {
                Part::Text(t) => out.extend_from_slice(t),
                Part::Literal { data, .. } => out.extend_from_slice(data),
            }
        }
        out
    }

    #[test]
    fn atoms_quoted_and_literals() {
        let cmd = CommandBuilder::new("LOGIN", LiteralMode::Synchronizing)
            .astring(b"joe")
            .astring(b"p\"w\\ d")
            .build();
        assert_eq!(text_of(&cmd), b"LOGIN joe \"p\\\"w\\\\ d\"".to_vec());
        assert_eq!(cmd.parts.len(), 1);

        let cmd = CommandBuilder::new("LOGIN", LiteralMode::Synchronizing)
            .astring(b"")
            .astring("jürgen".as_bytes())
            .build();
        assert_eq!(cmd.parts.len(), 3);
        assert_eq!(cmd.parts[0], Part::Text(b"LOGIN \"\" {7}\r\n".to_vec()));
        assert_eq!(
            cmd.parts[1],
            Part::Literal {
                data: "jürgen".as_bytes().to_vec(),
                sync: true
            }
        );
        assert_eq!(cmd.parts[2], Part::Text(Vec::new()));
    }

    #[test]
    fn literal_modes() {
        for (mode, len, expect_plus) in [
            (LiteralMode::Plus, 10_000, true),
            (LiteralMode::Minus, 4096, true),
            (LiteralMode::Minus, 4097, false),
            (LiteralMode::Synchronizing, 1, false),
        ] {
            let data = vec![b'\n'; len];
            let cmd = CommandBuilder::new("X", mode).string(&data).build();
            let announce = if expect_plus {
                format!("X {{{len}+}}\r\n")
            } else {
                format!("X {{{len}}}\r\n")
            };
            assert_eq!(cmd.parts[0], Part::Text(announce.into_bytes()));
            assert!(matches!(&cmd.parts[1], Part::Literal { sync, .. } if *sync != expect_plus));
        }
        assert_eq!(
            LiteralMode::from_capabilities(["IMAP4rev1", "literal-"]),
            LiteralMode::Minus
        );
        assert_eq!(
            LiteralMode::from_capabilities(["LITERAL-", "LITERAL+"]),
            LiteralMode::Plus
        );
    }

    #[test]
    fn control_and_nul_go_to_literals_and_wildcards_are_quoted() {
        for bad in [&b"a\rb"[..], b"a\0b", b"\xff"] {
            let cmd = CommandBuilder::new("X", LiteralMode::Plus)
                .astring(bad)
                .build();
            assert!(matches!(cmd.parts[1], Part::Literal { .. }));
        }
        let cmd = CommandBuilder::new("LIST", LiteralMode::Plus)
            .string(b"")
            .astring(b"*")
            .build();
        assert_eq!(text_of(&cmd), b"LIST \"\" \"*\"".to_vec());
        let cmd = CommandBuilder::new("SELECT", LiteralMode::Plus)
            .mailbox("Entwürfe & Co")
            .build();
        assert_eq!(text_of(&cmd), b"SELECT \"Entw&APw-rfe &- Co\"".to_vec());
    }

    #[test]
    fn redacted_commands_do_not_log_arguments() {
        let cmd = CommandBuilder::new("LOGIN", LiteralMode::Plus)
            .astring(b"joe")
            .astring(b"secret")
            .redact()
            .build();
        assert!(!cmd.log_line().contains("secret"));
        let debug = format!("{cmd:?} {:?}", cmd.parts);
        assert!(
            !debug.contains("secret") && debug.contains("LOGIN <redacted>"),
            "{debug}"
        );
        let builder = CommandBuilder::new("LOGIN", LiteralMode::Plus).astring(b"secret");
        assert!(!format!("{builder:?}").contains("secret"));
        let cmd = CommandBuilder::new("SELECT", LiteralMode::Plus)
            .astring(b"INBOX")
            .build();
        assert_eq!(cmd.log_line(), "SELECT INBOX");
    }
}
