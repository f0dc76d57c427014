//! Uploads from a stage into a second, real Dovecot: every message exactly once in its
//! folder, byte-identical, with its flags and INTERNALDATE; a second run sends nothing;
//! messages a crash left in flight are looked for and sent only when absent; a mailbox the
//! target refuses fails alone, named.

use std::path::Path;

use anyhow::Result;
use mailstage::extract::Pass;
use mailstage::stage::{Access, Stage};
use mailstage::upload::{MappingRules, UploadOutcome};
use mailstage_tests::Dovecot;
use mailstage_tests::extraction::{TestMailbox, default_limits, stage_user};
use mailstage_tests::fault_proxy::{FaultProxy, Faults};
use mailstage_tests::fixtures::{self, FLAG_SETS, ODD_FOLDERS, simple};
use mailstage_tests::upload::{
    ADMIN, job, mark_in_flight, run, staged_contents, target_contents, target_dovecot,
};

const ALICE: &str = "alice@contoso.edu";
const BOB: &str = "bob@contoso.edu";

/// A source Dovecot with odd messages and folders for alice and plain mail for bob, staged
/// into `dir` as batch `b1`.
fn staged_source(dir: &Path) -> Result<Dovecot> {
    let d = Dovecot::builder()
        .user("alice", "alice-pw")
        .user("bob", "bob-pw")
        .start()?;
    let odd = [
        simple(1),
        fixtures::no_message_id(),
        fixtures::eight_bit_headers(),
        fixtures::bare_lf(),
        fixtures::long_line(200_000),
        fixtures::nested_multipart(),
        simple(1), // the same message twice in one folder: two copies on the target
    ];
    for (i, m) in odd.iter().enumerate() {
        let flags = FLAG_SETS[i % FLAG_SETS.len()];
        let date = 1_600_000_000 + i as i64 * 1000;
        d.append("alice", "INBOX", flags, Some(date), m)?;
    }
    d.write_message_at("alice", "Sent", &["\\Seen"], 1_600_500_000, &simple(50))?;
    for (i, f) in ODD_FOLDERS.iter().enumerate() {
        d.create_folder("alice", f.name)?;
        d.write_message_at(
            "alice",
            f.name,
            &[],
            1_650_000_000 + i as u64,
            &simple(100 + i as u64),
        )?;
    }
    for i in 0..5 {
        d.write_message_at(
            "bob",
            "INBOX",
            &["\\Seen"],
            1_610_000_000 + i,
            &simple(200 + i),
        )?;
    }
    let mailboxes = [
        TestMailbox::own(ALICE, "alice", "alice-pw"),
        TestMailbox::own(BOB, "bob", "bob-pw"),
    ];
    let outcomes =
        mailstage_tests::extraction::run(dir, &d, &mailboxes, default_limits(), Pass::Full)?;
    assert!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");
    Ok(d)
}

fn all_ok(outcomes: &[UploadOutcome]) {
    for o in outcomes {
        assert!(o.error.is_none(), "{}: {:?}", o.email, o.error);
        assert_eq!(o.counts.refused, 0, "{}: {:?}", o.email, o.counts);
    }
}

fn assert_target_matches_stage(dir: &Path, target: &Dovecot) -> Result<()> {
    let staged = staged_contents(dir)?;
    let mut uploaded = target_contents(target, ALICE)?;
    uploaded.extend(target_contents(target, BOB)?);
    assert_eq!(
        uploaded.keys().collect::<Vec<_>>(),
        staged.keys().collect::<Vec<_>>(),
        "folders on the target"
    );
    for (key, messages) in &staged {
        assert_eq!(&uploaded[key], messages, "messages of {key:?}");
    }
    Ok(())
}

