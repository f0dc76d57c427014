//! Refusals that concern more than one message: a full target mailbox (a real Dovecot with
//! a small quota) stops that mailbox at once and the others go on, and the next run after
//! the quota is raised sends exactly the rest.

use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use mailstage::extract::Pass;
use mailstage::stage::{Access, Stage};
use mailstage::upload::{MappingRules, UploadOutcome};
use mailstage_tests::Dovecot;
use mailstage_tests::exchange_proxy::{ExchangeProxy, ExchangeRules};
use mailstage_tests::extraction::stage_user;
use mailstage_tests::fixtures::{message_of_size, simple};
use mailstage_tests::upload::{job, run, staged_contents, target_contents, target_dovecot_with};

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
    // At most one refused APPEND per connection: the mailbox stopped at the first.
    let appends = proxy.stats().appends.load(Ordering::Relaxed);
    let bob_sent = bob.counts.uploaded;
    assert!(
        appends - sent - bob_sent <= 2,
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
