//! What every harness server shares: a free loopback port (and starting again on another
//! when the one picked was taken meanwhile), starting a server in its own process group with
//! its output in a log and waiting for its greeting, stopping that whole group, and the
//! running server itself with its accounts ([`ServerProcess`]).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::probe::Probe;

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How long a start waits for the greeting.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts at starting when the picked port turns out to be taken.
const START_ATTEMPTS: usize = 3;

/// Runs `start` with a free loopback port, again with another (up to three attempts) when
/// it fails, as it does when the port was taken between picking and binding it. `what`
/// names the server in the error.
pub fn on_a_free_port<T>(what: &str, mut start: impl FnMut(u16) -> Result<T>) -> Result<T> {
    let mut last_err = None;
    for _ in 0..START_ATTEMPTS {
        match start(free_port()?) {
            Ok(started) => return Ok(started),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.expect("at least one attempt")).with_context(|| format!("{what} did not start"))
}

/// Spawns `cmd` in its own process group, stdin closed and its output into the file `log`,
/// and waits for its greeting on `port` (see [`await_greeting`]; `what` names it).
pub fn spawn_and_greet(
    cmd: &mut Command,
    log: &Path,
    port: u16,
    what: &str,
    logs: impl Fn() -> String,
) -> Result<Child> {
    let out = fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("spawn {what} ({:?})", cmd.get_program()))?;
    await_greeting(&mut child, port, START_TIMEOUT, what, logs)?;
    Ok(child)
}

/// Fails unless `name` can be an account on every harness server: plain ASCII letters,
/// digits and `_`.
pub fn ensure_plain_name(name: &str) -> Result<()> {
    ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "user {name:?} must be plain ASCII letters and digits"
    );
    Ok(())
}

/// A running server the harness started (Cyrus, Courier): its process group, loopback port,
/// accounts and the temp dir holding its config and mail; stopped (whole process group) and
/// deleted on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    port: u16,
    users: Vec<(String, String)>,
    admin: (String, String),
    // Last field: dropped after the process group is gone.
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// The server `child` started, greeting on `port`, with its mail users, its admin and
    /// its directory.
    pub fn new(
        child: Child,
        port: u16,
        users: Vec<(String, String)>,
        admin: (String, String),
        dir: tempfile::TempDir,
    ) -> Self {
        Self {
            child: Some(child),
            port,
            users,
            admin,
            dir,
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

    /// The mail users and their passwords (the admin is not one).
    pub fn users(&self) -> &[(String, String)] {
        &self.users
    }

    /// The admin's login and password.
    pub fn admin(&self) -> (&str, &str) {
        (&self.admin.0, &self.admin.1)
    }

    /// The configured password of `user` (a mail user or the admin).
    pub fn password_of(&self, user: &str) -> Result<&str> {
        self.users
            .iter()
            .chain([&self.admin])
            .find(|(n, _)| n == user)
            .map(|(_, p)| p.as_str())
            .with_context(|| format!("no user {user}"))
    }

    /// A probe logged in as `user` (or the admin) with its configured password.
    pub fn login(&self, user: &str) -> Result<Probe> {
        let mut probe = Probe::connect(self.port)?;
        probe.login(user, self.password_of(user)?)?.ok()?;
        Ok(probe)
    }

    /// A probe logged in as the admin.
    pub fn login_admin(&self) -> Result<Probe> {
        self.login(&self.admin.0)
    }

    /// Stops the server now (drop does the same).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child);
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `Deref` and `DerefMut` of a harness server type to the [`ServerProcess`] in its field
/// `server`, so its port, accounts, logins and `stop` are the process's.
macro_rules! deref_to_server_process {
    ($server:ty) => {
        impl std::ops::Deref for $server {
            type Target = $crate::process::ServerProcess;

            fn deref(&self) -> &Self::Target {
                &self.server
            }
        }

        impl std::ops::DerefMut for $server {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.server
            }
        }
    };
}
pub(crate) use deref_to_server_process;

/// Waits until 127.0.0.1:`port` greets with `* OK` while `child` (the server, `what` in
/// messages) keeps running; on failure the group is stopped and `logs()` is shown.
pub fn await_greeting(
    child: &mut Child,
    port: u16,
    timeout: Duration,
    what: &str,
    logs: impl Fn() -> String,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status} at start:\n{}", logs());
        }
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port))
            && let Ok(greeting) = Probe::from_stream(stream).map(|p| p.greeting().to_string())
        {
            if greeting.starts_with("* OK") {
                return Ok(());
            }
            stop_group(child);
            bail!("{what}: unexpected greeting {greeting:?}:\n{}", logs());
        }
        if Instant::now() > deadline {
            stop_group(child);
            bail!(
                "{what} did not greet on port {port} within {timeout:?}:\n{}",
                logs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Terminates the whole process group of `child` (SIGTERM, then SIGKILL) and reaps it.
pub fn stop_group(child: &mut Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: plain kill(2) on the group the harness created with process_group(0).
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let _ = child.try_wait();
        if !group_alive(pgid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above; kills stragglers, harmless when the group is gone.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
}

/// Whether a process of group `pgid` is still running. Zombies do not count: a daemon's
/// children orphaned by its exit (Courier's authdaemond) wait for init to reap them, which
/// can take a second, and they hold nothing. Without /proc, any member counts.
pub fn group_alive(pgid: libc::pid_t) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // SAFETY: signal 0 only probes whether any member of the group exists.
        return unsafe { libc::kill(-pgid, 0) } == 0;
    };
    entries.flatten().any(|entry| {
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        is_pid
            && std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|stat| {
                // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
                fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
            })
    })
}

/// Whether this process runs as root (Cyrus and Courier need it to drop to their users and,
/// for Courier, to give authdaemond a private `/etc/courier`).
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}
