//! Uploads across real servers, as an admin would run them: Dovecot → Cyrus (no
//! `altnamespace`: personal folders under `INBOX.`), Cyrus (`unixhierarchysep`,
//! `altnamespace`) → Courier-IMAP (the administrator writing under `#shared.USER`, folders
//! under `INBOX.`), Courier → Dovecot. Every staged message is on the target exactly once
//! (compared with what the target really holds, read back as the user), flags and
//! INTERNALDATE equal, empty folders present, every folder under the target's personal
//! prefix with its delimiter; a second run sends nothing. Each pair is its own test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use anyhow::{Result, ensure};
use mailstage::extract::Pass;
use mailstage::stage::{Access, Stage};
use mailstage::upload::{MappingRules, UploadOutcome};
use mailstage_tests::extraction::{TestMailbox, default_limits, ensure_clean, run};
use mailstage_tests::fixtures::{self, FLAG_SETS, ODD_FOLDERS, simple};
use mailstage_tests::servers::{Kind, TestServer};
use mailstage_tests::upload::{self, Seen, job_to, staged_contents};

const ALICE: &str = "alice@contoso.edu";
const BOB: &str = "bob@contoso.edu";
const USERS: [(&str, &str); 2] = [(ALICE, "alice"), (BOB, "bob")];

/// Fills the source: alice's INBOX with messages every server keeps byte for byte (flags
/// and keywords), a Sent folder, one message per odd folder the server can hold, an empty
/// folder; bob's INBOX and an empty folder.
fn fill(source: &TestServer) -> Result<()> {
    let messages = [
        simple(1),
        fixtures::no_message_id(),
        fixtures::nested_multipart(),
        fixtures::long_line(20_000),
        simple(1), // the same message twice in one folder: two copies on the target
    ];
    for (i, m) in messages.iter().enumerate() {
        let date = 1_600_000_000 + i as i64 * 1000;
        ensure!(source.append("alice", "INBOX", FLAG_SETS[i % FLAG_SETS.len()], date, m)?);
    }
    source.create_folder("alice", "Sent")?;
    ensure!(source.append("alice", "Sent", &["\\Seen"], 1_600_500_000, &simple(50))?);
    let odd = ODD_FOLDERS.iter().filter(|f| source.holds(f.name));
    for (i, f) in odd.enumerate() {
        source.create_folder("alice", f.name)?;
        let date = 1_650_000_000 + i as i64;
        ensure!(source.append("alice", f.name, &[], date, &simple(100 + i as u64))?);
    }
    source.create_folder("alice", "Empty")?;
    for i in 0..3 {
        let date = 1_610_000_000 + i;
        ensure!(source.append("bob", "INBOX", &["\\Seen"], date, &simple(200 + i as u64))?);
    }
    source.create_folder("bob", "Nothing Yet")?;
    Ok(())
}

/// Stages both mailboxes from `source` (alice by her own login, bob by the admin's way in).
fn stage(dir: &Path, source: &TestServer) -> Result<()> {
    let admin = source.admin_login("bob");
    let mailboxes = [
        TestMailbox::own(ALICE, "alice", "alice-pw"),
        admin.mailbox(BOB),
    ];
    let outcomes = run(dir, source, &mailboxes, default_limits(), Pass::Full)?;
    ensure_clean(format_args!("{}: staging", source.kind()), &outcomes)
}

/// Uploads batch `b1` into `target`, each mailbox into its user there.
fn upload_into(dir: &Path, target: &TestServer) -> Result<Vec<UploadOutcome>> {
    let credentials = target.target_credentials();
    let mut job = job_to(
        dir,
        target.port(),
        credentials,
        None,
        MappingRules::default(),
    )?;
    for m in &mut job.mailboxes {
        let user = USERS.iter().find(|(e, _)| *e == m.email).map(|(_, u)| *u);
        m.target_mailbox = user.unwrap_or_default().to_owned();
    }
    upload::run(dir, job)
}

/// A staged folder's path on the target: its levels (split at the source's delimiter)
/// joined by `/`, a target delimiter inside a level replaced by `_` (the mapping's rule).
fn target_path(levels: impl Iterator<Item = String>, target: &TestServer) -> String {
    let d = target.delimiter();
    levels
        .map(|l| if d == '/' { l } else { l.replace(d, "_") })
        .collect::<Vec<_>>()
        .join("/")
}

