//! Literals on a target that announces LITERAL+ (Dovecot behind the Exchange-like proxy)
//! and then answers BAD to every literal sent without waiting for `+`: the run falls back
//! to synchronising literals for the rest of the run, sends every message exactly once
//! and refuses none.

use std::sync::atomic::Ordering;

use anyhow::Result;
use mailstage_tests::Dovecot;
use mailstage_tests::exchange_proxy::ExchangeRules;
use mailstage_tests::fixtures::simple;
use mailstage_tests::upload::{m365_job_via, run, staged_behind_exchange, target_contents};

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
