//! Refusals that concern more than one message: a full target mailbox (a real Dovecot with
//! a small quota) stops that mailbox at once and the others go on, and the next run after
//! the quota is raised sends exactly the rest; a folder the target refuses (a CREATE
//! refused as Exchange refuses a reserved name, an APPEND into a container a real Dovecot
//! cannot store into) fails that folder's messages with the server's words and the rest of
//! the mailbox goes on; empty folders are created; `status` tells excluded from pending.

use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use mailstage::extract::Pass;
use mailstage::stage::{Access, Stage};
use mailstage::upload::{MappingRules, UploadOutcome};
use mailstage_tests::Dovecot;
use mailstage_tests::exchange_proxy::{ExchangeProxy, ExchangeRules};
use mailstage_tests::extraction::stage_user;
use mailstage_tests::fixtures::{message_of_size, simple};
use mailstage_tests::upload::{
    ADMIN, job, run, staged_contents, target_contents, target_dovecot_with,
};

const ALICE: &str = "alice@contoso.edu";
const BOB: &str = "bob@contoso.edu";
const T0: u64 = 1_700_000_000;

/// Dovecot's quota plugin, counting each user's mail against `storage`.
fn quota(storage: &str) -> [String; 2] {
    [
        "mail_plugins = $mail_plugins quota".into(),
        format!(
            "plugin {{\n  quota = count:User quota\n  quota_vsizes = yes\n  \
             quota_rule = *:storage={storage}\n}}"
        ),
    ]
}

fn status(
    dir: &std::path::Path,
    email: &str,
) -> Result<mailstage::stage::index::MailboxUploadStatus> {
    let stage = Stage::open(dir, Access::Read)?;
    stage
        .index()
        .upload_status("b1", "dst")?
        .into_iter()
        .find(|s| s.email == email)
        .context("no status row")
}

