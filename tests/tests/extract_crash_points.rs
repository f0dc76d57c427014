//! A pass aborted at named crash points (`mailstage::crash_point`, built into the test
//! crate's copy of the library), then the next pass: around a UIDVALIDITY change (the
//! folder's new messages, whose UIDs lie at or below the old highest UID, must all be
//! staged), and inside a group's sync under each durability (`stage::durable`).
//!
//! The aborted pass runs in a child process: this test binary again, running only
//! `child_pass` with the stage and the Dovecot's port in its environment.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use mailstage::crash_point;
use mailstage::extract::{MailboxCounts, Pass, RetryPolicy};
use mailstage::stage::durable::DURABILITY_ENV;
use mailstage::stage::verify::verify;
use mailstage::stage::{Access, Stage};
use mailstage_tests::Dovecot;
use mailstage_tests::extraction::{TestMailbox, Via, default_limits, run, run_at};
use mailstage_tests::fixtures::simple;
use mailstage_tests::stage_check::{blob_files, check_completed, message_rows, served};

const T0: u64 = 1_690_000_000;
const CHILD_STAGE: &str = "MAILSTAGE_TEST_CHILD_STAGE";
const CHILD_PORT: &str = "MAILSTAGE_TEST_CHILD_PORT";

fn frank() -> [TestMailbox<'static>; 1] {
    [TestMailbox::own("frank@contoso.edu", "frank", "frank-pw")]
}

/// An incremental pass over frank that must end without an error; returns its counts.
fn next_pass(dir: &Path, d: &Dovecot) -> Result<MailboxCounts> {
    let out = run(dir, d, &frank(), default_limits(), Pass::Incremental)?;
    assert_eq!(out[0].error, None);
    Ok(out[0].counts.clone())
}

/// Run by [`aborted`] in a child process; does nothing when run by itself.
#[test]
#[ignore = "a child process of another test"]
fn child_pass() -> Result<()> {
    let (Ok(dir), Ok(port)) = (std::env::var(CHILD_STAGE), std::env::var(CHILD_PORT)) else {
        return Ok(());
    };
    let via = Via {
        port: port.parse()?,
        retry: RetryPolicy::default(),
    };
    let dir = Path::new(&dir);
    run_at(
        dir,
        via.port,
        &frank(),
        default_limits(),
        Pass::Incremental,
        via,
    )?;
    Ok(())
}

/// Runs an incremental pass in a child process that aborts at `point`; fails unless it did.
/// `durability` is the child's `MAILSTAGE_DURABILITY` (`auto`: the stage chooses).
fn aborted(dir: &Path, d: &Dovecot, point: &str, durability: &str) -> Result<()> {
    let out = Command::new(std::env::current_exe()?)
        .args(["child_pass", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_STAGE, dir)
        .env(CHILD_PORT, d.port().to_string())
        .env(crash_point::ENV, point)
        .env(DURABILITY_ENV, durability)
        .output()
        .context("running the child pass")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.signal() == Some(libc::SIGABRT)
            && stderr.contains(&format!("crash point {point}")),
        "the child pass did not abort at {point}: {:?}\n{stderr}",
        out.status
    );
    Ok(())
}

/// Keep's rows: (UIDVALIDITY, UID, state).
type KeepRows = Vec<(u32, u32, String)>;

/// Keep's UIDVALIDITY and highest UID, and its rows.
fn keep_state(dir: &Path) -> Result<(u32, u32, KeepRows)> {
    let db = rusqlite::Connection::open(dir.join("index.sqlite"))?;
    let (uidvalidity, highest) = db.query_row(
        "SELECT uidvalidity, highest_uid FROM folders WHERE name = 'Keep'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut stmt = db.prepare(
        "SELECT m.uidvalidity, m.uid, m.state FROM messages m JOIN folders f
         ON f.id = m.folder_id WHERE f.name = 'Keep' ORDER BY m.uidvalidity, m.uid",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((uidvalidity, highest, rows))
}

/// A Dovecot where frank has a folder `Keep` of three messages.
fn frank_with_keep() -> Result<Dovecot> {
    let d = Dovecot::builder().user("frank", "frank-pw").start()?;
    d.create_folder("frank", "Keep")?;
    for i in 0..3 {
        d.write_message_at("frank", "Keep", &[], T0 + i, &simple(i))?;
    }
    Ok(d)
}

#[test]
fn a_pass_killed_around_a_uidvalidity_change_is_completed_by_the_next() -> Result<()> {
    let d = frank_with_keep()?;
    let dir = tempfile::tempdir()?;
    let first = run(dir.path(), &d, &frank(), default_limits(), Pass::Full)?;
    assert_eq!(first[0].error, None);
    let (old_validity, old_highest, _) = keep_state(dir.path())?;
    assert_eq!(old_highest, 3);

    // Recreated: a new UIDVALIDITY, and new messages at UIDs 1 and 2, below the old highest.
    let mut p = d.login("frank")?;
    p.command("DELETE Keep")?.ok()?;
    p.command("CREATE Keep")?.ok()?;
    p.logout()?;
    d.append("frank", "Keep", &[], Some((T0 + 50) as i64), &simple(50))?;
    d.append("frank", "Keep", &[], Some((T0 + 51) as i64), &simple(51))?;

    // Killed inside the transaction: nothing of the change is committed.
    aborted(dir.path(), &d, "uidvalidity-uncommitted", "auto")?;
    let (validity, highest, rows) = keep_state(dir.path())?;
    assert_eq!((validity, highest), (old_validity, 3), "{rows:?}");
    assert!(rows.iter().all(|r| r.2 == "staged"), "{rows:?}");

    // Killed after the commit, before the re-read: all of the change is.
    aborted(dir.path(), &d, "uidvalidity-restarted", "auto")?;
    let (new_validity, highest, rows) = keep_state(dir.path())?;
    assert_ne!(new_validity, old_validity);
    assert_eq!(highest, 0);
    assert!(rows.iter().all(|r| r.2 == "retired"), "{rows:?}");

    let next = next_pass(dir.path(), &d)?;
    assert_eq!(next.staged, 2, "{:?}", next);
    // (Not `check_completed`: Keep's retired rows share their UIDs with the new ones.)
    let report = verify(&Stage::open(dir.path(), Access::Read)?)?;
    assert!(report.is_clean(), "{}", report.render_text());
    // Nothing half-written is left: no file in tmp/, and no partial body in tmp/partial/.
    for entry in std::fs::read_dir(dir.path().join("tmp"))? {
        let entry = entry?;
        assert!(
            entry.file_name() == "partial" && std::fs::read_dir(entry.path())?.count() == 0,
            "left in tmp/: {:?}",
            entry.path()
        );
    }
    let rows = message_rows(dir.path())?;
    let keep: BTreeSet<_> = rows
        .iter()
        .filter(|r| r.1 == "Keep" && r.7 == "staged")
        .map(|r| (r.2, r.3, r.4.clone().unwrap_or_default()))
        .collect();
    let want: BTreeSet<_> = served(&d, "frank", "Keep")?
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        keep.iter().map(|r| r.2.clone()).collect::<BTreeSet<_>>(),
        want
    );
    assert!(keep.iter().all(|r| r.0 == new_validity), "{keep:?}");
    assert_eq!(keep.iter().map(|r| r.1).collect::<Vec<_>>(), [1, 2]);
    Ok(())
}

