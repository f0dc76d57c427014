//! The resume key of messages without a Message-ID, against real Dovecots: after a crash,
//! a message whose copy the target holds rewritten as Exchange stores it (other bytes and
//! size, headers re-encoded, `X-MS-Exchange-Organization-…` lines added, the same
//! INTERNALDATE) is found by INTERNALDATE and decoded Subject/Date/From and not sent again;
//! one without a copy is sent again; of two identical messages with one copy on the target,
//! one is found and one re-sent.

use std::collections::BTreeSet;

use anyhow::Result;
use mailstage::extract::Pass;
use mailstage::imap::datetime;
use mailstage::stage::{Access, BlobHash, Stage};
use mailstage::upload::MappingRules;
use mailstage_tests::Dovecot;
use mailstage_tests::extraction::{TestMailbox, default_limits};
use mailstage_tests::upload::{
    ADMIN, Seen, job, mark_in_flight, run, target_contents, target_dovecot,
};

const ALICE: &str = "alice@contoso.edu";
/// 2023-11-14 22:13:20 UTC: late in the day, so a copy dated in +0530 is on the next day.
const T: i64 = 1_700_000_000;

/// One message of the group a crash left in flight.
struct InFlight {
    /// As staged (no Message-ID).
    staged: &'static str,
    /// Its INTERNALDATE.
    date: i64,
    /// The copy the target holds, as Exchange rewrote it, with the zone of the INTERNALDATE
    /// it was stored with (minutes east of UTC).
    copy: Option<(&'static str, i16)>,
}

const REPORT: &str = "From: Alice Example <alice@example.test>\r\nTo: bob@example.test\r\n\
    Subject: Quarterly report\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMIME-Version: 1.0\r\n\
    Content-Type: text/plain; charset=us-ascii\r\n\r\nThe numbers.\r\n";
const REPORT_COPY: &str = "X-MS-Exchange-Organization-AuthAs: Internal\r\n\
    X-MS-Exchange-Organization-SCL: -1\r\nFrom: \"Example, Alice\" <alice@example.test>\r\n\
    To: \"bob@example.test\" <bob@example.test>\r\nSubject: =?utf-8?B?UXVhcnRlcmx5IHJlcG9ydA==?=\r\n\
    Date: Tue, 14 Nov 2023 23:13:20 +0100\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\
    Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n\r\nThe numbers.\r\n";
/// The same INTERNALDATE, From and Date as [`REPORT`], another subject.
const DRAFT: &str = "From: Alice Example <alice@example.test>\r\nTo: bob@example.test\r\n\
    Subject: Quarterly report (draft)\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nNot yet.\r\n";
const GRUSS: &str = "From: =?iso-8859-1?Q?J=F6rg_M=FCller?= <Joerg@Example.test>\r\n\
    To: alice@example.test\r\nSubject: =?iso-8859-1?Q?Gr=FC=DFe?= aus\r\n =?iso-8859-1?Q?K=F6ln?=\r\n\
    Date: Wed, 15 Nov 2023 09:00:00 +0100\r\n\r\nHallo.\r\n";
const GRUSS_COPY: &str = "X-MS-Exchange-Organization-AuthAs: Anonymous\r\n\
    From: =?utf-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.test>\r\nTo: alice@example.test\r\n\
    Subject: =?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nDate: Wed, 15 Nov 2023 08:00:00 +0000\r\n\
    Content-Type: text/plain; charset=\"us-ascii\"\r\nMIME-Version: 1.0\r\n\r\nHallo.\r\n";
/// No Subject, Date or From; Exchange added a Date.
const BARE: &str = "To: alice@example.test\r\n\r\nNo subject, date or sender.\r\n";
const BARE_COPY: &str = "X-MS-Exchange-Organization-SCL: -1\r\nTo: alice@example.test\r\n\
    Date: Tue, 14 Nov 2023 22:16:40 +0000\r\nMIME-Version: 1.0\r\n\
    Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\nNo subject, date or sender.\r\n";
const LOST: &str = "From: alice@example.test\r\nSubject: Never arrived\r\n\
    Date: Tue, 14 Nov 2023 22:18:20 +0000\r\n\r\nLost in the crash.\r\n";
const TWIN: &str = "From: Alice <alice@example.test>\r\nSubject: Twice the same\r\n\
    Date: Tue, 14 Nov 2023 22:20:00 +0000\r\n\r\nSent twice on purpose.\r\n";
const TWIN_COPY: &str = "X-MS-Exchange-Organization-AuthAs: Internal\r\n\
    From: Alice <alice@example.test>\r\nSubject: =?utf-8?Q?Twice_the_same?=\r\n\
    Date: Tue, 14 Nov 2023 22:20:00 +0000\r\nMIME-Version: 1.0\r\n\r\nSent twice on purpose.\r\n";

/// Only a Subject, stored in the same second as [`HI`]: it must not take HI's copy.
const VAGUE: &str = "Subject: Hi\r\n\r\nNo date and no sender.\r\n";
const HI: &str = "From: bob@example.test\r\nSubject: Hi\r\n\
    Date: Tue, 14 Nov 2023 22:21:40 +0000\r\n\r\nHello.\r\n";
const HI_COPY: &str = "X-MS-Exchange-Organization-AuthAs: Internal\r\n\
    From: <bob@example.test>\r\nSubject: Hi\r\nDate: Tue, 14 Nov 2023 22:21:40 +0000\r\n\
    MIME-Version: 1.0\r\n\r\nHello.\r\n";

/// The group, in UID order: five with a rewritten copy on the target, four without (the
/// first sharing its INTERNALDATE with the copy of the second, one the identical twin of a
/// found one, one with fewer headers than the copy stored in its second, looked for first).
fn crashed_group() -> [InFlight; 9] {
    let m = |staged, date, copy| InFlight { staged, date, copy };
    [
        m(DRAFT, T, None),
        m(REPORT, T, Some((REPORT_COPY, 0))),
        m(GRUSS, T + 100, Some((GRUSS_COPY, 330))),
        m(BARE, T + 200, Some((BARE_COPY, -480))),
        m(LOST, T + 300, None),
        m(TWIN, T + 400, Some((TWIN_COPY, 0))),
        m(TWIN, T + 400, None),
        m(VAGUE, T + 500, None),
        m(HI, T + 500, Some((HI_COPY, 0))),
    ]
}

/// A source Dovecot with the group in alice's INBOX, staged into `dir` as batch `b1`.
fn staged_group(dir: &std::path::Path, group: &[InFlight]) -> Result<Dovecot> {
    let source = Dovecot::builder().user("alice", "alice-pw").start()?;
    for m in group {
        source.append("alice", "INBOX", &[], Some(m.date), m.staged.as_bytes())?;
    }
    let alice = TestMailbox::own(ALICE, "alice", "alice-pw");
    let outcomes =
        mailstage_tests::extraction::run(dir, &source, &[alice], default_limits(), Pass::Full)?;
    assert!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");
    Ok(source)
}

#[test]
fn messages_without_message_id_are_found_though_the_target_rewrote_them() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let group = crashed_group();
    let _source = staged_group(dir.path(), &group)?;
    let target = target_dovecot(&[ALICE])?;
    // The crash: the whole group in flight, the rewritten copies already on the target.
    let in_flight = mark_in_flight(dir.path(), ALICE, "INBOX")?;
    assert_eq!(in_flight.len(), group.len());
    assert!(
        in_flight.iter().all(|i| i.message_id.is_none()),
        "{in_flight:?}"
    );
    let mut p = target.connect()?;
    p.login(&format!("{ALICE}*{}", ADMIN.0), ADMIN.1)?.ok()?;
    for m in &group {
        if let Some((copy, zone)) = m.copy {
            assert_ne!(copy.len(), m.staged.len(), "the size key would hold");
            let date = datetime::format(m.date, zone);
            p.append("INBOX", &[], Some(&date), copy.as_bytes())?;
        }
    }

