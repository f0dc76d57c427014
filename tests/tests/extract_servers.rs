//! The same end-to-end extraction against every harness server (Dovecot, Cyrus with both
//! hierarchy settings, Courier-IMAP): odd messages, odd folder names in modified UTF-7, the
//! user's own login and the admin's way in, every staged blob byte-identical to the server's
//! copy, folder names without the personal namespace prefix, and a flag change taken up by
//! the incremental pass (through CONDSTORE where the server has it, by FLAGS otherwise), and
//! a message expunged on the source recorded `deleted_on_source` while it stays staged (from
//! QRESYNC's `VANISHED (EARLIER)` on Dovecot and Cyrus, from the FLAGS fetch on Courier).
//! Each server is its own test, so a failing one names itself.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{Result, ensure};
use mailstage::extract::{MailboxOutcome, Pass};
use mailstage::stage::BlobHash;
use mailstage_tests::extraction::{TestMailbox, default_limits, ensure_clean, run};
use mailstage_tests::fixtures::{self, ODD_FOLDERS, simple};
use mailstage_tests::servers::{Kind, TestServer};
use mailstage_tests::stage_check::{
    check_completed, deleted_on_source, staged_flags, staged_hashes,
};

const ALICE: &str = "alice@contoso.edu";
const BOB: &str = "bob@contoso.edu";

/// The odd messages of `fixtures`, as (what, bytes).
fn odd_messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("simple", simple(1)),
        ("no Message-ID", fixtures::no_message_id()),
        ("8-bit headers", fixtures::eight_bit_headers()),
        ("bare LF", fixtures::bare_lf()),
        ("NUL bytes", fixtures::nul_bytes()),
        ("200 KB line", fixtures::long_line(200_000)),
        ("nested multipart", fixtures::nested_multipart()),
    ]
}

/// The whole scenario against one server.
fn scenario(kind: Kind) -> Result<()> {
    let started = Instant::now();
    let server = TestServer::start(kind, &["alice", "bob"])?;
    // alice: the odd messages in INBOX (refused ones noted), one message per odd folder.
    let mut refused = Vec::new();
    for (i, (what, bytes)) in odd_messages().into_iter().enumerate() {
        let flags: &[&str] = if i % 2 == 0 {
            &["\\Seen"]
        } else {
            &["\\Flagged", "\\Answered"]
        };
        if !server.append(
            "alice",
            "INBOX",
            flags,
            1_600_000_000 + i as i64 * 1000,
            &bytes,
        )? {
            refused.push(what);
        }
    }
    let folders: Vec<&str> = ODD_FOLDERS
        .iter()
        .map(|f| f.name)
        .filter(|n| server.holds(n))
        .collect();
    for (i, path) in folders.iter().enumerate() {
        server.create_folder("alice", path)?;
        ensure!(server.append(
            "alice",
            path,
            &["\\Seen"],
            1_650_000_000,
            &simple(100 + i as u64)
        )?);
    }
    for i in 0..3 {
        ensure!(server.append(
            "bob",
            "INBOX",
            &[],
            1_610_000_000 + i,
            &simple(200 + i as u64)
        )?);
    }
    eprintln!("{kind}: refused on APPEND: {refused:?}");
    ensure!(refused.len() <= 2, "{kind} refused {refused:?}");

    let admin = server.admin_login("bob");
    let mailboxes = [
        TestMailbox::own(ALICE, "alice", "alice-pw"),
        admin.mailbox(BOB),
    ];
    let dir = tempfile::tempdir()?;
    let pass = |pass: Pass| -> Result<Vec<MailboxOutcome>> {
        let outcomes = run(dir.path(), &server, &mailboxes, default_limits(), pass)?;
        ensure_clean(kind, &outcomes)?;
        Ok(outcomes)
    };
    pass(Pass::Full)?;

    // Every folder staged byte for byte as the server serves it, under its own name.
    let hashes = |user: &str, path: &str| -> Result<BTreeSet<BlobHash>> {
        Ok(server
            .messages(user, path)?
            .iter()
            .map(|(_, b)| BlobHash::of(b))
            .collect())
    };
    let mut expected = BTreeMap::new();
    expected.insert(
        (ALICE.to_owned(), "INBOX".to_owned()),
        hashes("alice", "INBOX")?,
    );
    for path in &folders {
        expected.insert(
            (ALICE.to_owned(), server.staged_name(path)),
            hashes("alice", path)?,
        );
    }
    expected.insert(
        (BOB.to_owned(), "INBOX".to_owned()),
        hashes("bob", "INBOX")?,
    );
    let stage = staged_hashes(dir.path())?;
    ensure!(
        stage == expected,
        "{kind}: staged {:#?}\nexpected {:#?}",
        stage.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let total: usize = expected.values().map(BTreeSet::len).sum();
    ensure!(
        total == 7 - refused.len() + folders.len() + 3,
        "{kind}: {total} messages"
    );
    check_completed(dir.path())?;

    // A flag change on the server reaches the stage on the next pass.
    let inbox = server.flags("alice", "INBOX")?;
    let (first, _) = inbox[0];
    server.set_flags("alice", "INBOX", first, &["\\Flagged", "$Important"])?;
    let again = pass(Pass::Incremental)?;
    let counts = &again[0].counts;
    ensure!(
        (counts.flags_updated, counts.staged) == (1, 0),
        "{kind}: one flag change, nothing new: {counts:?}"
    );
    let flags = staged_flags(dir.path())?;
    for (uid, on_server) in server.flags("alice", "INBOX")? {
        let mut staged: Vec<&str> = flags[&(ALICE.to_owned(), "INBOX".to_owned(), uid)]
            .split_whitespace()
            .collect();
        staged.sort_unstable();
        ensure!(
            staged == on_server,
            "{kind}: UID {uid}: staged {staged:?}, server {on_server:?}"
        );
    }
    // And a pass without changes changes nothing.
    let quiet = pass(Pass::Incremental)?;
    ensure!(
        quiet[0].counts.flags_updated + quiet[0].counts.deleted_on_source == 0,
        "{kind}: {:?}",
        quiet[0].counts
    );

    // A message expunged on the source is recorded, and stays staged.
    let (second, _) = inbox[1];
    server.expunge("alice", "INBOX", second)?;
    let after = pass(Pass::Incremental)?;
    let (alice, bob) = (&after[0].counts, &after[1].counts);
    ensure!(
        (alice.deleted_on_source, bob.deleted_on_source) == (1, 0),
        "{kind}: alice {alice:?}, bob {bob:?}"
    );
    let deleted = deleted_on_source(dir.path())?;
    ensure!(
        deleted
            == [(
                ALICE.to_owned(),
                "INBOX".to_owned(),
                second,
                "staged".to_owned()
            )],
        "{kind}: {deleted:?}"
    );
    ensure!(
        staged_hashes(dir.path())? == expected,
        "{kind}: the stage keeps it"
    );
    let again = pass(Pass::Incremental)?;
    ensure!(
        again[0].counts.deleted_on_source == 0,
        "{kind}: noticed once"
    );
    eprintln!("{kind}: scenario took {:?}", started.elapsed());
    Ok(())
}

#[test]
fn dovecot() -> Result<()> {
    scenario(Kind::Dovecot)
}

#[test]
fn cyrus_unixhierarchysep_altnamespace() -> Result<()> {
    scenario(Kind::CyrusUnix)
}

#[test]
fn cyrus_netnews_no_altnamespace() -> Result<()> {
    scenario(Kind::CyrusNetnews)
}

#[test]
fn courier() -> Result<()> {
    scenario(Kind::Courier)
}
