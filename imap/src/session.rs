//! The session core: tags, sending commands (with synchronising literals), reading
//! responses until the tagged completion, and routing untagged data.
//!
//! Commands live in sibling modules: [`super::auth`], `commands`,
//! [`super::fetch`], [`super::append`].

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::encode::{Command, CommandBuilder, LiteralMode, Part};
use super::error::ImapError;
use super::framing::{Frame, FrameReader, FramingError, FramingLimits};
use super::guard::{self, InputGuard};
use super::idle::{IdleTimeout, name_timeout};
use super::progress::ProgressClock;
use super::response;
use super::sink::{DiscardSink, LiteralSink};
use super::types::{Code, Response, Status, StatusText, Untagged};

/// Settings of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Bounds of the framing layer.
    pub limits: FramingLimits,
    /// How long a read or a write may go without moving a byte before the link counts as
    /// lost (an inactivity timeout: a slow body that keeps moving is never cut); `None`
    /// waits forever.
    pub read_timeout: Option<Duration>,
    /// Prefix of command tags (`A` gives `A0001`, `A0002`, …).
    pub tag_prefix: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            limits: FramingLimits::default(),
            read_timeout: Some(Duration::from_secs(120)),
            tag_prefix: "A".into(),
        }
    }
}

/// A command's successful completion and the untagged data that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The tagged OK.
    pub status: StatusText,
    /// Untagged responses received while the command ran, in order.
    pub untagged: Vec<Untagged>,
}

/// One response read from the server with the bodies streamed while framing it.
pub(crate) struct Incoming<O> {
    pub(crate) response: Response,
    pub(crate) frame: Frame<O>,
}

/// What happened while waiting for a continuation request.
pub(crate) enum ContinueOutcome {
    /// The server sent `+ text`.
    Continue(String),
    /// The server completed the command instead.
    Done(StatusText),
}

/// Bytes of a command gathered to go out in one write. A secret command's bytes (LOGIN,
/// AUTHENTICATE) are wiped when written or dropped; the buffer is sized up front so they are
/// never copied by a reallocation.
pub(crate) struct Unsent {
    pub(crate) bytes: Vec<u8>,
    secret: bool,
}

impl Unsent {
    /// `TAG ` with room for the whole command and its CRLF.
    fn for_command(tag: &str, cmd: &Command) -> Self {
        let parts: usize = cmd
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                Part::Literal { data, .. } => data.len(),
            })
            .sum();
        let mut bytes = Vec::with_capacity(tag.len() + 1 + parts + 2);
        bytes.extend_from_slice(tag.as_bytes());
        bytes.push(b' ');
        Self {
            bytes,
            secret: cmd.redacted,
        }
    }

    fn extend(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
    }

    /// Empties the buffer, wiping it first when it held secrets.
    fn clear(&mut self) {
        if self.secret {
            zeroize::Zeroize::zeroize(&mut self.bytes);
        }
        self.bytes.clear();
    }
}

impl Drop for Unsent {
    fn drop(&mut self) {
        self.clear();
    }
}

/// An IMAP session over any byte stream (TCP, TLS, a test pipe).
pub struct Session<S> {
    pub(crate) conn: FrameReader<IdleTimeout<S>>,
    config: SessionConfig,
    next_tag: u32,
    capabilities: Vec<String>,
    greeting: StatusText,
    poisoned: bool,
    /// A write failed: no command can be sent, but what the server sent before it closed
    /// (answers to commands sent earlier) may still be read.
    unwritable: bool,
    sink_error: Option<std::io::Error>,
    guard: InputGuard,
    progress: ProgressClock,
    exists: Option<u32>,
    /// Literals always wait for `+`, whatever the server announces (it refused one sent
    /// without waiting).
    synchronizing_only: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Wraps a stream whose greeting was already handled (e.g. after STARTTLS).
    pub fn established(stream: S, config: SessionConfig) -> Self {
        Self {
            conn: FrameReader::new(IdleTimeout::new(stream, config.read_timeout), config.limits),
            config,
            next_tag: 1,
            capabilities: Vec::new(),
            greeting: StatusText {
                status: Status::Ok,
                code: None,
                text: String::new(),
            },
            poisoned: false,
            unwritable: false,
            sink_error: None,
            guard: InputGuard::default(),
            progress: ProgressClock::default(),
            exists: None,
            synchronizing_only: false,
        }
    }

