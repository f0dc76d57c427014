//! What every harness server shares: a free loopback port, waiting for the greeting of a
//! server started in its own process group, and stopping that whole group.

use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::probe::Probe;

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

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
