//! Extraction passes against a real Dovecot: three login kinds, odd folders and messages,
//! byte-identical blobs, flags and dates, caps, and a no-change second pass.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use mailstage::extract::{MailboxOutcome, Pass};
use mailstage::stage::verify::verify;
use mailstage::stage::{Access, BlobHash, Stage};
use mailstage_tests::Dovecot;
use mailstage_tests::extraction::{TestMailbox, default_limits, run};
use mailstage_tests::fixtures::{self, NOSELECT_PARENTS, ODD_FOLDERS, message_of_size, simple};
use mailstage_tests::stage_check::served;

/// (email, folder) → the SHA-256 of every staged message there.
fn staged(dir: &Path) -> Result<BTreeMap<(String, String), BTreeSet<BlobHash>>> {
    let stage = Stage::open(dir, Access::Read)?;
    let mut out: BTreeMap<(String, String), BTreeSet<BlobHash>> = BTreeMap::new();
    for m in stage.index().staged_messages(None)? {
        out.entry((m.origin.email, m.origin.folder))
            .or_default()
            .insert(m.origin.blob);
    }
    Ok(out)
}

fn all_ok(outcomes: &[MailboxOutcome]) {
    for o in outcomes {
        assert!(o.error.is_none(), "{}: {:?}", o.email, o.error);
        assert_eq!(o.counts.failed, 0, "{}: {:?}", o.email, o.counts);
    }
}

