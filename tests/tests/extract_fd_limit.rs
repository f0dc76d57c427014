//! `mailstage-extract batch start` under a tight descriptor limit (`ulimit -n 256`): 40
//! mailboxes at 20 at once. Each pending blob closes its descriptor once its data is fsynced,
//! so the run needs a few descriptors per mailbox, not one per message of a group.

mod cli_support;

use std::os::unix::process::CommandExt;

use anyhow::Result;
use cli_support::{Cli, text};
use mailstage_tests::Dovecot;
use mailstage_tests::stage_check::check_completed;

const USERS: usize = 40;
const MESSAGES: usize = 150;
const NOFILE: libc::rlim_t = 256;

#[test]
fn forty_mailboxes_at_twenty_at_once_complete_with_256_descriptors() -> Result<()> {
    let users: Vec<String> = (0..USERS).map(|i| format!("u{i:02}")).collect();
    let mut builder = Dovecot::builder();
    for u in &users {
        builder = builder.user(u, &format!("{u}-pw"));
    }
    let d = builder.start()?;
    for (k, u) in users.iter().enumerate() {
        let sizes: Vec<usize> = (0..MESSAGES).map(|i| 800 + (i * 397 + k) % 4_000).collect();
        d.write_sized(u, &["INBOX"], &sizes, k as u64)?;
    }
    let cli = Cli::new();
    let port = d.port().to_string();
    cli.ok(&[
        "endpoint",
        "new",
        "--name",
        "src",
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        "none",
        "--max-concurrent-migrations",
        "20",
    ]);
    let rows: Vec<String> = users
        .iter()
        .map(|u| format!("{u}@contoso.edu,{u},{u}-pw"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    cli.batch("b1", "src", &rows);

    let mut start = cli.command(&["batch", "start", "b1", "--quiet"]);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        start.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: NOFILE,
                rlim_max: NOFILE,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = std::time::Instant::now();
    let out = start.output()?;
    eprintln!("batch start: {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = check_completed(&cli.stage())?;
    assert_eq!(rows.len(), USERS * MESSAGES);
    assert!(rows.iter().all(|r| r.7 == "staged"), "{rows:?}");
    Ok(())
}
