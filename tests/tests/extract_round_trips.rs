//! Round trips of extraction, counted by the delay proxy in front of a real Dovecot (which
//! offers LIST-STATUS and CONDSTORE): a full pass waits about one round trip per folder
//! (its bodies; its EXAMINE goes out behind the folder before); a pass that finds nothing new costs the same few
//! commands whether the mailbox has 10 folders or 200, and one that follows a new message,
//! a flag change and an expunge in three folders among 200 opens those three only and
//! records all three changes; and without LIST-STATUS, pipelined STATUS does the same.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, ensure};
use mailstage::extract::{MailboxCounts, Pass, RetryPolicy};
use mailstage_tests::Dovecot;
use mailstage_tests::extraction::{TestMailbox, Via, default_limits, run_via};
use mailstage_tests::fault_proxy::{FaultProxy, Faults};
use mailstage_tests::fixtures::simple;

const RTT: Duration = Duration::from_millis(4);

fn folders(n: usize) -> Vec<String> {
    let mut f = vec!["INBOX".to_string()];
    f.extend((1..n).map(|i| format!("Projects/F{i:03}")));
    f
}

/// One pass of `user` through `proxy` into `dir`: its counts, the commands it sent and the
/// turns (round trips waited for, at most) they took.
fn pass(
    dir: &std::path::Path,
    d: &Dovecot,
    proxy: &FaultProxy,
    user: &str,
    pass: Pass,
) -> Result<(MailboxCounts, BTreeMap<String, u64>, u64)> {
    let password = format!("{user}-pw");
    let email = format!("{user}@contoso.edu");
    let mailbox = TestMailbox::own(&email, user, &password);
    proxy.commands().reset();
    let via = Via {
        port: proxy.port(),
        retry: RetryPolicy::default(),
    };
    let out = run_via(dir, d, &[mailbox], default_limits(), pass, via)?;
    ensure!(out.len() == 1 && out[0].error.is_none(), "{out:?}");
    let c = proxy.commands();
    Ok((out[0].counts.clone(), c.by_name(), c.turns()))
}

fn total(commands: &BTreeMap<String, u64>) -> u64 {
    commands.values().sum()
}

