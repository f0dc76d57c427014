//! Nothing to migrate is not a success: `batch start` against Courier with a `UserRoot` that
//! matches nothing, and against Cyrus with an admin login into a user that does not exist,
//! fails that mailbox with a hint naming the UserRoot or the login (exit 1 when every
//! mailbox failed, 2 when others went through). `test-server --csv` reports the same rows
//! "nothing to migrate" with the same hint, while the rows with folders pass.

mod cli_support;

use anyhow::Result;
use cli_support::{Cli, text};
use mailstage_tests::fixtures::simple;
use mailstage_tests::servers::{Kind, TestServer};

#[test]
fn courier_user_root_matching_nothing_fails_its_mailbox() -> Result<()> {
    let server = TestServer::start(Kind::Courier, &["alice"])?;
    assert!(server.append("alice", "INBOX", &[], 1_700_000_000, &simple(1))?);
    let cli = Cli::new();
    cli.endpoint_on("src", server.port());
    let csv = cli.batch_with_header(
        "b1",
        "src",
        "EmailAddress,UserName,Password,UserRoot",
        &[
            "alice@contoso.edu,mailadmin,mailadmin-pw,/#shared/alice",
            "nobody@contoso.edu,mailadmin,mailadmin-pw,/#shared/nobody",
        ],
    );
    let port = server.port().to_string();
    let args = [
        "test-server",
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        "none",
        "--csv",
        csv.to_str().expect("UTF-8 temp path"),
    ];
    let out = cli.run(&args);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAILED [no_folders]"), "{shown}");
    assert!(
        shown.contains("nobody@contoso.edu: nothing to migrate")
            && shown.contains("UserRoot \"/#shared/nobody\""),
        "{shown}"
    );
    let out = cli.run(&[&args[..], &["--json"]].concat());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let kinds: Vec<&str> = json["logins"]
        .as_array()
        .expect("logins listed")
        .iter()
        .map(|l| l["failure"]["kind"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(kinds, ["ok", "no_folders"], "{json}");

    let out = cli.run(&["batch", "start", "b1", "--quiet"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("alice@contoso.edu: 1 staged"), "{shown}");
    assert!(
        shown.contains("nobody@contoso.edu: nothing to migrate")
            && shown.contains("UserRoot \"/#shared/nobody\""),
        "{shown}"
    );
    Ok(())
}

#[test]
fn cyrus_admin_login_into_a_user_that_does_not_exist_fails() -> Result<()> {
    let server = TestServer::start(Kind::CyrusUnix, &["alice"])?;
    let cli = Cli::new();
    cli.endpoint_on("src", server.port());
    cli.batch("b1", "src", &["zed@contoso.edu,zed*mailadmin,mailadmin-pw"]);
    let out = cli.run(&["batch", "start", "b1", "--quiet"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("zed@contoso.edu: nothing to migrate")
            && shown.contains("login \"zed*mailadmin\" sees no folder"),
        "{shown}"
    );
    let status = cli.ok(&["batch", "status", "b1", "--users"]);
    assert!(status.contains("Failed"), "{status}");
    Ok(())
}