#[test]
fn a_full_target_mailbox_stops_that_mailbox_and_the_next_run_sends_the_rest() -> Result<()> {
    let source = Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .start()?;
    for i in 0..30 {
        let m = message_of_size(8_000, i);
        source.write_message_at("alice", "INBOX", &["\\Seen"], T0 + i, &m)?;
    }
    for i in 0..3 {
        source.write_message_at("bob", "INBOX", &[], T0 + i, &simple(i))?;
    }
    let dir = tempfile::tempdir()?;
    stage_user(dir.path(), &source, ALICE, "alice", Pass::Full)?;
    stage_user(dir.path(), &source, BOB, "bob", Pass::Full)?;

    let lines = quota("60K");
    let extra: Vec<&str> = lines.iter().map(String::as_str).collect();
    let target = target_dovecot_with(&[ALICE, BOB], &extra)?;
    // A proxy that only counts, to see how many APPENDs the full mailbox was sent.
    let proxy = ExchangeProxy::start(target.port(), ExchangeRules::default())?;
    let upload = |only: &[&str]| -> Result<Vec<UploadOutcome>> {
        let mut job = job(dir.path(), &target, Some(only), MappingRules::default())?;
        job.connect.port = proxy.port();
        job.connections = 1;
        run(dir.path(), job)
    };
    let first = upload(&[ALICE, BOB])?;
    let (alice, bob) = (&first[0], &first[1]);
    assert_eq!(alice.email, ALICE);
    let error = alice.error.as_deref().unwrap_or_default();
    let sent = alice.counts.uploaded;
    assert!(sent > 0 && sent < 30, "{alice:?}");
    assert!(
        error.contains(&format!("target mailbox full after {sent} message(s)"))
            && error.contains("raise its quota or enable its archive, then run again")
            && error.contains("OVERQUOTA"),
        "{error}"
    );
    assert_eq!(
        alice.counts.refused, 0,
        "a full mailbox refuses no message for good"
    );
    // The mailbox stopped at the first refusal: beyond the APPENDs already in flight then
    // (at most a pipelining window of 16 on its one connection), none was sent.
    let appends = proxy.stats().appends.load(Ordering::Relaxed);
    let bob_sent = bob.counts.uploaded;
    assert!(
        appends - sent - bob_sent <= 16 && appends - bob_sent < 30,
        "{appends} APPENDs for {sent} + {bob_sent} stored"
    );
    assert!(bob.error.is_none(), "{bob:?}");
    assert_eq!(bob_sent, 3);
    let s = status(dir.path(), ALICE)?;
    assert_eq!(
        (s.state.as_deref(), s.done, s.pending, s.failed, s.in_flight),
        (Some("Failed"), sent, 30 - sent, 0, 0),
        "{s:?}"
    );

    // The admin raises the quota; the next run sends exactly the rest.
    let conf = std::fs::read_to_string(target.config_path())?;
    std::fs::write(
        target.config_path(),
        conf.replace("storage=60K", "storage=100M"),
    )?;
    let reload = std::process::Command::new("kill")
        .args(["-HUP", &target.pid().to_string()])
        .status()?;
    assert!(reload.success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let appends = proxy.stats().appends.load(Ordering::Relaxed);
    let second = upload(&[ALICE])?.remove(0);
    assert!(second.error.is_none(), "{second:?}");
    assert_eq!(second.counts.uploaded, 30 - sent, "{second:?}");
    assert_eq!(
        proxy.stats().appends.load(Ordering::Relaxed) - appends,
        30 - sent
    );
    let mut staged = staged_contents(dir.path())?;
    staged.retain(|(email, _), _| email == ALICE);
    assert_eq!(target_contents(&target, ALICE)?, staged);
    Ok(())
}

#[test]
fn a_refused_folder_fails_its_messages_and_the_rest_of_the_mailbox_goes_on() -> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..4 {
        source.write_message_at("alice", "INBOX", &[], T0 + i, &simple(i))?;
    }
    for i in 0..3 {
        source.write_message_at("alice", "Restricted", &[], T0 + 10 + i, &simple(10 + i))?;
        source.write_message_at("alice", "Container", &[], T0 + 20 + i, &simple(20 + i))?;
    }
    source.write_message_at("alice", "Later", &[], T0 + 30, &simple(30))?;
    source.create_folder("alice", "Empty")?;
    source.create_folder("alice", "Empty/Inner")?;
    let dir = tempfile::tempdir()?;
    stage_user(dir.path(), &source, ALICE, "alice", Pass::Full)?;

    // On the target, Container is a bare directory holding a folder: listed (\Noselect),
    // so it is not created, and Dovecot refuses any APPEND into it.
    let target = target_dovecot_with(&[ALICE], &[])?;
    target.create_noselect(ALICE, "Container")?;
    target.create_folder(ALICE, "Container/Child")?;
    let proxy = ExchangeProxy::start(
        target.port(),
        ExchangeRules {
            reserved: vec!["Restricted".into()],
            ..ExchangeRules::default()
        },
    )?;
    let upload = || -> Result<UploadOutcome> {
        let mut job = job(dir.path(), &target, None, MappingRules::default())?;
        job.connect.port = proxy.port();
        job.connections = 1;
        Ok(run(dir.path(), job)?.remove(0))
    };
    let o = upload()?;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!((o.counts.uploaded, o.counts.refused), (5, 6), "{o:?}");
    let refused: Vec<(&str, u64)> = o
        .refused_folders
        .iter()
        .map(|f| (f.folder.as_str(), f.messages))
        .collect();
    assert_eq!(refused, [("Restricted", 3), ("Container", 3)], "{o:?}");
    assert!(
        o.refused_folders[0]
            .words
            .contains("NO Folder name Restricted is reserved."),
        "{o:?}"
    );
    assert!(o.refused_folders[1].words.contains("NO "), "{o:?}");
    // Only the first message of Container was sent: the other two failed unsent.
    let s = status(dir.path(), ALICE)?;
    assert_eq!(
        (s.state.as_deref(), s.done, s.failed, s.pending),
        (Some("UploadedWithErrors"), 5, 6, 0),
        "{s:?}"
    );
    let mut p = target.connect()?;
    p.login(&format!("{ALICE}*{}", ADMIN.0), ADMIN.1)?.ok()?;
    let names: Vec<String> = p.list()?.into_iter().map(|l| l.name).collect();
    for folder in ["Empty", "Empty/Inner", "Later"] {
        assert!(
            names.iter().any(|n| n == folder),
            "{folder} missing: {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n == "Restricted"), "{names:?}");

    // The next run tries the refused ones again (and they are refused again).
    let again = upload()?;
    assert_eq!(
        (again.counts.uploaded, again.counts.refused),
        (0, 6),
        "{again:?}"
    );
    assert_eq!(proxy.stats().reserved_refused.load(Ordering::Relaxed), 2);
    Ok(())
}

#[test]
fn status_counts_excluded_folders_apart_and_says_uploaded_only_when_nothing_is_pending()
-> Result<()> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..3 {
        source.write_message_at("alice", "INBOX", &[], T0 + i, &simple(i))?;
    }
    for i in 0..2 {
        source.write_message_at("alice", "Junk", &[], T0 + 10 + i, &simple(10 + i))?;
    }
    let dir = tempfile::tempdir()?;
    stage_user(dir.path(), &source, ALICE, "alice", Pass::Full)?;
    let target = target_dovecot_with(&[ALICE], &[])?;
    let rules = MappingRules {
        excludes: vec!["Junk".into()],
        ..MappingRules::default()
    };
    let o = run(dir.path(), job(dir.path(), &target, None, rules)?)?.remove(0);
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!((o.counts.uploaded, o.counts.left_out), (3, 2));
    let s = status(dir.path(), ALICE)?;
    assert_eq!(
        (s.state.as_deref(), s.pending, s.excluded, s.done),
        (Some("Uploaded"), 0, 2, 3),
        "{s:?}"
    );
    // New mail staged after the run: no longer `Uploaded`.
    source.write_message_at("alice", "INBOX", &[], T0 + 20, &simple(20))?;
    stage_user(dir.path(), &source, ALICE, "alice", Pass::Incremental)?;
    let s = status(dir.path(), ALICE)?;
    assert_eq!(
        (s.state.as_deref(), s.pending, s.excluded),
        (Some("Pending"), 1, 2),
        "{s:?}"
    );
    Ok(())
}

#[test]
fn a_folder_deleted_on_the_target_mid_run_is_created_again_and_its_messages_sent_once() -> Result<()>
{
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..3 {
        source.write_message_at("alice", "INBOX", &[], T0 + i, &simple(i))?;
    }
    for i in 0..5 {
        source.write_message_at("alice", "Projects", &[], T0 + 10 + i, &simple(10 + i))?;
    }
    let dir = tempfile::tempdir()?;
    let (target, proxy) = mailstage_tests::upload::staged_behind_exchange(
        dir.path(),
        &source,
        ALICE,
        "alice",
        ExchangeRules {
            vanish_folder: Some("Projects".into()),
            ..ExchangeRules::default()
        },
    )?;
    let job = mailstage_tests::upload::m365_job_via(dir.path(), &target, proxy.port())?;
    let o = run(dir.path(), job)?.remove(0);
    assert_eq!(proxy.stats().vanished.load(Ordering::Relaxed), 1);
    assert!(o.error.is_none(), "{o:?}");
    assert!(o.refused_folders.is_empty(), "{:?}", o.refused_folders);
    assert_eq!(o.counts.refused, 0, "{:?}", o.counts);
    assert_eq!(
        o.counts.uploaded + o.counts.found_present,
        8,
        "{:?}",
        o.counts
    );
    let names: Vec<String> = target_contents(&target, ALICE)?
        .into_iter()
        .map(|((_, folder), messages)| format!("{folder}:{}", messages.len()))
        .collect();
    assert_eq!(names, ["INBOX:3", "Projects:5"]);
    Ok(())
}
