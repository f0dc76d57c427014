//! Uploading through a proxy that behaves as Exchange Online does (throttling with a
//! suggested backoff and a dropped link, oversize refusals, `\Flagged` ignored by APPEND,
//! the reserved `Files` name, folder names compared without regard to case): the run
//! completes, honours every backoff, merges folders that differ only in case, and reports
//! what was refused.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use mailstage::extract::Pass;
use mailstage::stage::{Access, Stage};
use mailstage::upload::long_lines::EXCHANGE_MAX_LINE;
use mailstage::upload::{
    EXCHANGE_DEFAULT_MAX_SIZE, LimitSource, SizeLimit, SkipReason, UploadOutcome,
};
use mailstage_tests::exchange_proxy::{ExchangeProxy, ExchangeRules};
use mailstage_tests::extraction::stage_user;
use mailstage_tests::fixtures::{long_line, message_of_size, simple};
use mailstage_tests::upload::{
    ADMIN, alice_behind_exchange, m365_job_via, run, staged_behind_exchange, target_contents,
    target_dovecot,
};
use mailstage_tests::{Dovecot, Probe};

const ALICE: &str = "alice@contoso.edu";
const T0: u64 = 1_700_000_000;
const BACKOFF: Duration = Duration::from_millis(300);

fn flagged_uids(p: &mut Probe) -> Result<Vec<u32>> {
    let mut flagged = Vec::new();
    for uid in p.uids()? {
        if p.fetch_flags_date(uid)?.0.iter().any(|f| f == "\\Flagged") {
            flagged.push(uid);
        }
    }
    Ok(flagged)
}

#[test]
fn throttling_oversize_flagged_and_reserved_names_as_exchange_does_them() -> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..40 {
        let flags: &[&str] = if i == 7 {
            &["\\Flagged", "\\Seen"]
        } else {
            &["\\Seen"]
        };
        source.write_message_at("alice", "INBOX", flags, T0 + i, &simple(i))?;
    }
    source.write_message_at(
        "alice",
        "INBOX",
        &[],
        T0 + 100,
        &message_of_size(300_000, 1),
    )?;
    source.create_folder("alice", "Files")?;
    source.write_message_at("alice", "Files", &[], T0 + 101, &simple(101))?;
    let dir = tempfile::tempdir()?;
    let (target, proxy) = staged_behind_exchange(
        dir.path(),
        &source,
        ALICE,
        "alice",
        ExchangeRules {
            throttle_every: Some(15),
            backoff: BACKOFF,
            max_append: Some(200_000),
            drop_flagged: true,
            reserved: vec!["Files".into()],
            ..ExchangeRules::default()
        },
    )?;
    let job = m365_job_via(dir.path(), &target, proxy.port())?;
    let outcomes = run(dir.path(), job)?;
    let o = &outcomes[0];
    assert!(o.error.is_none(), "{o:?}");
    let stats = proxy.stats();
    let throttled = stats.throttled.load(std::sync::atomic::Ordering::Relaxed);
    assert!(throttled >= 2, "throttled {throttled} times");
    assert_eq!(o.counts.throttled, throttled, "{:?}", o.counts);
    // One wait per attempt that was throttled (two connections throttled in the same
    // attempt share it), and each reconnect came after the backoff.
    let pauses = stats.pauses.lock().unwrap().clone();
    assert!(
        (1..=throttled).contains(&(pauses.len() as u64)),
        "{pauses:?}"
    );
    assert_eq!(
        o.counts.throttle_wait_ms,
        pauses.len() as u64 * BACKOFF.as_millis() as u64
    );
    assert!(
        pauses.iter().all(|p| *p >= BACKOFF),
        "reconnected before the backoff: {pauses:?}"
    );
    // APPENDs in flight behind a throttled one may have been stored before the link
    // dropped (their answers lost with it): found again by their resume key, not resent.
    assert_eq!(
        o.counts.uploaded + o.counts.found_present,
        41,
        "{:?}",
        o.counts
    );
    assert_eq!(o.counts.refused, 1, "{:?}", o.counts);
    assert_eq!(
        stats
            .reserved_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "Files was never asked for"
    );
    assert!(
        stats
            .flagged_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );

    // On the target: Files under its predictable new name, the flag set by STORE, the
    // oversize message absent and reported.
    let mut p = target.connect()?;
    p.login(&format!("{ALICE}*{}", ADMIN.0), ADMIN.1)?.ok()?;
    let names: Vec<String> = p.list()?.into_iter().map(|l| l.name).collect();
    assert!(
        names.contains(&"Files (migrated)".to_owned()) && !names.contains(&"Files".to_owned()),
        "{names:?}"
    );
    p.examine("INBOX")?;
    assert_eq!(p.uids()?.len(), 40);
    assert_eq!(flagged_uids(&mut p)?.len(), 1);
    p.examine("Files (migrated)")?;
    assert_eq!(p.uids()?.len(), 1);
    let stage = Stage::open(dir.path(), Access::Read)?;
    let status = &stage.index().upload_status("b1", "dst")?[0];
    assert_eq!(
        (status.failed, status.state.as_deref()),
        (1, Some("UploadedWithErrors")),
        "{status:?}"
    );
    let refusal = status.last_refusal.as_deref().unwrap_or_default();
    assert!(
        refusal.contains("BAD Command Argument Error. 11"),
        "{refusal}"
    );
    Ok(())
}

