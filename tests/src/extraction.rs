//! Running extraction passes against a harness server from tests: a stage with one
//! endpoint and batch, mailboxes from (email, login, password, user_root), and the pass.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use mailstage::catalog::BatchSettings;
use mailstage::catalog::{EndpointSettings, Security};
use mailstage::extract::{
    Limits, MailboxJob, MailboxOutcome, Pass, PassJob, RetryPolicy, run_pass,
};
use mailstage::imap::transport::ConnectOptions;
use mailstage::login::AuthChoice;
use mailstage::stage::index::NewMailbox;
use mailstage::stage::{Access, Stage};
use secrecy::SecretString;

use crate::ImapPort;

/// One mailbox of a test batch.
pub struct TestMailbox<'a> {
    /// EmailAddress.
    pub email: &'a str,
    /// UserName (any admin format).
    pub login: &'a str,
    /// Password.
    pub password: &'a str,
    /// UserRoot.
    pub user_root: Option<&'a str>,
}

impl<'a> TestMailbox<'a> {
    /// A mailbox read by its own user's login (no UserRoot).
    pub fn own(email: &'a str, login: &'a str, password: &'a str) -> Self {
        Self {
            email,
            login,
            password,
            user_root: None,
        }
    }
}

/// Fails, naming `what` and the mailbox, unless every outcome ended without an error and
/// without a failed message.
pub fn ensure_clean(what: impl std::fmt::Display, outcomes: &[MailboxOutcome]) -> Result<()> {
    for o in outcomes {
        anyhow::ensure!(
            o.error.is_none() && o.counts.failed == 0,
            "{what}: {}: {:?} {:?}",
            o.email,
            o.error,
            o.counts
        );
    }
    Ok(())
}

/// Microsoft's defaults: 35 MiB per message, 500,000 items.
pub fn default_limits() -> Limits {
    Limits {
        max_message_size: 35 << 20,
        max_items: 500_000,
        include: Vec::new(),
        exclude: Vec::new(),
        include_namespaces: Vec::new(),
    }
}

/// Creates endpoint `src` and batch `b1` with the mailboxes (as `batch new` does), if the
/// stage has no batch yet; mailboxes new to an existing batch are added to it.
fn ensure_batch(stage: &mut Stage, port: u16, mailboxes: &[TestMailbox<'_>]) -> Result<Vec<i64>> {
    let index = stage.index_mut();
    let rows: Vec<NewMailbox> = mailboxes
        .iter()
        .map(|m| NewMailbox {
            email: m.email.into(),
            login_name: m.login.into(),
            user_root: m.user_root.map(str::to_owned),
            target_user: None,
        })
        .collect();
    let batch = match index.batch_id("b1") {
        Ok(id) => id,
        Err(_) => {
            index.add_endpoint(&EndpointSettings::new(
                "src",
                "127.0.0.1",
                port,
                Security::None,
            ))?;
            index.create_batch_with_mailboxes(&BatchSettings::new("b1", "src"), &rows)?
        }
    };
    let mut ids = Vec::new();
    for m in &rows {
        ids.push(index.add_mailbox(batch, m)?);
    }
    Ok(ids)
}

/// Runs one pass over the mailboxes into the stage at `dir` and returns the outcomes.
pub fn run(
    dir: &Path,
    d: &impl ImapPort,
    mailboxes: &[TestMailbox<'_>],
    limits: Limits,
    pass: Pass,
) -> Result<Vec<MailboxOutcome>> {
    let via = Via {
        port: d.imap_port(),
        retry: RetryPolicy::default(),
    };
    run_via(dir, d, mailboxes, limits, pass, via)
}

/// Where a test pass connects (e.g. a fault proxy in front of the Dovecot) and how it
/// retries.
pub struct Via {
    /// The loopback port to connect to.
    pub port: u16,
    /// Reconnections, backoff and read timeout.
    pub retry: RetryPolicy,
}

/// Stages one user of `d` (login `login`, password `{login}-pw`) as `email` into batch `b1`
/// at `dir` with Microsoft's default limits, and fails unless the pass succeeded.
pub fn stage_user(
    dir: &Path,
    d: &impl ImapPort,
    email: &str,
    login: &str,
    pass: Pass,
) -> Result<()> {
    let password = format!("{login}-pw");
    let mailbox = TestMailbox {
        email,
        login,
        password: &password,
        user_root: None,
    };
    let out = run(dir, d, &[mailbox], default_limits(), pass)?;
    anyhow::ensure!(out.iter().all(|o| o.error.is_none()), "{out:?}");
    Ok(())
}

/// [`run`] through another port and with another retry policy.
pub fn run_via(
    dir: &Path,
    d: &impl ImapPort,
    mailboxes: &[TestMailbox<'_>],
    limits: Limits,
    pass: Pass,
    via: Via,
) -> Result<Vec<MailboxOutcome>> {
    run_at(dir, d.imap_port(), mailboxes, limits, pass, via)
}

/// [`run_via`] for a server known only by its port (e.g. in a child process a test starts).
pub fn run_at(
    dir: &Path,
    dovecot_port: u16,
    mailboxes: &[TestMailbox<'_>],
    limits: Limits,
    pass: Pass,
    via: Via,
) -> Result<Vec<MailboxOutcome>> {
    let mut stage = Stage::open(dir, Access::Write)?;
    let ids = ensure_batch(&mut stage, dovecot_port, mailboxes)?;
    let shared = stage.into_shared()?;
    let job = PassJob {
        batch: "b1".into(),
        connect: ConnectOptions::new("127.0.0.1", via.port, Security::None),
        auth: AuthChoice::Auto,
        limits,
        retry: via.retry,
        concurrency: if pass == Pass::Full { 4 } else { 2 },
        mailboxes: mailboxes
            .iter()
            .zip(ids)
            .map(|(m, mailbox_id)| MailboxJob {
                mailbox_id,
                email: m.email.into(),
                user_name: m.login.into(),
                password: SecretString::from(m.password.to_owned()),
                user_root: m.user_root.map(str::to_owned),
            })
            .collect(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    Ok(runtime.block_on(run_pass(job, &shared, Arc::new(mailstage::report::Silent))))
}
