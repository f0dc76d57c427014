//! The IMAP transport: APPEND into a target mailbox (Microsoft 365 with XOAUTH2, or any
//! IMAP server with a password), with the look-ups exactly-once needs (by resume key:
//! `HEADER Message-ID`, or a date window, INTERNALDATE and the decoded header fields).

use std::collections::BTreeSet;

use secrecy::SecretString;

use super::UploadError;
use super::destination::{Credentials, Delivery, Destination, Matching, Outgoing};
use super::fingerprint::{FIELDS, HeaderFingerprint};
use super::home::Home;
use super::key::ResumeKey;
use super::mapping::{Role, TargetFolders};
use super::refusal::{self, Scope};
use crate::imap::transport::{ConnectOptions, Transport, connect};
use crate::imap::{
    AppendLimit, During as _, ImapError, ImapStepError, SequenceSet, Session, SessionConfig,
    datetime,
};
use crate::login::AuthChoice;

/// A logged-in session with one target mailbox.
pub struct ImapTarget {
    pub(super) session: Session<Transport>,
    /// Where the mailbox's folders are: under the personal namespace prefix or a user root.
    home: Home,
    /// Microsoft 365: `\Flagged` given to APPEND is dropped, so it is set by a STORE after.
    pub(super) store_flagged: bool,
    /// The folder currently SELECTed (wire name) and its UIDVALIDITY.
    selected: Option<(Vec<u8>, u32)>,
    /// APPENDs sent and not answered yet, oldest first.
    pub(super) unanswered: Vec<super::imap_append::Unanswered>,
    /// Answers already known (an APPEND sent one at a time), oldest first.
    pub(super) answered: std::collections::VecDeque<super::imap_append::Answer>,
    /// Set (for every connection to this target in the run) once the target refused a
    /// literal sent without waiting for `+`, though it announced LITERAL+ or LITERAL-.
    pub(super) synchronizing_only: SynchronizingOnly,
}

/// Shared by the connections of one run to one target: literals must wait for `+`.
pub type SynchronizingOnly = std::sync::Arc<std::sync::atomic::AtomicBool>;

