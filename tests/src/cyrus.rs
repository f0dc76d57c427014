//! A private Cyrus IMAP 3.6 instance per test (or per test binary).
//!
//! `scripts/setup.sh` installs Cyrus's dependencies with apt (`cyrus-common` brings `master`,
//! `sasl2-bin` brings `saslpasswd2`) and unpacks the `cyrus-imapd` package, which conflicts
//! with Dovecot in apt, into [`crate::servers_dir`] (`usr/lib/cyrus/bin/imapd`).
//!
//! Everything lives in one temp dir:
//!
//! ```text
//! DIR/imapd.conf     configdirectory, partition, sockets, admins, SASL (auxprop sasldb),
//!                    unixhierarchysep and altnamespace
//! DIR/cyrus.conf     one SERVICE: imapd on 127.0.0.1:PORT
//! DIR/sasldb2        the users' passwords (saslpasswd2)
//! DIR/conf, spool    Cyrus's databases and mail
//! ```
//!
//! The admin (`admins:`) creates `user/NAME` (`user.NAME`) for every user at start; it logs
//! in as a user by SASL PLAIN with the user as authorization identity. Cyrus must run as root
//! (its `master` drops to the `cyrus` user, which owns the directory) and logs to syslog only.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::probe::Probe;
use crate::process::{await_greeting, free_port, is_root, stop_group};
use crate::servers_dir;

/// Cyrus's `master` (package cyrus-common).
pub const CYRUS_MASTER: &str = "/usr/lib/cyrus/bin/master";
/// How long a start waits for the greeting.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at starting when the picked port turns out to be taken.
const START_ATTEMPTS: usize = 3;

/// Options of a [`Cyrus`] before it starts. Get one from [`Cyrus::builder`].
#[derive(Clone, Debug)]
pub struct CyrusBuilder {
    users: Vec<(String, String)>,
    admin: (String, String),
    unix_separator: bool,
}

impl CyrusBuilder {
    /// Adds a mail user with a password; its `user/NAME` mailbox is created at start.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Adds a SASL account with no mailbox (an admin login into it finds no INBOX).
    pub fn admin(mut self, name: &str, password: &str) -> Self {
        self.admin = (name.into(), password.into());
        self
    }

    /// `unixhierarchysep: yes` and `altnamespace: yes` (delimiter `/`, personal folders at
    /// the top, others under `Other Users/`) when true; both `no` (delimiter `.`, personal
    /// folders under `INBOX.`, others under `user.`) when false.
    pub fn unix_hierarchy(mut self, on: bool) -> Self {
        self.unix_separator = on;
        self
    }

