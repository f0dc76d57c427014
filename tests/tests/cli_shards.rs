//! A batch split into shards (`batch plan`), each shard staged and uploaded from a stage of
//! its own (`--shard I/N`), merged back (`stage merge`) and read as one (`batch status` with
//! several `--stage`), against real Dovecots.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::Result;
use cli_support::{Cli, text};
use mailstage_tests::Dovecot;
use mailstage_tests::bins;
use mailstage_tests::fixtures::{message_of_size, simple};
use mailstage_tests::stage_check::{check_completed, message_rows};
use mailstage_tests::upload::{ADMIN, staged_contents, target_contents, target_dovecot};
use serde_json::Value;

const T0: u64 = 1_700_000_000;
const SECRET_VAR: &str = "MAILSTAGE_TEST_TARGET_PASSWORD";

/// Runs `binary --stage S… ARGS…` (one `--stage` per stage) with extra environment.
fn at(binary: &Path, stages: &[&Path], args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(binary);
    cmd.env_remove("MAILSTAGE_DIR").envs(env.iter().copied());
    for s in stages {
        cmd.arg("--stage").arg(s);
    }
    cmd.args(args).output().expect("the binary runs")
}

/// `mailstage-extract` on these stages; must exit 0; returns standard output.
fn extract_ok(stages: &[&Path], args: &[&str]) -> String {
    let out = at(&bins::mailstage_extract(), stages, args, &[]);
    assert_eq!(out.status.code(), Some(0), "{args:?}\n{}", text(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn json(stages: &[&Path], args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&extract_ok(stages, &args)).expect("JSON")
}

fn email(i: usize) -> String {
    format!("u{i}@contoso.edu")
}

fn rows(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{},u{i},pw{i}", email(i))).collect()
}

/// A Dovecot with `n` users u0…u(n-1); user i holds `counts[i]` messages of `size` bytes in
/// INBOX and one small message in Sent.
fn source(counts: &[usize], size: usize) -> Result<Dovecot> {
    let mut b = Dovecot::builder();
    for i in 0..counts.len() {
        b = b.user(&format!("u{i}"), &format!("pw{i}"));
    }
    let d = b.start()?;
    for (i, &n) in counts.iter().enumerate() {
        let user = format!("u{i}");
        for k in 0..n {
            let body = message_of_size(size, (i * 1000 + k) as u64);
            d.write_message_at(&user, "INBOX", &["\\Seen"], T0 + k as u64, &body)?;
        }
        d.write_message_at(&user, "Sent", &[], T0, &simple(i as u64))?;
    }
    Ok(d)
}

fn shard_of(plan: &Value) -> Vec<(String, u64)> {
    plan["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .map(|m| {
            (
                m["email"].as_str().expect("email").to_owned(),
                m["shard"].as_u64().expect("a shard"),
            )
        })
        .collect()
}

#[test]
fn a_plan_balances_skewed_mailboxes_and_keeps_them_when_one_is_added() -> Result<()> {
    // 12 mailboxes, skewed: one of 40 messages, two of 12, the rest of 1 to 4; a 13th later.
    let counts = [40, 12, 12, 4, 3, 3, 2, 2, 1, 1, 1, 1, 5];
    let d = source(&counts, 4000)?;
    let cli = Cli::new();
    cli.endpoint_on("src", d.port());
    let all = rows(13);
    let first: Vec<&str> = all[..12].iter().map(String::as_str).collect();
    cli.batch("b", "src", &first);

    let plan = cli.json(&["batch", "plan", "b", "--shards", "4"]);
    let bytes: Vec<u64> = plan["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .map(|m| m["bytes"].as_u64().expect("measured"))
        .collect();
    let largest = *bytes.iter().max().expect("mailboxes");
    assert!(largest > 40 * 4000, "sizes come from the server: {plan}");
    let totals: Vec<u64> = plan["totals"]
        .as_array()
        .expect("totals")
        .iter()
        .map(|t| t["bytes"].as_u64().expect("bytes"))
        .collect();
    assert_eq!(totals.len(), 4);
    let spread = totals.iter().max().unwrap() - totals.iter().min().unwrap();
    assert!(
        spread < largest,
        "byte totals {totals:?} differ by {spread}, not less than the largest mailbox {largest}"
    );
    assert_eq!(totals.iter().sum::<u64>(), bytes.iter().sum::<u64>());
    let before = shard_of(&plan);

    // Another count is refused; the same plan again moves nothing.
    assert!(
        cli.fails(&["batch", "plan", "b", "--shards", "3"])
            .contains("planned in 4")
    );
    assert_eq!(
        shard_of(&cli.json(&["batch", "plan", "b", "--shards", "4"])),
        before
    );

    // A 13th mailbox, from a CSV that lists all 13: added and placed, the 12 stay.
    let csv = cli.write(
        "all.csv",
        &format!("EmailAddress,UserName,Password\n{}\n", all.join("\n")),
    );
    let grown = cli.json(&[
        "batch",
        "plan",
        "b",
        "--shards",
        "4",
        "--csv",
        csv.to_str().expect("UTF-8"),
    ]);
    assert_eq!(grown["added"], serde_json::json!([email(12)]));
    assert_eq!(grown["placed"], serde_json::json!([email(12)]));
    let after = shard_of(&grown);
    assert_eq!(after.len(), 13);
    for m in &before {
        assert!(after.contains(m), "{m:?} moved: {after:?}");
    }

    // Without sizes the shard is a stable hash of the address.
    let hashed = Cli::new();
    hashed.endpoint_on("src", d.port());
    hashed.batch("b", "src", &first);
    let p1 = hashed.json(&["batch", "plan", "b", "--shards", "4", "--no-sizes"]);
    assert!(
        p1["totals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["bytes"] == 0)
    );
    assert_eq!(p1["size_errors"].as_object().map(|o| o.len()), Some(12));
    Ok(())
}

/// Creates endpoint, batch `b` from `rows`, and target `dst` (password from [`SECRET_VAR`])
/// in `cli`'s stage.
fn catalog(cli: &Cli, source_port: u16, target_port: u16, rows: &[&str]) -> PathBuf {
    cli.endpoint_on("src", source_port);
    let csv = cli.batch("b", "src", rows);
    cli.imap_target("dst", target_port, ADMIN.0, SECRET_VAR);
    csv
}

#[test]
fn shards_staged_apart_merge_into_what_one_machine_stages_and_upload_once() -> Result<()> {
    let counts = [6, 1, 3, 2, 4, 2];
    let d = source(&counts, 3000)?;
    let all = rows(counts.len());
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let emails: Vec<String> = (0..counts.len()).map(email).collect();
    let target = target_dovecot(&emails.iter().map(String::as_str).collect::<Vec<_>>())?;

    // One machine: the whole batch in one stage.
    let whole = Cli::new();
    catalog(&whole, d.port(), target.port(), &all);
    whole.ok(&["batch", "start", "b", "--quiet"]);
    let expected = check_completed(&whole.stage())?;

    // Three shards: planned and exported from one stage, each staged in its own.
    let planner = Cli::new();
    let csv = catalog(&planner, d.port(), target.port(), &all);
    let csv = csv.to_str().expect("UTF-8");
    let shards_dir = planner.stage().with_file_name("shards");
    let plan = planner.json(&[
        "batch",
        "plan",
        "b",
        "--shards",
        "3",
        "--export",
        shards_dir.to_str().expect("UTF-8"),
    ]);
    let shard_stages: Vec<PathBuf> = (0..3)
        .map(|i| shards_dir.join(format!("shard-{i}")))
        .collect();
    for (i, s) in shard_stages.iter().enumerate() {
        let spec = format!("{i}/3");
        extract_ok(
            &[s],
            &[
                "batch", "start", "b", "--shard", &spec, "--csv", csv, "--quiet",
            ],
        );
        // Only that shard's mailboxes are staged there.
        for row in message_rows(s)? {
            let placed = shard_of(&plan)
                .into_iter()
                .find(|(e, _)| *e == row.0)
                .map(|(_, s)| s);
            assert_eq!(placed, Some(i as u64), "{row:?} staged in shard {i}");
        }
    }
    // The whole batch read across the three stages, without merging.
    let spread: Vec<&Path> = shard_stages.iter().map(PathBuf::as_path).collect();
    let across = json(&spread, &["batch", "status", "b"]);

    let merged = planner.stage().with_file_name("merged");
    let mut merge = vec!["stage", "merge", "--into", merged.to_str().unwrap()];
    merge.extend(shard_stages.iter().map(|s| s.to_str().unwrap()));
    extract_ok(&[], &merge);
    assert_eq!(
        check_completed(&merged)?,
        expected,
        "merged = one machine's stage"
    );
    let merged_status = json(&[&merged], &["batch", "status", "b"]);
    assert_eq!(across["totals"], merged_status["totals"]);
    assert_eq!(
        merged_status["totals"],
        json(&[&whole.stage()], &["batch", "status", "b"])["totals"]
    );
    // The report across the shard stages is the merged stage's.
    let report = |stages: &[&Path]| -> Value {
        let out = extract_ok(stages, &["batch", "report", "b", "--format", "json"]);
        serde_json::from_str(&out).expect("JSON report")
    };
    let (apart, together) = (report(&spread), report(&[&merged]));
    assert_eq!(apart["counts"], together["counts"]);
    assert_eq!(apart["grade"], together["grade"]);
    assert_eq!(
        apart["mailboxes"].as_array().map(Vec::len),
        Some(counts.len())
    );
    assert_eq!(
        together["counts"]["staged"]["messages"].as_u64(),
        Some(expected.len() as u64),
        "{}",
        together["counts"]
    );
    // Merging again changes nothing.
    let again: Value = {
        let mut args = merge.clone();
        args.push("--json");
        serde_json::from_str(&extract_ok(&[], &args))?
    };
    for m in again.as_array().expect("one entry per stage") {
        assert_eq!(m["blobs_copied"], 0, "{m}");
        assert!(
            m["rows"].as_object().unwrap().values().all(|v| v == 0),
            "{m}"
        );
    }
    assert_eq!(check_completed(&merged)?, expected);

    // Upload by shard, each from its own stage: every message lands exactly once.
    let env = [(SECRET_VAR, ADMIN.1)];
    for (i, s) in shard_stages.iter().enumerate() {
        let spec = format!("{i}/3");
        let out = at(
            &bins::mailstage_upload(),
            &[s],
            &[
                "run", "--batch", "b", "--target", "dst", "--shard", &spec, "--quiet",
            ],
            &env,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let staged = staged_contents(&merged)?;
    for e in &emails {
        let on_target = target_contents(&target, e)?;
        let from_stage: mailstage_tests::upload::Contents = staged
            .iter()
            .filter(|((m, _), _)| m == e)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(on_target, from_stage, "{e}: each message exactly once");
    }
    // The upload status across the shard stages shows every mailbox done.
    let out = at(
        &bins::mailstage_upload(),
        &spread,
        &["status", "--batch", "b", "--target", "dst", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout)?;
    for m in status.as_array().expect("per mailbox") {
        assert_eq!(m["pending"], 0, "{m}");
        assert_eq!(m["state"], "Uploaded", "{m}");
    }
    assert_eq!(status.as_array().map(Vec::len), Some(counts.len()));
    let out = at(
        &bins::mailstage_upload(),
        &spread,
        &[
            "report", "--batch", "b", "--target", "dst", "--format", "json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        report["mailboxes"].as_array().map(Vec::len),
        Some(counts.len())
    );
    assert_eq!(report["grade"], "Perfect", "{}", report["counts"]);
    Ok(())
}

#[test]
fn a_shard_run_refuses_what_the_plan_does_not_say() -> Result<()> {
    let d = source(&[1, 1], 2000)?;
    let cli = Cli::new();
    cli.endpoint_on("src", d.port());
    let all = rows(2);
    cli.batch(
        "b",
        "src",
        &all.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let no_plan = cli.fails(&["batch", "start", "b", "--shard", "0/2"]);
    assert!(no_plan.contains("no shard plan"), "{no_plan}");
    cli.ok(&["batch", "plan", "b", "--shards", "2", "--no-sizes"]);
    let other = cli.fails(&["batch", "start", "b", "--shard", "0/3"]);
    assert!(other.contains("planned in 2 shard(s), not 3"), "{other}");
    let bad = cli.run(&["batch", "start", "b", "--shard", "2/2"]);
    assert_eq!(bad.status.code(), Some(2), "clap refuses: {}", text(&bad));
    let no_env = cli.fails(&["batch", "start", "b", "--shard-from-env"]);
    assert!(no_env.contains("SLURM_ARRAY_TASK_ID"), "{no_env}");

    // When no mailbox can be measured (every login refused here) the plan says so.
    let refused = Cli::new();
    refused.endpoint_on("src", d.port());
    refused.batch(
        "b",
        "src",
        &["u0@contoso.edu,u0,wrong", "u1@contoso.edu,u1,wrong"],
    );
    let err = refused.fails(&["batch", "plan", "b", "--shards", "2"]);
    assert!(
        err.contains("could be measured") && err.contains("--no-sizes"),
        "{err}"
    );
    Ok(())
}
