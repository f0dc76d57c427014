//! One face for every harness server, so a test can run against Dovecot, Cyrus (both
//! hierarchy settings) and Courier alike: start one with users and an admin, fill folders by
//! APPEND, read the server's copy back through the [`Probe`], and log in as an admin would.
//!
//! Folder paths here are neutral: UTF-8 names joined by `/`, without any namespace prefix
//! (`INBOX`, `Projects/2024/Q1`). [`TestServer::wire`] turns one into the server's name
//! (prefix, delimiter, modified UTF-7) and [`TestServer::staged_name`] into the name the
//! extractor records.

use std::fmt;

use anyhow::{Context, Result, bail};
use mailstage::imap::mutf7;

use crate::courier::Courier;
use crate::cyrus::Cyrus;
use crate::dovecot::Dovecot;
use crate::extraction::TestMailbox;
use crate::probe::{Probe, imap_date};

/// Every user's password is `{user}-pw`; the admin is `mailadmin` / this password.
pub const ADMIN_PASSWORD: &str = "mailadmin-pw";
/// The admin's login name on every server.
pub const ADMIN: &str = "mailadmin";

/// Which server, and for Cyrus which hierarchy settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Dovecot 2.3 with a master user (delimiter `/`).
    Dovecot,
    /// Cyrus 3.6 with `unixhierarchysep: yes` and `altnamespace: yes`.
    CyrusUnix,
    /// Cyrus 3.6 with both `no` (delimiter `.`, personal folders under `INBOX.`).
    CyrusNetnews,
    /// Courier-IMAP 5 (delimiter `.`, personal folders under `INBOX.`, no CONDSTORE).
    Courier,
}

impl Kind {
    /// Every kind, for parametrized tests.
    pub const ALL: [Kind; 4] = [
        Kind::Dovecot,
        Kind::CyrusUnix,
        Kind::CyrusNetnews,
        Kind::Courier,
    ];
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Dovecot => "Dovecot",
            Kind::CyrusUnix => "Cyrus (unixhierarchysep, altnamespace)",
            Kind::CyrusNetnews => "Cyrus (no unixhierarchysep, no altnamespace)",
            Kind::Courier => "Courier-IMAP",
        })
    }
}

/// A running harness server of any kind.
#[derive(Debug)]
pub enum TestServer {
    /// A private Dovecot.
    Dovecot(Dovecot),
    /// A private Cyrus.
    Cyrus(Cyrus, Kind),
    /// A private Courier-IMAP.
    Courier(Courier),
}

/// How an admin logs in to read a user's mailbox: the batch CSV's `UserName`, `Password`
/// and `UserRoot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminLogin {
    /// `UserName`.
    pub login: String,
    /// `Password`.
    pub password: String,
    /// `UserRoot`.
    pub user_root: Option<String>,
}

impl AdminLogin {
    /// `email`'s mailbox read by this admin login.
    pub fn mailbox<'a>(&'a self, email: &'a str) -> TestMailbox<'a> {
        TestMailbox {
            email,
            login: &self.login,
            password: &self.password,
            user_root: self.user_root.as_deref(),
        }
    }
}

impl TestServer {
    /// Starts a server of `kind` with `users` (password `{user}-pw`) and the admin.
    pub fn start(kind: Kind, users: &[&str]) -> Result<Self> {
        let password = |u: &str| format!("{u}-pw");
        let server = match kind {
            Kind::Dovecot => {
                let mut b = Dovecot::builder().master_user(ADMIN, ADMIN_PASSWORD);
                for u in users {
                    b = b.user(u, &password(u));
                }
                TestServer::Dovecot(b.start()?)
            }
            Kind::CyrusUnix | Kind::CyrusNetnews => {
                let mut b = Cyrus::builder()
                    .admin(ADMIN, ADMIN_PASSWORD)
                    .unix_hierarchy(kind == Kind::CyrusUnix);
                for u in users {
                    b = b.user(u, &password(u));
                }
                TestServer::Cyrus(b.start()?, kind)
            }
            Kind::Courier => {
                let mut b = Courier::builder();
                for u in users {
                    b = b.user(u, &password(u));
                }
                TestServer::Courier(b.start()?)
            }
        };
        Ok(server)
    }

    /// Which server this is.
    pub fn kind(&self) -> Kind {
        match self {
            TestServer::Dovecot(_) => Kind::Dovecot,
            TestServer::Cyrus(_, kind) => *kind,
            TestServer::Courier(_) => Kind::Courier,
        }
    }

    /// The plain IMAP port.
    pub fn port(&self) -> u16 {
        match self {
            TestServer::Dovecot(d) => d.port(),
            TestServer::Cyrus(c, _) => c.port(),
            TestServer::Courier(c) => c.port(),
        }
    }

    /// The hierarchy delimiter.
    pub fn delimiter(&self) -> char {
        match self {
            TestServer::Dovecot(_) => '/',
            TestServer::Cyrus(c, _) => c.delimiter(),
            TestServer::Courier(_) => '.',
        }
    }

