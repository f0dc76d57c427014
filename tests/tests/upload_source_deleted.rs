//! Messages deleted on the source after they were staged and before they were uploaded: the
//! upload does not send them, and `status` counts them as deleted on the source, not as
//! pending, so a mailbox with nothing else left says `Uploaded`.

use anyhow::{Result, ensure};
use mailstage::extract::Pass;
use mailstage::stage::{Access, Stage};
use mailstage::upload::MappingRules;
use mailstage_tests::extraction::stage_user;
use mailstage_tests::fixtures::simple;
use mailstage_tests::servers::{Kind, TestServer};
use mailstage_tests::upload::{job, run, target_contents, target_dovecot};

const ALICE: &str = "alice@contoso.edu";

#[test]
fn a_message_deleted_on_the_source_is_not_pending() -> Result<()> {
    let source = TestServer::start(Kind::Dovecot, &["alice"])?;
    for i in 0..4 {
        ensure!(source.append("alice", "INBOX", &[], 1_600_000_000 + i, &simple(i as u64))?);
    }
    let dir = tempfile::tempdir()?;
    stage_user(dir.path(), &source, ALICE, "alice", Pass::Full)?;
    let (uid, _) = source.messages("alice", "INBOX")?[1].clone();
    source.expunge("alice", "INBOX", uid)?;
    stage_user(dir.path(), &source, ALICE, "alice", Pass::Incremental)?;

    let target = target_dovecot(&[ALICE])?;
    let outcomes = run(
        dir.path(),
        job(dir.path(), &target, None, MappingRules::default())?,
    )?;
    ensure!(
        outcomes[0].error.is_none() && outcomes[0].counts.uploaded == 3,
        "{outcomes:?}"
    );
    let on_target: usize = target_contents(&target, ALICE)?
        .values()
        .map(Vec::len)
        .sum();
    ensure!(on_target == 3, "the target holds {on_target}");

    let stage = Stage::open(dir.path(), Access::Read)?;
    let status = &stage.index().upload_status("b1", "dst")?[0];
    ensure!(
        (
            status.staged,
            status.done,
            status.pending,
            status.deleted_on_source
        ) == (4, 3, 0, 1),
        "{status:?}"
    );
    ensure!(status.state.as_deref() == Some("Uploaded"), "{status:?}");
    Ok(())
}
