//! Incremental passes against a real Dovecot: exactly the delta, flag changes through
//! CONDSTORE, deleted folders, a recreated folder with a new UIDVALIDITY; and a mailbox that
//! fails without stopping the others.

use std::collections::BTreeSet;

use anyhow::Result;
use mailstage::extract::Pass;
use mailstage::stage::verify::verify;
use mailstage::stage::{Access, BlobHash, Stage};
use mailstage_tests::extraction::{TestMailbox, default_limits, run};
use mailstage_tests::fixtures::simple;
use mailstage_tests::{Dovecot, served_form};

const T0: u64 = 1_690_000_000;

fn frank() -> [TestMailbox<'static>; 1] {
    [TestMailbox::own("frank@contoso.edu", "frank", "frank-pw")]
}

/// A Dovecot configuration line that announces every capability but CONDSTORE.
const NO_CONDSTORE: &str = "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE \
                            LITERAL+ NAMESPACE SPECIAL-USE UIDPLUS ESEARCH LIST-STATUS\n";

/// A Dovecot with user frank that does not offer CONDSTORE.
fn without_condstore() -> Result<Dovecot> {
    Dovecot::builder()
        .user("frank", "frank-pw")
        .extra_config(NO_CONDSTORE)
        .start()
}

/// Runs `commands` as frank with his INBOX selected.
fn frank_inbox(d: &Dovecot, commands: &[&str]) -> Result<()> {
    let mut p = d.login("frank")?;
    p.select("INBOX")?;
    for c in commands {
        p.command(c)?.ok()?;
    }
    p.logout()?;
    Ok(())
}

/// frank's incremental pass into the stage at `dir`.
fn incremental(
    dir: &std::path::Path,
    d: &Dovecot,
) -> Result<Vec<mailstage::extract::MailboxOutcome>> {
    run(dir, d, &frank(), default_limits(), Pass::Incremental)
}

/// Staged blobs (and their flags) of one folder, from the index.
fn folder_rows(dir: &std::path::Path, folder: &str) -> Result<Vec<(u32, BlobHash, String)>> {
    let stage = Stage::open(dir, Access::Read)?;
    Ok(stage
        .index()
        .staged_messages(None)?
        .into_iter()
        .filter(|m| m.origin.folder == folder)
        .map(|m| (m.origin.uid, m.origin.blob, m.flags))
        .collect())
}

fn server_set(d: &Dovecot, folder: &str) -> Result<BTreeSet<BlobHash>> {
    Ok(d.server_messages("frank", folder)?
        .iter()
        .map(|(_, b)| BlobHash::of(&served_form(b)))
        .collect())
}

