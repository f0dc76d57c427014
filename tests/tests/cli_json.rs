//! `--json` on every command that shows state, in both binaries: each subcommand (found from
//! the binaries' own `--help`, so a new one without `--json` fails here) runs with it on a
//! real stage (a batch extracted from a Dovecot and uploaded into another) and its output
//! parses as JSON.

mod cli_support;

use std::collections::BTreeSet;
use std::process::Output;

use anyhow::Result;
use cli_support::{Cli, imap_target_args, text};
use mailstage_tests::Dovecot;
use mailstage_tests::fixtures::simple;
use mailstage_tests::upload::{ADMIN, target_dovecot};
use serde_json::Value;

const EMAIL: &str = "alice@contoso.edu";
const SECRET_VAR: &str = "MAILSTAGE_TEST_TARGET_PASSWORD";

/// Commands that show no state (they write scripts and pages).
const NO_STATE: &[&str] = &["completions", "man"];

/// The subcommand paths a binary lists in its `--help` (`batch status`, `verify`, …),
/// leaves only.
fn leaves(help: &dyn Fn(&[&str]) -> Output) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let shown = String::from_utf8_lossy(&help(&args).stdout).into_owned();
        let subs: Vec<String> = shown
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|s| *s != "help")
            .map(str::to_owned)
            .collect();
        if subs.is_empty() {
            out.push(path);
        } else {
            for s in subs {
                todo.push(path.iter().cloned().chain([s]).collect());
            }
        }
    }
    out.sort();
    out
}

/// Parses a command's standard output as JSON; the command must end 0 or 2 (done with
/// something to read).
fn parsed(what: &str, out: &Output) -> Value {
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{what}\n{}",
        text(out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e})\n{}", text(out)))
}

#[test]
fn every_command_that_shows_state_prints_json() -> Result<()> {
    let cli = Cli::new();
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for i in 0..3 {
        source.write_message_at("alice", "INBOX", &[], 1_695_000_000 + i, &simple(i))?;
    }
    let target = target_dovecot(&[EMAIL])?;
    let (src_port, dst_port) = (source.port().to_string(), target.port().to_string());
    let csv = cli.write(
        "b1.csv",
        &format!("EmailAddress,UserName,Password\n{EMAIL},alice,alice-pw\n"),
    );
    let csv = csv.to_str().expect("UTF-8 temp path");
    let view = cli.stage().with_file_name("view");
    let view = view.to_str().expect("UTF-8 temp path");
    let merged = cli.stage().with_file_name("merged");
    let merged = merged.to_str().expect("UTF-8 temp path");
    let stage = cli.stage();
    let stage = stage.to_str().expect("UTF-8 temp path");
    let env = [(SECRET_VAR, ADMIN.1)];
    let extract = |args: &[&str]| cli.run(args);
    let upload = |args: &[&str]| cli.upload(args, &env);

    // In an order that builds the state the next one shows; removals last.
    let extract_runs: &[&[&str]] = &[
        &[
            "test-server",
            "--server",
            "127.0.0.1",
            "--port",
            &src_port,
            "--security",
            "none",
            "--csv",
            csv,
        ],
        &[
            "endpoint",
            "new",
            "--name",
            "src",
            "--server",
            "127.0.0.1",
            "--port",
            &src_port,
            "--security",
            "none",
        ],
        &[
            "endpoint",
            "new",
            "--name",
            "spare",
            "--server",
            "127.0.0.1",
            "--security",
            "none",
        ],
        &["endpoint", "show", "src"],
        &["endpoint", "list"],
        &[
            "batch",
            "new",
            "--name",
            "b1",
            "--endpoint",
            "src",
            "--csv",
            csv,
        ],
        &["batch", "plan", "b1", "--shards", "2"],
        &["batch", "start", "b1", "--quiet"],
        &["batch", "sync", "b1", "--quiet"],
        &["batch", "status", "b1"],
        &["batch", "approve-skipped", "b1"],
        &["batch", "report", "b1", "--format", "json"],
        &["verify"],
        &["gc"],
        &["maildir", "--out", view],
        &["stage", "merge", "--into", merged, stage],
    ];
    let target_args = imap_target_args("dst", &dst_port, ADMIN.0, SECRET_VAR);
    let upload_runs: &[&[&str]] = &[
        &target_args,
        &["target", "show", "dst"],
        &["target", "list"],
        &[
            "lint", "--batch", "b1", "--target", "dst", "--format", "json",
        ],
        &["run", "--batch", "b1", "--target", "dst", "--quiet"],
        &["status", "--batch", "b1"],
        &["report", "--batch", "b1", "--format", "json"],
        &["verify"],
        &["target", "remove", "dst", "--force"],
    ];
    let extract_removals: &[&[&str]] = &[
        &["batch", "remove", "b1", "--force"],
        &["endpoint", "remove", "spare"],
    ];

    let mut covered: BTreeSet<(&str, String)> = BTreeSet::new();
    let mut check = |binary: &'static str, runs: &[&[&str]], exec: &dyn Fn(&[&str]) -> Output| {
        for args in runs {
            let mut args = args.to_vec();
            if !args.contains(&"--format") {
                args.push("--json");
            }
            let json = parsed(&args.join(" "), &exec(&args));
            assert!(!json.is_null(), "{args:?}: {json}");
            let leaf: Vec<&str> = args
                .iter()
                .copied()
                .take_while(|a| !a.starts_with('-'))
                .collect();
            covered.insert((binary, leaf.join(" ")));
        }
    };
    check("mailstage-extract", extract_runs, &extract);
    check("mailstage-upload", upload_runs, &upload);
    check("mailstage-extract", extract_removals, &extract);

    // Every subcommand of both binaries that shows state was run above.
    for (binary, exec) in [
        ("mailstage-extract", &extract as &dyn Fn(&[&str]) -> Output),
        ("mailstage-upload", &upload),
    ] {
        for path in leaves(exec) {
            if NO_STATE.contains(&path[0].as_str()) {
                continue;
            }
            let run = covered
                .iter()
                .any(|(b, leaf)| *b == binary && leaf.starts_with(&path.join(" ")));
            assert!(run, "{binary} {} was not run with --json", path.join(" "));
        }
    }
    Ok(())
}
