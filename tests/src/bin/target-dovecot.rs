//! A private Dovecot to upload into (`scripts/bench.sh upload`, demos): one mailbox per
//! address given, and the master user `admin` (password `admin-pw`) that logs in for each as
//! `address*admin`. Prints `PORT=…`, `ADMIN=…`, `ADMIN_PASSWORD=…`, `MAIL_DIR=…`, then runs
//! until its standard input closes. `TARGET_DOVECOT_FORMAT` stores mail as `sdbox` or
//! `mdbox` instead of maildir (for a benchmark of one large folder: Dovecot rewrites a
//! maildir's uidlist as it grows); `TARGET_DOVECOT_EXTRA` adds configuration lines.

use std::io::{Read, Write};

use anyhow::{Result, ensure};
use mailstage_tests::Dovecot;
use mailstage_tests::upload::{ADMIN, target_dovecot_from};

fn main() -> Result<()> {
    let emails: Vec<String> = std::env::args().skip(1).collect();
    ensure!(!emails.is_empty(), "usage: target-dovecot ADDRESS…");
    let refs: Vec<&str> = emails.iter().map(String::as_str).collect();
    let extra = std::env::var("TARGET_DOVECOT_EXTRA").unwrap_or_default();
    let extra: Vec<&str> = extra.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut builder = Dovecot::builder();
    if let Some(format) = std::env::var("TARGET_DOVECOT_FORMAT")
        .ok()
        .filter(|f| !f.is_empty())
    {
        builder = builder.mailbox_format(&format);
    }
    let d = target_dovecot_from(builder, &refs, &extra)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "PORT={}", d.port())?;
    writeln!(out, "ADMIN={}", ADMIN.0)?;
    writeln!(out, "ADMIN_PASSWORD={}", ADMIN.1)?;
    writeln!(out, "MAIL_DIR={}", d.dir().join("mail").display())?;
    out.flush()?;
    drop(out);
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(d);
    Ok(())
}
