//! A private Dovecot filled with the extraction benchmark's corpus (`scripts/bench.sh extract`).
//!
//! `bench-corpus DIR MAILBOXES MESSAGES [SEED]` starts a plain-text Dovecot with users
//! `bench1`…`benchN` (password `pw-benchK`), gives each `MESSAGES` messages of the seeded,
//! skewed 1 KiB–3 MiB corpus ([`corpus`]) spread over 9 folders (INBOX, Sent and the odd
//! folders of [`ODD_FOLDERS`]: non-ASCII, `&`, spaces, a dot, a hierarchy under `\Noselect`
//! parents), written straight into the maildirs. Then it warms the server up the way a
//! production server already is: every folder is SELECTed and its
//! `UID RFC822.SIZE INTERNALDATE FLAGS` fetched once, so Dovecot's index and cache exist and
//! the first tool measured does not pay for building them.
//!
//! With `BENCH_FOLDERS=N` in the environment, each mailbox instead has N folders (INBOX and
//! `Projects/P0001`…, a deep hierarchy as Exchange users keep) with the messages dealt out
//! in turn, each small (2–8 KB): the many-folders benchmark (`scripts/bench.sh extract
//! --folders N`).
//!
//! With `BENCH_SHAPE=small` in the environment, each mailbox instead gets `MESSAGES`
//! messages of about 300 bytes, all in INBOX (a mailbox of notifications or tickets:
//! `scripts/bench.sh extract --small` and `--huge`).
//!
//! Writes `DIR/users.csv` (a batch file of the users) and prints `KEY=value` lines
//! (`PORT`, `CSV`, `USERS`, `MESSAGES`, `BYTES`, `FOLDERS`, `MAIL_DIR`, `FILL_S`, `WARM_S`),
//! then runs until its standard input closes.

use std::io::{Read, Write};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use mailstage_tests::fixtures::{ODD_FOLDERS, Rng, corpus, message_of_size, simple};
use mailstage_tests::{Dovecot, Probe};

/// The size of a small message (`BENCH_SHAPE=small`).
const SMALL: usize = 300;

/// Whether the corpus is of small messages in one folder (`BENCH_SHAPE=small`).
fn small_shape() -> bool {
    std::env::var("BENCH_SHAPE").is_ok_and(|s| s == "small")
}

/// A distinct message of about [`SMALL`] bytes (its body line padded up to that).
fn small_message(n: u64) -> Vec<u8> {
    let mut m = simple(n);
    if m.len() + 2 < SMALL {
        let end = m.len() - 2; // before the last CRLF
        m.splice(end..end, std::iter::repeat_n(b'x', SMALL - m.len()));
    }
    m
}

/// The folders that get mail, and each one's share of a mailbox's messages (in 1/100).
fn folders() -> Vec<(String, u32)> {
    if small_shape() {
        return vec![("INBOX".to_string(), 100)];
    }
    let mut f = vec![("INBOX".to_string(), 30), ("Sent".to_string(), 20)];
    f.extend(
        ODD_FOLDERS
            .iter()
            .map(|o| (o.name.to_string(), 50 / ODD_FOLDERS.len() as u32)),
    );
    f
}

/// `BENCH_FOLDERS=N`: N folders, messages dealt out in turn.
fn many_folders() -> Result<Option<Vec<String>>> {
    let Ok(n) = std::env::var("BENCH_FOLDERS") else {
        return Ok(None);
    };
    let n: usize = n.parse().context("BENCH_FOLDERS")?;
    ensure!(n >= 1, "BENCH_FOLDERS must be at least 1");
    let mut f = vec!["INBOX".to_string()];
    f.extend((1..n).map(|i| format!("Projects/P{i:04}")));
    Ok(Some(f))
}