#[test]
fn a_no_change_pass_costs_the_same_commands_for_10_or_200_folders() -> Result<()> {
    let d = Dovecot::builder()
        .user("ten", "ten-pw")
        .user("many", "many-pw")
        .start()?;
    for (user, n) in [("ten", 10), ("many", 200)] {
        let names = folders(n);
        for f in names.iter().skip(1) {
            d.create_folder(user, f)?;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        d.write_sized(user, &refs, &vec![1_500; 2 * n], 11)?;
    }
    let proxy = FaultProxy::start(d.port(), Faults::rtt(RTT))?;
    let (ten_dir, many_dir) = (tempfile::tempdir()?, tempfile::tempdir()?);

    let (full_ten, _, ten_full_turns) = pass(ten_dir.path(), &d, &proxy, "ten", Pass::Full)?;
    let (full_many, full_commands, full_turns) =
        pass(many_dir.path(), &d, &proxy, "many", Pass::Full)?;
    eprintln!("full pass: 10 folders {ten_full_turns} turns, 200 folders {full_turns} turns");
    // A full pass does not wait twice per folder (its EXAMINE, then its bodies): each
    // folder's EXAMINE goes out behind the bodies of the one before. 10 folders: LOGIN,
    // NAMESPACE + LIST, the new folders opened and listed, one body fetch per folder, LOGOUT
    // (24 turns when every folder waited for its EXAMINE, then its bodies).
    assert!(ten_full_turns <= 10 + 6, "{ten_full_turns} turns");
    // (The sliding windows of the pipelines count a turn per refill: more than 200, but
    // fewer than two per folder; 566 before.)
    assert!(full_turns < 2 * 200, "{full_turns} turns");
    assert_eq!((full_ten.staged, full_many.staged), (20, 400));
    assert!(
        full_commands.get("EXAMINE").copied().unwrap_or(0) >= 200,
        "{full_commands:?}"
    );

    let (ten, ten_commands, ten_turns) =
        pass(ten_dir.path(), &d, &proxy, "ten", Pass::Incremental)?;
    let (many, many_commands, many_turns) =
        pass(many_dir.path(), &d, &proxy, "many", Pass::Incremental)?;
    assert_eq!((ten.staged, many.staged), (0, 0));
    assert!(many.folders >= 200, "{many:?}");
    assert_eq!(
        ten_commands, many_commands,
        "the same commands whatever the folder count"
    );
    eprintln!("no-change pass: {many_commands:?}");
    assert!(total(&many_commands) <= 8, "{many_commands:?}");
    assert_eq!(many_commands.get("EXAMINE"), None, "{many_commands:?}");
    // LOGIN; NAMESPACE and LIST together; LOGOUT.
    assert_eq!((ten_turns, many_turns), (3, 3));

    // A new message, a flag change and an expunge, in three folders among 200.
    d.write_message_at("many", "Projects/F123", &[], 1_700_000_000, &simple(9_001))?;
    let mut probe = d.login("many")?;
    probe.select("Projects/F050")?.ok()?;
    probe.command("UID STORE 1 +FLAGS (\\Flagged)")?.ok()?;
    probe.select("Projects/F077")?.ok()?;
    probe.command("UID STORE 2 +FLAGS (\\Deleted)")?.ok()?;
    probe.command("EXPUNGE")?.ok()?;
    probe.logout()?;
    let (changed, commands, _) = pass(many_dir.path(), &d, &proxy, "many", Pass::Incremental)?;
    assert_eq!(
        (
            changed.staged,
            changed.flags_updated,
            changed.deleted_on_source
        ),
        (1, 1, 1),
        "{changed:?}"
    );
    // The three folders opened (and the one with new mail again for its body), no other.
    let examined = commands.get("EXAMINE").copied().unwrap_or(0);
    assert!((3..=4).contains(&examined), "{commands:?}");
    assert!(
        total(&commands) <= total(&many_commands) + 12,
        "{commands:?}"
    );

    // And quiet again afterwards.
    let (after, commands, _) = pass(many_dir.path(), &d, &proxy, "many", Pass::Incremental)?;
    assert_eq!((after.staged, after.flags_updated), (0, 0));
    assert_eq!(commands, many_commands);
    Ok(())
}

/// Where the server has CONDSTORE but not LIST-STATUS, pipelined STATUS commands stand in:
/// a no-change pass sends one STATUS per folder and opens none, and a new message is found.
#[test]
fn without_list_status_pipelined_status_leaves_unchanged_folders_closed() -> Result<()> {
    let d = Dovecot::builder()
        .user("stan", "stan-pw")
        .extra_config(
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ \
             NAMESPACE CONDSTORE SPECIAL-USE UIDPLUS ESEARCH\n",
        )
        .start()?;
    let names = folders(30);
    for f in names.iter().skip(1) {
        d.create_folder("stan", f)?;
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    d.write_sized("stan", &refs, &[1_500; 60], 13)?;
    let proxy = FaultProxy::start(d.port(), Faults::rtt(RTT))?;
    let dir = tempfile::tempdir()?;
    let (full, full_commands, _) = pass(dir.path(), &d, &proxy, "stan", Pass::Full)?;
    assert_eq!(full.staged, 60, "{full:?}");
    assert_eq!(full_commands.get("STATUS"), None, "a first pass needs none");

    let (quiet, commands, _) = pass(dir.path(), &d, &proxy, "stan", Pass::Incremental)?;
    assert_eq!(quiet.staged, 0);
    assert_eq!(commands.get("EXAMINE"), None, "{commands:?}");
    let statuses = commands.get("STATUS").copied().unwrap_or(0);
    assert!(
        statuses >= 30 && statuses == quiet.folders,
        "{commands:?} {quiet:?}"
    );

    d.write_message_at("stan", "Projects/F017", &[], 1_700_000_000, &simple(4_242))?;
    let (changed, commands, _) = pass(dir.path(), &d, &proxy, "stan", Pass::Incremental)?;
    assert_eq!(changed.staged, 1, "{changed:?}");
    assert!(
        commands.get("EXAMINE").copied().unwrap_or(0) <= 2,
        "{commands:?}"
    );
    Ok(())
}
