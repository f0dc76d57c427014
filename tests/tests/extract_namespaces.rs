//! RFC 2342 namespaces: a user's stage holds only their own mail. A folder another user
//! shared with them (Cyrus ACL), a shared folder (Cyrus) and a public namespace (Dovecot) are
//! left out and named in the pass's outcome, for the user's own login and an admin's alike,
//! and listed per mailbox by `batch status` (text and `--json`); a batch made with
//! `--include-namespace shared --include-namespace other` copies them into `Shared/…` and
//! `Other Users/alice/…`.

mod cli_support;

use std::collections::BTreeSet;

use anyhow::{Result, ensure};
use mailstage::extract::Pass;
use mailstage_tests::extraction::{TestMailbox, default_limits, run};
use mailstage_tests::fixtures::simple;
use mailstage_tests::probe::quote;
use mailstage_tests::servers::{ADMIN, ADMIN_PASSWORD, Kind, TestServer};
use mailstage_tests::stage_check::staged_hashes;
use mailstage_tests::{Dovecot, Owner};

/// Extracts bob by his own login and by the admin's, and checks both stages hold his INBOX
/// only while `foreign` (wire names) are reported left out.
fn bob_gets_only_his_own(
    server: &impl mailstage_tests::ImapPort,
    admin_login: &str,
    foreign: &[&str],
) -> Result<()> {
    for (login, password) in [("bob", "bob-pw"), (admin_login, ADMIN_PASSWORD)] {
        let dir = tempfile::tempdir()?;
        let mailbox = TestMailbox {
            email: "bob@contoso.edu",
            login,
            password,
            user_root: None,
        };
        let out = run(dir.path(), server, &[mailbox], default_limits(), Pass::Full)?;
        ensure!(out[0].error.is_none(), "{login}: {:?}", out[0].error);
        let folders: BTreeSet<String> = staged_hashes(dir.path())?
            .into_keys()
            .map(|(_, folder)| folder)
            .collect();
        ensure!(
            folders == BTreeSet::from(["INBOX".to_owned()]),
            "{login}: staged {folders:?}"
        );
        ensure!(out[0].counts.staged == 1, "{login}: {:?}", out[0].counts);
        let left: BTreeSet<&str> = out[0]
            .counts
            .left_out_namespaces
            .iter()
            .map(String::as_str)
            .collect();
        // Containers of those namespaces (`Public`, `Other Users/alice`) may be listed too.
        ensure!(
            foreign.iter().all(|f| left.contains(f)),
            "{login}: left out {left:?}, expected at least {foreign:?}"
        );
    }
    Ok(())
}

/// alice shares `Projects` with bob; the admin makes a shared `Announcements` readable by all.
/// Returns the server and those two folders' names as bob sees them.
fn cyrus_sharing(kind: Kind) -> Result<(TestServer, &'static str, &'static str)> {
    let server = TestServer::start(kind, &["alice", "bob"])?;
    server.create_folder("alice", "Projects")?;
    ensure!(server.append("alice", "Projects", &[], 1_700_000_000, &simple(1))?);
    let mut alice = server.login("alice")?;
    alice
        .command(&format!(
            "SETACL {} bob lrs",
            quote(&server.wire("Projects"))
        ))?
        .ok()?;
    alice.logout()?;
    ensure!(server.append("bob", "INBOX", &[], 1_700_000_000, &simple(2))?);
    let mut admin = mailstage_tests::probe::Probe::connect(server.port())?;
    admin.login(ADMIN, ADMIN_PASSWORD)?.ok()?;
    admin.create("Announcements")?;
    admin
        .command(&format!("SETACL Announcements {ADMIN} lrswipkxtea"))?
        .ok()?;
    admin.command("SETACL Announcements anyone lrs")?.ok()?;
    admin.append("Announcements", &[], None, &simple(3))?;
    admin.logout()?;
    let (other, shared) = match kind {
        Kind::CyrusUnix => ("Other Users/alice/Projects", "Shared Folders/Announcements"),
        _ => ("user.alice.Projects", "Announcements"),
    };
    Ok((server, other, shared))
}