    /// Writes the config and the SASL database, starts `master` on a free loopback port,
    /// waits for the greeting and creates every user's mailbox.
    pub fn start(self) -> Result<Cyrus> {
        ensure!(
            is_root(),
            "the Cyrus harness runs as root (master drops to the cyrus user)"
        );
        let imapd = servers_dir().join("usr/lib/cyrus/bin/imapd");
        ensure!(
            imapd.exists(),
            "{} is missing: run scripts/setup.sh",
            imapd.display()
        );
        for (name, pass) in self.users.iter().chain([&self.admin]) {
            ensure!(
                !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !pass.contains('\n'),
                "user {name:?} must be plain ASCII letters and digits"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("mailstage-cyrus-")
            .tempdir()?;
        let root = dir.path();
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
        for sub in ["conf", "spool", "run/socket", "run/proc", "run/lock"] {
            fs::create_dir_all(root.join(sub))?;
        }
        for (name, pass) in self.users.iter().chain([&self.admin]) {
            set_password(root, name, pass)?;
        }
        fs::write(root.join("imapd.conf"), self.imapd_conf(root))?;
        let status = Command::new("chown")
            .args(["-R", "cyrus:mail"])
            .arg(root)
            .status()?;
        ensure!(status.success(), "chown -R cyrus:mail {}", root.display());

        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            fs::write(root.join("cyrus.conf"), cyrus_conf(root, &imapd, port))?;
            match launch(root, port) {
                Ok(child) => {
                    let cyrus = Cyrus {
                        child: Some(child),
                        port,
                        users: self.users,
                        admin: self.admin,
                        unix_separator: self.unix_separator,
                        dir,
                    };
                    cyrus.create_user_mailboxes()?;
                    return Ok(cyrus);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("at least one attempt")).context("Cyrus did not start")
    }

    /// The text of `imapd.conf`.
    fn imapd_conf(&self, root: &Path) -> String {
        let d = root.display();
        let yes_no = if self.unix_separator { "yes" } else { "no" };
        format!(
            "configdirectory: {d}/conf\npartition-default: {d}/spool\n\
             defaultpartition: default\nproc_path: {d}/run/proc\n\
             mboxname_lockpath: {d}/run/lock\nlmtpsocket: {d}/run/socket/lmtp\n\
             idlesocket: {d}/run/socket/idle\nnotifysocket: {d}/run/socket/notify\n\
             admins: {admin}\nallowplaintext: yes\nsasl_pwcheck_method: auxprop\n\
             sasl_auxprop_plugin: sasldb\nsasl_sasldb_path: {d}/sasldb2\n\
             sasl_mech_list: PLAIN LOGIN\nunixhierarchysep: {yes_no}\naltnamespace: {yes_no}\n\
             hashimapspool: false\nsyslog_prefix: mailstage-cyrus\n",
            admin = self.admin.0,
        )
    }
}

/// `saslpasswd2 -p -c -f DIR/sasldb2 NAME` with the password on stdin.
fn set_password(root: &Path, name: &str, pass: &str) -> Result<()> {
    let mut child = Command::new("saslpasswd2")
        .args(["-p", "-c", "-f"])
        .arg(root.join("sasldb2"))
        .arg(name)
        .stdin(Stdio::piped())
        .spawn()
        .context("spawn saslpasswd2 (package sasl2-bin)")?;
    child
        .stdin
        .take()
        .context("saslpasswd2 stdin")?
        .write_all(pass.as_bytes())?;
    let status = child.wait()?;
    ensure!(status.success(), "saslpasswd2 for {name}: {status}");
    Ok(())
}

/// The text of `cyrus.conf`: imapd only.
fn cyrus_conf(root: &Path, imapd: &Path, port: u16) -> String {
    format!(
        "START {{\n}}\nSERVICES {{\n  imap cmd=\"{} -C {}/imapd.conf\" \
         listen=\"127.0.0.1:{port}\" prefork=0 maxchild=200\n}}\nEVENTS {{\n}}\n",
        imapd.display(),
        root.display()
    )
}

/// Starts `master` in the foreground in its own process group and waits for the greeting.
fn launch(root: &Path, port: u16) -> Result<Child> {
    let log = fs::File::create(root.join("master.log"))?;
    let mut child = Command::new(CYRUS_MASTER)
        .arg("-C")
        .arg(root.join("imapd.conf"))
        .arg("-M")
        .arg(root.join("cyrus.conf"))
        .arg("-p")
        .arg(root.join("master.pid"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("spawn {CYRUS_MASTER} (package cyrus-common)"))?;
    await_greeting(&mut child, port, START_TIMEOUT, "cyrus master", || {
        fs::read_to_string(root.join("master.log")).unwrap_or_default()
    })?;
    Ok(child)
}

/// A running private Cyrus; stopped (whole process group) and deleted on drop.
#[derive(Debug)]
pub struct Cyrus {
    child: Option<Child>,
    port: u16,
    users: Vec<(String, String)>,
    admin: (String, String),
    unix_separator: bool,
    // Last field: dropped after the process group is gone.
    dir: tempfile::TempDir,
}

impl Cyrus {
    /// A builder with no users, admin `mailadmin` / `mailadmin-pw`, `unixhierarchysep` and
    /// `altnamespace` on.
    pub fn builder() -> CyrusBuilder {
        CyrusBuilder {
            users: Vec::new(),
            admin: ("mailadmin".into(), "mailadmin-pw".into()),
            unix_separator: true,
        }
    }

    /// The plain IMAP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp dir holding config and mail.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The hierarchy delimiter: `/` with `unixhierarchysep`, `.` without.
    pub fn delimiter(&self) -> char {
        if self.unix_separator { '/' } else { '.' }
    }

    /// The personal namespace prefix: empty with `altnamespace`, `INBOX.` without.
    pub fn personal_prefix(&self) -> &'static str {
        if self.unix_separator { "" } else { "INBOX." }
    }

    /// The admin's login and password.
    pub fn admin(&self) -> (&str, &str) {
        (&self.admin.0, &self.admin.1)
    }

    /// The configured password of `user`.
    pub fn password_of(&self, user: &str) -> Result<&str> {
        self.users
            .iter()
            .find(|(n, _)| n == user)
            .map(|(_, p)| p.as_str())
            .with_context(|| format!("no user {user}"))
    }

    /// A probe logged in as `user` with its configured password.
    pub fn login(&self, user: &str) -> Result<Probe> {
        let mut probe = Probe::connect(self.port)?;
        probe.login(user, self.password_of(user)?)?.ok()?;
        Ok(probe)
    }

    /// A probe logged in as the admin.
    pub fn login_admin(&self) -> Result<Probe> {
        let mut probe = Probe::connect(self.port)?;
        probe.login(&self.admin.0, &self.admin.1)?.ok()?;
        Ok(probe)
    }

    /// The admin creates `user/NAME` (or `user.NAME`) for every user.
    fn create_user_mailboxes(&self) -> Result<()> {
        let mut admin = self.login_admin()?;
        for (name, _) in &self.users {
            let mailbox = format!("user{}{name}", self.delimiter());
            if let Err(e) = admin.create(&mailbox) {
                bail!("creating {mailbox} as the admin: {e}");
            }
        }
        admin.logout()
    }

    /// Stops Cyrus now (drop does the same).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child);
        }
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        self.stop();
    }
}
