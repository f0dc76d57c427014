//! A private Dovecot for demos and manual checks: users alice and bob, master user
//! mailadmin, TLS with a private CA, and a little mail in odd folders. Prints what a client
//! needs as `KEY=value` lines, then runs until its standard input closes.
//!
//! `demo-dovecot DIR` also writes `DIR/users.csv`, a batch file for the three login kinds.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use mailstage_tests::Dovecot;
use mailstage_tests::fixtures::{ODD_FOLDERS, simple};

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).context("usage: demo-dovecot DIR")?;
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .master_user("mailadmin", "master-pw")
        .tls(true)
        .start()?;
    for (i, folder) in std::iter::once("INBOX")
        .chain(ODD_FOLDERS.iter().map(|f| f.name))
        .enumerate()
    {
        if folder != "INBOX" {
            d.create_folder("alice", folder)?;
        }
        let when = 1_700_000_000 + i as u64 * 86_400;
        d.write_message_at("alice", folder, &["\\Seen"], when, &simple(i as u64))?;
    }
    for i in 0..3u64 {
        d.write_message_at(
            "bob",
            "INBOX",
            &[],
            1_700_500_000 + i * 3600,
            &simple(100 + i),
        )?;
    }
    let csv = std::path::Path::new(&dir).join("users.csv");
    std::fs::write(
        &csv,
        "EmailAddress,UserName,Password\n\
         alice@contoso.edu,alice,alice-pw\n\
         bob@contoso.edu,bob*mailadmin,master-pw\n\
         carol@contoso.edu,carol,wrong-pw\n",
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "PORT={}", d.port())?;
    writeln!(out, "TLS_PORT={}", d.tls_port().unwrap_or_default())?;
    writeln!(
        out,
        "CA_FILE={}",
        d.ca_pem_path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )?;
    writeln!(out, "CSV={}", csv.display())?;
    out.flush()?;
    drop(out);
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(d);
    Ok(())
}
