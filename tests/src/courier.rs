//! A private Courier-IMAP 5 instance per test (or per test binary).
//!
//! `scripts/setup.sh` installs Courier's dependencies with apt (`courier-base` brings
//! `couriertcpd` and `maildirmake.courier`, `courier-authdaemon` and `courier-authlib-userdb`
//! bring `authdaemond` and `userdb`) and unpacks the `courier-imap` package, which conflicts
//! with Dovecot in apt, into [`crate::servers_dir`] (`usr/bin/imapd`,
//! `usr/lib/courier/courier/imaplogin`).
//!
//! Courier's authentication library reads `/etc/courier/authdaemonrc` and
//! `/etc/courier/userdb.dat` and talks to `/run/courier/authdaemon/socket`, all compiled in.
//! To keep every instance private, the harness starts `authdaemond` and `couriertcpd` in a
//! mount namespace of their own (`unshare -m`, so it needs root) where `DIR/etc` is bind-mounted
//! on `/etc/courier` and `DIR/run` on `/run/courier`:
//!
//! ```text
//! DIR/etc/authdaemonrc   authmodulelist="authuserdb"
//! DIR/etc/userdb(.dat)   users: home = maildir = DIR/mail/USER, the courier uid/gid, an
//!                        MD5 password; the admin has options=group=administrators
//! DIR/etc/shared/index   every user, so the admin sees each one's folders as
//!                        #shared.USER(.FOLDER) (Courier's virtual shared folders)
//! DIR/mail/USER          Maildir++ (maildirmake.courier)
//! DIR/start.sh           what runs inside the namespace
//! ```
//!
//! The personal namespace is `INBOX.` with delimiter `.`. `IMAP_EMPTYTRASH` is empty (by
//! default Courier deletes old Trash mail at login). Courier offers no CONDSTORE and cannot
//! impersonate: an admin reads a user's mail through `#shared.USER`, which is what a
//! `UserRoot` of `/#shared/USER` selects.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, ensure};

use crate::process::{ServerProcess, ensure_plain_name, is_root, on_a_free_port, spawn_and_greet};
use crate::servers_dir;

/// Courier's authentication daemon (package courier-authdaemon), run in the foreground.
pub const AUTHDAEMOND: &str = "/usr/lib/courier/courier-authlib/authdaemond";
/// `IMAP_CAPABILITY` as Debian's `/etc/courier/imapd` sets it.
const CAPABILITY: &str =
    "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE";

/// Options of a [`Courier`] before it starts. Get one from [`Courier::builder`].
#[derive(Clone, Debug)]
pub struct CourierBuilder {
    users: Vec<(String, String)>,
    admin: (String, String),
}

impl CourierBuilder {
    /// Adds a mail user with a password.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.into(), password.into()));
        self
    }

    /// Writes the private config and maildirs, starts `authdaemond` and `couriertcpd` in their
    /// own mount namespace on a free loopback port and waits for the greeting.
    pub fn start(self) -> Result<Courier> {
        ensure!(
            is_root(),
            "the Courier harness runs as root (a private /etc/courier needs a mount namespace)"
        );
        let imapd = servers_dir().join("usr/bin/imapd");
        ensure!(
            imapd.exists(),
            "{} is missing: run scripts/setup.sh",
            imapd.display()
        );
        let (uid, gid) = courier_ids()?;
        let dir = tempfile::Builder::new()
            .prefix("mailstage-courier-")
            .tempdir()?;
        let root = dir.path();
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
        for sub in ["etc/shared", "run/authdaemon", "mail"] {
            fs::create_dir_all(root.join(sub))?;
        }
        fs::write(
            root.join("etc/authdaemonrc"),
            "authmodulelist=\"authuserdb\"\ndaemons=3\n\
             authdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\nDEFAULTOPTIONS=\"\"\n",
        )?;
        let mut index = String::new();
        for (name, pass) in self.users.iter().chain([&self.admin]) {
            ensure_plain_name(name)?;
            let home = root.join("mail").join(name);
            run(Command::new("maildirmake.courier").arg(&home))?;
            let admin = name == &self.admin.0;
            add_user(root, name, pass, &home, (uid, gid), admin)?;
            if !admin {
                writeln!(index, "{name}\t{uid}\t{gid}\t{0}\t{0}", home.display())?;
            }
        }
        fs::write(root.join("etc/shared/index"), index)?;
        run(Command::new("makeuserdb")
            .arg("-f")
            .arg(root.join("etc/userdb")))?;
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(root.join("mail"))
            .arg(root.join("run")))?;
        // The mount point of the private /run/courier (it may be gone after a reboot).
        fs::create_dir_all("/run/courier")?;

        let (child, port) = on_a_free_port("Courier", |port| {
            fs::write(root.join("start.sh"), start_script(root, &imapd, port))?;
            Ok((launch(root, port)?, port))
        })?;
        Ok(Courier {
            server: ServerProcess::new(child, port, self.users, self.admin, dir),
        })
    }
}