    /// Reads the greeting. `* OK` and `* PREAUTH` start a session; `* BYE` is an error, and
    /// so is any other first response ([`ImapError::NotImap`]: another protocol's banner)
    /// or silence past the greeting timeout ([`ImapError::NoGreeting`]).
    pub async fn connect(stream: S, config: SessionConfig) -> Result<Self, ImapError> {
        let mut session = Self::established(stream, config);
        let wait = guard::greeting_wait(session.config.read_timeout);
        let frame = tokio::time::timeout(wait, session.conn.next_frame(&mut DiscardSink))
            .await
            .map_err(|_| ImapError::NoGreeting(wait))??;
        let parsed = response::parse(&frame.bytes);
        session.greeting = guard::greeting(&frame.bytes, parsed.as_ref())?;
        if let Some(resp) = &parsed {
            session.observe(resp);
        }
        Ok(session)
    }

    /// The greeting's status (OK or PREAUTH), code and text.
    pub fn greeting(&self) -> &StatusText {
        &self.greeting
    }

    /// Capabilities as last announced (from a CAPABILITY response or code).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// True when the server announced the capability (case-insensitive).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
    }

    /// The literal form commands may use, from LITERAL+ / LITERAL-.
    pub fn literal_mode(&self) -> LiteralMode {
        if self.synchronizing_only {
            return LiteralMode::Synchronizing;
        }
        LiteralMode::from_capabilities(self.capabilities.iter().map(String::as_str))
    }

    /// From now on every literal waits for the server's `+`, even if it announces LITERAL+
    /// or LITERAL- (for a server that announces them and then refuses such a literal).
    pub fn use_synchronizing_literals(&mut self) {
        self.synchronizing_only = true;
    }

    /// Starts building a command that uses the server's literal mode.
    pub fn command(&self, name: &str) -> CommandBuilder {
        CommandBuilder::new(name, self.literal_mode())
    }

    /// The underlying stream.
    pub fn stream(&mut self) -> &mut S {
        self.conn.get_mut().get_mut()
    }

    /// Counts the kernel's send queue draining as progress for the inactivity timeout
    /// ([`super::idle::tcp_send_queue`]).
    pub fn watch_send_queue(&mut self, probe: Option<super::idle::SendQueueProbe>) {
        self.conn.get_mut().watch_send_queue(probe);
    }

    /// Gives back the stream and any bytes read but not yet framed.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let (stream, rest) = self.conn.into_parts();
        (stream.into_inner(), rest)
    }

    /// Runs a command to completion, collecting untagged responses. NO/BAD become
    /// [`ImapError::Rejected`]; a BYE is [`ImapError::Bye`].
    pub async fn execute(&mut self, cmd: Command) -> Result<Completed, ImapError> {
        let mut untagged = Vec::new();
        let tag = self.send(&cmd, &mut untagged).await?;
        let status = self.wait_tagged(&tag, &mut untagged).await?;
        self.complete(&cmd.name, status, untagged)
    }

    /// Turns a tagged status into the command's result.
    pub(crate) fn complete(
        &mut self,
        command: &str,
        status: StatusText,
        untagged: Vec<Untagged>,
    ) -> Result<Completed, ImapError> {
        if let Some(e) = self.sink_error.take() {
            return Err(ImapError::Sink(e));
        }
        match status.status {
            Status::Ok => Ok(Completed { status, untagged }),
            _ => Err(ImapError::Rejected {
                command: command.to_string(),
                status: Box::new(status),
            }),
        }
    }

    /// Sends a command with a fresh tag, honouring synchronising literals; returns the tag.
    /// A command rejected before one of its literals is reported as `Rejected`.
    /// Untagged responses that arrive while waiting for `+` go to `untagged`.
    ///
    /// The command goes out in one write (one per part when it has synchronising literals),
    /// then the stream is flushed.
    pub(crate) async fn send(
        &mut self,
        cmd: &Command,
        untagged: &mut Vec<Untagged>,
    ) -> Result<String, ImapError> {
        let (tag, mut unsent) = self.start_command(cmd, untagged).await?;
        unsent.extend(b"\r\n");
        self.write_unsent(&mut unsent).await?;
        self.flush().await?;
        Ok(tag)
    }

    /// Gathers a fresh tag and the command's parts, writing what is gathered and waiting for
    /// `+` before each synchronising literal; returns the tag and the bytes gathered since
    /// (the rest of the command, without the final CRLF), for the caller to write.
    pub(crate) async fn start_command(
        &mut self,
        cmd: &Command,
        untagged: &mut Vec<Untagged>,
    ) -> Result<(String, Unsent), ImapError> {
        if self.poisoned || self.unwritable {
            return Err(ImapError::Unusable);
        }
        let tag = format!("{}{:04}", self.config.tag_prefix, self.next_tag);
        self.next_tag = self.next_tag.wrapping_add(1);
        self.guard.command_sent();
        self.progressed();
        tracing::trace!(target: "mailstage::imap::wire", "C: {tag} {}", cmd.log_line());
        let mut unsent = Unsent::for_command(&tag, cmd);
        for part in &cmd.parts {
            match part {
                Part::Text(t) => unsent.extend(t),
                Part::Literal { data, sync } => {
                    if *sync {
                        self.write_unsent(&mut unsent).await?;
                        self.await_literal_go_ahead(&tag, &cmd.name, untagged)
                            .await?;
                    }
                    unsent.extend(data);
                }
            }
        }
        Ok((tag, unsent))
    }

    /// Waits for the `+` that allows a synchronising literal; a completion instead means
    /// the server refused the command.
    pub(crate) async fn await_literal_go_ahead(
        &mut self,
        tag: &str,
        command: &str,
        untagged: &mut Vec<Untagged>,
    ) -> Result<(), ImapError> {
        match self.wait_continuation(tag, untagged).await? {
            ContinueOutcome::Continue(_) => Ok(()),
            ContinueOutcome::Done(st) => {
                self.complete(command, st, std::mem::take(untagged))?;
                Err(ImapError::Protocol(format!(
                    "{command} completed before its literal was sent"
                )))
            }
        }
    }

    /// Writes the gathered bytes in one write and empties (wipes) the buffer.
    pub(crate) async fn write_unsent(&mut self, unsent: &mut Unsent) -> Result<(), ImapError> {
        let res = self.write(&unsent.bytes).await;
        unsent.clear();
        res
    }

    /// Writes all of `data`; see [`Session::write_failed`] for a failure.
    pub(crate) async fn write(&mut self, data: &[u8]) -> Result<(), ImapError> {
        let res = self.conn.get_mut().write_all(data).await;
        res.map_err(|e| self.write_failed(e))?;
        self.progressed();
        Ok(())
    }

    /// The command moved on: both progress bounds start afresh.
    fn progressed(&mut self) {
        self.progress.progressed();
        self.conn.get_mut().progressed();
    }

    /// Flushes the stream; see [`Session::write_failed`] for a failure.
    pub(crate) async fn flush(&mut self) -> Result<(), ImapError> {
        let res = self.conn.get_mut().flush().await;
        res.map_err(|e| self.write_failed(e))
    }

    /// A write failed: no more commands go out. A server that answered earlier commands
    /// before it closed the link (a throttle answer to a pipelined APPEND, then BYE) left
    /// those answers readable, so reads go on until they fail; a write that timed out
    /// leaves nothing to wait for, and the session is unusable.
    fn write_failed(&mut self, e: std::io::Error) -> ImapError {
        let timed_out = e.kind() == std::io::ErrorKind::TimedOut;
        let e = name_timeout(ImapError::Io(e), self.config.read_timeout);
        self.unwritable = true;
        if timed_out { self.poison(e) } else { e }
    }

    /// Marks the session unusable and passes the error on.
    pub(crate) fn poison(&mut self, e: ImapError) -> ImapError {
        self.poisoned = true;
        e
    }

    /// Flushes, then reads until `+` (returns its text) or the tagged completion of `tag`.
    pub(crate) async fn wait_continuation(
        &mut self,
        tag: &str,
        untagged: &mut Vec<Untagged>,
    ) -> Result<ContinueOutcome, ImapError> {
        self.flush().await?;
        loop {
            match self.read(&mut DiscardSink).await?.response {
                Response::Continuation { text } => return Ok(ContinueOutcome::Continue(text)),
                Response::Tagged { tag: t, status } if t == tag => {
                    return Ok(ContinueOutcome::Done(status));
                }
                other => self.route_other(other, untagged)?,
            }
        }
    }

    /// Reads until the tagged completion of `tag`.
    pub(crate) async fn wait_tagged(
        &mut self,
        tag: &str,
        untagged: &mut Vec<Untagged>,
    ) -> Result<StatusText, ImapError> {
        loop {
            match self.read(&mut DiscardSink).await?.response {
                Response::Tagged { tag: t, status } if t == tag => return Ok(status),
                other => self.route_other(other, untagged)?,
            }
        }
    }

    /// Counts a response the command did not ask for; a flood of them is an error (and
    /// leaves the session unusable).
    pub(crate) fn unsolicited(&mut self) -> Result<(), ImapError> {
        self.guard.untagged().map_err(|e| self.poison(e))
    }

    /// Handles a response that is not what the caller waits for.
    pub(crate) fn route_other(
        &mut self,
        resp: Response,
        untagged: &mut Vec<Untagged>,
    ) -> Result<(), ImapError> {
        self.unsolicited()?;
        match resp {
            Response::Untagged(Untagged::Status(st)) if st.status == Status::Bye => {
                Err(self.poison(ImapError::Bye(st.text)))
            }
            Response::Untagged(u) => {
                untagged.push(u);
                Ok(())
            }
            Response::Tagged { tag, status } => {
                tracing::warn!(%tag, %status, "completion for an unknown tag");
                Ok(())
            }
            Response::Continuation { text } => {
                tracing::warn!(%text, "unexpected continuation request");
                Ok(())
            }
        }
    }

    /// Reads and parses the next understood response, streaming bodies into `sink` and
    /// recording capabilities. Unparseable responses are skipped.
    pub(crate) async fn read<K: LiteralSink>(
        &mut self,
        sink: &mut K,
    ) -> Result<Incoming<K::Output>, ImapError> {
        if self.poisoned {
            return Err(ImapError::Unusable);
        }
        loop {
            let frame = match self.read_frame(sink).await {
                Ok(frame) => frame,
                Err(ImapError::Framing(FramingError::Sink(e))) => {
                    self.sink_error.get_or_insert(e);
                    continue;
                }
                Err(e) => return Err(self.poison(e)),
            };
            let Some(response) = response::parse(&frame.bytes) else {
                self.guard
                    .unparsed(&frame.bytes)
                    .map_err(|e| self.poison(e))?;
                continue;
            };
            self.guard.parsed();
            let limit = self.config.read_timeout;
            match self.progress.observe(&response, frame.bytes.len(), limit) {
                Ok(true) => self.conn.get_mut().progressed(),
                Ok(false) => {}
                Err(e) => return Err(self.poison(e)),
            }
            tracing::trace!(target: "mailstage::imap::wire", "S: {}", String::from_utf8_lossy(&frame.bytes).trim_end());
            self.observe(&response);
            return Ok(Incoming { response, frame });
        }
    }

    async fn read_frame<K: LiteralSink>(
        &mut self,
        sink: &mut K,
    ) -> Result<Frame<K::Output>, ImapError> {
        // The stream under the framing times out a read that moves nothing for the
        // limit, not a response that takes long.
        let res = self.conn.next_frame(sink).await;
        res.map_err(|e| name_timeout(ImapError::from(e), self.config.read_timeout))
    }

    /// The mailbox's message count as last announced (`* N EXISTS`), if one was.
    pub(crate) fn exists(&self) -> Option<u32> {
        self.exists
    }

    /// Keeps the capabilities current from a CAPABILITY response or a `[CAPABILITY …]` code,
    /// and the message count from EXISTS.
    fn observe(&mut self, resp: &Response) {
        let caps = match resp {
            Response::Untagged(Untagged::Exists(n)) => {
                self.exists = Some(*n);
                return;
            }
            Response::Untagged(Untagged::Capability(caps)) => caps,
            Response::Untagged(Untagged::Status(st)) | Response::Tagged { status: st, .. } => {
                match &st.code {
                    Some(Code::Capability(caps)) => caps,
                    _ => return,
                }
            }
            _ => return,
        };
        self.capabilities = caps.clone();
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
