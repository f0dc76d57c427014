//! Exactly once on Microsoft 365 when it throttles any command: through the Exchange
//! emulator throttling APPEND, SELECT, STORE, SEARCH, FETCH, LIST and CREATE in turn (a
//! `BAD … Request is throttled` answer, `* BYE`, the link dropped), with flagged messages
//! whose `\Flagged` only a STORE after the APPEND sets, every message ends on the target
//! exactly once with its flags; and after ten errors a connection is dropped as Exchange
//! drops it, without stopping the run.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use mailstage::extract::Pass;
use mailstage::upload::UploadOutcome;
use mailstage_tests::Dovecot;
use mailstage_tests::exchange_proxy::{ExchangeProxy, ExchangeRules, MAX_ERRORS};
use mailstage_tests::extraction::stage_user;
use mailstage_tests::fixtures::{message_of_size, simple};
use mailstage_tests::upload::{
    ADMIN, alice_behind_exchange, m365_job_via, mark_in_flight, run, staged_behind_exchange,
    staged_contents, target_contents, target_dovecot,
};

const ALICE: &str = "alice@contoso.edu";
const T0: u64 = 1_700_000_000;
const KINDS: [&str; 7] = [
    "APPEND", "SELECT", "STORE", "SEARCH", "FETCH", "LIST", "CREATE",
];

/// A message without a Message-ID (found again by INTERNALDATE and headers: SEARCH by
/// date, then FETCH).
fn without_message_id(n: u64) -> Vec<u8> {
    format!(
        "From: Carol <carol@example.test>\r\nSubject: no id {n}\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nBody {n}.\r\n"
    )
    .into_bytes()
}

fn flags_of(i: u64) -> &'static [&'static str] {
    match i % 3 {
        0 => &["\\Flagged", "\\Seen"],
        1 => &["\\Seen"],
        _ => &[],
    }
}

#[test]
fn every_message_once_with_its_flags_when_every_command_kind_is_throttled() -> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..24 {
        source.write_message_at("alice", "INBOX", flags_of(i), T0 + i, &simple(i))?;
    }
    for i in 0..9 {
        let bytes = without_message_id(i);
        source.write_message_at("alice", "Projects", flags_of(i), T0 + 100 + i, &bytes)?;
    }
    for i in 0..6 {
        let bytes = simple(200 + i);
        source.write_message_at("alice", "Archive/2020", flags_of(i), T0 + 200 + i, &bytes)?;
    }
    // Folders to create (parents first), so CREATE is throttled too.
    for (i, topic) in (300..).zip(["A", "B", "C", "D"]) {
        let folder = format!("Topics/{topic}");
        source.write_message_at("alice", &folder, flags_of(i), T0 + i, &simple(i))?;
    }
    let dir = tempfile::tempdir()?;
    stage_user(dir.path(), &source, ALICE, "alice", Pass::Full)?;

    // A crash after Projects' messages were sent, before their results were recorded: the
    // first five arrived, without \Flagged (Exchange drops it from the APPEND, and the
    // crash came before the STORE), the rest did not. The run looks for them by
    // INTERNALDATE and headers (SEARCH, FETCH), sends only the absent ones, and flags the
    // flagged ones it found.
    let target = target_dovecot(&[ALICE])?;
    let in_flight = mark_in_flight(dir.path(), ALICE, "Projects")?;
    assert_eq!(in_flight.len(), 9);
    for i in 0..5 {
        let bytes = without_message_id(i);
        let flags: Vec<&str> = flags_of(i)
            .iter()
            .copied()
            .filter(|f| *f != "\\Flagged")
            .collect();
        target.write_message_at(ALICE, "Projects", &flags, T0 + 100 + i, &bytes)?;
    }

    let proxy = ExchangeProxy::start(
        target.port(),
        ExchangeRules {
            throttle_every: Some(4),
            throttle_commands: KINDS.map(str::to_owned).to_vec(),
            backoff: Duration::from_millis(20),
            drop_flagged: true,
            ..ExchangeRules::default()
        },
    )?;
    let upload = || -> Result<UploadOutcome> {
        let job = m365_job_via(dir.path(), &target, proxy.port())?;
        Ok(run(dir.path(), job)?.remove(0))
    };
    let o = upload()?;
    assert!(o.error.is_none(), "{o:?}");
    let throttled = proxy.stats().throttled_kinds();
    for kind in KINDS {
        assert!(
            throttled.get(kind).is_some_and(|&n| n > 0),
            "{kind} never throttled: {throttled:?}"
        );
    }
    // On the real Dovecot behind the proxy: every staged message once, flags equal.
    assert_eq!(
        target_contents(&target, ALICE)?,
        staged_contents(dir.path())?
    );
    let c = &o.counts;
    assert_eq!((c.found_present, c.resent), (5, 4), "{c:?}");
    assert_eq!(c.uploaded, 24 + 4 + 6 + 4, "{c:?}");
    assert!(
        c.flags_set_later > 0,
        "no flag was left to set later: {c:?}"
    );
    assert_eq!((c.refused, c.flags_pending), (0, 0), "{c:?}");
    assert!(
        proxy.stats().flagged_dropped.load(Ordering::Relaxed) > 0,
        "APPEND never carried \\Flagged"
    );

    // A second run sends nothing and has no flag left to set.
    let appends = proxy.stats().appends.load(Ordering::Relaxed);
    let again = upload()?;
    assert!(again.error.is_none(), "{again:?}");
    assert_eq!(
        (again.counts.uploaded, again.counts.flags_set_later),
        (0, 0),
        "{again:?}"
    );
    assert_eq!(proxy.stats().appends.load(Ordering::Relaxed), appends);
    Ok(())
}

