//! Servers that keep the link alive without progress, and folders that read wrong: the
//! extraction never hangs and never reports what it did not read. Run through the library
//! with a 2 s read timeout (the binaries' is 120 s) so each case takes seconds.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use mailstage::catalog::{BatchSettings, EndpointSettings, Security};
use mailstage::extract::{MailboxJob, MailboxOutcome, PassJob, RetryPolicy, run_pass};
use mailstage::imap::transport::ConnectOptions;
use mailstage::login::AuthChoice;
use mailstage::report::Silent;
use mailstage::stage::index::{MailboxState, NewMailbox};
use mailstage::stage::{Access, Stage};
use mailstage_tests::extraction::default_limits;
use mailstage_tests::hostile_server::{HostileServer, Hostility, Mail};
use secrecy::SecretString;

const ALICE: &str = "alice@contoso.edu";
/// The read timeout of these passes.
const LIMIT: Duration = Duration::from_secs(2);

fn two_mails() -> Vec<Mail> {
    vec![
        Mail::new(1, b"Subject: one\r\nMessage-ID: <1@x>\r\n\r\nfirst\r\n"),
        Mail::new(2, b"Subject: two\r\nMessage-ID: <2@x>\r\n\r\nsecond\r\n"),
    ]
}

/// One pass of alice's mailbox into a new stage at `dir` against a server with
/// `hostility`: a 2 s read timeout, two attempts without progress. Returns her outcome,
/// her recorded state and how long the pass took.
fn pass(dir: &Path, hostility: Hostility) -> Result<(MailboxOutcome, MailboxState, Duration)> {
    let server = HostileServer::start(two_mails(), hostility)?;
    let mut stage = Stage::open(dir, Access::Write)?;
    let index = stage.index_mut();
    let endpoint = EndpointSettings::new("src", "127.0.0.1", server.port(), Security::None);
    index.add_endpoint(&endpoint)?;
    let row = NewMailbox {
        email: ALICE.into(),
        login_name: "alice".into(),
        user_root: None,
        target_user: None,
    };
    index.create_batch_with_mailboxes(&BatchSettings::new("b", "src"), &[row])?;
    let mailbox_id = index.mailboxes("b")?[0].id;
    let shared = stage.into_shared()?;
    let job = PassJob {
        batch: "b".into(),
        connect: ConnectOptions::new("127.0.0.1", server.port(), Security::None),
        auth: AuthChoice::Auto,
        limits: default_limits(),
        retry: RetryPolicy {
            attempts_without_progress: 2,
            first_backoff: Duration::from_millis(10),
            read_timeout: LIMIT,
            ..RetryPolicy::default()
        },
        concurrency: 1,
        mailboxes: vec![MailboxJob {
            mailbox_id,
            email: ALICE.into(),
            user_name: "alice".into(),
            password: SecretString::from("pw".to_owned()),
            user_root: None,
        }],
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let run = runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            run_pass(job, &shared, Arc::new(Silent)),
        )
        .await
    });
    let took = started.elapsed();
    let mut outcomes = run.map_err(|_| anyhow::anyhow!("the pass hung for 60 s"))?;
    drop(shared);
    let stage = Stage::open(dir, Access::Read)?;
    let state = stage.index().mailboxes("b")?[0].state;
    Ok((outcomes.remove(0), state, took))
}

/// A pass that must fail alice's mailbox, staging nothing, in the bodies of INBOX, because
/// the server kept the link open without progress; within a few read timeouts.
fn cut_without_progress(hostility: Hostility) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (outcome, state, took) = pass(dir.path(), hostility)?;
    let error = outcome.error.as_deref().unwrap_or_default();
    assert_eq!(state, MailboxState::Failed, "{outcome:?}");
    assert_eq!(outcome.counts.staged, 0, "{outcome:?}");
    assert!(
        error.contains("INBOX") && error.contains("without progress for 2 s"),
        "{error}"
    );
    assert!(took < LIMIT * 4, "took {took:?}");
    Ok(())
}

/// Keepalives (`* OK still here`, EXISTS, ALERT, flag-only FETCH) every 100 ms instead of
/// the bodies: cut after the read timeout, retried, then the mailbox Failed.
#[test]
fn a_server_that_only_sends_keepalives_is_cut() -> Result<()> {
    cut_without_progress(Hostility::KeepaliveFlood)
}

/// The same flood naming the UID asked for in its flag-only FETCH: that message is
/// recorded failed by every attempt, which is progress once, not on every retry.
#[test]
fn a_flood_answering_the_uid_asked_for_with_flags_only_is_cut_too() -> Result<()> {
    cut_without_progress(Hostility::FlagsOnlyFlood)
}

/// A body literal trickling in a byte every 250 ms: cut once its waits add up to the
/// read timeout, retried, then the mailbox Failed.
#[test]
fn a_body_that_trickles_in_byte_by_byte_is_cut() -> Result<()> {
    cut_without_progress(Hostility::ByteTrickle)
}
