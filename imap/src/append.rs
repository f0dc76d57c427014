//! APPEND with the message streamed from an `AsyncRead` of known length: one at a time
//! ([`Session::append`]), or several in flight with non-synchronising literals (RFC 7888
//! LITERAL+): [`Session::append_send`] writes one without waiting, [`Session::append_answer`]
//! reads until one of those sent completes, matched by its tag.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::encode::LiteralMode;
use super::error::ImapError;
use super::session::Session;
use super::sink::DiscardSink;
use super::types::{Code, Response, StatusText};

/// What the server reported about an appended message (RFC 4315 UIDPLUS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// UIDVALIDITY of the target mailbox, from `[APPENDUID]`.
    pub uid_validity: Option<u32>,
    /// UID of the new message, from `[APPENDUID]`.
    pub uid: Option<u32>,
}

impl AppendOutcome {
    /// What a tagged OK says about the appended message.
    fn of(status: &StatusText) -> Self {
        match &status.code {
            Some(Code::AppendUid { uid_validity, uids }) => Self {
                uid_validity: Some(*uid_validity),
                uid: uids.ranges().next().map(|r| *r.start()),
            },
            _ => Self::default(),
        }
    }
}

/// How much of a message goes out per write (the first write also carries the command).
pub(crate) const APPEND_CHUNK: usize = 64 << 10;

/// The largest literal LITERAL- lets a client send without waiting (RFC 7888).
const LITERAL_MINUS_MAX: u64 = 4096;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// APPEND `len` bytes read from `data` to a mailbox (wire name), with flags and an
    /// optional INTERNALDATE (see [`super::datetime::format`]). Uses `{N+}` when the
    /// server offers LITERAL+ (or LITERAL- for ≤ 4096 bytes), else waits for `+`.
    ///
    /// If `data` ends before `len` bytes, the connection is unusable afterwards.
    pub async fn append<R: AsyncRead + Unpin>(
        &mut self,
        mailbox: &[u8],
        flags: &[&str],
        internal_date: Option<&str>,
        len: u64,
        data: R,
    ) -> Result<AppendOutcome, ImapError> {
        let tag = self
            .write_append(mailbox, flags, internal_date, len, data)
            .await?;
        let mut untagged = Vec::new();
        let status = self.wait_tagged(&tag, &mut untagged).await?;
        let done = self.complete("APPEND", status, untagged)?;
        Ok(AppendOutcome::of(&done.status))
    }

    /// True when an APPEND of `len` bytes goes out without waiting for the server's `+`
    /// (LITERAL+, or LITERAL- up to 4096 bytes), so it may follow others still unanswered.
    pub fn append_pipelines(&self, len: u64) -> bool {
        match self.literal_mode() {
            LiteralMode::Plus => true,
            LiteralMode::Minus => len <= LITERAL_MINUS_MAX,
            LiteralMode::Synchronizing => false,
        }
    }

    /// Sends an APPEND (as [`Session::append`]) without waiting for its answer, and returns
    /// its tag for [`Session::append_answer`]. Needs a literal that goes out without `+`
    /// ([`Session::append_pipelines`]); otherwise nothing is sent and it is an error.
    pub async fn append_send<R: AsyncRead + Unpin>(
        &mut self,
        mailbox: &[u8],
        flags: &[&str],
        internal_date: Option<&str>,
        len: u64,
        data: R,
    ) -> Result<String, ImapError> {
        if !self.append_pipelines(len) {
            return Err(ImapError::Protocol(format!(
                "an APPEND of {len} bytes cannot be sent ahead: the server offers no LITERAL+"
            )));
        }
        self.write_append(mailbox, flags, internal_date, len, data)
            .await
    }

    /// Reads until one of the APPENDs sent as `tags` completes: its tag, and what it became
    /// (a NO or BAD is [`ImapError::Rejected`] for that message only). The outer error means
    /// the link failed (BYE, I/O, timeout): no more answers will come on this session.
    pub async fn append_answer(
        &mut self,
        tags: &[String],
    ) -> Result<(String, Result<AppendOutcome, ImapError>), ImapError> {
        let mut untagged = Vec::new();
        loop {
            match self.read(&mut DiscardSink).await?.response {
                Response::Tagged { tag, status } if tags.contains(&tag) => {
                    let done = self.complete("APPEND", status, Vec::new());
                    return Ok((tag, done.map(|d| AppendOutcome::of(&d.status))));
                }
                other => {
                    self.route_other(other, &mut untagged)?;
                    untagged.clear();
                }
            }
        }
    }

    /// Writes an APPEND command and its literal (waiting for `+` first when the literal is
    /// synchronising) and flushes; returns its tag.
    async fn write_append<R: AsyncRead + Unpin>(
        &mut self,
        mailbox: &[u8],
        flags: &[&str],
        internal_date: Option<&str>,
        len: u64,
        mut data: R,
    ) -> Result<String, ImapError> {
        let mut builder = self.command("APPEND").mailbox_raw(mailbox);
        if !flags.is_empty() {
            builder = builder.raw(&format!("({})", flags.join(" ")));
        }
        if let Some(date) = internal_date {
            builder = builder.string(date.as_bytes());
        }
        let sync = builder.announce_literal(len, "");
        let cmd = builder.build();
        let mut untagged = Vec::new();
        let (tag, mut unsent) = self.start_command(&cmd, &mut untagged).await?;
        if sync {
            self.write_unsent(&mut unsent).await?;
            self.await_literal_go_ahead(&tag, &cmd.name, &mut untagged)
                .await?;
        }
        // The message is streamed through one buffer: the first write carries the command
        // line too (unless it already went out for a `+`), each write a full chunk, the last
        // one the final CRLF as well.
        let mut buf = std::mem::take(&mut unsent.bytes);
        let mut filled = buf.len();
        let mut end = filled + APPEND_CHUNK;
        buf.resize(end + 2, 0);
        let mut remaining = len;
        while remaining > 0 {
            let want = (end - filled).min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let n = match data.read(&mut buf[filled..filled + want]).await {
                Ok(0) => {
                    return Err(self.poison(ImapError::Protocol(format!(
                        "APPEND source ended {remaining} bytes early"
                    ))));
                }
                Ok(n) => n,
                Err(e) => return Err(self.poison(ImapError::Io(e))),
            };
            filled += n;
            remaining -= n as u64;
            if filled == end && remaining > 0 {
                self.write(&buf[..filled]).await?;
                (filled, end) = (0, APPEND_CHUNK);
            }
        }
        buf[filled..filled + 2].copy_from_slice(b"\r\n");
        self.write(&buf[..filled + 2]).await?;
        self.flush().await?;
        Ok(tag)
    }
}

#[cfg(test)]
#[path = "append_tests.rs"]
mod tests;
