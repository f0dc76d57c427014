//! The Cyrus and Courier harness itself: each server starts on its port, its users and its
//! admin log in as the extraction tests need, NAMESPACE answers as the server's settings say,
//! and APPENDed messages come back byte for byte.

use anyhow::{Result, ensure};
use mailstage_tests::fixtures::simple;
use mailstage_tests::probe::Probe;
use mailstage_tests::servers::{ADMIN, ADMIN_PASSWORD, Kind, TestServer};

/// The `* NAMESPACE …` line a login gets.
fn namespace(probe: &mut Probe) -> Result<String> {
    let r = probe.command("NAMESPACE")?.ok()?;
    Ok(r.untagged
        .iter()
        .find(|u| u.text.starts_with("NAMESPACE "))
        .map(|u| u.text.clone())
        .unwrap_or_default())
}

/// Names that LIST "" pattern answers.
fn list(probe: &mut Probe, pattern: &str) -> Result<Vec<String>> {
    let r = probe
        .command(&format!(
            "LIST \"\" {}",
            mailstage_tests::probe::quote(pattern)
        ))?
        .ok()?;
    let mut names: Vec<String> = r
        .untagged
        .iter()
        .filter_map(|u| {
            u.text
                .rsplit_once(' ')
                .map(|(_, n)| n.trim_matches('"').to_owned())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Start, user login, a folder with a message read back, and the admin's way in.
fn check(kind: Kind) -> Result<()> {
    let server = TestServer::start(kind, &["alice", "bob"])?;
    server.create_folder("alice", "Projects/Café")?;
    let message = simple(7);
    ensure!(server.append(
        "alice",
        "Projects/Café",
        &["\\Seen"],
        1_700_000_000,
        &message
    )?);
    ensure!(server.append("alice", "INBOX", &[], 1_700_000_100, &simple(8))?);
    let stored = server.messages("alice", "Projects/Café")?;
    ensure!(
        stored.len() == 1 && stored[0].1 == message,
        "{kind}: the message reads back byte for byte: {stored:?}"
    );
    ensure!(server.flags("alice", "Projects/Café")?[0].1 == ["\\Seen"]);

    let mut alice = server.login("alice")?;
    let ns = namespace(&mut alice)?;
    let want = match kind {
        Kind::Dovecot => "NAMESPACE ((\"\" \"/\")) NIL NIL",
        Kind::CyrusUnix => {
            "NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared Folders/\" \"/\"))"
        }
        Kind::CyrusNetnews => "NAMESPACE ((\"INBOX.\" \".\")) ((\"user.\" \".\")) ((\"\" \".\"))",
        Kind::Courier => {
            "NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\")(\"shared.\" \".\"))"
        }
    };
    ensure!(ns == want, "{kind}: {ns}");
    let listed = list(&mut alice, "*")?;
    ensure!(
        listed.contains(&server.wire("Projects/Café")) && listed.contains(&"INBOX".to_owned()),
        "{kind}: {listed:?}"
    );
    alice.logout()?;

    let admin = server.admin_login("bob");
    let mut probe = Probe::connect(server.port())?;
    match kind {
        Kind::Courier => {
            // No impersonation: the administrator sees every user's folders as #shared.USER.
            probe.login(&admin.login, &admin.password)?.ok()?;
            let shared = list(&mut probe, "#shared.*")?;
            ensure!(
                shared.contains(&"#shared.alice".to_owned())
                    && shared.contains(&"#shared.alice.Projects.Caf&AOk-".to_owned()),
                "{shared:?}"
            );
            probe.examine("#shared.alice")?;
            ensure!(probe.uids()?.len() == 1);
        }
        _ => {
            // SASL PLAIN: authzid bob, authcid the admin.
            probe
                .authenticate_plain("bob", ADMIN, ADMIN_PASSWORD)?
                .ok()?;
            probe.examine("INBOX")?;
            ensure!(probe.uids()?.is_empty(), "{kind}: bob's INBOX is empty");
            ensure!(
                !list(&mut probe, "*")?.contains(&server.wire("Projects/Café")),
                "{kind}: bob does not see alice's folders"
            );
        }
    }
    probe.logout()
}

#[test]
fn dovecot_through_the_common_face() -> Result<()> {
    check(Kind::Dovecot)
}

#[test]
fn cyrus_with_unixhierarchysep_and_altnamespace() -> Result<()> {
    check(Kind::CyrusUnix)
}

#[test]
fn cyrus_with_netnews_separator() -> Result<()> {
    check(Kind::CyrusNetnews)
}

#[test]
fn courier_with_shared_folders_for_the_admin() -> Result<()> {
    check(Kind::Courier)
}
