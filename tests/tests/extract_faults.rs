//! Extraction through a [`FaultProxy`] that breaks the link on purpose: cut after every N
//! bytes from the server (mid-literal), after N bytes from the client, or stalled until the
//! read timeout fires. A pass that makes progress on every connection must finish with the
//! same stage as a pass over a clean link; one that can never make progress (a message
//! larger than the link ever carries) must fail its mailbox by name, not loop.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use mailstage::extract::{Limits, MailboxOutcome, Pass, RetryPolicy};
use mailstage::stage::BlobHash;
use mailstage_tests::Dovecot;
use mailstage_tests::extraction::{TestMailbox, Via, default_limits, run, run_via};
use mailstage_tests::fault_proxy::{FaultProxy, Faults};
use mailstage_tests::stage_check::{check_completed, served};

const MIB: u64 = 1 << 20;

/// The harness user `name` (password `name-pw`) and its test mailbox.
fn user(name: &'static str) -> (Dovecot, [TestMailbox<'static>; 1]) {
    let password: &'static str = Box::leak(format!("{name}-pw").into_boxed_str());
    let d = Dovecot::builder()
        .user(name, password)
        .start()
        .expect("Dovecot starts");
    let email = Box::leak(format!("{name}@contoso.edu").into_boxed_str());
    let m = TestMailbox {
        email,
        login: name,
        password,
        user_root: None,
    };
    (d, [m])
}

/// Quick retries, so a test spends its time moving bytes rather than waiting.
fn quick(attempts: u32, read_timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        attempts_without_progress: attempts,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        read_timeout,
        ..RetryPolicy::default()
    }
}

fn through(proxy: &FaultProxy, retry: RetryPolicy) -> Via {
    Via {
        port: proxy.port(),
        retry,
    }
}

fn outcome(outcomes: &[MailboxOutcome]) -> &MailboxOutcome {
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    &outcomes[0]
}