/// (folder, UID, reason) of each predicted skip.
fn skips(o: &UploadOutcome) -> Vec<(&str, u32, SkipReason)> {
    o.predicted_skips
        .iter()
        .map(|s| (s.folder.as_str(), s.uid, s.reason))
        .collect()
}

#[test]
fn dry_run_on_microsoft_365_predicts_long_lines_and_retries_of_refusals() -> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    let inbox = [
        simple(1),
        long_line(EXCHANGE_MAX_LINE),
        long_line(EXCHANGE_MAX_LINE + 1),
        message_of_size(300_000, 1),
    ];
    for (i, m) in (0..).zip(&inbox) {
        source.write_message_at("alice", "INBOX", &[], T0 + i, m)?;
    }
    let dir = tempfile::tempdir()?;
    let (target, proxy) = staged_behind_exchange(
        dir.path(),
        &source,
        ALICE,
        "alice",
        ExchangeRules {
            max_append: Some(200_000),
            ..ExchangeRules::default()
        },
    )?;
    let upload = |dry_run: bool| -> Result<UploadOutcome> {
        let mut job = m365_job_via(dir.path(), &target, proxy.port())?;
        job.dry_run = dry_run;
        let o = run(dir.path(), job)?.remove(0);
        assert!(o.error.is_none(), "{o:?}");
        Ok(o)
    };
    let appends = || {
        proxy
            .stats()
            .appends
            .load(std::sync::atomic::Ordering::Relaxed)
    };

    // No APPENDLIMIT: Exchange's default limit, which no message reaches; the line one
    // character over Exchange's limit is predicted, the one at the limit is not.
    let o = upload(true)?;
    let default = SizeLimit {
        bytes: EXCHANGE_DEFAULT_MAX_SIZE,
        source: LimitSource::ExchangeDefault,
    };
    assert_eq!(o.size_limit, Some(default));
    assert_eq!(skips(&o), [("INBOX", 3, SkipReason::LongLine)], "{o:?}");
    assert_eq!(
        (o.counts.predicted_refusals, o.counts.refused_before),
        (1, 0)
    );
    assert_eq!(appends(), 0, "a dry run sends nothing");

    // The proxy refuses the 300 KB message; the next dry run says it will be retried, with
    // the server's words.
    let o = upload(false)?;
    assert_eq!((o.counts.uploaded, o.counts.refused), (3, 1), "{o:?}");
    assert!(o.predicted_skips.is_empty() && o.size_limit.is_none());
    let sent = appends();
    let o = upload(true)?;
    assert_eq!(
        skips(&o),
        [("INBOX", 4, SkipReason::RefusedBefore)],
        "{o:?}"
    );
    assert_eq!(
        (o.counts.predicted_refusals, o.counts.refused_before),
        (0, 1)
    );
    let words = o.predicted_skips[0].refused_last_time.as_deref();
    assert!(
        words.is_some_and(|w| w.contains("BAD Command Argument Error. 11")),
        "{words:?}"
    );
    assert_eq!(o.last_refusal.as_deref(), words);
    assert_eq!(appends(), sent, "a dry run sends nothing");
    Ok(())
}