    let outcomes = run(
        dir.path(),
        job(dir.path(), &target, None, MappingRules::default())?,
    )?;
    assert!(outcomes[0].error.is_none(), "{:?}", outcomes[0].error);
    let counts = &outcomes[0].counts;
    assert_eq!(
        (counts.found_present, counts.resent, counts.uploaded),
        (5, 4, 4),
        "{counts:?}"
    );
    // Each message exactly once: the copies that were there, the staged bytes of the rest
    // (both twins: one as the copy, one re-sent).
    let mut expected: Vec<Seen> = group
        .iter()
        .map(|m| {
            let bytes = m.copy.map_or(m.staged, |(copy, _)| copy);
            (
                BlobHash::of(bytes.as_bytes()),
                BTreeSet::new(),
                Some(m.date),
            )
        })
        .collect();
    expected.sort();
    let held = target_contents(&target, ALICE)?;
    assert_eq!(
        held.get(&(ALICE.to_owned(), "INBOX".to_owned())),
        Some(&expected)
    );
    let stage = Stage::open(dir.path(), Access::Read)?;
    let status = &stage.index().upload_status("b1", "dst")?[0];
    assert_eq!((status.pending, status.in_flight), (0, 0), "{status:?}");
    assert_eq!(status.done, group.len() as u64, "{status:?}");
    drop(stage);

    // A second run finds everything confirmed and sends nothing.
    let again = run(
        dir.path(),
        job(dir.path(), &target, None, MappingRules::default())?,
    )?;
    assert_eq!(
        again[0].counts.uploaded + again[0].counts.resent,
        0,
        "{again:?}"
    );
    assert_eq!(target_contents(&target, ALICE)?, held);
    Ok(())
}