#[test]
fn a_staged_batch_lands_exactly_once_byte_identical_and_a_second_run_sends_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _source = staged_source(dir.path())?;
    let target = target_dovecot(&[ALICE, BOB])?;

    let first = run(
        dir.path(),
        job(dir.path(), &target, None, MappingRules::default())?,
    )?;
    all_ok(&first);
    let sent: u64 = first.iter().map(|o| o.counts.uploaded).sum();
    let staged: usize = staged_contents(dir.path())?.values().map(Vec::len).sum();
    assert_eq!(sent as usize, staged);
    // Projects and Projects/2024 exist only as parents on the source; the target needs them.
    let alice = &first[0];
    assert!(
        alice.counts.folders_created >= ODD_FOLDERS.len() as u64,
        "{:?}",
        alice.counts
    );
    assert_target_matches_stage(dir.path(), &target)?;

    let second = run(
        dir.path(),
        job(dir.path(), &target, None, MappingRules::default())?,
    )?;
    all_ok(&second);
    for o in &second {
        assert_eq!(
            o.counts.uploaded + o.counts.resent + o.counts.folders_created,
            0,
            "{o:?}"
        );
    }
    assert_target_matches_stage(dir.path(), &target)
}

#[test]
fn messages_left_in_flight_are_found_or_resent_never_duplicated() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _source = staged_source(dir.path())?;
    let target = target_dovecot(&[ALICE, BOB])?;
    // A crash during alice's first INBOX group: all of it marked in flight, the first half
    // (including the message without a Message-ID) already stored by the target.
    let in_flight = {
        let items = mark_in_flight(dir.path(), ALICE, "INBOX")?;
        let stage = Stage::open(dir.path(), Access::Read)?;
        let mut p = target.connect()?;
        p.login(&format!("{ALICE}*{}", ADMIN.0), ADMIN.1)?.ok()?;
        for item in &items[..4] {
            let bytes = std::fs::read(stage.blobs().path_of(&item.blob))?;
            let flags: Vec<&str> = item
                .flags
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .collect();
            p.append("INBOX", &flags, item.internaldate.as_deref(), &bytes)?;
        }
        items
    };
    assert!(in_flight.len() >= 6, "{in_flight:?}");

    let outcomes = run(
        dir.path(),
        job(dir.path(), &target, None, MappingRules::default())?,
    )?;
    all_ok(&outcomes);
    assert_eq!(
        outcomes[0].counts.found_present, 4,
        "{:?}",
        outcomes[0].counts
    );
    assert_eq!(
        outcomes[0].counts.resent,
        in_flight.len() as u64 - 4,
        "{:?}",
        outcomes[0].counts
    );
    assert_target_matches_stage(dir.path(), &target)?;

    // Nothing is left in flight or pending, and the index agrees with the target.
    let stage = Stage::open(dir.path(), Access::Read)?;
    for status in stage.index().upload_status("b1", "dst")? {
        assert_eq!(
            (status.pending, status.in_flight, status.failed),
            (0, 0, 0),
            "{status:?}"
        );
        assert_eq!(status.done, status.staged, "{status:?}");
    }
    Ok(())
}

#[test]
fn a_mailbox_the_target_refuses_fails_alone_and_is_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _source = staged_source(dir.path())?;
    // bob has no mailbox on the target.
    let target = target_dovecot(&[ALICE])?;
    let outcomes = run(
        dir.path(),
        job(dir.path(), &target, None, MappingRules::default())?,
    )?;
    assert!(outcomes[0].error.is_none(), "{:?}", outcomes[0].error);
    let bob = outcomes[1].error.as_deref().expect("bob fails");
    assert!(
        bob.starts_with(BOB) && bob.contains("logging in to the target"),
        "{bob}"
    );
    let stage = Stage::open(dir.path(), Access::Read)?;
    let status = stage.index().upload_status("b1", "dst")?;
    assert_eq!(status[0].done, status[0].staged);
    assert_eq!(status[1].state.as_deref(), Some("Failed"));
    assert!(
        status[1]
            .last_error
            .as_deref()
            .unwrap()
            .contains("logging in"),
        "{status:?}"
    );
    assert_eq!(status[1].done, 0);
    Ok(())
}