/// What each target user should hold: (user → folder path → sorted messages), empty
/// staged folders included.
fn expected(
    dir: &Path,
    target: &TestServer,
) -> Result<BTreeMap<String, BTreeMap<String, Vec<Seen>>>> {
    let stage = Stage::open(dir, Access::Read)?;
    let mut delimiters = BTreeMap::new();
    let mut out: BTreeMap<String, BTreeMap<String, Vec<Seen>>> = BTreeMap::new();
    for m in stage.index().mailboxes("b1")? {
        let user = USERS.iter().find(|(e, _)| *e == m.email).map(|(_, u)| *u);
        let user = user.unwrap_or_default().to_owned();
        for f in stage.index().upload_folders(m.id)? {
            let levels: Vec<String> = match f.delimiter {
                Some(d) => f.name.split(d).map(str::to_owned).collect(),
                None => vec![f.name.clone()],
            };
            let path = target_path(levels.into_iter(), target);
            delimiters.insert((m.email.clone(), f.name.clone()), path.clone());
            out.entry(user.clone())
                .or_default()
                .entry(path)
                .or_default();
        }
    }
    for ((email, folder), messages) in staged_contents(dir)? {
        let path = &delimiters[&(email.clone(), folder)];
        let user = USERS.iter().find(|(e, _)| *e == email).map(|(_, u)| *u);
        let folders = out.entry(user.unwrap_or_default().to_owned()).or_default();
        folders.insert(path.clone(), messages);
    }
    Ok(out)
}

/// The folders each target user had before the upload (a server may make some at the
/// first login, as the harness Dovecot does its special-use ones).
fn folders_before(target: &TestServer) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    for (_, user) in USERS {
        out.insert(user.to_owned(), target.mailbox(user)?.folders);
    }
    Ok(out)
}

/// Checks that the target holds exactly what was staged: besides the staged folders only
/// those it had before and parents the upload created, all empty.
fn check_target(
    dir: &Path,
    target: &TestServer,
    before: &BTreeMap<String, BTreeSet<String>>,
    label: &str,
) -> Result<()> {
    for (user, want) in expected(dir, target)? {
        let got = target.mailbox(&user)?;
        ensure!(
            got.outside_prefix.is_empty(),
            "{label}: {user}'s folders outside the personal prefix {:?}: {:?}",
            target.personal_prefix(),
            got.outside_prefix
        );
        for (path, messages) in &got.messages {
            if want.contains_key(path) {
                continue;
            }
            // A parent the upload created for a nested folder (the source had it as a bare
            // container) is the only folder allowed besides the staged ones, and is empty.
            let parent = want.keys().any(|w| w.starts_with(&format!("{path}/")));
            let had = before.get(&user).is_some_and(|b| b.contains(path));
            ensure!(
                (parent || had) && messages.is_empty(),
                "{label}: {user} holds {path:?} ({} messages), which was not staged",
                messages.len()
            );
        }
        for (path, messages) in &want {
            let Some(there) = got.messages.get(path) else {
                let folders: BTreeSet<&String> = got.messages.keys().collect();
                anyhow::bail!("{label}: {user} has no folder {path:?}; it has {folders:?}");
            };
            ensure!(
                there == messages,
                "{label}: {user}'s {path:?}: target {there:#?}\nstaged {messages:#?}"
            );
        }
    }
    Ok(())
}

/// Stages from `source_kind`, uploads into `target_kind`, checks, and uploads again.
fn scenario(source_kind: Kind, target_kind: Kind) -> Result<()> {
    let started = Instant::now();
    let label = format!("{source_kind} -> {target_kind}");
    let source = TestServer::start(source_kind, &["alice", "bob"])?;
    let target = TestServer::start(target_kind, &["alice", "bob"])?;
    fill(&source)?;
    let dir = tempfile::tempdir()?;
    stage(dir.path(), &source)?;
    let staged: usize = staged_contents(dir.path())?.values().map(Vec::len).sum();
    let before = folders_before(&target)?;

    let first = upload_into(dir.path(), &target)?;
    for o in &first {
        ensure!(
            o.error.is_none() && o.counts.refused == 0 && o.refused_folders.is_empty(),
            "{label}: {}: {:?} {:?} {:?}",
            o.email,
            o.error,
            o.counts,
            o.refused_folders
        );
    }
    let sent: u64 = first.iter().map(|o| o.counts.uploaded).sum();
    ensure!(sent as usize == staged, "{label}: sent {sent} of {staged}");
    check_target(dir.path(), &target, &before, &label)?;

    let again = upload_into(dir.path(), &target)?;
    for o in &again {
        ensure!(
            o.error.is_none() && o.counts.uploaded == 0 && o.counts.folders_created == 0,
            "{label}: the second run: {}: {:?} {:?}",
            o.email,
            o.error,
            o.counts
        );
    }
    check_target(dir.path(), &target, &before, &label)?;
    eprintln!("{label}: {staged} messages, took {:?}", started.elapsed());
    Ok(())
}

#[test]
fn dovecot_to_cyrus() -> Result<()> {
    scenario(Kind::Dovecot, Kind::CyrusNetnews)
}

#[test]
fn cyrus_to_courier() -> Result<()> {
    scenario(Kind::CyrusUnix, Kind::Courier)
}

#[test]
fn courier_to_dovecot() -> Result<()> {
    scenario(Kind::Courier, Kind::Dovecot)
}