fn user(k: usize) -> (String, String) {
    (format!("bench{k}"), format!("pw-bench{k}"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, mailboxes, messages, seed) = match args.as_slice() {
        [d, m, n] => (d, m, n, "1"),
        [d, m, n, s] => (d, m, n, s.as_str()),
        _ => bail!("usage: bench-corpus DIR MAILBOXES MESSAGES [SEED]"),
    };
    let mailboxes: usize = mailboxes.parse().context("MAILBOXES")?;
    let messages: usize = messages.parse().context("MESSAGES")?;
    let seed: u64 = seed.parse().context("SEED")?;
    ensure!(mailboxes >= 1, "MAILBOXES must be at least 1");

    let mut builder = Dovecot::builder();
    for k in 1..=mailboxes {
        let (name, pass) = user(k);
        builder = builder.user(&name, &pass);
    }
    let d = builder.start()?;
    let many = many_folders()?;
    let folders = match &many {
        Some(names) => names.iter().map(|n| (n.clone(), 1)).collect(),
        None => folders(),
    };
    let weight: u32 = folders.iter().map(|f| f.1).sum();

    let t0 = Instant::now();
    let bytes = std::thread::scope(|s| -> Result<u64> {
        let workers: Vec<_> = (1..=mailboxes)
            .map(|k| {
                let (d, folders, many) = (&d, &folders, many.is_some());
                s.spawn(move || -> Result<u64> {
                    let (name, _) = user(k);
                    for (folder, _) in folders {
                        if folder != "INBOX" {
                            d.create_folder(&name, folder)?;
                        }
                    }
                    let user_seed = seed.wrapping_mul(1000).wrapping_add(k as u64);
                    let mut rng = Rng::new(user_seed ^ 0xF01D);
                    let mut bytes = 0;
                    let bodies: Box<dyn Iterator<Item = Vec<u8>>> = if many {
                        Box::new((0..messages).map(move |i| {
                            message_of_size(2_000 + (i * 7_919) % 6_000, user_seed + i as u64)
                        }))
                    } else if small_shape() {
                        Box::new(
                            (0..messages as u64)
                                .map(move |i| small_message(user_seed * 10_000_000 + i)),
                        )
                    } else {
                        Box::new(corpus(user_seed, messages))
                    };
                    for (i, body) in bodies.enumerate() {
                        let mut pick = (rng.unit() * f64::from(weight)) as u32;
                        let folder = if many {
                            folders[i % folders.len()].0.as_str()
                        } else {
                            folders
                                .iter()
                                .find(|(_, w)| {
                                    let hit = pick < *w;
                                    pick = pick.saturating_sub(*w);
                                    hit
                                })
                                .map_or("INBOX", |f| f.0.as_str())
                        };
                        let mut flags = Vec::new();
                        if i % 10 != 0 {
                            flags.push("\\Seen");
                        }
                        if i % 7 == 0 {
                            flags.push("\\Answered");
                        }
                        if i % 20 == 0 {
                            flags.push("\\Flagged");
                        }
                        let when = 1_600_000_000 + i as u64 * 3_600;
                        d.write_message_at(&name, folder, &flags, when, &body)?;
                        bytes += body.len() as u64;
                    }
                    Ok(bytes)
                })
            })
            .collect();
        let mut total = 0;
        for w in workers {
            total += w.join().expect("a fill thread panicked")?;
        }
        Ok(total)
    })?;
    let fill_s = t0.elapsed().as_secs_f64();

    // Warm the server's index and cache, one connection per mailbox in parallel.
    let t1 = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (1..=mailboxes)
            .map(|k| {
                let d = &d;
                s.spawn(move || -> Result<()> {
                    let (name, pass) = user(k);
                    let mut p = Probe::connect(d.port())?;
                    p.login(&name, &pass)?.ok()?;
                    for entry in p.list()? {
                        if entry
                            .flags
                            .iter()
                            .any(|f| f.eq_ignore_ascii_case("\\Noselect"))
                        {
                            continue;
                        }
                        p.examine(&entry.name)?;
                        p.command("UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)")?
                            .ok()?;
                    }
                    p.logout()
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a warm-up thread panicked")?;
        }
        Ok(())
    })?;
    let warm_s = t1.elapsed().as_secs_f64();

    let csv = std::path::Path::new(dir).join("users.csv");
    let mut rows = String::from("EmailAddress,UserName,Password\n");
    for k in 1..=mailboxes {
        let (name, pass) = user(k);
        rows.push_str(&format!("{name}@bench.test,{name},{pass}\n"));
    }
    std::fs::write(&csv, rows)?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "PORT={}", d.port())?;
    writeln!(out, "CSV={}", csv.display())?;
    let users: Vec<String> = (1..=mailboxes).map(|k| user(k).0).collect();
    writeln!(out, "USERS=\"{}\"", users.join(" "))?;
    writeln!(out, "MESSAGES={}", mailboxes * messages)?;
    writeln!(out, "BYTES={bytes}")?;
    writeln!(out, "FOLDERS={}", folders.len())?;
    writeln!(out, "MAIL_DIR={}", d.dir().join("mail").display())?;
    writeln!(out, "FILL_S={fill_s:.1}")?;
    writeln!(out, "WARM_S={warm_s:.1}")?;
    out.flush()?;
    drop(out);
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(d);
    Ok(())
}