impl ImapTarget {
    /// Connects and logs in as `mailbox`.
    pub async fn open(
        connect_to: &ConnectOptions,
        credentials: &Credentials,
        mailbox: &str,
        m365: bool,
        read_timeout: std::time::Duration,
        synchronizing_only: SynchronizingOnly,
    ) -> Result<Self, UploadError> {
        let at = format!("{}:{}", connect_to.host, connect_to.port);
        let config = SessionConfig {
            read_timeout: Some(read_timeout),
            ..SessionConfig::default()
        };
        let mut session = connect(connect_to, config)
            .await
            .during(|| format!("connecting to the target {at}"))?;
        if synchronizing_only.load(std::sync::atomic::Ordering::Relaxed) {
            session.use_synchronizing_literals();
        }
        log_in(&mut session, credentials, mailbox).await?;
        // Every connection needs the hierarchy delimiter, not only the one that lists the
        // folders: `LIST "" ""` names it without listing anything.
        // (Asked with a literal that does not wait for `+`, where announced: a target that
        // refuses it gets synchronising literals on every connection of the run.)
        let (delimiter, literals_work) = session
            .hierarchy_delimiter_checking_literals()
            .await
            .during(|| "asking the target for its hierarchy delimiter".into())?;
        if !literals_work {
            synchronizing_only.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let delimiter = delimiter.unwrap_or('/');
        let home = match credentials {
            Credentials::Password {
                user_root: Some(root),
                ..
            } => Home::under_root(delimiter, &user_root_of(root, mailbox)),
            // Exchange's personal namespace is the top (`"" "/"`): no round trip to ask.
            _ if m365 => Home::top(delimiter),
            _ if session.has_capability("NAMESPACE") => match session.namespace().await {
                Ok(ns) => Home::from_namespaces(delimiter, &ns),
                Err(source) if source.is_transient() => {
                    let context = "asking the target for its namespaces".into();
                    return Err(ImapStepError { context, source }.into());
                }
                Err(e) => {
                    tracing::warn!(%mailbox, "the target refused NAMESPACE ({e}); folders go to the top of its hierarchy");
                    Home::top(delimiter)
                }
            },
            _ => Home::top(delimiter),
        };
        Ok(Self {
            session,
            home,
            store_flagged: m365,
            selected: None,
            unanswered: Vec::new(),
            answered: std::collections::VecDeque::new(),
            synchronizing_only,
        })
    }

    pub(super) fn wire(&self, path: &[String]) -> Vec<u8> {
        self.home.wire(path)
    }

    /// SELECTs a folder unless it is selected already; returns its UIDVALIDITY.
    async fn select(&mut self, wire: &[u8], name: &[String]) -> Result<u32, UploadError> {
        match &self.selected {
            Some((w, validity)) if w == wire => Ok(*validity),
            _ => {
                self.selected = None;
                let info = self
                    .session
                    .select(wire, false)
                    .await
                    .during(|| format!("SELECT {:?} on the target", name.join("/")))?;
                self.selected = Some((wire.to_vec(), info.uid_validity));
                Ok(info.uid_validity)
            }
        }
    }

    /// `UID STORE +FLAGS.SILENT (\Flagged)` on one message of the selected folder.
    async fn store_flagged(&mut self, uid: u32, name: &[String]) -> Result<(), UploadError> {
        self.session
            .uid_store(
                &SequenceSet::from_uids([uid]),
                "+FLAGS.SILENT",
                &["\\Flagged"],
            )
            .await
            .during(|| format!("STORE \\Flagged in {:?}", name.join("/")))?;
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

    /// Those of these UIDs (in the selected folder) that have a Subject, Date and From that
    /// `fingerprint` matches.
    async fn same_headers(
        &mut self,
        uids: Vec<u32>,
        fingerprint: &HeaderFingerprint,
        internaldate: i64,
        name: &str,
    ) -> Result<Vec<u32>, UploadError> {
        if uids.is_empty() {
            return Ok(Vec::new());
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
        Ok(matching.into_iter().collect())
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
            user_root,
        } => {
            let user = match (admin, user_root) {
                // The admin reads and writes the mailbox under its user root as itself.
                (Some(a), Some(_)) => a.clone(),
                (Some(a), None) => format!("{mailbox}*{a}"),
                (None, _) => mailbox.to_owned(),
            };
            crate::login::log_in(s, &user, secret, *auth)
                .await
                .during(|| format!("logging in to the target as {user}"))?;
        }
        Credentials::Bearer(tokens) => {
            // What is stored in upload_runs.last_error: the code, never a server's echo.
            // An outage of the token endpoint mid-run (its own retries spent) passes: the
            // mailbox reconnects later rather than fail.
            let token_error = |e: crate::oauth2::TokenError| {
                if e.is_transient() {
                    UploadError::TokenForNow(e.for_record())
                } else {
                    UploadError::Token(e.for_record())
                }
            };
            let token = tokens.token().await.map_err(token_error)?;
            match xoauth2(s, mailbox, token.secret()).await {
                // A throttle or "not now" says nothing of the token: keep it (a fresh one per
                // throttled login would hammer the token endpoint); the reconnect waits.
                Err(e @ ImapError::AuthFailed { .. }) if e.is_passing_refusal() => Err(e),
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
            .list(b"", &self.home.list_pattern())
            .await
            .during(|| "listing the target's folders".into())?;
        if let Some(d) = listed
            .iter()
            .find_map(|l| l.delimiter.as_deref()?.chars().next())
        {
            self.home.set_delimiter(d);
        }
        let mut out = TargetFolders {
            delimiter: self.home.delimiter(),
            ..TargetFolders::default()
        };
        for entry in &listed {
            // Other users' and shared folders are not the mailbox's own.
            let Some(path) = self.home.path(&entry.name) else {
                continue;
            };
            if let Some(role) = entry.special_use().and_then(Role::of_attribute) {
                out.roles.entry(role).or_insert_with(|| path.clone());
            }
            out.existing.insert(path);
        }
        Ok(out)
    }

    async fn create_folder(&mut self, path: &[String]) -> Result<Option<String>, UploadError> {
        let wire = self.wire(path);
        match self.session.create(&wire).await {
            Ok(()) => Ok(None),
            // Exchange says it without the code ("NO Mailbox already exists."), also for a
            // name that differs only in case from an existing folder.
            Err(e)
                if e.code_name().as_deref() == Some("ALREADYEXISTS")
                    || e.status().is_some_and(|s| {
                        s.text.to_ascii_lowercase().contains("already exists")
                    }) =>
            {
                Ok(None)
            }
            Err(e) => match refusal::scope(&e) {
                Some(Scope::Mailbox) => Err(full(&e)),
                Some(Scope::Passing) => Err(UploadError::TryAgain(words_of(&e))),
                Some(_) => Ok(Some(words_of(&e))),
                None => Err(e)
                    .during(|| format!("creating folder {:?} on the target", path.join("/")))
                    .map_err(UploadError::from),
            },
        }
    }

    async fn start_append(
        &mut self,
        folder: &[String],
        message: Outgoing,
        ticket: u64,
    ) -> Result<(), UploadError> {
        self.start(folder, message, ticket).await
    }

    fn sends_ahead(&self, size: u64) -> bool {
        self.session.append_pipelines(size)
    }

    async fn answer(&mut self) -> Result<(u64, Result<Delivery, UploadError>), UploadError> {
        self.next_answer().await
    }

    async fn folder_marks(
        &mut self,
        folders: &[Vec<String>],
    ) -> Result<Vec<Option<(u32, u32)>>, UploadError> {
        let wires: Vec<Vec<u8>> = folders.iter().map(|f| self.wire(f)).collect();
        let answers = self
            .session
            .status_many(&wires, &["UIDNEXT", "MESSAGES"])
            .await
            .during(|| "asking the target how the folders of messages in flight grow".into())?;
        folders
            .iter()
            .zip(answers)
            .map(|(folder, answer)| match answer {
                Ok(s) => Ok(s.uid_next.zip(s.messages)),
                // A refusal (folder gone, STATUS not allowed there) says nothing of its growth.
                Err(e @ ImapError::Rejected { .. }) if !e.is_transient() => Ok(None),
                Err(source) => Err(ImapStepError {
                    context: format!("asking the target how folder {:?} grows", folder.join("/")),
                    source,
                }
                .into()),
            })
            .collect()
    }

    async fn matching(
        &mut self,
        folder: &[String],
        key: &ResumeKey,
    ) -> Result<Matching, UploadError> {
        let wire = self.wire(folder);
        let uid_validity = match self.select(&wire, folder).await {
            Err(
                refused @ UploadError::Imap(ImapStepError {
                    source: ImapError::Rejected { .. },
                    ..
                }),
            ) if !refused.is_transient() => {
                // (A throttled SELECT is not a refusal: the link is gone, reconnect.)
                // Only a folder that is gone (deleted on the target) holds nothing; a server
                // that cannot open it now (busy, unavailable) must not make it look empty.
                let listed = self.session.list(b"", &wire).await.during(|| {
                    format!("looking for folder {:?} on the target", folder.join("/"))
                })?;
                return if listed.is_empty() {
                    Ok(Matching::default())
                } else {
                    Err(refused)
                };
            }
            other => other?,
        };
        let name = folder.join("/");
        let mut uids = match key {
            ResumeKey::MessageId(id) => self
                .session
                .uid_search(&message_id_criteria(id))
                .await
                .during(|| format!("searching {name:?} for a Message-ID"))?,
            ResumeKey::Headers {
                internaldate,
                fingerprint,
            } => {
                let same_second = self.uids_at(*internaldate, &name).await?;
                self.same_headers(same_second, fingerprint, *internaldate, &name)
                    .await?
            }
        };
        uids.sort_unstable();
        uids.dedup();
        Ok(Matching { uid_validity, uids })
    }

    async fn set_flagged(
        &mut self,
        folder: &[String],
        id: &str,
    ) -> Result<Option<String>, UploadError> {
        if id == super::imap_append::NO_APPENDUID {
            return Ok(Some(
                "the target's answer to its APPEND carried no APPENDUID, so \\Flagged cannot \
                 be set by its UID: set it by hand"
                    .into(),
            ));
        }
        let Some((validity, uid)) = parse_target_id(id) else {
            return Ok(Some(format!("the target's id {id:?} names no message")));
        };
        let wire = self.wire(folder);
        let now = match self.select(&wire, folder).await {
            Err(e) => return refusal_words(e).map(Some),
            Ok(v) => v,
        };
        if validity != 0 && now != validity {
            return Ok(Some(format!(
                "the target folder {:?} was re-created (UIDVALIDITY {validity} is now {now}); \\Flagged not set",
                folder.join("/")
            )));
        }
        match self.store_flagged(uid, folder).await {
            Err(e) => refusal_words(e).map(Some),
            Ok(()) => Ok(None),
        }
    }

    fn append_limit(&self) -> Option<u64> {
        self.session.append_limit().and_then(AppendLimit::global)
    }

    async fn close(mut self) {
        let _ = self.session.logout().await;
    }
}

/// The user root of one target mailbox: `{user}` in the target's setting stands for it.
fn user_root_of(pattern: &str, mailbox: &str) -> String {
    pattern.replace("{user}", mailbox)
}

/// The server's words in a refusal: its tagged status as on the wire.
pub(super) fn words_of(e: &ImapError) -> String {
    e.status().map_or_else(|| e.to_string(), |s| s.to_string())
}

/// The error for a refusal that says the target mailbox is full.
fn full(e: &ImapError) -> UploadError {
    UploadError::TargetFull {
        words: words_of(e),
        messages: 0,
        bytes: 0,
    }
}

/// The server's words when it answered a command with a NO or BAD that is not a throttle
/// (the command was refused for good); any other error is handed back.
fn refusal_words(e: UploadError) -> Result<String, UploadError> {
    match &e {
        UploadError::Imap(step)
            if refusal::scope(&step.source).is_some_and(|s| s != Scope::Passing) =>
        {
            Ok(words_of(&step.source))
        }
        _ => Err(e),
    }
}

/// `uidvalidity:uid` as recorded for a stored message.
fn parse_target_id(id: &str) -> Option<(u32, u32)> {
    let (validity, uid) = id.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok().filter(|&u| u > 0)?))
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
    fn target_ids_parse_or_name_nothing() {
        assert_eq!(parse_target_id("7:42"), Some((7, 42)));
        assert_eq!(parse_target_id("0:3"), Some((0, 3)));
        assert_eq!(parse_target_id("7:0"), None);
        assert_eq!(parse_target_id("7"), None);
        assert_eq!(parse_target_id("x:1"), None);
    }

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