fn cyrus(kind: Kind) -> Result<()> {
    let (server, other, shared) = cyrus_sharing(kind)?;
    bob_gets_only_his_own(&server, &format!("bob*{ADMIN}"), &[other, shared])
}

#[test]
fn batch_status_lists_what_was_left_out_and_include_namespace_copies_it() -> Result<()> {
    let (server, other, shared) = cyrus_sharing(Kind::CyrusUnix)?;
    let row = ["bob@contoso.edu,bob,bob-pw"];
    let cli = cli_support::Cli::new();
    cli.endpoint_on("src", server.port());
    cli.batch("b1", "src", &row);
    cli.ok(&["batch", "start", "b1", "--quiet"]);
    let shown = cli.ok(&["batch", "status", "b1"]);
    ensure!(
        shown.contains("left out (other users' or shared namespaces")
            && shown.contains(&format!("bob@contoso.edu: {other}, {shared}")),
        "{shown}"
    );
    let json = cli.json(&["batch", "status", "b1"]);
    ensure!(
        json["mailboxes"][0]["left_out_namespaces"] == serde_json::json!([other, shared]),
        "{json}"
    );

    let cli = cli_support::Cli::new();
    cli.endpoint_on("src", server.port());
    let csv = cli.write(
        "b2.csv",
        &format!("EmailAddress,UserName,Password\n{}\n", row[0]),
    );
    let (shared_ns, other_ns) = ("--include-namespace=shared", "--include-namespace=other");
    let csv = csv.to_str().expect("UTF-8 temp path");
    let args = [
        "batch",
        "new",
        "--name",
        "b2",
        "--endpoint",
        "src",
        "--csv",
        csv,
    ];
    cli.ok(&[&args[..], &[shared_ns, other_ns]].concat());
    cli.ok(&["batch", "start", "b2", "--quiet"]);
    let folders: BTreeSet<String> = staged_hashes(&cli.stage())?
        .into_keys()
        .map(|(_, folder)| folder)
        .collect();
    let expected = [
        "INBOX",
        "Other Users/alice/Projects",
        "Shared/Announcements",
    ];
    ensure!(
        folders == expected.iter().map(|s| s.to_string()).collect(),
        "staged {folders:?}"
    );
    let shown = cli.ok(&["batch", "status", "b2"]);
    ensure!(
        shown.contains("Namespaces     : personal, shared namespace (under Shared/), other users' namespace (under Other Users/)") && !shown.contains("left out ("),
        "{shown}"
    );
    Ok(())
}

#[test]
fn cyrus_with_altnamespace_leaves_out_other_users_and_shared_folders() -> Result<()> {
    cyrus(Kind::CyrusUnix)
}

#[test]
fn cyrus_without_altnamespace_leaves_out_other_users_and_shared_folders() -> Result<()> {
    cyrus(Kind::CyrusNetnews)
}

#[test]
fn dovecot_public_namespace_is_left_out() -> Result<()> {
    let owner = Owner::detect()?;
    let public = tempfile::tempdir()?;
    owner.chown(public.path())?;
    std::fs::set_permissions(
        public.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    let d = Dovecot::builder()
        .user("bob", "bob-pw")
        .master_user(ADMIN, ADMIN_PASSWORD)
        .extra_config(&format!(
            "namespace public {{\n  type = public\n  separator = /\n  prefix = Public/\n  \
             location = maildir:{}:LAYOUT=fs\n  subscriptions = no\n  list = yes\n}}",
            public.path().display()
        ))
        .start()?;
    let mut bob = d.login("bob")?;
    bob.create("Public/News")?;
    bob.append("Public/News", &[], None, &simple(4))?;
    bob.append("INBOX", &[], None, &simple(5))?;
    bob.logout()?;
    bob_gets_only_his_own(&d, &format!("bob*{ADMIN}"), &["Public/News"])
}