/// The uid and gid of the `courier` system user (package courier-base), who owns the mail.
fn courier_ids() -> Result<(u32, u32)> {
    let out = Command::new("id").arg("courier").output()?;
    ensure!(
        out.status.success(),
        "no courier user: run scripts/setup.sh"
    );
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").args([flag, "courier"]).output()?;
        Ok(String::from_utf8(out.stdout)?.trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

/// Runs a setup command and fails with its output unless it succeeds.
fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("spawn {:?}", cmd.get_program()))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `userdb -f DIR/etc/userdb NAME set …` and its MD5 password from `userdbpw -md5`.
fn add_user(
    root: &Path,
    name: &str,
    pass: &str,
    home: &Path,
    (uid, gid): (u32, u32),
    admin: bool,
) -> Result<()> {
    let db = root.join("etc/userdb");
    let mut fields = vec![
        format!("home={}", home.display()),
        format!("mail={}", home.display()),
        format!("uid={uid}"),
        format!("gid={gid}"),
    ];
    if admin {
        fields.push("options=group=administrators".into());
    }
    run(Command::new("userdb")
        .arg("-f")
        .arg(&db)
        .arg(name)
        .arg("set")
        .args(&fields))?;
    let mut hasher = Command::new("userdbpw")
        .arg("-md5")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("spawn userdbpw")?;
    let mut stdin = hasher.stdin.take().context("userdbpw stdin")?;
    // userdbpw asks twice when reading a terminal and once from a pipe.
    stdin.write_all(format!("{pass}\n").as_bytes())?;
    drop(stdin);
    let out = hasher.wait_with_output()?;
    ensure!(out.status.success(), "userdbpw for {name}");
    let hash = String::from_utf8(out.stdout)?.trim().to_owned();
    run(Command::new("userdb")
        .arg("-f")
        .arg(&db)
        .arg(name)
        .arg("set")
        .arg(format!("systempw={hash}")))
}

/// What runs inside the mount namespace: private /etc/courier and /run/courier, authdaemond,
/// then couriertcpd; on SIGTERM both are stopped and reaped.
fn start_script(root: &Path, imapd: &Path, port: u16) -> String {
    let d = root.display();
    let imaplogin = servers_dir().join("usr/lib/courier/courier/imaplogin");
    format!(
        "set -e\nmount --bind {d}/etc /etc/courier\nmount --bind {d}/run /run/courier\n\
         {AUTHDAEMOND} &\nA=$!\n\
         i=0; while [ ! -S /run/courier/authdaemon/socket ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done\n\
         env -i PATH=/usr/bin:/bin IMAP_EMPTYTRASH= IMAP_CAPABILITY='{CAPABILITY}' \
         IMAP_KEYWORDS=1 IMAP_ACL=1 IMAP_SHAREDINDEXFILE={d}/etc/shared/index \
         IMAP_TRASHFOLDERNAME=Trash IMAP_USELOCKS=1 IMAP_IDLE_TIMEOUT=60 IMAP_UMASK=022 \
         IMAP_MAILBOX_SANITY_CHECK=1 MAILDIRPATH=Maildir \
         /usr/sbin/couriertcpd -address=127.0.0.1 -nodnslookup -noidentlookup \
         -maxprocs=200 -maxperip=200 {port} {} {} Maildir &\nT=$!\n\
         trap 'kill $T $A 2>/dev/null; wait; exit 0' TERM INT\nwait\n",
        imaplogin.display(),
        imapd.display(),
    )
}

/// Starts `unshare -m sh DIR/start.sh` in its own process group and waits for the greeting.
fn launch(root: &Path, port: u16) -> Result<Child> {
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--mount", "--propagation", "private", "sh"])
        .arg(root.join("start.sh"));
    let log = root.join("start.log");
    spawn_and_greet(&mut unshare, &log, port, "courier", || {
        fs::read_to_string(&log).unwrap_or_default()
    })
}

/// A running private Courier-IMAP; stopped (whole process group) and deleted on drop. Its
/// port, accounts and logins are those of its [`ServerProcess`].
#[derive(Debug)]
pub struct Courier {
    server: ServerProcess,
}

crate::process::deref_to_server_process!(Courier);

impl Courier {
    /// A builder with no users and the admin `mailadmin` / `mailadmin-pw` (member of
    /// Courier's `administrators` group).
    pub fn builder() -> CourierBuilder {
        CourierBuilder {
            users: Vec::new(),
            admin: ("mailadmin".into(), "mailadmin-pw".into()),
        }
    }
}
