//! A private Dovecot 2.3 instance per test.
//!
//! Everything lives in one [`tempfile::TempDir`]:
//!
//! ```text
//! DIR/dovecot.conf      the whole config (no /etc/dovecot include)
//! DIR/users             passwd-file: user:{PLAIN}pass:uid:gid::DIR/mail/user
//! DIR/masters           passwd-file of master users (only with a master user)
//! DIR/run, DIR/state    base_dir and state_dir
//! DIR/dovecot.log       log_path; DIR/stderr.log is the master's stderr
//! DIR/tls/ca.pem        a private CA; DIR/tls/cert.pem: the server's certificate it signs
//!                       (CN=localhost, SAN IP:127.0.0.1, DNS:localhost)
//! DIR/mail/USER/Maildir the user's maildir, `LAYOUT=fs` with UTF-8 directory names
//! DIR/check-token.sh    XOAUTH2 check (only with `xoauth2_introspection`)
//! ```
//!
//! Storage is `maildir:DIR/mail/%u/Maildir:LAYOUT=fs:UTF-8` with the hierarchy separator `/`.
//! `LAYOUT=fs` was chosen over the default Maildir++ because Maildir++ uses `.` both as the
//! on-disk separator and as the hierarchy separator, so a folder called `a.b` cannot exist
//! there, while with `LAYOUT=fs` folder `A/B` is simply the directory `Maildir/A/B` and `a.b`
//! is an ordinary name. A directory that has children but no `cur/new/tmp` of its own is listed
//! by Dovecot 2.3.19 as `(\Noselect \HasChildren)`: a genuine \Noselect parent (IMAP `CREATE
//! a/b/c` produces exactly that for `a` and `a/b`). INBOX is the Maildir root itself, so
//! top-level folders named `cur`, `new` or `tmp` are not possible. `UTF-8` makes the directory
//! names plain UTF-8 (Dovecot still speaks modified UTF-7 on the wire).
//!
//! When running as root (as CI does) the login processes run as `dovenull`, the internal ones
//! as `dovecot`, and every mailbox belongs to the uid/gid of `dovecot`; otherwise everything
//! runs as the current user and group (`default_internal_group` too, or the master cannot chown
//! its sockets). Login chroots are switched off in both cases.
//!
//! Failed logins: `auth_failure_delay = 0` and the anvil auth-penalty socket is disabled, so
//! failures do not slow later tests down; Dovecot 2.3.19 still answers each failed
//! authentication on a fixed 500 ms tick. A right master password for a user that does not
//! exist answers `NO [AUTHORIZATIONFAILED]` (immediately), a wrong password
//! `NO [AUTHENTICATIONFAILED]`.
//!
//! Messages are saved with `mail_save_crlf = yes`, so an APPENDed message's file holds exactly
//! the bytes that were appended (see [`crate::maildir`] for what Dovecot serves).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{Context, Result, ensure};

use crate::dovecot_certs::{make_certificate, make_self_signed, write_public};
use crate::probe::Probe;
use crate::process::{free_port, spawn_and_greet, stop_group};
use crate::token_endpoint::{CHECK_TOKEN_SCRIPT, write_check_token_script};

/// The Dovecot master binary.
pub const DOVECOT_BIN: &str = "/usr/sbin/dovecot";
/// Attempts at starting when the picked port turns out to be taken.
const START_ATTEMPTS: usize = 5;
/// Special-use folders declared in `namespace inbox`, as (name, attribute).
pub const SPECIAL_USE: &[(&str, &str)] = &[
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// Who owns the mail and which accounts the Dovecot services run as.
#[derive(Clone, Debug)]
pub struct Owner {
    /// uid written into the userdb and owning the maildirs.
    pub uid: u32,
    /// gid written into the userdb and owning the maildirs.
    pub gid: u32,
    /// `default_login_user`.
    pub login_user: String,
    /// `default_internal_user`.
    pub internal_user: String,
    /// `default_internal_group` (group of the service sockets).
    pub internal_group: String,
}

impl Owner {
    /// `dovecot`/`dovenull` when root, the current user and group otherwise.
    pub fn detect() -> Result<Self> {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        if uid == 0 {
            let dovecot = getent("passwd", "dovecot")?;
            getent("passwd", "dovenull")?;
            return Ok(Self {
                uid: dovecot[2].parse()?,
                gid: dovecot[3].parse()?,
                login_user: "dovenull".into(),
                internal_user: "dovecot".into(),
                internal_group: getent("group", &dovecot[3])?[0].clone(),
            });
        }
        let user = getent("passwd", &uid.to_string())?[0].clone();
        Ok(Self {
            uid,
            gid,
            login_user: user.clone(),
            internal_user: user,
            internal_group: getent("group", &gid.to_string())?[0].clone(),
        })
    }

    /// Gives `path` to this owner (a no-op unless we are root).
    pub fn chown(&self, path: &Path) -> Result<()> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
                .with_context(|| format!("chown {}", path.display()))?;
        }
        Ok(())
    }
}

