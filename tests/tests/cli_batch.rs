//! `mailstage-extract batch new | status | remove`, run as an admin runs them, on a real index.

mod cli_support;

use std::collections::HashMap;

use cli_support::{Cli, contains, index_bytes};
use mailstage::stage::index::{FolderInfo, MailboxState, MessageState, NewMessage};
use mailstage::stage::{Access, BlobHash, Stage};
use serde_json::{Value, json};

const PASSWORDS: [&str; 3] = [
    "Tr0ub4dor&3-alice",
    "correct,horse\"battery",
    "m4ster-S3cret!",
];

/// One message row to add: folder, state, and the bytes staged (or the size reported).
struct Row<'a> {
    folder: &'a str,
    state: MessageState,
    body: Option<&'a [u8]>,
    size: u64,
}

fn staged<'a>(folder: &'a str, body: &'a [u8]) -> Row<'a> {
    Row {
        folder,
        state: MessageState::Staged,
        body: Some(body),
        size: body.len() as u64,
    }
}

fn left(folder: &str, state: MessageState, size: u64) -> Row<'_> {
    Row {
        folder,
        state,
        body: None,
        size,
    }
}

/// Adds rows to a mailbox of a batch through the library, as the extractor does: blobs made
/// durable first, then the rows committed. Returns the blobs' hashes.
fn add_messages(cli: &Cli, batch: &str, email: &str, rows: &[Row<'_>]) -> Vec<BlobHash> {
    let mut stage = Stage::open(&cli.stage(), Access::Write).unwrap();
    let mailbox = stage
        .index()
        .mailboxes(batch)
        .unwrap()
        .into_iter()
        .find(|m| m.email == email)
        .unwrap()
        .id;
    let mut hashes = Vec::new();
    let mut new = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let info = FolderInfo {
            wire_name: r.folder.as_bytes().to_vec(),
            name: r.folder.into(),
            delimiter: Some('/'),
            special_use: None,
        };
        let folder_id = stage.index().upsert_folder(mailbox, &info, 9).unwrap();
        let blob = r.body.map(|b| stage.blobs().put(b).unwrap().hash);
        hashes.extend(blob);
        new.push(NewMessage {
            folder_id,
            uidvalidity: 9,
            uid: i as u32 + 1,
            state: r.state,
            reason: None,
            blob,
            size: r.size,
            internaldate: None,
            internaldate_unix: None,
            flags: String::new(),
            message_id: None,
        });
    }
    stage.index_mut().commit_messages(&new).unwrap();
    hashes
}

fn counts(v: &Value) -> [u64; 6] {
    [
        "folders",
        "staged",
        "staged_bytes",
        "skipped_size",
        "skipped_item_cap",
        "failed",
    ]
    .map(|k| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
    })
}

