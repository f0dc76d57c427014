//! The cross-server upload through the binaries, as an admin runs it: a Dovecot source,
//! a Courier-IMAP target whose administrator writes under `#shared.USER`
//! (`target new --user-root '/#shared/{user}'`), each mailbox into its `TargetUserName`.

mod cli_support;

use anyhow::{Result, ensure};
use cli_support::{Cli, text};
use mailstage_tests::fixtures::simple;
use mailstage_tests::servers::{ADMIN, ADMIN_PASSWORD, Kind, TestServer};

#[test]
fn into_courier_under_the_admins_user_root() -> Result<()> {
    let source = TestServer::start(Kind::Dovecot, &["alice"])?;
    let target = TestServer::start(Kind::Courier, &["alice"])?;
    ensure!(source.append("alice", "INBOX", &["\\Seen"], 1_700_000_000, &simple(1))?);
    source.create_folder("alice", "Projects/2024")?;
    ensure!(source.append("alice", "Projects/2024", &[], 1_700_000_100, &simple(2))?);

    let cli = Cli::new();
    cli.endpoint_on("src", source.port());
    cli.batch_with_header(
        "b1",
        "src",
        "EmailAddress,UserName,Password,TargetUserName",
        &["alice@contoso.edu,alice,alice-pw,alice"],
    );
    cli.ok(&["batch", "start", "b1", "--quiet"]);
    let port = target.port().to_string();
    let new = [
        "target",
        "new",
        "--name",
        "courier",
        "--kind",
        "imap",
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--security",
        "none",
        "--admin-user",
        ADMIN,
        "--user-root",
        "/#shared/{user}",
        "--password-env",
        "COURIER_ADMIN_PW",
    ];
    let out = cli.upload(&new, &[]);
    ensure!(out.status.success(), "{}", text(&out));
    let shown = text(&cli.upload(&["target", "show", "courier"], &[]));
    ensure!(
        shown.contains("UserRoot") && shown.contains("/#shared/{user}"),
        "{shown}"
    );

    let env = [("COURIER_ADMIN_PW", ADMIN_PASSWORD)];
    let run = ["run", "--batch", "b1", "--target", "courier", "--quiet"];
    let out = cli.upload(&run, &env);
    ensure!(out.status.code() == Some(0), "{}", text(&out));
    // Every source folder (the harness Dovecot's special-use ones too, empty) with the same
    // messages, flags and dates; besides them only the parent the upload created.
    let on_source = source.mailbox("alice")?;
    let alice = target.mailbox("alice")?;
    ensure!(alice.outside_prefix.is_empty(), "{alice:?}");
    for (path, messages) in &on_source.messages {
        ensure!(
            alice.messages.get(path) == Some(messages),
            "{path}: {alice:?}"
        );
    }
    let extra: Vec<&String> = alice.folders.difference(&on_source.folders).collect();
    ensure!(extra == ["Projects"], "{extra:?}");
    let again = cli.upload(&run, &env);
    ensure!(again.status.code() == Some(0), "{}", text(&again));
    ensure!(
        target.mailbox("alice")? == alice,
        "the second run changed nothing"
    );
    Ok(())
}