/// The fields of `getent DB KEY` (at least 3 of them).
fn getent(db: &str, key: &str) -> Result<Vec<String>> {
    let out = Command::new("getent")
        .args([db, key])
        .output()
        .context("run getent")?;
    ensure!(
        out.status.success(),
        "no {db} entry {key} (is dovecot-imapd installed?)"
    );
    let line = String::from_utf8(out.stdout)?;
    let fields: Vec<String> = line.trim().split(':').map(String::from).collect();
    ensure!(fields.len() >= 3, "odd getent line {line:?}");
    Ok(fields)
}

/// Options of a [`Dovecot`] before it starts. Get one from [`Dovecot::builder`].
#[derive(Clone, Debug, Default)]
pub struct DovecotBuilder {
    users: Vec<(String, String)>,
    master: Option<(String, String)>,
    tls: bool,
    self_signed: bool,
    mechanisms: Vec<String>,
    passdbs_first: Vec<String>,
    extra: Vec<String>,
    xoauth2_introspection: Option<String>,
    separator: Option<char>,
    format: Option<String>,
}

impl DovecotBuilder {
    /// Adds a mail user with a plaintext password.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Uses `separator` as the hierarchy separator instead of `/` (a target whose
    /// delimiter differs from the source's).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = Some(separator);
        self
    }

    /// Adds the master user: `user*NAME` LOGIN and SASL PLAIN authzid=user, authcid=NAME work.
    pub fn master_user(mut self, name: &str, password: &str) -> Self {
        self.master = Some((name.into(), password.into()));
        self
    }

    /// Adds an implicit-TLS listener and STARTTLS on the plain one, with a self-signed cert.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// TLS as [`Self::tls`], but with one self-signed `CA:TRUE` certificate made the usual
    /// way (`openssl req -x509`, like Debian's snakeoil) instead of a private CA's.
    pub fn self_signed_tls(mut self) -> Self {
        self.tls = true;
        self.self_signed = true;
        self
    }

    /// Adds a SASL mechanism to `auth_mechanisms` (besides `plain login`), e.g. `xoauth2`.
    pub fn auth_mechanism(mut self, mechanism: &str) -> Self {
        self.mechanisms.push(mechanism.into());
        self
    }

    /// Adds a raw `passdb { ... }` block placed before the password passdbs.
    pub fn passdb_first(mut self, block: &str) -> Self {
        self.passdbs_first.push(block.into());
        self
    }

    /// App-only XOAUTH2 and OAUTHBEARER as DESIGN §6 describes: both mechanisms offered, a
    /// checkpassword passdb for them before the other passdbs running `DIR/check-token.sh`,
    /// which asks `url` (a [`crate::TokenEndpoint`]'s `/introspect`) whether the token is
    /// live. Any live token logs in as any mailbox; password logins keep working.
    pub fn xoauth2_introspection(mut self, url: &str) -> Self {
        self.xoauth2_introspection = Some(url.into());
        self
    }

    /// Stores mail in `format` (`sdbox` or `mdbox`, under `DIR/mail/USER/FORMAT`) instead of
    /// maildir, e.g. for a benchmark appending into one large folder (Dovecot rewrites a
    /// maildir's `dovecot-uidlist` as it grows). [`Dovecot::maildir_of`] then does not apply.
    pub fn mailbox_format(mut self, format: &str) -> Self {
        self.format = Some(format.into());
        self
    }

    /// Appends raw configuration text at the end of `dovecot.conf`.
    pub fn extra_config(mut self, text: &str) -> Self {
        self.extra.push(text.into());
        self
    }

    /// Writes the config, starts Dovecot on free loopback ports and waits for its greeting.
    pub fn start(self) -> Result<Dovecot> {
        for (name, pass) in self.users.iter().chain(&self.master) {
            ensure!(
                !name.is_empty() && !(name.clone() + pass).contains([':', '\n', '*', '/']),
                "user {name:?} or its password has a character a passwd-file cannot hold"
            );
        }
        let owner = Owner::detect()?;
        let dir = tempfile::Builder::new()
            .prefix("mailstage-dovecot-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        // The dovecot and dovenull users must traverse the directory and read the passwd-files.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))?;
        let mail = root.join("mail");
        fs::create_dir(&mail)?;
        owner.chown(&mail)?;
        self.write_passwd_files(&root, &owner)?;
        if let Some(url) = &self.xoauth2_introspection {
            write_check_token_script(&root, url)?;
        }
        let ca_pem = if self.self_signed {
            Some(make_self_signed(&root.join("tls"), "localhost")?)
        } else if self.tls {
            Some(make_certificate(&root)?)
        } else {
            None
        };

        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let tls_port = if self.tls { Some(free_port()?) } else { None };
            fs::write(
                root.join("dovecot.conf"),
                self.render(&root, &owner, port, tls_port),
            )?;
            match launch(&root, port) {
                Ok(child) => {
                    return Ok(Dovecot {
                        child: Some(child),
                        port,
                        tls_port,
                        ca_pem,
                        owner,
                        users: self.users,
                        dir,
                    });
                }
                Err(e) if e.to_string().contains("Address already in use") => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one attempt")).context("no free port after retries")
    }

    fn write_passwd_files(&self, root: &Path, owner: &Owner) -> Result<()> {
        let mut users = String::new();
        for (name, pass) in &self.users {
            let home = root.join("mail").join(name);
            let (uid, gid) = (owner.uid, owner.gid);
            writeln!(
                users,
                "{name}:{{PLAIN}}{pass}:{uid}:{gid}::{}::",
                home.display()
            )?;
        }
        write_public(&root.join("users"), users.as_bytes())?;
        if let Some((name, pass)) = &self.master {
            write_public(
                &root.join("masters"),
                format!("{name}:{{PLAIN}}{pass}\n").as_bytes(),
            )?;
        }
        Ok(())
    }

    /// The text of `dovecot.conf`.
    fn render(&self, root: &Path, owner: &Owner, port: u16, tls_port: Option<u16>) -> String {
        let d = root.display();
        let location = match &self.format {
            Some(f) => format!("{f}:{d}/mail/%u/{f}"),
            None => format!("maildir:{d}/mail/%u/Maildir:LAYOUT=fs:UTF-8"),
        };
        let mut mechs = vec!["plain", "login"];
        mechs.extend(self.mechanisms.iter().map(String::as_str));
        if self.xoauth2_introspection.is_some() {
            for m in ["xoauth2", "oauthbearer"] {
                if !mechs.contains(&m) {
                    mechs.push(m);
                }
            }
        }
        let mut c = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             auth_verbose = yes\nauth_failure_delay = 0\nprotocols = imap\nlisten = 127.0.0.1\n\
             disable_plaintext_auth = no\nauth_mechanisms = {}\n\
             default_login_user = {}\ndefault_internal_user = {}\n\
             default_internal_group = {}\n\
             first_valid_uid = {uid}\nlast_valid_uid = {uid}\n\
             first_valid_gid = {gid}\nlast_valid_gid = {gid}\n\
             mail_location = {location}\n\
             mail_save_crlf = yes\nmail_max_userip_connections = 1000\n",
            mechs.join(" "),
            owner.login_user,
            owner.internal_user,
            owner.internal_group,
            uid = owner.uid,
            gid = owner.gid,
        );
        match tls_port {
            Some(_) => writeln!(
                c,
                "ssl = yes\nssl_cert = <{d}/tls/cert.pem\nssl_key = <{d}/tls/key.pem\n\
                 ssl_min_protocol = TLSv1.2"
            ),
            None => writeln!(c, "ssl = no"),
        }
        .expect("write to String");
        let imaps = match tls_port {
            Some(p) => format!("address = 127.0.0.1\n    port = {p}\n    ssl = yes"),
            None => "port = 0".into(),
        };
        write!(
            c,
            "service imap-login {{\n  chroot =\n  process_limit = 500\n  \
             inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  \
             inet_listener imaps {{\n    {imaps}\n  }}\n}}\n\
             service anvil {{\n  chroot =\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\nservice imap {{\n  process_limit = 500\n}}\n"
        )
        .expect("write to String");
        if self.xoauth2_introspection.is_some() {
            write!(
                c,
                "passdb {{\n  driver = checkpassword\n  mechanisms = xoauth2 oauthbearer\n  \
                 args = {d}/{CHECK_TOKEN_SCRIPT}\n}}\n"
            )
            .expect("write to String");
        }
        for block in &self.passdbs_first {
            writeln!(c, "{block}").expect("write to String");
        }
        if self.master.is_some() {
            write!(
                c,
                "auth_master_user_separator = *\npassdb {{\n  driver = passwd-file\n  \
                 args = scheme=PLAIN {d}/masters\n  master = yes\n  \
                 result_success = continue\n}}\n"
            )
            .expect("write to String");
        }
        write!(
            c,
            "passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/users\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n\
             namespace inbox {{\n  inbox = yes\n  separator = {}\n",
            self.separator.unwrap_or('/')
        )
        .expect("write to String");
        for (name, attr) in SPECIAL_USE {
            write!(
                c,
                "  mailbox {name} {{\n    special_use = {attr}\n    auto = subscribe\n  }}\n"
            )
            .expect("write to String");
        }
        c.push_str("}\n");
        for text in &self.extra {
            writeln!(c, "{text}").expect("write to String");
        }
        c
    }
}

