//! Both binaries on a terminal, run in a pseudo-terminal (util-linux `script`): progress
//! bars, and each mailbox's summary line once (shown as the mailbox finishes, not repeated
//! in the final list); with standard output redirected the final list still holds every line.

mod cli_support;

use std::process::Command;

use anyhow::Result;
use cli_support::{Cli, text};
use mailstage_tests::Dovecot;
use mailstage_tests::bins;
use mailstage_tests::fixtures::simple;
use mailstage_tests::upload::{ADMIN, target_dovecot};

const EMAILS: [&str; 2] = ["alice@contoso.edu", "bob@contoso.edu"];
const SECRET_VAR: &str = "MAILSTAGE_TEST_TARGET_PASSWORD";

/// Runs `binary --stage STAGE ARGS…` in a pseudo-terminal (standard output and error both
/// on it) and returns what the terminal showed.
fn on_terminal(cli: &Cli, binary: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = [binary.to_str().expect("UTF-8 path"), "--stage"]
        .into_iter()
        .chain([cli.stage().to_str().expect("UTF-8 path")])
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env_remove("MAILSTAGE_DIR")
        .env("TERM", "xterm")
        .envs(env.iter().copied())
        .output()
        .expect("script (util-linux) runs");
    assert_eq!(out.status.code(), Some(0), "{args:?}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many times a line starting with `email: ` followed by `what` was shown.
fn shown(screen: &str, email: &str, what: &str) -> usize {
    screen
        .split(['\n', '\r'])
        .filter(|l| l.contains(&format!("{email}: ")) && l.contains(what))
        .count()
}

#[test]
fn each_mailboxs_summary_line_shows_once_on_a_terminal() -> Result<()> {
    let cli = Cli::new();
    let mut b = Dovecot::builder();
    for (k, _) in EMAILS.iter().enumerate() {
        b = b.user(&format!("u{k}"), "pw");
    }
    let source = b.start()?;
    for k in 0..EMAILS.len() {
        for i in 0..3 {
            source.write_message_at(
                &format!("u{k}"),
                "INBOX",
                &[],
                1_695_000_000 + i,
                &simple(i),
            )?;
        }
    }
    cli.endpoint_on("src", source.port());
    let rows: Vec<String> = EMAILS
        .iter()
        .enumerate()
        .map(|(k, e)| format!("{e},u{k},pw"))
        .collect();
    cli.batch(
        "b1",
        "src",
        &rows.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let screen = on_terminal(
        &cli,
        &bins::mailstage_extract(),
        &["batch", "start", "b1"],
        &[],
    );
    for e in EMAILS {
        assert_eq!(shown(&screen, e, "3 staged"), 1, "{e}\n{screen}");
    }
    assert!(
        screen.contains("batch \"b1\": "),
        "the batch's line\n{screen}"
    );
    // Redirected, the final list is the record: every line is there.
    let synced = cli.ok(&["batch", "sync", "b1"]);
    for e in EMAILS {
        assert_eq!(shown(&synced, e, "0 staged"), 1, "{e}\n{synced}");
    }

    let target = target_dovecot(&EMAILS)?;
    cli.imap_target("dst", target.port(), ADMIN.0, SECRET_VAR);
    let env = [(SECRET_VAR, ADMIN.1)];
    let run = ["run", "--batch", "b1", "--target", "dst"];
    let screen = on_terminal(&cli, &bins::mailstage_upload(), &run, &env);
    for e in EMAILS {
        assert_eq!(shown(&screen, e, "3 uploaded"), 1, "{e}\n{screen}");
    }
    assert!(
        screen.contains("batch \"b1\" -> target \"dst\": 6 message(s)"),
        "{screen}"
    );
    let dry = [&run[..], &["--dry-run"]].concat();
    let screen = on_terminal(&cli, &bins::mailstage_upload(), &dry, &env);
    for e in EMAILS {
        assert_eq!(
            shown(&screen, e, "would upload 0 message(s)"),
            1,
            "{e}\n{screen}"
        );
        assert!(
            screen.contains("INBOX -> INBOX"),
            "the plan is still shown\n{screen}"
        );
    }
    Ok(())
}
