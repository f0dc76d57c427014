//! The IMAP transport: APPEND into a target mailbox (Microsoft 365 with XOAUTH2, or any
//! IMAP server with a password), with the look-ups exactly-once needs.

use secrecy::SecretString;

use super::destination::{Credentials, Delivery, Destination, Outgoing};
use super::mapping::{Role, TargetFolders};
use super::{Step as _, UploadError, is_flagged};
use crate::batch::AuthChoice;
use crate::folders::mutf7;
use crate::imap::transport::{ConnectOptions, Transport, connect};
use crate::imap::{AppendLimit, ImapError, SequenceSet, Session, SessionConfig, Status};
use crate::stage::index::UploadItem;

/// A logged-in session with one target mailbox.
pub struct ImapTarget {
    session: Session<Transport>,
    delimiter: char,
    /// Microsoft 365: `\Flagged` given to APPEND is dropped, so it is set by a STORE after.
    store_flagged: bool,
    /// The folder currently SELECTed (wire name).
    selected: Option<Vec<u8>>,
}

impl ImapTarget {
    /// Connects and logs in as `mailbox`.
    pub async fn open(
        connect_to: &ConnectOptions,
        credentials: &Credentials,
        mailbox: &str,
        m365: bool,
        read_timeout: std::time::Duration,
    ) -> Result<Self, UploadError> {
        let at = format!("{}:{}", connect_to.host, connect_to.port);
        let config = SessionConfig {
            read_timeout: Some(read_timeout),
            ..SessionConfig::default()
        };
        let mut session = connect(connect_to, config)
            .await
            .during(|| format!("connecting to the target {at}"))?;
        log_in(&mut session, credentials, mailbox).await?;
        Ok(Self {
            session,
            delimiter: '/',
            store_flagged: m365,
            selected: None,
        })
    }

    fn wire(&self, path: &[String]) -> Vec<u8> {
        if path.len() == 1 && path[0].eq_ignore_ascii_case("INBOX") {
            return b"INBOX".to_vec();
        }
        mutf7::encode(&path.join(&self.delimiter.to_string())).into_bytes()
    }

    async fn select(&mut self, wire: &[u8], name: &[String]) -> Result<(), UploadError> {
        if self.selected.as_deref() != Some(wire) {
            self.selected = None;
            self.session
                .select(wire, false)
                .await
                .during(|| format!("SELECT {:?} on the target", name.join("/")))?;
            self.selected = Some(wire.to_vec());
        }
        Ok(())
    }
}

/// Logs in as `mailbox`: a password login (as `mailbox*admin` when there is an admin), or
/// XOAUTH2 with the shared token, fetching a fresh token once if the server refuses it.
async fn log_in(
    s: &mut Session<Transport>,
    credentials: &Credentials,
    mailbox: &str,
) -> Result<(), UploadError> {
    match credentials {
        Credentials::Password {
            admin,
            secret,
            auth,
        } => {
            let user = match admin {
                Some(a) => format!("{mailbox}*{a}"),
                None => mailbox.to_owned(),
            };
            s.log_in(&user, secret, *auth)
                .await
                .during(|| format!("logging in to the target as {user}"))?;
        }
        Credentials::Bearer(tokens) => {
            let token_error = |e: crate::oauth2::TokenError| UploadError::Token(e.to_string());
            let token = tokens.token().await.map_err(token_error)?;
            match xoauth2(s, mailbox, token.secret()).await {
                Err(ImapError::AuthFailed { .. }) => {
                    // Revoked or expired early: one fresh token, then the refusal stands.
                    tokens.invalidate(&token).await;
                    let fresh = tokens.token().await.map_err(token_error)?;
                    xoauth2(s, mailbox, fresh.secret()).await
                }
                other => other,
            }
            .during(|| format!("AUTHENTICATE XOAUTH2 as {mailbox} on the target"))?;
        }
    }
    Ok(())
}

async fn xoauth2(
    s: &mut Session<Transport>,
    mailbox: &str,
    token: &SecretString,
) -> Result<(), ImapError> {
    s.log_in(mailbox, token, AuthChoice::Xoauth2)
        .await
        .map(drop)
}

impl Destination for ImapTarget {
    async fn folders(&mut self) -> Result<TargetFolders, UploadError> {
        let listed = self
            .session
            .list(b"", b"*")
            .await
            .during(|| "listing the target's folders".into())?;
        let delimiter = listed
            .iter()
            .find_map(|l| l.delimiter.as_deref()?.chars().next())
            .unwrap_or('/');
        self.delimiter = delimiter;
        let mut out = TargetFolders {
            delimiter,
            ..TargetFolders::default()
        };
        for entry in &listed {
            let Ok(name) = entry.decoded_name() else {
                continue;
            };
            let path: Vec<String> = name.split(delimiter).map(str::to_owned).collect();
            if let Some(role) = entry.special_use().and_then(Role::of_attribute) {
                out.roles.entry(role).or_insert_with(|| path.clone());
            }
            out.existing.insert(path);
        }
        Ok(out)
    }