fn sql_strings(dir: &Path, query: &str) -> Result<Vec<Option<String>>> {
    let conn = rusqlite::Connection::open(dir.join("index.sqlite"))?;
    let mut stmt = conn.prepare(query)?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[test]
fn own_master_user_and_user_root_logins_stage_byte_identical_mail() -> Result<()> {
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .user("archive", "archive-pw")
        .master_user("mailadmin", "master-pw")
        .start()?;
    let odd = [
        simple(1),
        fixtures::no_message_id(),
        fixtures::eight_bit_headers(),
        fixtures::bare_lf(),
        fixtures::nul_bytes(),
        fixtures::long_line(200_000),
        fixtures::nested_multipart(),
    ];
    for (i, m) in odd.iter().enumerate() {
        let flags: &[&str] = if i % 2 == 0 {
            &["\\Seen"]
        } else {
            &["\\Flagged", "\\Answered"]
        };
        d.write_message_at("alice", "INBOX", flags, 1_600_000_000 + i as u64 * 1000, m)?;
    }
    for (i, f) in ODD_FOLDERS.iter().enumerate() {
        d.create_folder("alice", f.name)?;
        d.write_message_at(
            "alice",
            f.name,
            &["\\Seen"],
            1_650_000_000 + i as u64,
            &simple(100 + i as u64),
        )?;
    }
    for i in 0..3 {
        d.write_message_at("bob", "INBOX", &[], 1_610_000_000 + i, &simple(200 + i))?;
    }
    for (folder, n) in [
        ("users/carol", 300),
        ("users/carol/Sent", 301),
        ("users/dan", 302),
    ] {
        d.create_folder("archive", folder)?;
        d.write_message_at("archive", folder, &["\\Seen"], 1_620_000_000, &simple(n))?;
    }
    let dir = tempfile::tempdir()?;
    let mailboxes = [
        TestMailbox::own("alice@contoso.edu", "alice", "alice-pw"),
        TestMailbox::own("bob@contoso.edu", "bob*mailadmin", "master-pw"),
        TestMailbox {
            email: "carol@contoso.edu",
            login: "archive",
            password: "archive-pw",
            user_root: Some("/users/carol"),
        },
    ];
    let outcomes = run(dir.path(), &d, &mailboxes, default_limits(), Pass::Full)?;
    all_ok(&outcomes);

    let stage = staged(dir.path())?;
    let mut expected = BTreeMap::new();
    expected.insert(
        ("alice@contoso.edu".to_owned(), "INBOX".to_owned()),
        served(&d, "alice", "INBOX")?,
    );
    for f in ODD_FOLDERS {
        expected.insert(
            ("alice@contoso.edu".to_owned(), f.name.to_owned()),
            served(&d, "alice", f.name)?,
        );
    }
    expected.insert(
        ("bob@contoso.edu".to_owned(), "INBOX".to_owned()),
        served(&d, "bob", "INBOX")?,
    );
    expected.insert(
        ("carol@contoso.edu".to_owned(), "INBOX".to_owned()),
        served(&d, "archive", "users/carol")?,
    );
    expected.insert(
        ("carol@contoso.edu".to_owned(), "Sent".to_owned()),
        served(&d, "archive", "users/carol/Sent")?,
    );
    assert_eq!(
        stage, expected,
        "every folder staged byte for byte, nothing else"
    );
    for parent in NOSELECT_PARENTS {
        assert!(!stage.contains_key(&("alice@contoso.edu".to_owned(), parent.name.to_owned())));
    }
    assert_eq!(
        outcomes[0].counts.staged,
        (odd.len() + ODD_FOLDERS.len()) as u64
    );

    let dates = sql_strings(
        dir.path(),
        "SELECT m.internaldate_unix || ' ' || m.flags FROM messages m JOIN folders f ON f.id = m.folder_id WHERE f.name = 'INBOX' AND f.mailbox_id = 1 ORDER BY m.uid",
    )?;
    for (i, row) in dates.iter().enumerate() {
        let row = row.as_deref().unwrap_or_default();
        let want_date = (1_600_000_000 + i as u64 * 1000).to_string();
        assert!(
            row.starts_with(&want_date),
            "INTERNALDATE of message {i}: {row}"
        );
        let want_flag = if i % 2 == 0 { "\\Seen" } else { "\\Flagged" };
        assert!(row.contains(want_flag), "flags of message {i}: {row}");
    }
    let ids = sql_strings(
        dir.path(),
        "SELECT message_id FROM messages m JOIN folders f ON f.id = m.folder_id WHERE f.name = 'INBOX' AND f.mailbox_id = 1 ORDER BY m.uid",
    )?;
    assert!(
        ids[0].as_deref().is_some_and(|id| !id.is_empty()),
        "simple() has a Message-ID: {ids:?}"
    );
    assert_eq!(ids[1], None, "no_message_id() has none");

    let report = verify(&Stage::open(dir.path(), Access::Read)?)?;
    assert!(report.is_clean(), "{}", report.render_text());

    let again = run(
        dir.path(),
        &d,
        &mailboxes,
        default_limits(),
        Pass::Incremental,
    )?;
    all_ok(&again);
    for o in &again {
        assert_eq!(
            (
                o.counts.staged,
                o.counts.skipped_size,
                o.counts.skipped_item_cap
            ),
            (0, 0, 0),
            "{}: nothing new",
            o.email
        );
    }
    assert_eq!(staged(dir.path())?, expected);
    Ok(())
}

#[test]
fn size_cap_and_item_cap_are_applied_from_metadata() -> Result<()> {
    let d = Dovecot::builder()
        .user("dave", "dave-pw")
        .user("erin", "erin-pw")
        .start()?;
    for i in 0..150u64 {
        let folder = if i % 3 == 0 { "Archive" } else { "INBOX" };
        if i == 0 {
            d.create_folder("dave", "Archive")?;
        }
        d.write_message_at(
            "dave",
            folder,
            &[],
            1_500_000_000 + i * 3600,
            &simple(1000 + i),
        )?;
    }
    let mib = 1024 * 1024;
    d.write_message_at(
        "erin",
        "INBOX",
        &[],
        1_700_000_000,
        &message_of_size(34 * mib, 1),
    )?;
    d.write_message_at(
        "erin",
        "INBOX",
        &[],
        1_700_000_100,
        &message_of_size(36 * mib, 2),
    )?;
    d.write_message_at(
        "erin",
        "INBOX",
        &[],
        1_700_000_200,
        &message_of_size(35 * mib, 3),
    )?;
    let dir = tempfile::tempdir()?;
    let mailboxes = [
        TestMailbox::own("dave@contoso.edu", "dave", "dave-pw"),
        TestMailbox::own("erin@contoso.edu", "erin", "erin-pw"),
    ];
    let mut limits = default_limits();
    limits.max_items = 100;
    let outcomes = run(dir.path(), &d, &mailboxes, limits, Pass::Full)?;
    all_ok(&outcomes);
    assert_eq!(
        (
            outcomes[0].counts.staged,
            outcomes[0].counts.skipped_item_cap
        ),
        (100, 50)
    );
    assert_eq!(
        (outcomes[1].counts.staged, outcomes[1].counts.skipped_size),
        (2, 1),
        "34 MiB and exactly 35 MiB staged, 36 MiB skipped"
    );

    let kept = sql_strings(
        dir.path(),
        "SELECT CAST(min(internaldate_unix) AS TEXT) FROM messages WHERE state = 'staged' AND folder_id IN (SELECT id FROM folders WHERE mailbox_id = 1)",
    )?;
    assert_eq!(
        kept[0].as_deref(),
        Some((1_500_000_000 + 50 * 3600).to_string().as_str()),
        "the newest 100 kept"
    );
    let reasons = sql_strings(
        dir.path(),
        "SELECT DISTINCT state || ': ' || reason FROM messages WHERE state LIKE 'skipped%' ORDER BY 1",
    )?;
    assert_eq!(
        reasons.into_iter().flatten().collect::<Vec<_>>(),
        [
            "skipped_item_cap: beyond the newest 100 items of the mailbox".to_owned(),
            format!(
                "skipped_size: {} bytes, over the {}-byte size cap",
                36 * mib,
                35 * mib
            ),
        ]
    );
    assert_eq!(
        sql_strings(
            dir.path(),
            "SELECT CAST(count(*) AS TEXT) FROM listed_messages"
        )?,
        [Some("0".to_owned())],
        "the listed metadata is cleared when the pass ends"
    );
    assert!(verify(&Stage::open(dir.path(), Access::Read)?)?.is_clean());
    Ok(())
}