#[test]
fn a_folder_read_again_after_a_uidvalidity_change_is_not_uploaded_twice() -> Result<()> {
    const T0: u64 = 1_650_000_000;
    let dir = tempfile::tempdir()?;
    let source = Dovecot::builder().user("carol", "carol-pw").start()?;
    let carol = "carol@contoso.edu";
    source.create_folder("carol", "Keep")?;
    // Two copies of the same bytes: duplicates stay duplicates.
    for n in [1, 2, 2] {
        source.write_message_at("carol", "Keep", &[], T0 + n, &simple(300 + n))?;
    }
    let extract = |pass| stage_user(dir.path(), &source, carol, "carol", pass);
    extract(Pass::Full)?;
    let target = target_dovecot(&[carol])?;
    let upload = || {
        run(
            dir.path(),
            job(dir.path(), &target, None, MappingRules::default())?,
        )
    };
    let first = upload()?;
    all_ok(&first);
    assert_eq!(first[0].counts.uploaded, 3);

    // The folder is recreated on the source (a new UIDVALIDITY) with the same three
    // messages and one more; the next pass reads it again from UID 1.
    let mut p = source.login("carol")?;
    p.command("DELETE Keep")?.ok()?;
    p.command("CREATE Keep")?.ok()?;
    p.logout()?;
    for n in [1, 2, 2, 3] {
        source.append(
            "carol",
            "Keep",
            &[],
            Some((T0 + n) as i64),
            &simple(300 + n),
        )?;
    }
    extract(Pass::Incremental)?;

    let second = upload()?;
    all_ok(&second);
    let c = &second[0].counts;
    assert_eq!((c.adopted, c.uploaded), (3, 1), "{c:?}");
    let staged = staged_contents(dir.path())?;
    assert_eq!(staged.values().map(Vec::len).sum::<usize>(), 4);
    assert_eq!(target_contents(&target, carol)?, staged);
    Ok(())
}

#[test]
fn one_mailbox_goes_over_several_connections_exactly_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let source = Dovecot::builder().user("dave", "dave-pw").start()?;
    let dave = "dave@contoso.edu";
    for i in 0..200 {
        source.write_message_at("dave", "INBOX", &[], 1_660_000_000 + i, &simple(400 + i))?;
    }
    // A subfolder: every connection must name it with the target's delimiter (`.`).
    source.create_folder("dave", "Projects/2024")?;
    for i in 0..100 {
        let m = simple(700 + i);
        source.write_message_at("dave", "Projects/2024", &[], 1_660_001_000 + i, &m)?;
    }
    stage_user(dir.path(), &source, dave, "dave", Pass::Full)?;
    let target = Dovecot::builder()
        .master_user(ADMIN.0, ADMIN.1)
        .user(dave, "dave-target-pw")
        .separator('.')
        .start()?;
    // Counts the connections open at once on their way to the target.
    let proxy = FaultProxy::start(target.port(), Faults::default())?;
    let mut job = job(dir.path(), &target, None, MappingRules::default())?;
    job.connect.port = proxy.port();
    job.connections = 3;
    let outcomes = run(dir.path(), job)?;
    all_ok(&outcomes);
    assert_eq!(outcomes[0].counts.uploaded, 300);
    assert_eq!(proxy.most_open(), 3, "three connections sent at once");
    let staged = staged_contents(dir.path())?;
    let on_target: mailstage_tests::upload::Contents = target_contents(&target, dave)?
        .into_iter()
        .map(|((mailbox, folder), seen)| ((mailbox, folder.replace('.', "/")), seen))
        .collect();
    assert_eq!(on_target, staged);
    Ok(())
}

