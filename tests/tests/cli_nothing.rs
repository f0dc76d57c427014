//! Nothing to migrate is not a success: `batch start` against Courier with a `UserRoot` that
//! matches nothing, and against Cyrus with an admin login into a user that does not exist,
//! fails that mailbox with a hint naming the UserRoot or the login (exit 1 when every
//! mailbox failed, 2 when others went through).

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
    cli.batch_with_header(
        "b1",
        "src",
        "EmailAddress,UserName,Password,UserRoot",
        &[
            "alice@contoso.edu,mailadmin,mailadmin-pw,/#shared/alice",
            "nobody@contoso.edu,mailadmin,mailadmin-pw,/#shared/nobody",
        ],
    );
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
