//! Pipelined APPEND and the learned throttle budget, through the Exchange emulator in front
//! of a real Dovecot: with LITERAL+ several APPENDs are in flight on a connection and every
//! message lands once; without it, one at a time; under a per-mailbox budget of APPENDs per
//! second, the run learns the pace from the throttles instead of hitting the wall on
//! every burst.

use std::sync::atomic::Ordering;

use anyhow::Result;
use mailstage::extract::Pass;
use mailstage::upload::{MappingRules, UploadOutcome};
use mailstage_tests::Dovecot;
use mailstage_tests::exchange_proxy::{ExchangeProxy, ExchangeRules};
use mailstage_tests::extraction::{TestMailbox, default_limits};
use mailstage_tests::fixtures::simple;
use mailstage_tests::upload::{
    job, run, staged_contents, target_contents, target_dovecot, target_dovecot_with,
};

const T0: u64 = 1_700_000_000;
const USERS: [(&str, &str); 2] = [("alice", "alice@contoso.edu"), ("bob", "bob@contoso.edu")];

/// Stages `n` messages in two folders for each user of [`USERS`] (batch `b1`).
fn staged(dir: &std::path::Path, n: u64) -> Result<()> {
    let mut source = Dovecot::builder();
    for (login, _) in USERS {
        source = source.user(login, &format!("{login}-pw"));
    }
    let source = source.start()?;
    let mut mailboxes = Vec::new();
    let passwords: Vec<String> = USERS.iter().map(|(l, _)| format!("{l}-pw")).collect();
    for ((login, email), password) in USERS.iter().zip(&passwords) {
        for i in 0..n {
            let folder = if i % 3 == 0 { "Archive" } else { "INBOX" };
            source.write_message_at(login, folder, &["\\Seen"], T0 + i, &simple(i))?;
        }
        mailboxes.push(TestMailbox {
            email,
            login,
            password,
            user_root: None,
        });
    }
    let out =
        mailstage_tests::extraction::run(dir, &source, &mailboxes, default_limits(), Pass::Full)?;
    anyhow::ensure!(out.iter().all(|o| o.error.is_none()), "{out:?}");
    Ok(())
}

fn all_ok(outcomes: &[UploadOutcome]) {
    for o in outcomes {
        assert!(o.error.is_none(), "{o:?}");
    }
}

/// Every staged message on the target once, with its flags.
fn exactly_once(dir: &std::path::Path, target: &Dovecot) -> Result<()> {
    let mut on_target = mailstage_tests::upload::Contents::new();
    for (_, email) in USERS {
        on_target.extend(target_contents(target, email)?);
    }
    assert_eq!(on_target, staged_contents(dir)?);
    Ok(())
}

#[test]
fn with_literal_plus_appends_are_in_flight_together_and_land_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    staged(dir.path(), 120)?;
    let emails: Vec<&str> = USERS.iter().map(|(_, e)| *e).collect();
    let target = target_dovecot(&emails)?;
    let proxy = ExchangeProxy::start(target.port(), ExchangeRules::default())?;
    let mut job = job(dir.path(), &target, None, MappingRules::default())?;
    job.connect.port = proxy.port();
    job.connections = 1;
    let outcomes = run(dir.path(), job)?;
    all_ok(&outcomes);
    assert_eq!(outcomes.iter().map(|o| o.counts.uploaded).sum::<u64>(), 240);
    let deepest = proxy.stats().most_appends_in_flight.load(Ordering::Relaxed);
    assert!(deepest > 1, "one APPEND at a time");
    assert!(deepest <= 16, "{deepest} in flight: over the window");
    exactly_once(dir.path(), &target)
}

#[test]
fn without_literal_plus_each_append_waits_for_the_one_before() -> Result<()> {
    let dir = tempfile::tempdir()?;
    staged(dir.path(), 30)?;
    let emails: Vec<&str> = USERS.iter().map(|(_, e)| *e).collect();
    // Dovecot's capabilities without LITERAL+ (and without LITERAL-).
    let target = target_dovecot_with(
        &emails,
        &[
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS SPECIAL-USE NAMESPACE",
        ],
    )?;
    let proxy = ExchangeProxy::start(target.port(), ExchangeRules::default())?;
    let mut job = job(dir.path(), &target, None, MappingRules::default())?;
    job.connect.port = proxy.port();
    let outcomes = run(dir.path(), job)?;
    all_ok(&outcomes);
    assert_eq!(outcomes.iter().map(|o| o.counts.uploaded).sum::<u64>(), 60);
    assert_eq!(
        proxy.stats().most_appends_in_flight.load(Ordering::Relaxed),
        1
    );
    exactly_once(dir.path(), &target)
}

#[test]
fn a_per_mailbox_budget_is_learned_from_its_throttles() -> Result<()> {
    let dir = tempfile::tempdir()?;
    staged(dir.path(), 120)?;
    let emails: Vec<&str> = USERS.iter().map(|(_, e)| *e).collect();
    let target = target_dovecot(&emails)?;
    let proxy = ExchangeProxy::start(
        target.port(),
        ExchangeRules {
            budget_per_second: Some(20.0),
            ..ExchangeRules::default()
        },
    )?;
    let mut job = job(dir.path(), &target, None, MappingRules::default())?;
    job.connect.port = proxy.port();
    let outcomes = run(dir.path(), job)?;
    all_ok(&outcomes);
    exactly_once(dir.path(), &target)?;
    let throttled = proxy.stats().budgets.throttled();
    for (_, email) in USERS {
        // The first burst meets the wall; the paced rest mostly stays under it (unpaced,
        // every burst after a reconnect would: dozens).
        let n = throttled.get(email).copied().unwrap_or(0);
        assert!(
            (1..=10).contains(&n),
            "{email}: throttled {n} times: {throttled:?}"
        );
        let o = outcomes.iter().find(|o| o.email == email).unwrap();
        // (A throttle answer lost with its link reads as a broken link.)
        assert!((1..=n).contains(&o.counts.throttled), "{o:?}");
    }
    Ok(())
}
