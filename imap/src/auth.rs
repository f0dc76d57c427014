//! CAPABILITY, LOGIN and SASL authentication (PLAIN with authorization identity, XOAUTH2).
//!
//! Secrets arrive as [`SecretString`], travel in redacted commands (never logged, wiped on
//! drop) and base64 buffers wrapped in `SecretString` again.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::ImapError;
use super::session::{Completed, ContinueOutcome, Session};
use super::types::{Code, Status, Untagged};

/// How many server challenges an authentication answers before giving up.
const MAX_SASL_ROUNDS: usize = 4;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Asks for the capabilities (CAPABILITY) and returns them.
    pub async fn capability(&mut self) -> Result<Vec<String>, ImapError> {
        let cmd = self.command("CAPABILITY").build();
        self.execute(cmd).await?;
        Ok(self.capabilities().to_vec())
    }

    /// LOGIN with user name and password (quoted or as literals, as needed).
    pub async fn login(&mut self, user: &str, password: &SecretString) -> Result<(), ImapError> {
        if self.has_capability("LOGINDISABLED") {
            return Err(ImapError::Unsupported(
                "LOGIN (server says LOGINDISABLED)".into(),
            ));
        }
        let secret = password.expose_secret();
        let cmd = self
            .command("LOGIN")
            // Quoting can double a string; literals need a few bytes of header.
            .reserve(2 * (user.len() + secret.len()) + 32)
            .astring(user.as_bytes())
            .astring(secret.as_bytes())
            .redact()
            .build();
        let done = self.execute(cmd).await?;
        self.refresh_capabilities(&done).await
    }

    /// AUTHENTICATE PLAIN (RFC 4616): `authzid NUL authcid NUL password`. With an
    /// authorization identity a master/admin user logs in as another mailbox.
    pub async fn authenticate_plain(
        &mut self,
        authzid: Option<&str>,
        authcid: &str,
        password: &SecretString,
    ) -> Result<(), ImapError> {
        let raw = joined_secret(&[
            authzid.unwrap_or_default(),
            "\0",
            authcid,
            "\0",
            password.expose_secret(),
        ]);
        let encoded = SecretString::from(B64.encode(raw.expose_secret()));
        self.authenticate("PLAIN", &encoded).await
    }

    /// AUTHENTICATE XOAUTH2 with `user=U^Aauth=Bearer T^A^A`. On failure the server's JSON
    /// error is in [`ImapError::AuthFailed`]'s `detail`.
    pub async fn authenticate_xoauth2(
        &mut self,
        user: &str,
        token: &SecretString,
    ) -> Result<(), ImapError> {
        let raw = joined_secret(&[
            "user=",
            user,
            "\x01auth=Bearer ",
            token.expose_secret(),
            "\x01\x01",
        ]);
        let encoded = SecretString::from(B64.encode(raw.expose_secret()));
        self.authenticate("XOAUTH2", &encoded).await
    }

    /// A SASL exchange with a single client response (already base64), sent as initial
    /// response when the server offers SASL-IR, else after the first `+`. Further
    /// challenges (an error report) are answered with an empty line.
    pub async fn authenticate(
        &mut self,
        mechanism: &str,
        response_b64: &SecretString,
    ) -> Result<(), ImapError> {
        let ir = self.has_capability("SASL-IR");
        let mut builder = self.command("AUTHENTICATE").raw(mechanism);
        if ir {
            let response = response_b64.expose_secret();
            builder = builder.reserve(response.len() + 8).raw(response);
        }
        let mut untagged = Vec::new();
        let tag = self.send(&builder.redact().build(), &mut untagged).await?;
        let mut sent = ir;
        let mut detail = None;
        for _ in 0..=MAX_SASL_ROUNDS {
            match self.wait_continuation(&tag, &mut untagged).await? {
                ContinueOutcome::Continue(challenge) => {
                    if sent {
                        detail = Some(decode_challenge(&challenge));
                        self.write(b"\r\n").await?;
                    } else {
                        // Sized up front: a reallocation would free an unwiped copy.
                        let response = response_b64.expose_secret().as_bytes();
                        let mut line = Vec::with_capacity(response.len() + 2);
                        line.extend_from_slice(response);
                        line.extend_from_slice(b"\r\n");
                        let res = self.write(&line).await;
                        zeroize::Zeroize::zeroize(&mut line);
                        res?;
                        sent = true;
                    }
                }
                ContinueOutcome::Done(status) if status.status == Status::Ok => {
                    let done = Completed { status, untagged };
                    return self.refresh_capabilities(&done).await;
                }
                ContinueOutcome::Done(status) => {
                    return Err(ImapError::AuthFailed {
                        mechanism: mechanism.to_string(),
                        status: Box::new(status),
                        detail,
                    });
                }
            }
        }
        Err(ImapError::Protocol(format!(
            "AUTHENTICATE {mechanism}: more than {MAX_SASL_ROUNDS} challenges"
        )))
    }

    /// After authentication the capabilities change: take them from the completion or ask.
    async fn refresh_capabilities(&mut self, done: &Completed) -> Result<(), ImapError> {
        let announced = matches!(done.status.code, Some(Code::Capability(_)))
            || done
                .untagged
                .iter()
                .any(|u| matches!(u, Untagged::Capability(_)));
        if !announced {
            self.capability().await?;
        }
        Ok(())
    }
}

/// Decodes a base64 challenge to text; keeps it as sent when it is not base64.
fn decode_challenge(text: &str) -> String {
    match B64.decode(text.trim()) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => text.to_string(),
    }
}

/// The parts joined in a string sized up front (`format!` may grow its buffer and free an
/// unwiped copy of the secret among them).
fn joined_secret(parts: &[&str]) -> SecretString {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    SecretString::from(out)
}
