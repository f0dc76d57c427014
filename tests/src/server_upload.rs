//! Uploads into any harness server ([`TestServer`]): how its admin writes into a user's
//! mailbox, and what a user's mailbox holds afterwards, read back over IMAP as that user with
//! neutral folder paths (personal namespace prefix removed, levels joined by `/`).

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use mailstage::imap::datetime;
use mailstage::imap::mutf7;
use mailstage::login::AuthChoice;
use mailstage::stage::BlobHash;
use mailstage::upload::Credentials;
use secrecy::SecretString;

use crate::probe::flag_set;
use crate::servers::{ADMIN, ADMIN_PASSWORD, TestServer};
use crate::upload::Seen;

/// A user's mailbox as read back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerMailbox {
    /// Every folder's neutral path, empty ones included.
    pub folders: BTreeSet<String>,
    /// Every message per folder path, sorted.
    pub messages: std::collections::BTreeMap<String, Vec<Seen>>,
    /// Wire names of folders (other than INBOX) that lie outside the personal namespace
    /// prefix: none is expected.
    pub outside_prefix: Vec<String>,
}

impl TestServer {
    /// How the admin writes into each mailbox as an upload target: Dovecot's master user and
    /// Cyrus's admin as `mailbox*mailadmin` (SASL PLAIN with authzid), Courier's administrator
    /// as itself under the user root `/#shared/{user}`.
    pub fn target_credentials(&self) -> Credentials {
        let user_root = matches!(self, TestServer::Courier(_)).then(|| "/#shared/{user}".into());
        Credentials::Password {
            admin: Some(ADMIN.into()),
            user_root,
            secret: SecretString::from(ADMIN_PASSWORD.to_owned()),
            auth: AuthChoice::Auto,
        }
    }

    /// What `user`'s mailbox holds, read as `user`.
    pub fn mailbox(&self, user: &str) -> Result<ServerMailbox> {
        let mut probe = self.login(user)?;
        let mut out = ServerMailbox::default();
        let prefix = self.personal_prefix();
        for entry in probe.list()? {
            if entry
                .flags
                .iter()
                .any(|a| a.eq_ignore_ascii_case("\\Noselect"))
            {
                continue;
            }
            let own = if entry.name.eq_ignore_ascii_case("INBOX") {
                "INBOX"
            } else if let Some(rest) = entry.name.strip_prefix(prefix) {
                rest
            } else {
                out.outside_prefix.push(entry.name.clone());
                continue;
            };
            let decoded = mutf7::decode(own).with_context(|| entry.name.clone())?;
            let path = decoded.replace(self.delimiter(), "/");
            probe.examine(&entry.name)?;
            let mut seen = Vec::new();
            for uid in probe.uids()? {
                let body = probe.fetch_body(uid)?;
                let (flags, date) = probe.fetch_flags_date(uid)?;
                let flags: Vec<&String> = flags.iter().filter(|f| *f != "\\Recent").collect();
                seen.push((
                    BlobHash::of(&body),
                    flag_set(&flags),
                    datetime::parse(&date).map(|(unix, _)| unix),
                ));
            }
            seen.sort();
            ensure!(
                out.folders.insert(path.clone()),
                "{}: {user} lists {path:?} twice",
                self.kind()
            );
            out.messages.insert(path, seen);
        }
        probe.logout()?;
        Ok(out)
    }
}