#[test]
fn a_valid_csv_makes_the_batch_and_its_mailboxes_and_no_password_reaches_the_index() {
    let cli = Cli::new();
    cli.endpoint("src");
    let csv = cli.write(
        "users.csv",
        &format!(
            "EmailAddress,UserName,Password,UserRoot\n\
             alice@contoso.edu,alice,{},\n\
             bob@contoso.edu,bob,\"{}\",\n\
             carol@contoso.edu,mailadmin,{},/users/carol\n",
            PASSWORDS[0],
            PASSWORDS[1].replace('"', "\"\""),
            PASSWORDS[2]
        ),
    );
    let out = cli.ok(&[
        "batch",
        "new",
        "--name",
        "spring",
        "--endpoint",
        "src",
        "--csv",
        csv.to_str().unwrap(),
        "--exclude-folder",
        "Calendar*",
        "--exclude-folder",
        "Contacts",
        "--include-folder",
        "*",
        "--max-message-size",
        "500KB",
        "--max-items",
        "1000",
        "--auth",
        "plain",
    ]);
    assert!(
        out.contains("batch \"spring\" created with 3 mailbox(es)"),
        "{out}"
    );
    assert!(
        out.contains("MaxMessageSize : 512,000 bytes (500.0 KiB)"),
        "{out}"
    );

    let s = cli.json(&["batch", "status", "spring"]);
    let b = &s["batch"];
    assert_eq!(b["name"], "spring");
    assert_eq!(b["endpoint"], "src");
    assert_eq!(b["state"], "Created");
    assert_eq!(b["csv_path"], csv.canonicalize().unwrap().to_str().unwrap());
    assert_eq!(b["auth"], "plain");
    assert_eq!(b["include_folders"], json!(["*"]));
    assert_eq!(b["exclude_folders"], json!(["Calendar*", "Contacts"]));
    assert_eq!(b["max_message_size"], 512_000);
    assert_eq!(b["max_items"], 1000);
    assert_eq!(b["mailboxes"], 3);
    assert_eq!(b["last_sync_at"], Value::Null);
    let emails: Vec<_> = s["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["email"])
        .collect();
    assert_eq!(
        emails,
        ["alice@contoso.edu", "bob@contoso.edu", "carol@contoso.edu"]
    );
    assert!(
        s["mailboxes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "Queued")
    );
    assert_eq!(s["totals"]["mailbox_states"]["Queued"], 3);

    let stage = Stage::open(&cli.stage(), Access::Read).unwrap();
    let carol = &stage.index().mailboxes("spring").unwrap()[2];
    assert_eq!(
        (carol.login_name.as_str(), carol.user_root.as_deref()),
        ("mailadmin", Some("/users/carol"))
    );
    drop(stage);

    // Defaults: 35 MiB, 500,000 items, auto.
    cli.batch("autumn", "src", &["dave@contoso.edu,dave,pw-dave"]);
    let b = &cli.json(&["batch", "status", "autumn"])["batch"];
    assert_eq!(
        (b["max_message_size"].as_u64(), b["max_items"].as_u64()),
        (Some(36_700_160), Some(500_000))
    );
    assert_eq!(b["auth"], "auto");

    let bytes = index_bytes(&cli.stage());
    assert!(
        contains(&bytes, "carol@contoso.edu"),
        "the scan sees the index's text"
    );
    for pw in PASSWORDS.iter().chain(&["pw-dave"]) {
        assert!(!contains(&bytes, pw), "password {pw:?} found in the index");
    }
    let err = cli.fails(&[
        "batch",
        "new",
        "--name",
        "spring",
        "--endpoint",
        "src",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(
        err.contains("a batch named \"spring\" already exists"),
        "{err}"
    );
}

#[test]
fn a_malformed_csv_names_every_problem_and_creates_nothing() {
    let cli = Cli::new();
    cli.endpoint("src");
    let cases = [
        (
            "missing.csv",
            "EmailAddress,Password\nx@contoso.edu,pw\n",
            vec!["row 1, column UserName: missing column"],
        ),
        (
            "rows.csv",
            "EmailAddress,UserName,Password\n\
             a@contoso.edu,a,pw-a\n\
             b@contoso.edu,,pw-b\n\
             A@contoso.edu,a2,pw-c\n\
             c@contoso.edu,c,\n",
            vec![
                "row 3, column UserName: empty",
                "row 4, column EmailAddress: A@contoso.edu is already listed in row 2",
                "row 5, column Password: empty",
            ],
        ),
    ];
    for (name, content, problems) in cases {
        let csv = cli.write(name, content);
        let err = cli.fails(&[
            "batch",
            "new",
            "--name",
            "b",
            "--endpoint",
            "src",
            "--csv",
            csv.to_str().unwrap(),
        ]);
        assert!(
            err.contains(&format!("has {} problem(s)", problems.len())),
            "{err}"
        );
        for p in problems {
            assert!(err.contains(p), "{p:?} missing in\n{err}");
        }
        assert!(!err.contains("pw-"), "a password was printed: {err}");
    }
    assert_eq!(cli.json(&["batch", "status"]), json!([]));
    let bytes = index_bytes(&cli.stage());
    for address in ["x@contoso.edu", "a@contoso.edu", "c@contoso.edu"] {
        assert!(!contains(&bytes, address), "{address} reached the index");
    }
}

#[test]
fn status_counts_what_the_rows_hold() {
    let cli = Cli::new();
    cli.endpoint("src");
    cli.batch(
        "b1",
        "src",
        &["alice@contoso.edu,alice,pw", "bob@contoso.edu,bob,pw"],
    );
    use MessageState::*;
    const ONE: &[u8] = b"Subject: 1\r\n\r\none\r\n";
    const TWO: &[u8] = b"Subject: 2\r\n\r\ntwo two\r\n";
    const THREE: &[u8] = b"Subject: 3\r\n\r\nthree\r\n";
    add_messages(
        &cli,
        "b1",
        "alice@contoso.edu",
        &[
            staged("INBOX", ONE),
            staged("INBOX", TWO),
            left("INBOX", SkippedSize, 37_748_736),
            left("INBOX", Failed, 1234),
            staged("Sent", THREE),
            left("Sent", SkippedItemCap, 10),
            left("Sent", SkippedItemCap, 20),
        ],
    );
    add_messages(
        &cli,
        "b1",
        "bob@contoso.edu",
        &[
            staged("INBOX", ONE),
            Row {
                folder: "INBOX",
                state: Retired,
                body: Some(b"old"),
                size: 3,
            },
        ],
    );
    let mut stage = Stage::open(&cli.stage(), Access::Write).unwrap();
    stage
        .index_mut()
        .set_mailbox_state(
            "b1",
            "bob@contoso.edu",
            MailboxState::Failed,
            Some("LOGIN: server said NO"),
        )
        .unwrap();
    stage
        .index_mut()
        .set_mailbox_state("b1", "alice@contoso.edu", MailboxState::Synced, None)
        .unwrap();
    drop(stage);

    let s = cli.json(&["batch", "status", "b1"]);
    let alice_bytes = (ONE.len() + TWO.len() + THREE.len()) as u64;
    let bob_bytes = ONE.len() as u64;
    let by_email: HashMap<&str, &Value> = s["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m))
        .collect();
    assert_eq!(
        counts(by_email["alice@contoso.edu"]),
        [2, 3, alice_bytes, 1, 2, 1]
    );
    assert_eq!(
        counts(by_email["bob@contoso.edu"]),
        [1, 1, bob_bytes, 0, 0, 0]
    );
    assert_eq!(by_email["alice@contoso.edu"]["state"], "Synced");
    assert!(by_email["alice@contoso.edu"]["last_sync_at"].is_string());
    assert_eq!(by_email["bob@contoso.edu"]["state"], "Failed");
    assert_eq!(
        by_email["bob@contoso.edu"]["last_error"],
        "LOGIN: server said NO"
    );
    assert_eq!(
        counts(&s["totals"]),
        [3, 4, alice_bytes + bob_bytes, 1, 2, 1]
    );
    assert_eq!(
        s["totals"]["mailbox_states"],
        json!({"Queued": 0, "Syncing": 0, "Synced": 1, "Failed": 1})
    );
    assert_eq!(cli.json(&["batch", "status"])[0], s);

    let text = cli.ok(&["batch", "status", "b1", "--users"]);
    for expected in [
        &format!("ItemsStaged    : 4 ({} B)", alice_bytes + bob_bytes),
        "ItemsSkipped   : 3 (1 over the size cap, 2 over the item cap)",
        "Mailboxes      : 2 (Synced 1, Failed 1)",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in\n{text}");
    }
    let bob = text
        .lines()
        .find(|l| l.starts_with("bob@contoso.edu"))
        .unwrap();
    let cells: Vec<&str> = bob.split_whitespace().collect();
    assert_eq!(
        &cells[..9],
        [
            "bob@contoso.edu",
            "Failed",
            "1",
            "1",
            &bob_bytes.to_string(),
            "B",
            "0",
            "0",
            "0"
        ],
        "{text}"
    );
    assert!(bob.ends_with("LOGIN: server said NO"), "{bob}");
    let err = cli.fails(&["batch", "status", "nope"]);
    assert!(err.contains("no batch named \"nope\""), "{err}");
}

#[test]
fn remove_waits_for_uploads_unless_forced_and_keeps_blobs_other_batches_use() {
    let cli = Cli::new();
    cli.endpoint("src");
    cli.batch("b1", "src", &["alice@contoso.edu,alice,pw"]);
    cli.batch("b2", "src", &["carol@contoso.edu,carol,pw"]);
    const SHARED: &[u8] = b"Subject: same bytes in both batches\r\n\r\nhello\r\n";
    const ONLY_B1: &[u8] = b"Subject: only in b1\r\n\r\nbye\r\n";
    let b1 = add_messages(
        &cli,
        "b1",
        "alice@contoso.edu",
        &[staged("INBOX", SHARED), staged("INBOX", ONLY_B1)],
    );
    let b2 = add_messages(&cli, "b2", "carol@contoso.edu", &[staged("INBOX", SHARED)]);
    assert_eq!(b1[0], b2[0], "identical bytes are one blob");

    let err = cli.fails(&["batch", "remove", "b1"]);
    assert!(
        err.contains("batch \"b1\" has 2 staged message(s) not uploaded yet"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(cli.json(&["batch", "status", "b1"])["totals"]["staged"], 2);

    let out = cli.json(&["batch", "remove", "b1", "--force"]);
    assert_eq!(
        out["removed"],
        json!({"name": "b1", "mailboxes": 1, "folders": 1, "messages": 2, "not_uploaded": 2})
    );
    assert_eq!(out["gc"]["orphan_blobs"], 1);
    assert_eq!(out["gc"]["orphan_bytes"], ONLY_B1.len());

    let stage = Stage::open(&cli.stage(), Access::Read).unwrap();
    assert!(
        stage.blobs().contains(&b1[0]),
        "the blob b2 still uses was removed"
    );
    assert!(!stage.blobs().contains(&b1[1]), "b1's own blob was kept");
    let events: Vec<_> = stage
        .index()
        .events()
        .unwrap()
        .into_iter()
        .filter(|e| e.batch.as_deref() == Some("b1"))
        .map(|e| e.kind)
        .collect();
    assert_eq!(events, ["batch.created", "batch.state", "batch.removed"]);
    drop(stage);

    let err = cli.fails(&["batch", "status", "b1"]);
    assert!(err.contains("no batch named \"b1\""), "{err}");
    let rest = cli.json(&["batch", "status"]);
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(counts(&rest[0]["totals"])[1..3], [1, SHARED.len() as u64]);

    let err = cli.fails(&["batch", "remove", "b1"]);
    assert!(err.contains("no batch named \"b1\""), "{err}");
    let out = cli.ok(&["batch", "remove", "b2", "--force"]);
    assert!(out.contains("batch \"b2\" removed: 1 mailbox(es), 1 folder(s), 1 message row(s) (1 staged but never uploaded, forced)"), "{out}");
    assert!(
        out.contains(&format!("freed 1 blob(s), {} B", SHARED.len())),
        "{out}"
    );
}