#[test]
fn a_message_the_link_never_carries_is_set_aside_and_the_rest_goes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let source = Dovecot::builder().user("erin", "erin-pw").start()?;
    let erin = "erin@contoso.edu";
    for i in 0..40 {
        source.write_message_at("erin", "INBOX", &[], 1_670_000_000 + i, &simple(800 + i))?;
    }
    let big = fixtures::message_of_size(200_000, 1);
    source.write_message_at("erin", "INBOX", &[], 1_670_000_100, &big)?;
    stage_user(dir.path(), &source, erin, "erin", Pass::Full)?;
    let target = target_dovecot(&[erin])?;
    // Every connection is cut after 100 kB from the client: the 200 kB message never fits.
    let faults = Faults {
        up_limit: Some(100_000),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(target.port(), faults)?;
    let mut job = job(dir.path(), &target, None, MappingRules::default())?;
    job.connect.port = proxy.port();
    let outcomes = run(dir.path(), job)?;
    let c = &outcomes[0].counts;
    assert_eq!(outcomes[0].error, None, "{c:?}");
    // Those in flight when a link was cut may have arrived (found by their resume key).
    assert_eq!(
        (c.uploaded + c.found_present, c.refused, c.set_aside),
        (40, 0, 1),
        "{c:?}"
    );
    assert!(proxy.cuts() >= 3, "{} cuts", proxy.cuts());
    let stage = Stage::open(dir.path(), Access::Read)?;
    let status = &stage.index().upload_status("b1", "dst")?[0];
    assert_eq!((status.done, status.failed), (40, 1), "{status:?}");
    assert!(
        status
            .last_refusal
            .as_deref()
            .is_some_and(|r| r.contains("broke 3 times")),
        "{status:?}"
    );
    let on_target: usize = target_contents(&target, erin)?.values().map(Vec::len).sum();
    assert_eq!(on_target, 40, "nothing twice, the big one absent");
    Ok(())
}

#[test]
fn a_link_that_never_lets_a_message_through_gives_up_naming_the_attempts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let _source = staged_source(dir.path())?;
    let target = target_dovecot(&[ALICE, BOB])?;
    // Cut after 40 bytes from the client: not even a login gets through.
    let faults = Faults {
        up_limit: Some(40),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(target.port(), faults)?;
    let mut job = job(dir.path(), &target, Some(&[ALICE]), MappingRules::default())?;
    job.connect.port = proxy.port();
    job.retry.attempts_without_progress = 3;
    let outcomes = run(dir.path(), job)?;
    let error = outcomes[0].error.as_deref().expect("alice fails");
    assert!(
        error.starts_with(&format!(
            "{ALICE}: gave up after 3 attempts in a row without progress; the last one failed at"
        )),
        "{error}"
    );
    assert_eq!(outcomes[0].counts.reconnects, 2, "{:?}", outcomes[0].counts);
    Ok(())
}

#[test]
fn in_flight_to_a_folder_the_target_no_longer_has_is_sent_again_where_it_now_goes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let source = Dovecot::builder().user("fay", "fay-pw").start()?;
    let fay = "fay@contoso.edu";
    source.create_folder("fay", "Keep")?;
    for i in 0..3 {
        source.write_message_at("fay", "Keep", &[], 1_680_000_000 + i, &simple(900 + i))?;
    }
    stage_user(dir.path(), &source, fay, "fay", Pass::Full)?;
    let target = target_dovecot(&[fay])?;
    // A crash left them in flight to "Keep"; the next run maps Keep to Other, and "Keep"
    // was never created on the target: nothing can be there, so all three are sent.
    mark_in_flight(dir.path(), fay, "Keep")?;
    let rules = MappingRules {
        renames: vec![MappingRules::parse_rename("Keep=Other").map_err(anyhow::Error::msg)?],
        ..MappingRules::default()
    };
    let outcomes = run(dir.path(), job(dir.path(), &target, None, rules)?)?;
    all_ok(&outcomes);
    let c = &outcomes[0].counts;
    assert_eq!((c.found_present, c.resent, c.uploaded), (0, 3, 3), "{c:?}");
    let held = target_contents(&target, fay)?;
    assert_eq!(
        held.keys().map(|k| k.1.as_str()).collect::<Vec<_>>(),
        ["Other"]
    );
    Ok(())
}
