//! A mailbox task that panics, extracting or uploading, is a failed mailbox with the panic's
//! message, recorded so in the index; the other mailboxes of the run are unaffected.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use mailstage::catalog::{BatchSettings, EndpointSettings, Security};
use mailstage::extract::{MailboxJob, MailboxOutcome, PassJob, RetryPolicy, run_pass};
use mailstage::imap::transport::ConnectOptions;
use mailstage::login::AuthChoice;
use mailstage::report::{RunProgress, Silent};
use mailstage::stage::index::{MailboxState, NewMailbox};
use mailstage::stage::{Access, Stage, with_index};
use mailstage::upload::{MappingRules, run_upload};
use mailstage_tests::extraction::default_limits;
use mailstage_tests::hostile_server::{HostileServer, Hostility, Mail};
use mailstage_tests::upload::{job, target_dovecot};
use secrecy::SecretString;

const EMAILS: [&str; 2] = ["alice@contoso.edu", "bob@contoso.edu"];

/// Progress that panics when one mailbox starts: a stand-in for any bug inside a task.
struct PanicsFor(&'static str);

impl<O> RunProgress<O> for PanicsFor {
    fn mailbox_started(&self, email: &str) {
        assert_ne!(email, self.0, "progress exploded for {email}");
    }
}

/// Extracts alice and bob (the same scripted mailbox of one message) into a new stage at
/// `dir`, batch `b1`, reporting to `progress`.
fn extract(
    dir: &Path,
    progress: Arc<dyn RunProgress<MailboxOutcome>>,
) -> Result<Vec<MailboxOutcome>> {
    let mail = Mail::new(1, b"Subject: a\r\nMessage-ID: <a@x>\r\n\r\nx\r\n");
    let server = HostileServer::start(vec![mail], Hostility::None)?;
    let mut stage = Stage::open(dir, Access::Write)?;
    let rows: Vec<NewMailbox> = EMAILS
        .iter()
        .map(|e| NewMailbox {
            email: (*e).into(),
            login_name: "u".into(),
            user_root: None,
            target_user: None,
        })
        .collect();
    let index = stage.index_mut();
    let endpoint = EndpointSettings::new("src", "127.0.0.1", server.port(), Security::None);
    index.add_endpoint(&endpoint)?;
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
        mailboxes: EMAILS
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
    Ok(runtime.block_on(run_pass(job, &shared, progress)))
}

#[test]
fn a_panicking_extraction_task_is_a_failed_mailbox_with_the_panic_message() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let outcomes = extract(dir.path(), Arc::new(PanicsFor("bob@contoso.edu")))?;
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes[0].email, "alice@contoso.edu");
    assert_eq!((outcomes[0].counts.staged, &outcomes[0].error), (1, &None));
    assert_eq!(outcomes[1].email, "bob@contoso.edu");
    let error = outcomes[1].error.as_deref().expect("bob failed");
    assert!(
        error.contains("internal error (panic)") && error.contains("progress exploded for bob"),
        "{error}"
    );
    let stage = Stage::open(dir.path(), Access::Read)?;
    let recorded = stage.index().mailboxes("b1")?;
    let state = |email: &str| recorded.iter().find(|m| m.email == email).map(|m| m.state);
    assert_eq!(state("alice@contoso.edu"), Some(MailboxState::Synced));
    assert_eq!(state("bob@contoso.edu"), Some(MailboxState::Failed));
    let bob = recorded.iter().find(|m| m.email == "bob@contoso.edu");
    let last_error = bob.and_then(|m| m.last_error.as_deref());
    assert!(last_error.is_some_and(|e| e.contains("panic")), "{bob:?}");
    Ok(())
}

#[test]
fn a_panicking_upload_task_is_a_failed_mailbox_with_the_panic_message() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let outcomes = extract(dir.path(), Arc::new(Silent))?;
    assert!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");
    let target = target_dovecot(&EMAILS)?;
    let job = job(dir.path(), &target, None, MappingRules::default())?;
    let shared = Stage::open(dir.path(), Access::Write)?.into_shared()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let progress = Arc::new(PanicsFor("bob@contoso.edu"));
    let outcomes = runtime.block_on(run_upload(job, &shared, progress));
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(
        (outcomes[0].counts.uploaded, &outcomes[0].error),
        (1, &None)
    );
    let error = outcomes[1].error.as_deref().expect("bob failed");
    assert!(
        error.contains("bob@contoso.edu") && error.contains("progress exploded for bob"),
        "{error}"
    );
    let status = with_index(&shared.index, |i| i.upload_status("b1", "dst"))?;
    let state = |email: &str| {
        let row = status.iter().find(|s| s.email == email);
        row.and_then(|s| s.state.clone())
    };
    assert_eq!(state("alice@contoso.edu").as_deref(), Some("Uploaded"));
    assert_eq!(state("bob@contoso.edu").as_deref(), Some("Failed"));
    Ok(())
}
