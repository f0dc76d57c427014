//! The IMAP transport: APPEND into a target mailbox (Microsoft 365 with XOAUTH2, or any
//! IMAP server with a password), with the look-ups exactly-once needs (by resume key:
//! `HEADER Message-ID`, or a date window, INTERNALDATE and the decoded header fields).

use std::collections::BTreeSet;

use secrecy::SecretString;

use super::destination::{Credentials, Delivery, Destination, Outgoing};
use super::fingerprint::{FIELDS, HeaderFingerprint};
use super::key::ResumeKey;
use super::mapping::{Role, TargetFolders};
use super::{UploadError, is_flagged};
use crate::imap::mutf7;
use crate::imap::transport::{ConnectOptions, Transport, connect};
use crate::imap::{
    AppendLimit, During as _, ImapError, ImapStepError, SequenceSet, Session, SessionConfig,
    Status, datetime,
};
use crate::login::AuthChoice;

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
        // Every connection needs the hierarchy delimiter, not only the one that lists the
        // folders: `LIST "" ""` names it without listing anything.
        let delimiter = session
            .hierarchy_delimiter()
            .await
            .during(|| "asking the target for its hierarchy delimiter".into())?
            .unwrap_or('/');
        Ok(Self {
            session,
            delimiter,
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

    /// The UIDs in the selected folder whose INTERNALDATE is `unix` to the second: a SEARCH
    /// by a three-day window, then the candidates' INTERNALDATE.
    async fn uids_at(&mut self, unix: i64, name: &str) -> Result<Vec<u32>, UploadError> {
        let candidates = self
            .session
            .uid_search(&date_window_criteria(unix))
            .await
            .during(|| format!("searching {name:?} by date"))?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let metas = self
            .session
            .uid_fetch_meta(&SequenceSet::from_uids(candidates), "(UID INTERNALDATE)")
            .await
            .during(|| format!("reading dates in {name:?}"))?;
        Ok(metas
            .iter()
            .filter(|m| m.internal_date.as_ref().and_then(|d| d.unix) == Some(unix))
            .filter_map(|m| m.uid)
            .collect())
    }

    /// How many of these UIDs (in the selected folder) have a Subject, Date and From that
    /// `fingerprint` matches.
    async fn count_same_headers(
        &mut self,
        uids: Vec<u32>,
        fingerprint: &HeaderFingerprint,
        internaldate: i64,
        name: &str,
    ) -> Result<u64, UploadError> {
        if uids.is_empty() {
            return Ok(0);
        }
        let fetched = self
            .session
            .uid_fetch_header_fields(&SequenceSet::from_uids(uids), &FIELDS)
            .await
            .during(|| format!("reading headers in {name:?}"))?;
        // Unsolicited FETCH responses (flag changes) carry no header; a UID counts once.
        let matching: BTreeSet<u32> = fetched
            .iter()
            .filter_map(|m| Some((m.uid?, m.header.as_deref()?)))
            .filter(|(_, h)| fingerprint.matches(&HeaderFingerprint::of_header(h), internaldate))
            .map(|(uid, _)| uid)
            .collect();
        Ok(matching.len() as u64)
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
            crate::login::log_in(s, &user, secret, *auth)
                .await
                .during(|| format!("logging in to the target as {user}"))?;
        }
        Credentials::Bearer(tokens) => {
            // What is stored in upload_runs.last_error: the code, never a server's echo.
            let token_error = |e: crate::oauth2::TokenError| UploadError::Token(e.for_record());
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
    crate::login::log_in(s, mailbox, token, AuthChoice::Xoauth2)
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
            other => other
                .during(|| format!("creating folder {:?} on the target", path.join("/")))
                .map_err(UploadError::from),
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
            Err(e) => Err(e).during(|| format!("APPEND to {:?}", name()))?,
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
        key: &ResumeKey,
    ) -> Result<u64, UploadError> {
        let wire = self.wire(folder);
        match self.select(&wire, folder).await {
            Err(
                refused @ UploadError::Imap(ImapStepError {
                    source: ImapError::Rejected { .. },
                    ..
                }),
            ) => {
                // Only a folder that is gone (deleted on the target) holds nothing; a server
                // that cannot open it now (busy, unavailable) must not make it look empty.
                let listed = self.session.list(b"", &wire).await.during(|| {
                    format!("looking for folder {:?} on the target", folder.join("/"))
                })?;
                return if listed.is_empty() {
                    Ok(0)
                } else {
                    Err(refused)
                };
            }
            other => other?,
        }
        let name = folder.join("/");
        match key {
            ResumeKey::MessageId(id) => {
                let found = self
                    .session
                    .uid_search(&message_id_criteria(id))
                    .await
                    .during(|| format!("searching {name:?} for a Message-ID"))?;
                Ok(found.len() as u64)
            }
            ResumeKey::Headers {
                internaldate,
                fingerprint,
            } => {
                let same_second = self.uids_at(*internaldate, &name).await?;
                self.count_same_headers(same_second, fingerprint, *internaldate, &name)
                    .await
            }
        }
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

/// `HEADER Message-ID "<id>"` for a usable (printable ASCII) id.
fn message_id_criteria(id: &str) -> String {
    let inner = id.trim_start_matches('<').trim_end_matches('>');
    let escaped = inner.replace('\\', "\\\\").replace('"', "\\\"");
    format!("HEADER Message-ID \"<{escaped}>\"")
}

/// `SINCE <day before> BEFORE <day after next>` around a moment: SEARCH compares dates in
/// the server's zone, so three days catch the moment's day wherever the server is.
fn date_window_criteria(unix: i64) -> String {
    let day = unix.div_euclid(86_400);
    format!(
        "SINCE {} BEFORE {}",
        datetime::search_date(day - 1),
        datetime::search_date(day + 2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_criteria_quote() {
        assert_eq!(
            message_id_criteria("abc@x.test"),
            r#"HEADER Message-ID "<abc@x.test>""#
        );
        assert_eq!(
            message_id_criteria("<a\"b\\c@x>"),
            r#"HEADER Message-ID "<a\"b\\c@x>""#
        );
    }

    #[test]
    fn the_date_window_spans_the_day_before_to_the_day_after() {
        // 2024-01-02 10:00:00 UTC
        assert_eq!(
            date_window_criteria(1_704_189_600),
            "SINCE 1-Jan-2024 BEFORE 4-Jan-2024"
        );
        assert_eq!(
            date_window_criteria(-1),
            "SINCE 30-Dec-1969 BEFORE 2-Jan-1970"
        );
    }
}
