//! `mailstage-upload lint`: the dry run's predictions from the stage alone. On a stage
//! holding a message with a line over Exchange's limit and one over its default size limit,
//! `lint` predicts the same skips as `run --dry-run` against a Microsoft 365-like target
//! (XOAUTH2 with tokens from the emulated Entra ID), once that target and its token endpoint
//! are gone and with no secret in the environment.

mod cli_support;

use anyhow::Result;
use cli_support::{Cli, SECRET_VAR, text};
use mailstage::upload::EXCHANGE_DEFAULT_MAX_SIZE;
use mailstage_tests::fixtures::{long_line, message_of_size, simple};
use mailstage_tests::token_endpoint::{CLIENT_SECRET, TENANT};
use mailstage_tests::{Dovecot, TokenEndpoint};
use serde_json::Value;

const EMAIL: &str = "alice@contoso.edu";
const T0: u64 = 1_695_000_000;

/// alice's INBOX (a plain message, one with a 20,000-character line, one a byte over
/// Exchange Online's default size limit), `Files` and two case variants of `Projects`,
/// extracted as batch `b1` with a size cap that lets the large one in.
fn extracted(cli: &Cli) -> Result<Dovecot> {
    let d = Dovecot::builder().user("alice", "alice-pw").start()?;
    let over = message_of_size(EXCHANGE_DEFAULT_MAX_SIZE as usize + 1, 7);
    for (i, m) in (0..).zip([simple(0), long_line(20_000), over]) {
        d.write_message_at("alice", "INBOX", &[], T0 + i, &m)?;
    }
    for (i, folder) in (10..).zip(["Files", "Projects", "projects"]) {
        d.create_folder("alice", folder)?;
        d.write_message_at("alice", folder, &[], T0 + i, &simple(i))?;
    }
    cli.endpoint_on("src", d.port());
    let csv = cli.write(
        "b1.csv",
        &format!("EmailAddress,UserName,Password\n{EMAIL},alice,alice-pw\n"),
    );
    let csv = csv.to_str().expect("UTF-8 temp path");
    cli.ok(&[
        "batch",
        "new",
        "--name",
        "b1",
        "--endpoint",
        "src",
        "--csv",
        csv,
        "--max-message-size",
        "64MB",
    ]);
    cli.ok(&["batch", "start", "b1", "--quiet"]);
    Ok(d)
}

/// A predicted skip as (folder, UID, reason, target folder, size).
type Skip = (String, u64, String, String, u64);

