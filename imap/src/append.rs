//! APPEND with the message streamed from an `AsyncRead` of known length.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::error::ImapError;
use super::session::Session;
use super::types::Code;

/// What the server reported about an appended message (RFC 4315 UIDPLUS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// UIDVALIDITY of the target mailbox, from `[APPENDUID]`.
    pub uid_validity: Option<u32>,
    /// UID of the new message, from `[APPENDUID]`.
    pub uid: Option<u32>,
}

/// How much of a message goes out per write (the first write also carries the command).
pub(crate) const APPEND_CHUNK: usize = 64 << 10;

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
        mut data: R,
    ) -> Result<AppendOutcome, ImapError> {
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
        let status = self.wait_tagged(&tag, &mut untagged).await?;
        let done = self.complete(&cmd.name, status, untagged)?;
        let mut outcome = AppendOutcome::default();
        if let Some(Code::AppendUid { uid_validity, uids }) = &done.status.code {
            outcome.uid_validity = Some(*uid_validity);
            outcome.uid = uids.ranges().next().map(|r| *r.start());
        }
        Ok(outcome)
    }
}
