//! The migration report (issue 14) on a batch with every kind of outcome it can reach with
//! real servers: staged, a size-cap skip, an item-cap skip, a folder the batch excludes, a
//! message the target refuses (Dovecot's quota plugin, `quota_max_mail_size`), a mailbox not
//! uploaded yet (pending). Each format states the same numbers, checked against the index
//! (`batch status`, `status`) and the target's real contents; the HTML page is rendered in
//! headless Chromium.

mod cli_support;

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use cli_support::{Cli, text};
use mailstage_tests::Dovecot;
use mailstage_tests::fixtures::{message_of_size, simple};
use mailstage_tests::upload::{ADMIN, target_contents, target_dovecot_with};
use serde_json::Value;

const T0: u64 = 1_695_000_000;
const SECRET_VAR: &str = "MAILSTAGE_TEST_TARGET_PASSWORD";
const ALICE: &str = "alice@contoso.edu";
const BOB: &str = "bob@contoso.edu";

/// The source, extracted as batch `b1` (size cap 100 KiB, 6 items per mailbox, `Junk`
/// excluded), and a target refusing messages over 50 KiB.
fn scenario(cli: &Cli) -> Result<(Dovecot, Dovecot)> {
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .start()?;
    for i in 0..4 {
        d.write_message_at("alice", "INBOX", &["\\Seen"], T0 + 10 + i, &simple(i))?;
    }
    // The oldest: left behind by the item cap.
    d.write_message_at("alice", "INBOX", &[], T0, &simple(99))?;
    // Over the size cap.
    d.write_message_at("alice", "INBOX", &[], T0 + 20, &message_of_size(150_000, 1))?;
    d.create_folder("alice", "Projects")?;
    d.write_message_at("alice", "Projects", &[], T0 + 21, &simple(21))?;
    // Under the batch's cap, over the target's.
    d.write_message_at(
        "alice",
        "Projects",
        &[],
        T0 + 22,
        &message_of_size(60_000, 2),
    )?;
    d.create_folder("alice", "Junk")?;
    for i in 0..2 {
        d.write_message_at("alice", "Junk", &[], T0 + 30 + i, &simple(30 + i))?;
    }
    for i in 0..2 {
        d.write_message_at("bob", "INBOX", &[], T0 + 40 + i, &simple(40 + i))?;
    }
    cli.endpoint_on("src", d.port());
    let csv = cli.write(
        "b1.csv",
        &format!("EmailAddress,UserName,Password\n{ALICE},alice,alice-pw\n{BOB},bob,bob-pw\n"),
    );
    cli.ok(&[
        "batch",
        "new",
        "--name",
        "b1",
        "--endpoint",
        "src",
        "--csv",
        csv.to_str().context("UTF-8 path")?,
        "--max-message-size",
        "100KB",
        "--max-items",
        "6",
        "--exclude-folder",
        "Junk",
    ]);
    let start = cli.run(&["batch", "start", "b1", "--quiet"]);
    ensure!(start.status.code() == Some(2), "{}", text(&start));
    let target = target_dovecot_with(
        &[ALICE, BOB],
        &[
            "mail_plugins = $mail_plugins quota",
            "plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n  \
             quota_max_mail_size = 50k\n}",
        ],
    )?;
    let port = target.port().to_string();
    let args = [
        &["target", "new", "--name", "dst", "--kind", "imap"][..],
        &[
            "--server",
            "localhost",
            "--port",
            &port,
            "--security",
            "none",
        ],
        &["--admin-user", ADMIN.0, "--password-env", SECRET_VAR],
    ];
    let created = cli.upload(&args.concat(), &[]);
    ensure!(created.status.code() == Some(0), "{}", text(&created));
    let run = cli.upload(
        &[
            "run", "--batch", "b1", "--target", "dst", "--users", ALICE, "--quiet",
        ],
        &[(SECRET_VAR, ADMIN.1)],
    );
    ensure!(run.status.code() == Some(2), "one refusal: {}", text(&run));
    Ok((d, target))
}

