//! A mailbox task that panics is a failed mailbox with the panic's message, recorded so in
//! the index; the other mailboxes of the pass are unaffected.

use std::sync::Arc;

use anyhow::Result;
use mailstage::batch::{AuthChoice, EndpointSettings, Security};
use mailstage::extract::{MailboxJob, MailboxOutcome, PassJob, RetryPolicy, run_pass};
use mailstage::imap::transport::ConnectOptions;
use mailstage::report::RunProgress;
use mailstage::stage::index::{BatchSettings, MailboxState, NewMailbox};
use mailstage::stage::{Access, Stage, with_index};
use mailstage_tests::extraction::default_limits;
use mailstage_tests::hostile_server::{HostileServer, Hostility, Mail};
use secrecy::SecretString;

/// Progress that panics when one mailbox starts: a stand-in for any bug inside a task.
struct PanicsFor(&'static str);

impl RunProgress<MailboxOutcome> for PanicsFor {
    fn mailbox_started(&self, email: &str) {
        assert_ne!(email, self.0, "progress exploded for {email}");
    }
}

#[test]
fn a_panicking_mailbox_task_is_a_failed_mailbox_with_the_panic_message() -> Result<()> {
    let server = HostileServer::start(
        vec![Mail::new(1, b"Subject: a\r\n\r\nx\r\n")],
        Hostility::None,
    )?;
    let dir = tempfile::tempdir()?;
    let mut stage = Stage::open(dir.path(), Access::Write)?;
    let emails = ["alice@contoso.edu", "bob@contoso.edu"];
    let rows: Vec<NewMailbox> = emails
        .iter()
        .map(|e| NewMailbox {
            email: (*e).into(),
            login_name: "u".into(),
            user_root: None,
            target_user: None,
        })
        .collect();
    let index = stage.index_mut();
    index.add_endpoint(&EndpointSettings::new(
        "src",
        "127.0.0.1",
        server.port(),
        Security::None,
    ))?;
    index.create_batch_with_mailboxes(&BatchSettings::new("b1", "src"), &rows)?;
    let ids: Vec<i64> = index.mailboxes("b1")?.iter().map(|m| m.id).collect();
    let shared = stage.into_shared()?;
    let job = PassJob {
        batch: "b1".into(),
        connect: ConnectOptions::new("127.0.0.1", server.port(), Security::None),
        auth: AuthChoice::Auto,
        limits: default_limits(),
        retry: RetryPolicy::default(),
        concurrency: 2,
        mailboxes: emails
            .iter()
            .zip(ids)
            .map(|(email, mailbox_id)| MailboxJob {
                mailbox_id,
                email: (*email).into(),
                user_name: "u".into(),
                password: SecretString::from("p".to_owned()),
                user_root: None,
            })
            .collect(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let progress = Arc::new(PanicsFor("bob@contoso.edu"));
    let outcomes = runtime.block_on(run_pass(job, &shared, progress));
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes[0].email, "alice@contoso.edu");
    assert_eq!((outcomes[0].counts.staged, &outcomes[0].error), (1, &None));
    assert_eq!(outcomes[1].email, "bob@contoso.edu");
    let error = outcomes[1].error.as_deref().expect("bob failed");
    assert!(
        error.contains("internal error (panic)") && error.contains("progress exploded for bob"),
        "{error}"
    );
    let recorded = with_index(&shared.index, |i| i.mailboxes("b1"))?;
    let state = |email: &str| recorded.iter().find(|m| m.email == email).map(|m| m.state);
    assert_eq!(state("alice@contoso.edu"), Some(MailboxState::Synced));
    assert_eq!(state("bob@contoso.edu"), Some(MailboxState::Failed));
    let bob = recorded
        .iter()
        .find(|m| m.email == "bob@contoso.edu")
        .unwrap();
    assert!(
        bob.last_error
            .as_deref()
            .is_some_and(|e| e.contains("panic")),
        "{bob:?}"
    );
    Ok(())
}