/// A mailbox's predicted skips and its size limit.
fn skips(mailbox: &Value) -> (Vec<Skip>, Value) {
    let skips = mailbox["predicted_skips"]
        .as_array()
        .expect("predicted_skips")
        .iter()
        .map(|s| {
            (
                s["folder"].as_str().unwrap_or_default().to_owned(),
                s["uid"].as_u64().unwrap_or_default(),
                s["reason"].as_str().unwrap_or_default().to_owned(),
                s["target_folder"].as_str().unwrap_or_default().to_owned(),
                s["size"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    (skips, mailbox["size_limit"].clone())
}

#[test]
fn lint_predicts_the_dry_runs_skips_offline_without_a_secret() -> Result<()> {
    let cli = Cli::new();
    let _source = extracted(&cli)?;
    let endpoint = TokenEndpoint::builder()
        .scope("https://127.0.0.1/.default")
        .start()?;
    let target = Dovecot::builder()
        .xoauth2_introspection(&endpoint.introspection_url())
        .user(EMAIL, "unused-password")
        .master_user("admin", "admin-pw")
        .start()?;
    cli.m365_target("m365", TENANT, target.port(), &endpoint);
    let dry = cli.upload(
        &[
            "run",
            "--batch",
            "b1",
            "--target",
            "m365",
            "--dry-run",
            "--quiet",
            "--json",
        ],
        &[(SECRET_VAR, CLIENT_SECRET)],
    );
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let dry: Value = serde_json::from_slice(&dry.stdout)?;
    let (dry_skips, dry_limit) = skips(&dry[0]);
    let over = EXCHANGE_DEFAULT_MAX_SIZE + 1;
    assert_eq!(
        dry_skips,
        [
            (
                "INBOX".into(),
                2,
                "long_line".into(),
                "INBOX".into(),
                dry_skips[0].4
            ),
            (
                "INBOX".into(),
                3,
                "over_size_limit".into(),
                "INBOX".into(),
                over
            ),
        ],
        "{dry}"
    );

    // The target and its token endpoint are gone (their ports closed); no secret is set.
    drop(target);
    drop(endpoint);
    let lint = cli.upload(
        &[
            "lint", "--batch", "b1", "--target", "m365", "--format", "json",
        ],
        &[],
    );
    assert_eq!(
        lint.status.code(),
        Some(2),
        "skips predicted\n{}",
        text(&lint)
    );
    let lint: Value = serde_json::from_slice(&lint.stdout)?;
    assert_eq!(lint["m365"], true, "{lint}");
    let mailbox = &lint["mailboxes"][0];
    assert_eq!(skips(mailbox), (dry_skips.clone(), dry_limit), "{lint}");
    for count in [
        "planned",
        "planned_bytes",
        "predicted_refusals",
        "refused_before",
    ] {
        assert_eq!(
            mailbox["counts"][count], dry[0]["counts"][count],
            "{count}: {lint}"
        );
    }
    let folder = |m: &Value, source: &str| -> (Value, Value) {
        let f = m["folders"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["source"] == source))
            .cloned()
            .unwrap_or_default();
        (f["target"].clone(), f["note"].clone())
    };
    for source in ["INBOX", "Files", "Projects", "projects"] {
        assert_eq!(
            folder(mailbox, source),
            folder(&dry[0], source),
            "{source}: {lint}"
        );
    }
    let (files, files_note) = folder(mailbox, "Files");
    assert_eq!(files, serde_json::json!(["Files (migrated)"]));
    assert!(
        files_note.as_str().is_some_and(|n| n.contains("reserved")),
        "{files_note}"
    );
    let (projects, merged) = folder(mailbox, "projects");
    assert_eq!(projects, serde_json::json!(["Projects"]));
    assert!(
        merged.as_str().is_some_and(|n| n.contains("ignore case")),
        "{merged}"
    );

    // Text and CSV state the same findings; without a target, --assume m365.
    let shown = text(&cli.upload(&["lint", "--batch", "b1", "--assume", "m365"], &[]));
    assert!(
        shown.contains(
            "predicted skips: 1 over the size limit, 1 with a line over 10000 characters"
        ),
        "{shown}"
    );
    assert!(shown.contains("skip INBOX UID 3 -> INBOX"), "{shown}");
    assert!(shown.contains("Files -> Files (migrated)"), "{shown}");
    let csv = cli.upload(
        &[
            "lint", "--batch", "b1", "--assume", "m365", "--format", "csv",
        ],
        &[],
    );
    assert_eq!(csv.status.code(), Some(2), "{}", text(&csv));
    let mut rows = csv::Reader::from_reader(&csv.stdout[..]);
    let messages: Vec<(String, String, String)> = rows
        .records()
        .map(|r| r.expect("a CSV row"))
        .filter(|r| &r[1] == "message")
        .map(|r| (r[2].to_owned(), r[3].to_owned(), r[6].to_owned()))
        .collect();
    assert_eq!(
        messages,
        [
            ("INBOX".into(), "2".into(), "long_line".into()),
            ("INBOX".into(), "3".into(), "over_size_limit".into()),
        ]
    );

    // A limit the admin knows (a raised MaxReceiveSize) takes the large message off.
    let raised = cli.upload(
        &[
            "lint",
            "--batch",
            "b1",
            "--assume",
            "m365",
            "--size-limit",
            "150MB",
            "--format",
            "json",
        ],
        &[],
    );
    let raised: Value = serde_json::from_slice(&raised.stdout)?;
    let (skips, limit) = skips(&raised["mailboxes"][0]);
    assert_eq!(skips.len(), 1, "{raised}");
    assert_eq!(limit["source"], "given", "{raised}");

    let none = cli.upload(&["lint", "--batch", "b1"], &[]);
    assert_eq!(none.status.code(), Some(2), "clap refuses: {}", text(&none));
    Ok(())
}