#[test]
fn ten_errors_drop_the_connection_and_the_run_goes_on() -> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..12 {
        let big = message_of_size(30_000, i);
        source.write_message_at("alice", "INBOX", &[], T0 + i, &big)?;
    }
    for i in 0..3 {
        source.write_message_at("alice", "INBOX", &[], T0 + 50 + i, &simple(i))?;
    }
    let dir = tempfile::tempdir()?;
    let (target, proxy) = staged_behind_exchange(
        dir.path(),
        &source,
        ALICE,
        "alice",
        ExchangeRules {
            max_append: Some(20_000),
            reserved: vec!["Files".into()],
            ..ExchangeRules::default()
        },
    )?;

    // As a client sees it: the tenth error is followed by BYE and the end of the link.
    let mut p = mailstage_tests::Probe::connect(proxy.port())?;
    p.login(&format!("{ALICE}*{}", ADMIN.0), ADMIN.1)?.ok()?;
    for n in 1..=MAX_ERRORS {
        let r = p.command("CREATE Files")?;
        assert_eq!(r.status, "NO", "CREATE number {n}: {r:?}");
    }
    assert!(
        p.command("NOOP").is_err(),
        "still connected after ten errors"
    );
    assert_eq!(
        proxy.stats().dropped_after_errors.load(Ordering::Relaxed),
        1
    );

    let mut job = m365_job_via(dir.path(), &target, proxy.port())?;
    job.connections = 1;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!((o.counts.uploaded, o.counts.refused), (3, 12), "{o:?}");
    assert!(proxy.stats().dropped_after_errors.load(Ordering::Relaxed) >= 2);
    let on_target: Vec<_> = target_contents(&target, ALICE)?.into_values().collect();
    assert_eq!(on_target.iter().map(Vec::len).sum::<usize>(), 3);
    Ok(())
}

/// Uploads `dir`'s stage into `target` through `proxy` on one connection; the mailbox must
/// succeed after being throttled at least once, every throttle counted.
fn run_throttled(dir: &Path, target: &Dovecot, proxy: &ExchangeProxy) -> Result<UploadOutcome> {
    let mut job = m365_job_via(dir, target, proxy.port())?;
    job.connections = 1;
    let o = run(dir, job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    let throttled = proxy.stats().throttled.load(Ordering::Relaxed);
    assert!(throttled >= 1, "never throttled");
    assert_eq!(o.counts.throttled, throttled, "{:?}", o.counts);
    Ok(o)
}

#[test]
fn a_throttle_without_a_readable_backoff_is_waited_out_not_taken_for_a_refusal() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (target, proxy) = alice_behind_exchange(
        dir.path(),
        ALICE,
        (6, T0),
        |_| &["\\Seen"],
        ExchangeRules {
            throttle_every: Some(4),
            throttle_reply: Some(
                "BAD Request is throttled. Suggested Backoff Time: NaN milliseconds".into(),
            ),
            ..ExchangeRules::default()
        },
    )?;
    let o = run_throttled(dir.path(), &target, &proxy)?;
    assert_eq!(o.counts.refused, 0, "a throttle taken for a refusal: {o:?}");
    assert_eq!(o.counts.uploaded + o.counts.found_present, 6, "{o:?}");
    // The unstated wait was honoured before each reconnect.
    let pauses = proxy.stats().pauses.lock().unwrap().clone();
    assert!(
        pauses
            .iter()
            .all(|p| *p >= mailstage::imap::error::UNSTATED_BACKOFF),
        "{pauses:?}"
    );
    let on_target: Vec<_> = target_contents(&target, ALICE)?.into_values().collect();
    assert_eq!(on_target.iter().map(Vec::len).sum::<usize>(), 6);
    Ok(())
}

#[test]
fn a_bye_in_a_throttles_words_is_honoured_as_a_throttle() -> Result<()> {
    const LONG: Duration = Duration::from_millis(1500);
    let dir = tempfile::tempdir()?;
    let (target, proxy) = alice_behind_exchange(
        dir.path(),
        ALICE,
        (6, T0),
        |_| &["\\Seen"],
        ExchangeRules {
            throttle_every: Some(4),
            throttle_by_bye: true,
            // Longer than the reconnect backoff after progress (1 s).
            backoff: LONG,
            ..ExchangeRules::default()
        },
    )?;
    run_throttled(dir.path(), &target, &proxy)?;
    let pauses = proxy.stats().pauses.lock().unwrap().clone();
    assert!(pauses.iter().all(|p| *p >= LONG), "{pauses:?}");
    let on_target: Vec<_> = target_contents(&target, ALICE)?.into_values().collect();
    assert_eq!(on_target.iter().map(Vec::len).sum::<usize>(), 6);
    Ok(())
}