#[test]
fn folders_differing_only_in_case_merge_as_microsoft_365_compares_them() -> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..3 {
        source.write_message_at("alice", "Projects", &[], T0 + i, &simple(i))?;
        source.write_message_at("alice", "projects", &[], T0 + 10 + i, &simple(10 + i))?;
        source.write_message_at("alice", "PROJECTS/Q1", &[], T0 + 20 + i, &simple(20 + i))?;
    }
    source.write_message_at("alice", "reports", &[], T0 + 30, &simple(30))?;
    let dir = tempfile::tempdir()?;
    stage_user(dir.path(), &source, ALICE, "alice", Pass::Full)?;
    let target = target_dovecot(&[ALICE])?;
    target.create_folder(ALICE, "Reports")?;
    let proxy = ExchangeProxy::start(
        target.port(),
        ExchangeRules {
            fold_case: true,
            ..ExchangeRules::default()
        },
    )?;

    // The emulator answers a CREATE of a case variant as Exchange does.
    let mut p = mailstage_tests::Probe::connect(proxy.port())?;
    p.login(&format!("{ALICE}*{}", ADMIN.0), ADMIN.1)?.ok()?;
    p.list()?;
    let r = p.command("CREATE REPORTS")?;
    assert_eq!(
        (r.status.as_str(), r.text.as_str()),
        ("NO", "Mailbox already exists.")
    );
    p.logout()?;

    let job = m365_job_via(dir.path(), &target, proxy.port())?;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(o.counts.uploaded, 10, "{o:?}");
    let note = |source: &str| {
        let f = o.folders.iter().find(|f| f.source == source).unwrap();
        (
            f.target.as_ref().unwrap().join("/"),
            f.note.clone().unwrap_or_default(),
        )
    };
    let (to, why) = note("projects");
    assert_eq!(to, "Projects");
    assert!(
        why.contains("merged with source folder \"Projects\""),
        "{why}"
    );
    assert_eq!(note("PROJECTS/Q1").0, "Projects/Q1");
    let (to, why) = note("reports");
    assert_eq!(to, "Reports");
    assert!(why.contains("the target's existing \"Reports\""), "{why}");
    let stats = proxy.stats();
    assert_eq!(
        stats
            .case_variants_refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // On the target: one Projects holding both folders' mail, no case variant created.
    let names: Vec<String> = target_contents(&target, ALICE)?
        .into_iter()
        .map(|((_, folder), messages)| format!("{folder}:{}", messages.len()))
        .collect();
    assert_eq!(names, ["Projects:6", "Projects/Q1:3", "Reports:1"]);
    Ok(())
}