    async fn create_folder(&mut self, path: &[String]) -> Result<(), UploadError> {
        let wire = self.wire(path);
        match self.session.create(&wire).await {
            Err(e) if e.code_name().as_deref() == Some("ALREADYEXISTS") => Ok(()),
            other => other.during(|| format!("creating folder {:?} on the target", path.join("/"))),
        }
    }

    async fn append(
        &mut self,
        folder: &[String],
        message: Outgoing,
    ) -> Result<Delivery, UploadError> {
        let wire = self.wire(folder);
        let name = || folder.join("/");
        let file = tokio::fs::File::from_std(message.blob);
        let flags: Vec<&str> = message.flags.iter().map(String::as_str).collect();
        let appended = self
            .session
            .append(
                &wire,
                &flags,
                message.internaldate.as_deref(),
                message.size,
                tokio::io::BufReader::new(file),
            )
            .await;
        let outcome = match appended {
            Ok(o) => o,
            Err(e) if refuses_message(&e) => {
                let words = e.status().map_or_else(|| e.to_string(), |s| s.to_string());
                return Ok(Delivery::Refused(words));
            }
            Err(e) => return Err(e).during(|| format!("APPEND to {:?}", name())),
        };
        let id = outcome
            .uid_validity
            .zip(outcome.uid)
            .map(|(v, u)| format!("{v}:{u}"));
        if self.store_flagged
            && is_flagged(&message.flags)
            && let Some(uid) = outcome.uid
        {
            self.select(&wire, folder).await?;
            self.session
                .uid_store(
                    &SequenceSet::from_uids([uid]),
                    "+FLAGS.SILENT",
                    &["\\Flagged"],
                )
                .await
                .during(|| format!("STORE \\Flagged in {:?}", name()))?;
        }
        Ok(Delivery::Stored(id))
    }

    async fn count_matching(
        &mut self,
        folder: &[String],
        item: &UploadItem,
    ) -> Result<u64, UploadError> {
        let wire = self.wire(folder);
        self.select(&wire, folder).await?;
        let name = || folder.join("/");
        if let Some(criteria) = item.message_id.as_deref().and_then(message_id_criteria) {
            let found = self
                .session
                .uid_search(&criteria)
                .await
                .during(|| format!("searching {:?} for a Message-ID", name()))?;
            return Ok(found.len() as u64);
        }
        // No usable Message-ID: the same size and the same INTERNALDATE to the second.
        let criteria = format!(
            "LARGER {} SMALLER {}",
            item.size.saturating_sub(1),
            item.size + 1
        );
        let candidates = self
            .session
            .uid_search(&criteria)
            .await
            .during(|| format!("searching {:?} by size", name()))?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let metas = self
            .session
            .uid_fetch_meta(&SequenceSet::from_uids(candidates), "(UID INTERNALDATE)")
            .await
            .during(|| format!("reading dates in {:?}", name()))?;
        Ok(metas
            .iter()
            .filter(|m| m.internal_date.as_ref().and_then(|d| d.unix) == item.internaldate_unix)
            .count() as u64)
    }

    fn append_limit(&self) -> Option<u64> {
        self.session.append_limit().and_then(AppendLimit::global)
    }

    async fn close(mut self) {
        let _ = self.session.logout().await;
    }
}

/// A refusal that concerns this message only (a `NO`, or a `BAD` that is not throttling):
/// the session goes on with the next one.
fn refuses_message(e: &ImapError) -> bool {
    matches!(e, ImapError::Rejected { status, .. }
        if matches!(status.status, Status::No | Status::Bad))
        && e.throttle_backoff().is_none()
}

/// `HEADER Message-ID "<id>"`, when the id is printable ASCII (else the size and date key
/// is used).
fn message_id_criteria(id: &str) -> Option<String> {
    if id.is_empty() || !id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let inner = id.trim_start_matches('<').trim_end_matches('>');
    let escaped = inner.replace('\\', "\\\\").replace('"', "\\\"");
    Some(format!("HEADER Message-ID \"<{escaped}>\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_criteria_quotes_and_refuses_non_ascii() {
        assert_eq!(
            message_id_criteria("abc@x.test").unwrap(),
            r#"HEADER Message-ID "<abc@x.test>""#
        );
        assert_eq!(
            message_id_criteria("<a\"b\\c@x>").unwrap(),
            r#"HEADER Message-ID "<a\"b\\c@x>""#
        );
        assert!(message_id_criteria("é@x").is_none());
        assert!(message_id_criteria("a\r\nb").is_none());
        assert!(message_id_criteria("").is_none());
    }
}