#[test]
fn the_next_pass_fetches_exactly_the_delta() -> Result<()> {
    let d = Dovecot::builder().user("frank", "frank-pw").start()?;
    for i in 0..5 {
        d.write_message_at("frank", "INBOX", &[], T0 + i, &simple(i))?;
    }
    for (folder, n) in [("Old", 10), ("Old", 11), ("Keep", 50)] {
        if d.server_messages("frank", folder).is_err() {
            d.create_folder("frank", folder)?;
        }
        d.write_message_at("frank", folder, &["\\Seen"], T0 + n, &simple(n))?;
    }
    let dir = tempfile::tempdir()?;
    let first = run(dir.path(), &d, &frank(), default_limits(), Pass::Full)?;
    assert_eq!(
        (first[0].error.as_deref(), first[0].counts.staged),
        (None, 8)
    );

    let mut new_bytes = 0;
    for i in 5..8 {
        let m = simple(i);
        new_bytes += m.len() as u64;
        d.write_message_at("frank", "INBOX", &[], T0 + i, &m)?;
    }
    frank_inbox(
        &d,
        &[
            "UID STORE 1 +FLAGS (\\Flagged)",
            "DELETE Old",
            "DELETE Keep",
            "CREATE Keep",
        ],
    )?;
    d.append("frank", "Keep", &[], Some((T0 + 50) as i64), &simple(50))?;
    d.append("frank", "Keep", &[], Some((T0 + 51) as i64), &simple(51))?;

    let second = incremental(dir.path(), &d)?;
    let c = &second[0].counts;
    assert_eq!(second[0].error, None);
    assert_eq!(
        c.staged, 5,
        "3 new in INBOX, 2 in the recreated Keep: {c:?}"
    );
    assert_eq!(
        c.staged_bytes,
        new_bytes + simple(50).len() as u64 + simple(51).len() as u64
    );
    assert_eq!(
        c.deduplicated, 1,
        "Keep's old message is the same bytes: stored once"
    );
    assert_eq!(
        (c.flags_updated, c.folders_gone, c.folders_restarted),
        (1, 1, 1),
        "{c:?}"
    );

    let inbox = folder_rows(dir.path(), "INBOX")?;
    assert_eq!(
        inbox.iter().map(|r| r.1).collect::<BTreeSet<_>>(),
        server_set(&d, "INBOX")?
    );
    assert!(
        inbox
            .iter()
            .find(|r| r.0 == 1)
            .is_some_and(|r| r.2.contains("\\Flagged")),
        "{inbox:?}"
    );
    let keep = folder_rows(dir.path(), "Keep")?;
    assert_eq!(
        keep.iter().map(|r| r.1).collect::<BTreeSet<_>>(),
        server_set(&d, "Keep")?
    );
    assert_eq!(keep.len(), 2, "the retired row is not staged any more");

    let third = incremental(dir.path(), &d)?;
    let c = &third[0].counts;
    assert_eq!(
        (
            c.staged,
            c.flags_updated,
            c.folders_gone,
            c.folders_restarted
        ),
        (0, 0, 0, 0),
        "{c:?}"
    );
    assert!(
        verify(&Stage::open(dir.path(), Access::Read)?)?
            .damaged
            .is_empty()
    );
    Ok(())
}

#[test]
fn a_wrong_password_fails_that_mailbox_only() -> Result<()> {
    let d = Dovecot::builder()
        .user("frank", "frank-pw")
        .user("gina", "gina-pw")
        .start()?;
    d.write_message_at("frank", "INBOX", &[], T0, &simple(1))?;
    let dir = tempfile::tempdir()?;
    let mailboxes = [
        TestMailbox::own("gina@contoso.edu", "gina", "not-ginas"),
        TestMailbox::own("frank@contoso.edu", "frank", "frank-pw"),
    ];
    let outcomes = run(dir.path(), &d, &mailboxes, default_limits(), Pass::Full)?;
    let error = outcomes[0].error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("logging in as gina:") && error.contains("AUTHENTICATIONFAILED"),
        "{error}"
    );
    assert!(!error.contains("not-ginas"));
    assert_eq!(
        (outcomes[1].error.as_deref(), outcomes[1].counts.staged),
        (None, 1)
    );
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite"))?;
    let states: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT email, state, last_error FROM mailboxes ORDER BY email")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    assert_eq!(states[0].0, "frank@contoso.edu");
    assert_eq!(
        (states[0].1.as_str(), states[0].2.as_deref()),
        ("Synced", None)
    );
    assert_eq!(states[1].1, "Failed");
    assert!(
        states[1]
            .2
            .as_deref()
            .is_some_and(|e| e.contains("AUTHENTICATIONFAILED"))
    );
    Ok(())
}

/// The HIGHESTMODSEQ recorded for frank's folder `wire`, from the index.
fn recorded_modseq(dir: &std::path::Path, wire: &str) -> Result<Option<i64>> {
    let db = rusqlite::Connection::open(dir.join("index.sqlite"))?;
    Ok(db.query_row(
        "SELECT highest_modseq FROM folders WHERE wire_name = ?1",
        [wire.as_bytes()],
        |r| r.get(0),
    )?)
}

