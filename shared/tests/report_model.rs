//! The report's model over a real index: a message that failed on the source (with the
//! server's words), a folder whose source count does not reconcile, and one without a count.

mod common;

use common::{folder, message, stage_messages, stage_with_mailbox};
use mailstage::report::formats::{ReportFormat, render};
use mailstage::report::grade::Grade;
use mailstage::report::reconcile::{BatchReport, ReportRequest};
use mailstage::stage::index::{MessageState, NewMessage};

fn failed_row(folder_id: i64, uid: u32) -> NewMessage {
    NewMessage {
        folder_id,
        uidvalidity: 7,
        uid,
        state: MessageState::Failed,
        reason: Some("NO [UNAVAILABLE] message body could not be read".into()),
        blob: None,
        size: 1234,
        internaldate: None,
        internaldate_unix: None,
        flags: String::new(),
        message_id: Some("<gone@example.com>".into()),
    }
}

fn request() -> ReportRequest {
    ReportRequest {
        batch: "b1".into(),
        ..ReportRequest::default()
    }
}

#[test]
fn a_failed_fetch_and_an_unexplained_difference_are_findings_and_grade_poor() {
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = stage_with_mailbox(dir.path());
    let inbox = folder(&stage, mailbox, "INBOX");
    let bodies: Vec<Vec<u8>> = (0..199).map(message).collect();
    stage_messages(&mut stage, inbox, &bodies);
    stage
        .index_mut()
        .commit_messages(&[failed_row(inbox, 200)])
        .unwrap();
    stage.index().set_folder_source_count(inbox, 200).unwrap();

    // 199 staged + 1 failed = 200 reported: reconciled; 1 failure in 200 is within 1 %.
    let r = BatchReport::build(&stage, &request()).unwrap();
    let m = &r.mailboxes[0];
    assert_eq!((r.counts.source, r.counts.unexplained), (200, 0));
    assert_eq!(r.counts.failed.messages, 1);
    assert_eq!(m.grade, Grade::Investigate, "{:?}", m.findings);
    let failed = m.items.iter().find(|i| i.state == "failed").unwrap();
    assert_eq!(failed.uid, 200);
    assert!(
        failed
            .server_words
            .as_deref()
            .unwrap()
            .contains("UNAVAILABLE"),
        "{failed:?}"
    );

    // The source now says 205: five unexplained, a finding in words, and Poor.
    stage.index().set_folder_source_count(inbox, 205).unwrap();
    let r = BatchReport::build(&stage, &request()).unwrap();
    assert_eq!(r.counts.unexplained, 5);
    assert_eq!(r.grade, Grade::Poor);
    assert!(
        r.mailboxes[0]
            .findings
            .iter()
            .any(|f| f == "INBOX: the source reports 205, 200 accounted for: 5 unexplained"),
        "{:?}",
        r.mailboxes[0].findings
    );
    let text = render(&r, ReportFormat::Text).unwrap();
    assert!(
        text.contains("Grade: Poor") && text.contains("5 unexplained"),
        "{text}"
    );
    let csv = render(&r, ReportFormat::Csv).unwrap();
    assert_eq!(
        csv.lines().count(),
        2,
        "the header and the failed message:\n{csv}"
    );
    assert!(csv.contains("UNAVAILABLE"), "{csv}");

    // A folder read before the source count was recorded: Investigate at best, said so.
    let dir = tempfile::tempdir().unwrap();
    let (mut stage, mailbox) = stage_with_mailbox(dir.path());
    let inbox = folder(&stage, mailbox, "INBOX");
    stage_messages(&mut stage, inbox, &[message(1)]);
    let r = BatchReport::build(&stage, &request()).unwrap();
    assert_eq!(r.grade, Grade::Investigate);
    assert!(r.mailboxes[0].findings[0].contains("no source count recorded"));
}
