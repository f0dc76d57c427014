//! Target habits behind the Exchange-like proxy (a Dovecot behind it): a target that
//! announces LITERAL+ and then answers BAD to every literal sent without waiting for `+`
//! (the run falls back to synchronising literals, sends every message exactly once and
//! refuses none; one refusing them in any command is found out by the delimiter question
//! each connection asks, before any APPEND); a folder at its item limit answering `NO [LIMIT]` (the folder stops with
//! one error naming it, the rest of the mailbox goes on); a target that ends every
//! connection with `* BYE` after a few APPENDs, more in flight (each message once).

use std::sync::atomic::Ordering;

use anyhow::Result;
use mailstage_tests::Dovecot;
use mailstage_tests::exchange_proxy::ExchangeRules;
use mailstage_tests::fixtures::simple;
use mailstage_tests::upload::{
    alice_behind_exchange, m365_job_via, run, staged_behind_exchange, target_contents,
};

const ALICE: &str = "alice@contoso.edu";
const T0: u64 = 1_700_000_000;

#[test]
fn a_target_refusing_non_synchronising_literals_gets_synchronising_ones() -> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..12 {
        source.write_message_at("alice", "INBOX", &["\\Seen"], T0 + i, &simple(i))?;
    }
    source.create_folder("alice", "Work")?;
    for i in 12..15 {
        source.write_message_at("alice", "Work", &[], T0 + i, &simple(i))?;
    }
    let dir = tempfile::tempdir()?;
    let (target, proxy) = staged_behind_exchange(
        dir.path(),
        &source,
        ALICE,
        "alice",
        ExchangeRules {
            refuse_nonsync_literals: true,
            ..ExchangeRules::default()
        },
    )?;
    let mut job = m365_job_via(dir.path(), &target, proxy.port())?;
    job.connections = 2;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(
        (o.counts.uploaded, o.counts.refused),
        (15, 0),
        "{:?}",
        o.counts
    );
    // Refused only until the run learnt it (a few in flight on each connection), then
    // every literal waited: no refusal on a later connection.
    let refused = proxy.stats().nonsync_refused.load(Ordering::Relaxed);
    assert!((1..=8).contains(&refused), "refused {refused} literals");
    // Each message once on the target.
    let contents = target_contents(&target, ALICE)?;
    let total: usize = contents.values().map(|m| m.len()).sum();
    assert_eq!(total, 15, "{contents:?}");
    Ok(())
}

#[test]
fn a_target_refusing_them_everywhere_is_found_out_before_any_append() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (target, proxy) = alice_behind_exchange(
        dir.path(),
        ALICE,
        (6, T0),
        |_| &[],
        ExchangeRules {
            refuse_nonsync_everywhere: true,
            ..ExchangeRules::default()
        },
    )?;
    let mut job = m365_job_via(dir.path(), &target, proxy.port())?;
    job.connections = 2;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    let c = &o.counts;
    assert_eq!((c.uploaded, c.refused, c.reconnects), (6, 0, 0), "{c:?}");
    // Only the delimiter question of a connection opened before the run knew.
    let refused = proxy.stats().nonsync_refused.load(Ordering::Relaxed);
    assert!((1..=2).contains(&refused), "refused {refused} literals");
    Ok(())
}

#[test]
fn a_folder_answering_limit_again_and_again_stops_with_one_error_naming_it() -> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..3 {
        source.write_message_at("alice", "INBOX", &[], T0 + i, &simple(i))?;
    }
    source.create_folder("alice", "Big")?;
    for i in 3..63 {
        source.write_message_at("alice", "Big", &[], T0 + i, &simple(i))?;
    }
    let dir = tempfile::tempdir()?;
    let (target, proxy) = staged_behind_exchange(
        dir.path(),
        &source,
        ALICE,
        "alice",
        ExchangeRules {
            folder_cap: Some(("Big".into(), 5)),
            ..ExchangeRules::default()
        },
    )?;
    let job = m365_job_via(dir.path(), &target, proxy.port())?;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(
        (o.counts.uploaded, o.counts.refused),
        (8, 55),
        "{:?}",
        o.counts
    );
    // Stopped after 20 in a row (and those already in flight), not all 55 sent.
    let limited = proxy.stats().limited.load(Ordering::Relaxed);
    assert!(
        (20..=40).contains(&limited),
        "{limited} APPENDs met [LIMIT]"
    );
    let [folder] = o.refused_folders.as_slice() else {
        panic!("{:?}", o.refused_folders);
    };
    assert_eq!(folder.folder, "Big");
    assert!(folder.words.contains("[LIMIT]"), "{}", folder.words);
    assert!(folder.words.contains("\"Big\""), "{}", folder.words);
    Ok(())
}

#[test]
fn a_target_ending_each_connection_after_a_few_appends_gets_each_message_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (target, proxy) = alice_behind_exchange(
        dir.path(),
        ALICE,
        (20, T0),
        |_| &[],
        ExchangeRules {
            bye_after_appends: Some(6),
            ..ExchangeRules::default()
        },
    )?;
    let mut job = m365_job_via(dir.path(), &target, proxy.port())?;
    job.connections = 1;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    let c = &o.counts;
    assert_eq!(
        (c.uploaded + c.found_present, c.refused, c.set_aside),
        (20, 0, 0),
        "{c:?}"
    );
    assert!(proxy.stats().byes_after_appends.load(Ordering::Relaxed) >= 3);
    let contents = target_contents(&target, ALICE)?;
    let total: usize = contents.values().map(|m| m.len()).sum();
    assert_eq!(total, 20, "{contents:?}");
    Ok(())
}