/// Starts `dovecot -F -c DIR/dovecot.conf` in its own process group and waits for `* OK`.
fn launch(root: &Path, port: u16) -> Result<Child> {
    let mut dovecot = Command::new(DOVECOT_BIN);
    dovecot.arg("-F").arg("-c").arg(root.join("dovecot.conf"));
    spawn_and_greet(
        &mut dovecot,
        &root.join("stderr.log"),
        port,
        "dovecot",
        || read_logs(root),
    )
}

/// The master's stderr followed by the Dovecot log.
fn read_logs(root: &Path) -> String {
    let read = |name: &str| fs::read_to_string(root.join(name)).unwrap_or_default();
    format!("{}{}", read("stderr.log"), read("dovecot.log"))
}

/// A running private Dovecot; stopped (whole process group) and deleted on drop.
#[derive(Debug)]
pub struct Dovecot {
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
    ca_pem: Option<PathBuf>,
    owner: Owner,
    users: Vec<(String, String)>,
    // Last field: dropped after the process group is gone.
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// A builder with no users, no master user and no TLS.
    pub fn builder() -> DovecotBuilder {
        DovecotBuilder::default()
    }

    /// The plain IMAP port (offers STARTTLS when TLS is on).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The implicit-TLS (imaps) port, when TLS is on.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The PEM of the self-signed certificate, to trust as a CA, when TLS is on.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// The temp dir holding config, logs and mail.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `DIR/dovecot.conf`, unique to this instance (handy for `pgrep -f`).
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("dovecot.conf")
    }

    /// The user's maildir root, `DIR/mail/USER/Maildir` (INBOX itself; folders below it).
    pub fn maildir_of(&self, user: &str) -> PathBuf {
        self.dir().join("mail").join(user).join("Maildir")
    }

    /// The owner of the mail files and the service users.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The master process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The master's stderr and the Dovecot log so far.
    pub fn log(&self) -> String {
        read_logs(self.dir())
    }

    /// The configured password of `user`.
    pub fn password_of(&self, user: &str) -> Result<&str> {
        self.users
            .iter()
            .find(|(n, _)| n == user)
            .map(|(_, p)| p.as_str())
            .with_context(|| format!("no user {user}"))
    }

    /// A probe connected to the plain port (greeting read, not logged in).
    pub fn connect(&self) -> Result<Probe> {
        Probe::connect(self.port)
    }

    /// A probe logged in as `user` with its configured password.
    pub fn login(&self, user: &str) -> Result<Probe> {
        let mut probe = self.connect()?;
        probe.login(user, self.password_of(user)?)?.ok()?;
        Ok(probe)
    }

    /// Stops Dovecot now (drop does the same).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child);
        }
    }
}

impl Dovecot {
    /// Starts Dovecot again after [`Dovecot::stop`], on the same port with the same
    /// configuration and mail (a source server back from an outage).
    pub fn restart(&mut self) -> Result<()> {
        ensure!(self.child.is_none(), "Dovecot is still running");
        self.child = Some(launch(self.dir.path(), self.port)?);
        Ok(())
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
