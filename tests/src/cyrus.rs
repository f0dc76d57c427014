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
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::process::{ServerProcess, ensure_plain_name, is_root, on_a_free_port, spawn_and_greet};
use crate::servers_dir;

/// Cyrus's `master` (package cyrus-common).
pub const CYRUS_MASTER: &str = "/usr/lib/cyrus/bin/master";

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
            ensure_plain_name(name)?;
            ensure!(
                !pass.contains('\n'),
                "the password of {name} holds a line break"
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

        let (child, port) = on_a_free_port("Cyrus", |port| {
            fs::write(root.join("cyrus.conf"), cyrus_conf(root, &imapd, port))?;
            Ok((launch(root, port)?, port))
        })?;
        let cyrus = Cyrus {
            server: ServerProcess::new(child, port, self.users, self.admin, dir),
            unix_separator: self.unix_separator,
        };
        cyrus.create_user_mailboxes()?;
        Ok(cyrus)
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
    let mut master = Command::new(CYRUS_MASTER);
    master
        .arg("-C")
        .arg(root.join("imapd.conf"))
        .arg("-M")
        .arg(root.join("cyrus.conf"))
        .arg("-p")
        .arg(root.join("master.pid"));
    let log = root.join("master.log");
    spawn_and_greet(&mut master, &log, port, "cyrus master", || {
        fs::read_to_string(&log).unwrap_or_default()
    })
}

/// A running private Cyrus; stopped (whole process group) and deleted on drop. Its port,
/// accounts and logins are those of its [`ServerProcess`].
#[derive(Debug)]
pub struct Cyrus {
    server: ServerProcess,
    unix_separator: bool,
}

crate::process::deref_to_server_process!(Cyrus);

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

    /// The hierarchy delimiter: `/` with `unixhierarchysep`, `.` without.
    pub fn delimiter(&self) -> char {
        if self.unix_separator { '/' } else { '.' }
    }

    /// The personal namespace prefix: empty with `altnamespace`, `INBOX.` without.
    pub fn personal_prefix(&self) -> &'static str {
        if self.unix_separator { "" } else { "INBOX." }
    }

    /// The admin creates `user/NAME` (or `user.NAME`) for every user.
    fn create_user_mailboxes(&self) -> Result<()> {
        let mut admin = self.login_admin()?;
        for (name, _) in self.users() {
            let mailbox = format!("user{}{name}", self.delimiter());
            if let Err(e) = admin.create(&mailbox) {
                bail!("creating {mailbox} as the admin: {e}");
            }
        }
        admin.logout()
    }
}