/// A folder staged while the server did not offer CONDSTORE has no HIGHESTMODSEQ recorded.
/// When the server offers it later, the next pass reads every staged UID's flags once (a
/// change made meanwhile is taken), records the HIGHESTMODSEQ, and from then on reads only
/// what changed since it.
#[test]
fn condstore_offered_later_reads_every_flag_once_then_only_changes() -> Result<()> {
    let mut d = without_condstore()?;
    for i in 0..3 {
        d.write_message_at("frank", "INBOX", &[], T0 + i, &simple(i))?;
    }
    let dir = tempfile::tempdir()?;
    let first = run(dir.path(), &d, &frank(), default_limits(), Pass::Full)?;
    assert_eq!(
        (first[0].error.as_deref(), first[0].counts.staged),
        (None, 3)
    );
    assert_eq!(
        recorded_modseq(dir.path(), "INBOX")?,
        None,
        "no CONDSTORE yet"
    );

    // The server now offers CONDSTORE; a flag changes.
    d.stop();
    let config = std::fs::read_to_string(d.config_path())?;
    anyhow::ensure!(
        config.contains(NO_CONDSTORE),
        "the capability line is in the config"
    );
    std::fs::write(d.config_path(), config.replace(NO_CONDSTORE, ""))?;
    d.restart()?;
    frank_inbox(&d, &["UID STORE 2 +FLAGS (\\Flagged)"])?;

    let second = incremental(dir.path(), &d)?;
    assert_eq!(second[0].error, None);
    assert_eq!(second[0].counts.flags_updated, 1, "{:?}", second[0].counts);
    let flags: Vec<(u32, String)> = folder_rows(dir.path(), "INBOX")?
        .into_iter()
        .map(|(uid, _, flags)| (uid, flags))
        .collect();
    assert_eq!(
        flags,
        [
            (1, String::new()),
            (2, "\\Flagged".into()),
            (3, String::new())
        ]
    );
    let recorded = recorded_modseq(dir.path(), "INBOX")?;
    assert!(recorded.is_some_and(|m| m > 0), "{recorded:?}");

    // From now on only what changed since: a later change is found, nothing else counted.
    frank_inbox(&d, &["UID STORE 3 +FLAGS (\\Seen)"])?;
    let third = incremental(dir.path(), &d)?;
    assert_eq!(
        (third[0].error.as_deref(), third[0].counts.flags_updated),
        (None, 1)
    );
    assert!(recorded_modseq(dir.path(), "INBOX")? > recorded);
    Ok(())
}

/// Without CONDSTORE every staged message's FLAGS are read each pass, in parts of 5,000
/// staged UIDs (one range each): a change in either part is found, and an expunge is
/// noticed from the UIDs the parts listed.
#[test]
fn without_condstore_all_flags_are_read_in_parts_and_changes_in_each_are_found() -> Result<()> {
    let d = without_condstore()?;
    let n = 5_003;
    for i in 0..n {
        d.write_message_at(
            "frank",
            "INBOX",
            &[],
            T0 + i,
            format!("Subject: {i}\r\n\r\n.\r\n").as_bytes(),
        )?;
    }
    let dir = tempfile::tempdir()?;
    let first = run(dir.path(), &d, &frank(), default_limits(), Pass::Full)?;
    assert_eq!(
        (first[0].error.as_deref(), first[0].counts.staged),
        (None, n)
    );

    frank_inbox(
        &d,
        &[
            "UID STORE 5 +FLAGS (\\Flagged)",
            "UID STORE 5002 +FLAGS (\\Answered)",
            "UID STORE 5001 +FLAGS (\\Deleted)",
            "EXPUNGE",
        ],
    )?;

    let second = incremental(dir.path(), &d)?;
    let c = &second[0].counts;
    assert_eq!(second[0].error, None);
    assert_eq!((c.flags_updated, c.deleted_on_source), (2, 1), "{c:?}");
    let flags: Vec<(u32, String)> = folder_rows(dir.path(), "INBOX")?
        .into_iter()
        .filter(|(uid, _, flags)| !flags.is_empty() || [5, 5_002].contains(uid))
        .map(|(uid, _, flags)| (uid, flags))
        .collect();
    assert_eq!(
        flags,
        [(5, "\\Flagged".into()), (5_002, "\\Answered".into())]
    );
    Ok(())
}