/// `mailstage-extract ARGS` (exit 0 or 2); its standard output.
fn extract_out(cli: &Cli, args: &[&str]) -> String {
    let out = cli.run(args);
    assert!(matches!(out.status.code(), Some(0 | 2)), "{}", text(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `mailstage-upload ARGS` (exit 0 or 2); its standard output.
fn upload_out(cli: &Cli, args: &[&str]) -> String {
    let out = cli.upload(args, &[]);
    assert!(matches!(out.status.code(), Some(0 | 2)), "{}", text(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a number: {v}"))
}

#[test]
fn every_format_states_the_same_numbers_as_the_index_and_the_target() -> Result<()> {
    let cli = Cli::new();
    let (_source, target) = scenario(&cli)?;

    // Extraction: against `batch status`, which counts by its own SQL.
    let e: Value = serde_json::from_str(&extract_out(
        &cli,
        &["batch", "report", "b1", "--format", "json"],
    ))?;
    let status = cli.json(&["batch", "status", "b1"]);
    let totals = &status["totals"];
    let c = &e["counts"];
    for (report, index) in [
        ("staged", "staged"),
        ("skipped_size", "skipped_size"),
        ("skipped_item_cap", "skipped_item_cap"),
        ("failed", "failed"),
    ] {
        assert_eq!(n(&c[report]["messages"]), n(&totals[index]), "{report}");
    }
    assert_eq!(n(&c["staged"]["bytes"]), n(&totals["staged_bytes"]));
    let expected = [("source", 10), ("excluded", 2), ("unexplained", 0)];
    for (k, v) in expected {
        assert_eq!(c[k].as_i64(), Some(v), "{k}: {c}");
    }
    assert_eq!(
        (
            n(&c["staged"]["messages"]),
            n(&c["skipped_size"]["messages"])
        ),
        (8, 1)
    );
    assert_eq!(n(&c["skipped_item_cap"]["messages"]), 1);
    // Only the caps left mail behind: Good; bob has everything: Perfect.
    assert_eq!(e["grade"], "Good", "{e}");
    let grade_of = |r: &Value, email: &str| -> String {
        r["mailboxes"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["email"] == email))
            .map(|m| m["grade"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    assert_eq!(
        (grade_of(&e, ALICE), grade_of(&e, BOB)),
        ("Good".into(), "Perfect".into())
    );
    let junk = e["mailboxes"][0]["folders"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "Junk"))
        .context("Junk is listed")?;
    assert_eq!(junk["state"], "excluded", "{junk}");

    // Both phases: against `status` and against what the target holds.
    let u: Value = serde_json::from_str(&upload_out(
        &cli,
        &["report", "--batch", "b1", "--format", "json"],
    ))?;
    let c = &u["counts"];
    let on_target: usize = target_contents(&target, ALICE)?
        .values()
        .chain(target_contents(&target, BOB)?.values())
        .map(Vec::len)
        .sum();
    assert_eq!(n(&c["uploaded"]["messages"]), on_target as u64);
    assert_eq!(on_target, 5, "alice's six staged but the refused one");
    let st: Value =
        serde_json::from_str(&upload_out(&cli, &["status", "--batch", "b1", "--json"]))?;
    let sum = |k: &str| {
        st.as_array()
            .map_or(0, |a| a.iter().map(|m| n(&m[k])).sum::<u64>())
    };
    assert_eq!(n(&c["uploaded"]["messages"]), sum("done"));
    assert_eq!(n(&c["refused"]["messages"]), sum("failed"));
    assert_eq!(n(&c["pending"]["messages"]), sum("pending"));
    assert_eq!((sum("failed"), sum("pending")), (1, 2), "{st}");
    // One refusal in eight is over the 1 % threshold: Poor; bob is pending: Investigate.
    assert_eq!(
        (grade_of(&u, ALICE), grade_of(&u, BOB), u["grade"].as_str()),
        ("Poor".into(), "Investigate".into(), Some("Poor"))
    );
    let refused = u["mailboxes"][0]["items"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["state"] == "refused"))
        .context("the refusal is an item")?;
    assert!(
        refused["server_words"]
            .as_str()
            .is_some_and(|w| !w.is_empty()),
        "{refused}"
    );

    // Text: the same totals.
    let t = upload_out(&cli, &["report", "--batch", "b1"]);
    for line in [
        "Grade: Poor",
        "source: 10",
        "uploaded: 5 (",
        "refused by the target: 1",
        "pending: 2",
        "in excluded folders: 2",
        "unexplained: 0",
    ] {
        assert!(t.contains(line), "{line:?} in\n{t}");
    }

    // CSV: one row per item that needs attention; --all one per message.
    let rows = |args: &[&str]| -> Result<Vec<csv::StringRecord>> {
        let out = upload_out(&cli, args);
        let mut r = csv::Reader::from_reader(out.as_bytes());
        Ok(r.records().collect::<Result<_, _>>()?)
    };
    let attention = rows(&["report", "--batch", "b1", "--format", "csv"])?;
    let states: Vec<&str> = attention.iter().map(|r| &r[7]).collect();
    assert_eq!(attention.len(), 3, "{states:?}");
    for s in ["skipped_size", "skipped_item_cap", "refused"] {
        assert_eq!(
            states.iter().filter(|x| **x == s).count(),
            1,
            "{s}: {states:?}"
        );
    }
    let all = rows(&["report", "--batch", "b1", "--format", "csv", "--all"])?;
    assert_eq!(all.len(), 10);
    let count = |s: &str| all.iter().filter(|r| &r[7] == s).count() as u64;
    assert_eq!(count("uploaded"), n(&c["uploaded"]["messages"]));
    assert_eq!(count("pending"), n(&c["pending"]["messages"]));
    assert!(
        all.iter().any(|r| &r[4] == "Simple message 21"),
        "decoded subjects of staged messages"
    );

    // An admin's approval is recorded and shown.
    let approved = extract_out(&cli, &["batch", "approve-skipped", "b1"]);
    assert!(
        approved.contains("1 over the size cap, 1 beyond the item cap"),
        "{approved}"
    );
    let again: Value = serde_json::from_str(&extract_out(
        &cli,
        &["batch", "report", "b1", "--format", "json"],
    ))?;
    assert_eq!(again["approvals"].as_array().map(Vec::len), Some(1));

    // A log redirected to a file (not a terminal) holds no colour codes.
    let sync = cli
        .command(&["batch", "sync", "b1", "--quiet"])
        .env("MAILSTAGE_LOG", "debug")
        .output()?;
    let log = String::from_utf8_lossy(&sync.stderr);
    assert!(log.contains("DEBUG"), "debug lines are logged: {log}");
    assert!(!log.contains('\u{1b}'), "no escape codes: {log}");

    // HTML: rendered in headless Chromium, the DOM's totals equal the JSON's; it sorts.
    let page = cli.write("report.html", "");
    let shown = upload_out(
        &cli,
        &[
            "report",
            "--batch",
            "b1",
            "--format",
            "html",
            "--out",
            page.to_str().context("path")?,
        ],
    );
    assert!(shown.contains("grade Poor"), "{shown}");
    let html = std::fs::read_to_string(&page)?;
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network"
    );
    let dom = chromium_dom(&page, "sort=-staged")?;
    for (id, key) in [
        ("source", "source"),
        ("uploaded", "uploaded"),
        ("refused", "refused"),
        ("pending", "pending"),
        ("excluded", "excluded"),
    ] {
        let v = match c[key].get("messages") {
            Some(m) => n(m),
            None => n(&c[key]),
        };
        let attr = format!("id=\"total-{id}\" data-v=\"{v}\"");
        assert!(dom.contains(&attr), "{attr} in the rendered DOM");
    }
    assert!(dom.contains("id=\"grade\" class=\"grade g-Poor\""));
    assert!(dom.contains("data-sorted=\"-staged\""), "the script ran");
    let order = |dom: &str| -> (usize, usize) {
        let a = dom.find(&format!("data-mailbox=\"{ALICE}\"")).unwrap_or(0);
        let b = dom.find(&format!("data-mailbox=\"{BOB}\"")).unwrap_or(0);
        (a, b)
    };
    let (a, b) = order(&dom);
    assert!(
        a < b,
        "alice (6 staged) first when sorted by staged, descending"
    );
    let (a, b) = order(&chromium_dom(&page, "sort=staged")?);
    assert!(
        b < a,
        "bob (2 staged) first when sorted by staged, ascending"
    );
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    chromium(
        &page,
        "",
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600",
        ],
    )?;
    ensure!(
        std::fs::metadata(&shot)?.len() > 10_000,
        "a screenshot at {}",
        shot.display()
    );
    Ok(())
}

/// The DOM of `page#hash` after its scripts ran, from headless Chromium.
fn chromium_dom(page: &Path, hash: &str) -> Result<String> {
    chromium(page, hash, &["--dump-dom"])
}

/// Runs headless Chromium (no network, a fresh profile) on `page#hash` with `args`; its
/// standard output. Fails loudly when Chromium is missing (`scripts/setup.sh` installs it).
fn chromium(page: &Path, hash: &str, args: &[&str]) -> Result<String> {
    let profile = tempfile::tempdir()?;
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}#{hash}", page.display()))
        .output()
        .context("running chromium (install it with scripts/setup.sh)")?;
    ensure!(out.status.success(), "chromium failed: {}", text(&out));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