    /// The personal namespace prefix (`INBOX.` on Courier and Cyrus without altnamespace).
    pub fn personal_prefix(&self) -> &'static str {
        match self {
            TestServer::Dovecot(_) => "",
            TestServer::Cyrus(c, _) => c.personal_prefix(),
            TestServer::Courier(_) => "INBOX.",
        }
    }

    /// Whether the neutral `path` can exist here (no name part holds the delimiter).
    pub fn holds(&self, path: &str) -> bool {
        !path.contains(self.delimiter()) || self.delimiter() == '/'
    }

    /// The wire name of the neutral `path` for its owner: INBOX stays INBOX, anything else
    /// gets the personal prefix and the server's delimiter, in modified UTF-7.
    pub fn wire(&self, path: &str) -> String {
        if path.eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        let joined = path.replace('/', &self.delimiter().to_string());
        mutf7::encode(&format!("{}{joined}", self.personal_prefix()))
    }

    /// The folder name the extractor records for the neutral `path`: the server's delimiter,
    /// no namespace prefix.
    pub fn staged_name(&self, path: &str) -> String {
        path.replace('/', &self.delimiter().to_string())
    }

    /// A probe logged in as `user` (password `{user}-pw`).
    pub fn login(&self, user: &str) -> Result<Probe> {
        let mut probe = Probe::connect(self.port())?;
        probe
            .login(user, &format!("{user}-pw"))?
            .ok()
            .with_context(|| format!("{}: LOGIN {user}", self.kind()))?;
        Ok(probe)
    }

    /// How the admin reads `user`'s mailbox: Dovecot's master user (`user*mailadmin`),
    /// Cyrus's admin by SASL PLAIN with authzid (`user*mailadmin`), Courier's administrator
    /// through the virtual shared folders (`UserRoot` `/#shared/user`).
    pub fn admin_login(&self, user: &str) -> AdminLogin {
        let (login, user_root) = match self {
            TestServer::Dovecot(_) | TestServer::Cyrus(..) => (format!("{user}*{ADMIN}"), None),
            TestServer::Courier(_) => (ADMIN.to_owned(), Some(format!("/#shared/{user}"))),
        };
        AdminLogin {
            login,
            password: ADMIN_PASSWORD.into(),
            user_root,
        }
    }

    /// Creates the neutral `path` (and any parent the server needs) as `user`.
    pub fn create_folder(&self, user: &str, path: &str) -> Result<()> {
        let mut probe = self.login(user)?;
        let r = probe.command(&format!("CREATE {}", crate::probe::quote(&self.wire(path))))?;
        if !r.is_ok() && !r.text.to_ascii_uppercase().contains("ALREADYEXISTS") {
            bail!(
                "{}: CREATE {path} as {user}: {} {}",
                self.kind(),
                r.status,
                r.text
            );
        }
        probe.logout()
    }

    /// APPENDs `bytes` to `user`'s `path` with `flags` and INTERNALDATE `unix_date`. Returns
    /// `Ok(false)` when the server refuses the message (NO), e.g. Cyrus and bare LF or NUL.
    pub fn append(
        &self,
        user: &str,
        path: &str,
        flags: &[&str],
        unix_date: i64,
        bytes: &[u8],
    ) -> Result<bool> {
        let mut probe = self.login(user)?;
        let date = imap_date(unix_date);
        let outcome = match probe.append(&self.wire(path), flags, Some(&date), bytes) {
            Ok(_) => true,
            Err(e) if e.to_string().starts_with("IMAP NO") => false,
            Err(e) => return Err(e.context(format!("{}: APPEND to {path}", self.kind()))),
        };
        probe.logout()?;
        Ok(outcome)
    }

    /// The server's copy of every message in `user`'s `path`: (UID, `BODY[]` bytes).
    pub fn messages(&self, user: &str, path: &str) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut probe = self.login(user)?;
        probe.examine(&self.wire(path))?;
        let mut out = Vec::new();
        for uid in probe.uids()? {
            out.push((uid, probe.fetch_body(uid)?));
        }
        probe.logout()?;
        Ok(out)
    }

    /// Sets `flags` (replacing the old ones) on message `uid` of `user`'s `path`.
    pub fn set_flags(&self, user: &str, path: &str, uid: u32, flags: &[&str]) -> Result<()> {
        let mut probe = self.login(user)?;
        probe.select(&self.wire(path))?;
        probe
            .command(&format!("UID STORE {uid} FLAGS ({})", flags.join(" ")))?
            .ok()?;
        probe.logout()
    }

    /// Expunges message `uid` of `user`'s `path` (STORE `\Deleted`, then EXPUNGE).
    pub fn expunge(&self, user: &str, path: &str, uid: u32) -> Result<()> {
        let mut probe = self.login(user)?;
        probe.select(&self.wire(path))?;
        probe
            .command(&format!("UID STORE {uid} +FLAGS (\\Deleted)"))?
            .ok()?;
        probe.command("EXPUNGE")?.ok()?;
        probe.logout()
    }

    /// The flags of every message in `user`'s `path`, by UID, without `\Recent`.
    pub fn flags(&self, user: &str, path: &str) -> Result<Vec<(u32, Vec<String>)>> {
        let mut probe = self.login(user)?;
        probe.examine(&self.wire(path))?;
        let mut out = Vec::new();
        for uid in probe.uids()? {
            let (flags, _) = probe.fetch_flags_date(uid)?;
            let mut set: Vec<String> = crate::probe::flag_set(&flags).into_iter().collect();
            set.sort();
            out.push((uid, set));
        }
        probe.logout()?;
        Ok(out)
    }
}