/// Runs the pass over a clean link into `clean` and checks that `cut` holds the same
/// stage, byte for byte what Dovecot serves for each of `user`'s `folders`.
fn same_as_clean_pass(
    d: &Dovecot,
    m: &[TestMailbox<'_>],
    folders: &[&str],
    cut: &Path,
    clean: &Path,
) -> Result<()> {
    let o = run(clean, d, m, default_limits(), Pass::Full)?;
    assert!(outcome(&o).error.is_none(), "{o:?}");
    let rows = check_completed(cut)?;
    assert_eq!(
        rows,
        check_completed(clean)?,
        "the same rows as a clean pass"
    );
    for folder in folders {
        let staged: std::collections::BTreeSet<BlobHash> = rows
            .iter()
            .filter(|r| r.1 == *folder && r.7 == "staged")
            .filter_map(|r| BlobHash::parse(r.4.as_deref()?).ok())
            .collect();
        let served = served(d, m[0].login, folder)?;
        assert_eq!(staged, served, "{folder}: the server's bytes");
    }
    Ok(())
}

#[test]
fn a_link_cut_after_every_megabyte_still_stages_everything() -> Result<()> {
    let (d, m) = user("gina");
    // Every fourth message 500–900 KB, the rest 2–60 KB: about 16 MB in two folders.
    let sizes: Vec<usize> = (0..80)
        .map(|i| match i % 4 {
            0 => 500_000 + (i * 17_389) % 400_000,
            _ => 2_000 + (i * 7_919) % 58_000,
        })
        .collect();
    let folders = ["INBOX", "Archive"];
    let total = d.write_sized("gina", &folders, &sizes, 7)?;
    let proxy = FaultProxy::start(d.port(), Faults::cut_down_after(MIB))?;
    let (cut, clean) = (tempfile::tempdir()?, tempfile::tempdir()?);

    let started = Instant::now();
    let via = through(&proxy, quick(6, Duration::from_secs(10)));
    let o = run_via(cut.path(), &d, &m, default_limits(), Pass::Full, via)?;
    let o = outcome(&o);
    eprintln!(
        "{total} bytes through a link cut every MiB: {} cuts, {} connections, {} reconnects, {:?}",
        proxy.cuts(),
        proxy.connections(),
        o.counts.reconnects,
        started.elapsed()
    );
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!((o.counts.staged, o.counts.failed), (80, 0), "{o:?}");
    assert!(proxy.cuts() >= 12, "only {} cuts", proxy.cuts());
    assert_eq!(o.counts.reconnects, proxy.cuts(), "one reconnect per cut");
    same_as_clean_pass(&d, &m, &folders, cut.path(), clean.path())
}

#[test]
fn a_message_larger_than_the_link_carries_is_completed_from_its_partial_body() -> Result<()> {
    let (d, m) = user("hank");
    d.write_sized(
        "hank",
        &["INBOX"],
        &[3_000, 4_000, 600_000, 5_000, 6_000],
        11,
    )?;
    let proxy = FaultProxy::start(d.port(), Faults::cut_down_after(256 << 10))?;
    let (cut, clean) = (tempfile::tempdir()?, tempfile::tempdir()?);

    // Three attempts without progress would fail it: each link carries part of UID 3,
    // kept and continued by the next one, so every attempt makes progress.
    let via = through(&proxy, quick(3, Duration::from_secs(10)));
    let o = run_via(cut.path(), &d, &m, default_limits(), Pass::Full, via)?;
    let o = outcome(&o);
    eprintln!("{} connections: {:?}", proxy.connections(), o.counts);
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(o.counts.staged, 5, "{o:?}");
    assert!(o.counts.resumed >= 2, "{o:?}");
    assert!(o.counts.partial_bytes >= 400_000, "{o:?}");
    same_as_clean_pass(&d, &m, &["INBOX"], cut.path(), clean.path())
}

#[test]
fn a_link_that_never_gets_past_the_login_fails_its_mailbox_by_name() -> Result<()> {
    let (d, m) = user("hugo");
    d.write_sized("hugo", &["INBOX"], &[3_000, 4_000], 11)?;
    // The greeting gets through, the answer to the login never does.
    let proxy = FaultProxy::start(d.port(), Faults::cut_down_after(200))?;
    let dir = tempfile::tempdir()?;

    let via = through(&proxy, quick(3, Duration::from_secs(10)));
    let o = run_via(dir.path(), &d, &m, default_limits(), Pass::Full, via)?;
    let o = outcome(&o);
    let error = o.error.as_deref().unwrap_or_default();
    eprintln!("{} connections: {error}", proxy.connections());
    assert!(
        error.starts_with(
            "hugo@contoso.edu: gave up after 3 attempts in a row without progress; the last one failed at logging in as hugo"
        ),
        "{error}"
    );
    assert_eq!(proxy.connections(), 3, "three attempts without progress");
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite"))?;
    let (state, last): (String, String) = conn.query_row(
        "SELECT state, last_error FROM mailboxes WHERE email = 'hugo@contoso.edu'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!((state.as_str(), last.as_str()), ("Failed", error));
    Ok(())
}

#[test]
fn a_link_cut_after_random_megabytes_stages_a_30_mb_message_within_three_runs() -> Result<()> {
    let (d, m) = user("nina");
    // 30 messages of 20 KB to 3 MB in two folders, and one of 30 MB: about 75 MB.
    let mut sizes: Vec<usize> = (0..30)
        .map(|i| 20_000 + (i * 1_048_573) % 2_980_000)
        .collect();
    sizes.push(30_000_000);
    let folders = ["INBOX", "Archive"];
    let total = d.write_sized("nina", &folders, &sizes, 31)?;
    let faults = Faults {
        cut_between: Some((200_000, 3_000_000)),
        seed: 5,
        ..Faults::default()
    };
    let proxy = FaultProxy::start(d.port(), faults)?;
    let (cut, clean) = (tempfile::tempdir()?, tempfile::tempdir()?);

    let started = Instant::now();
    let mut resumed = 0;
    for run in 1..=3 {
        let via = through(&proxy, quick(6, Duration::from_secs(10)));
        let o = run_via(cut.path(), &d, &m, default_limits(), Pass::Full, via)?;
        let o = outcome(&o);
        resumed += o.counts.resumed;
        eprintln!(
            "run {run}: {total} bytes, {} cuts so far, {:?}: {:?} {:?}",
            proxy.cuts(),
            started.elapsed(),
            o.counts,
            o.error
        );
        if o.error.is_none() {
            break;
        }
        assert!(run < 3, "not staged within 3 runs: {o:?}");
    }
    assert!(proxy.cuts() >= 20, "only {} cuts", proxy.cuts());
    assert!(resumed >= 10, "only {resumed} messages resumed");
    same_as_clean_pass(&d, &m, &folders, cut.path(), clean.path())
}

#[test]
fn a_stalled_link_hits_the_read_timeout_and_reconnects() -> Result<()> {
    let (d, m) = user("ivy");
    d.write_sized("ivy", &["INBOX"], &[300_000; 12], 13)?;
    let stall = Duration::from_secs(60);
    let faults = Faults {
        down_limit: Some(MIB),
        stall: Some(stall),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(d.port(), faults)?;
    let (cut, clean) = (tempfile::tempdir()?, tempfile::tempdir()?);

    let started = Instant::now();
    let via = through(&proxy, quick(6, Duration::from_millis(500)));
    let o = run_via(cut.path(), &d, &m, default_limits(), Pass::Full, via)?;
    let took = started.elapsed();
    let o = outcome(&o);
    eprintln!(
        "{} stalls, {} reconnects, {took:?}",
        proxy.stalls(),
        o.counts.reconnects
    );
    assert!(o.error.is_none(), "{o:?}");
    assert!(proxy.stalls() >= 3, "only {} stalls", proxy.stalls());
    assert_eq!(
        proxy.cuts(),
        0,
        "the client gave up on each stalled link first"
    );
    assert!(
        took < stall / 2,
        "the read timeout, not the proxy, ended each stall: {took:?}"
    );
    same_as_clean_pass(&d, &m, &["INBOX"], cut.path(), clean.path())
}

#[test]
fn a_link_cut_after_a_few_commands_from_the_client_still_stages_everything() -> Result<()> {
    let (d, m) = user("jack");
    d.write_sized("jack", &["INBOX", "Sent"], &[600; 500], 17)?;
    let faults = Faults {
        up_limit: Some(600),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(d.port(), faults)?;
    let (cut, clean) = (tempfile::tempdir()?, tempfile::tempdir()?);

    let via = through(&proxy, quick(6, Duration::from_secs(10)));
    let o = run_via(cut.path(), &d, &m, default_limits(), Pass::Full, via)?;
    let o = outcome(&o);
    eprintln!("{} cuts after {} bytes up", proxy.cuts(), proxy.bytes_up());
    assert!(o.error.is_none(), "{o:?}");
    assert!(proxy.cuts() >= 3, "only {} cuts", proxy.cuts());
    same_as_clean_pass(&d, &m, &["INBOX", "Sent"], cut.path(), clean.path())
}

#[test]
fn a_literal_other_than_the_announced_size_is_staged_as_sent_and_counted() -> Result<()> {
    let (d, m) = user("kim");
    d.write_sized("kim", &["INBOX"], &[5_000, 6_000, 7_000, 20_000], 19)?;
    // Every RFC822.SIZE 1000 bytes short of the literal, as some Exchange versions announce.
    let faults = Faults {
        size_skew: Some(-1_000),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(d.port(), faults)?;
    let dir = tempfile::tempdir()?;
    // The last message is announced under the cap but its literal is over it.
    let limits = Limits {
        max_message_size: 19_500,
        ..default_limits()
    };
    let via = through(&proxy, quick(6, Duration::from_secs(10)));
    let o = run_via(dir.path(), &d, &m, limits, Pass::Full, via)?;
    let o = outcome(&o);
    assert!(o.error.is_none(), "{o:?}");
    let c = &o.counts;
    assert_eq!(
        (c.staged, c.failed, c.skipped_size, c.size_mismatches),
        (3, 0, 1, 4),
        "{o:?}"
    );
    let rows = check_completed(dir.path())?;
    let staged: std::collections::BTreeSet<BlobHash> = rows
        .iter()
        .filter(|r| r.7 == "staged")
        .filter_map(|r| BlobHash::parse(r.4.as_deref()?).ok())
        .collect();
    let served = served(&d, "kim", "INBOX")?;
    assert_eq!(staged.len(), 3);
    assert!(
        staged.is_subset(&served),
        "byte for byte what the server sent"
    );
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite"))?;
    let (size, reason): (i64, String) =
        conn.query_row("SELECT size, reason FROM messages WHERE uid = 4", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    assert!(
        size > 19_500
            && reason.starts_with(&format!(
                "the server announced {} bytes (RFC822.SIZE) but sent {size}, over the 19500-byte size cap",
                size - 1_000
            )),
        "{size}: {reason}"
    );
    let sizes_ok: bool = conn.query_row(
        "SELECT count(*) = 3 FROM messages WHERE state = 'staged' AND size > 4000",
        [],
        |r| r.get(0),
    )?;
    assert!(sizes_ok, "staged rows carry the literal's length");
    Ok(())
}