/// Staged rows of Keep.
fn staged_in_keep(dir: &Path) -> Result<usize> {
    Ok(keep_state(dir)?
        .2
        .iter()
        .filter(|r| r.2 == "staged")
        .count())
}

#[test]
fn a_pass_killed_inside_a_groups_sync_is_completed_by_the_next() -> Result<()> {
    let d = frank_with_keep()?;
    for (round, durability) in [(0u64, "auto"), (1, "fsync")] {
        let dir = tempfile::tempdir()?;
        let first = run(dir.path(), &d, &frank(), default_limits(), Pass::Full)?;
        assert_eq!(first[0].error, None);
        let before = staged_in_keep(dir.path())?;
        for i in 0..5 {
            let n = 100 + 10 * round + i;
            d.append("frank", "Keep", &[], Some((T0 + n) as i64), &simple(n))?;
        }
        // Killed after the group's data is durable, before any rename: nothing committed.
        aborted(dir.path(), &d, "group-data-synced", durability)?;
        assert_eq!(staged_in_keep(dir.path())?, before, "{durability}");
        // Killed after the renames, before the names are durable: the blobs are in place,
        // no row names them yet.
        aborted(dir.path(), &d, "group-renamed", durability)?;
        assert_eq!(staged_in_keep(dir.path())?, before, "{durability}");
        assert_eq!(
            blob_files(dir.path())?.len(),
            before + 5,
            "{durability}: the killed group's blobs are in place"
        );
        let next = next_pass(dir.path(), &d)?;
        assert_eq!(next.staged, 5, "{durability}: {:?}", next);
        assert_eq!(
            next.deduplicated, 5,
            "{durability}: the blobs in place are reused"
        );
        check_completed(dir.path())?;
        let staged: BTreeSet<String> = message_rows(dir.path())?
            .into_iter()
            .filter(|r| r.1 == "Keep" && r.7 == "staged")
            .filter_map(|r| r.4)
            .collect();
        let want: BTreeSet<String> = served(&d, "frank", "Keep")?
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(staged, want, "{durability}");
    }
    Ok(())
}

/// Rows of `listed_messages` (metadata a pass listed and has not yet stored).
fn listed_rows(dir: &Path) -> Result<i64> {
    let db = rusqlite::Connection::open(dir.join("index.sqlite"))?;
    Ok(db.query_row("SELECT count(*) FROM listed_messages", [], |r| r.get(0))?)
}

#[test]
fn a_pass_killed_after_listing_before_any_body_is_completed_by_the_next() -> Result<()> {
    let d = frank_with_keep()?;
    let dir = tempfile::tempdir()?;
    let first = run(dir.path(), &d, &frank(), default_limits(), Pass::Full)?;
    assert_eq!(first[0].error, None);
    assert_eq!(listed_rows(dir.path())?, 0, "a finished pass leaves none");
    for i in 0..4 {
        d.append(
            "frank",
            "Keep",
            &[],
            Some((T0 + 10 + i) as i64),
            &simple(10 + i),
        )?;
    }
    // Killed with the new messages' metadata in the index and the caps decided, before any
    // body: those rows are no staged messages (verify and the rows say so).
    aborted(dir.path(), &d, "metadata-listed", "auto")?;
    assert_eq!(listed_rows(dir.path())?, 4);
    assert_eq!(staged_in_keep(dir.path())?, 3);
    let report = verify(&Stage::open(dir.path(), Access::Read)?)?;
    assert!(report.is_clean(), "{}", report.render_text());
    // Killed again at the same point: the rows are listed afresh, not added twice.
    aborted(dir.path(), &d, "metadata-listed", "auto")?;
    assert_eq!(listed_rows(dir.path())?, 4);

    let next = run(
        dir.path(),
        &d,
        &frank(),
        default_limits(),
        Pass::Incremental,
    )?;
    assert_eq!(next[0].error, None);
    assert_eq!(next[0].counts.staged, 4, "{:?}", next[0].counts);
    assert_eq!(listed_rows(dir.path())?, 0);
    check_completed(dir.path())?;
    Ok(())
}