#[test]
fn a_refusal_for_now_without_a_code_is_sent_again_not_recorded_as_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (target, proxy) = alice_behind_exchange(
        dir.path(),
        ALICE,
        (24, T0),
        |_| &["\\Seen"],
        ExchangeRules {
            unavailable_every: Some(5),
            ..ExchangeRules::default()
        },
    )?;
    let job = m365_job_via(dir.path(), &target, proxy.port())?;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    let unavailable = proxy
        .stats()
        .unavailable
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(unavailable >= 4, "answered unavailable {unavailable} times");
    assert_eq!(
        (o.counts.uploaded, o.counts.refused),
        (24, 0),
        "{:?}",
        o.counts
    );
    // Every message once on the target.
    let mut p = target.connect()?;
    p.login(&format!("{ALICE}*{}", ADMIN.0), ADMIN.1)?.ok()?;
    p.examine("INBOX")?;
    assert_eq!(p.uids()?.len(), 24);
    let stage = Stage::open(dir.path(), Access::Read)?;
    let status = &stage.index().upload_status("b1", "dst")?[0];
    assert_eq!((status.done, status.failed), (24, 0), "{status:?}");
    Ok(())
}

#[test]
fn a_flag_owed_to_a_message_stored_without_appenduid_is_reported_pending_not_dropped() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let (target, proxy) = alice_behind_exchange(
        dir.path(),
        ALICE,
        (4, T0),
        |i| if i == 1 { &["\\Flagged"] } else { &[] },
        ExchangeRules {
            drop_flagged: true,
            strip_appenduid: true,
            ..ExchangeRules::default()
        },
    )?;
    let job = m365_job_via(dir.path(), &target, proxy.port())?;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(o.counts.uploaded, 4, "{:?}", o.counts);
    // Exchange dropped the flag from the APPEND and no UID names the copy for a STORE:
    // the run says so instead of counting the message done with its flag.
    assert_eq!(o.counts.flags_pending, 1, "{:?}", o.counts);
    let mut p = target.connect()?;
    p.login(&format!("{ALICE}*{}", ADMIN.0), ADMIN.1)?.ok()?;
    p.examine("INBOX")?;
    assert_eq!(p.uids()?.len(), 4);
    assert!(flagged_uids(&mut p)?.is_empty());
    Ok(())
}

#[test]
fn a_message_answered_not_now_again_and_again_is_set_aside_and_the_rest_goes_on() -> Result<()> {
    const POISON: usize = 7_777;
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..5 {
        source.write_message_at("alice", "INBOX", &[], T0 + i, &simple(i))?;
    }
    let poison = message_of_size(POISON, 9);
    source.write_message_at("alice", "INBOX", &[], T0 + 9, &poison)?;
    let dir = tempfile::tempdir()?;
    let (target, proxy) = staged_behind_exchange(
        dir.path(),
        &source,
        ALICE,
        "alice",
        ExchangeRules {
            unavailable_size: Some(POISON as u64),
            ..ExchangeRules::default()
        },
    )?;
    let mut job = m365_job_via(dir.path(), &target, proxy.port())?;
    job.connections = 1;
    let o = run(dir.path(), job)?.remove(0);
    assert!(o.error.is_none(), "one message failed the mailbox: {o:?}");
    // Set aside, not refused: the target said "not now", not "never".
    assert_eq!(
        (o.counts.uploaded, o.counts.refused, o.counts.set_aside),
        (5, 0, 1),
        "{:?}",
        o.counts
    );
    let unavailable = proxy.stats().unavailable.load(Ordering::Relaxed);
    assert_eq!(unavailable, 3, "asked {unavailable} times");
    {
        let stage = Stage::open(dir.path(), Access::Read)?;
        let status = &stage.index().upload_status("b1", "dst")?[0];
        assert_eq!((status.done, status.failed), (5, 1), "{status:?}");
        let words = status.last_refusal.as_deref().unwrap_or_default();
        assert!(words.contains("set aside until the next run"), "{words}");
    }
    // The next run tries it again (three times), and again sets it aside.
    let job = m365_job_via(dir.path(), &target, proxy.port())?;
    let o = run(dir.path(), job)?.remove(0);
    assert_eq!(
        (o.counts.uploaded, o.counts.set_aside),
        (0, 1),
        "{:?}",
        o.counts
    );
    assert_eq!(proxy.stats().unavailable.load(Ordering::Relaxed), 6);
    Ok(())
}
