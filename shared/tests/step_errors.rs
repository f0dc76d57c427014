//! Both pipelines show an IMAP step error as the IMAP crate does and judge it by its cause.

use std::error::Error;
use std::time::Duration;

use mailstage::extract::ExtractError;
use mailstage::imap::{During, ImapError, ImapStepError, Status, StatusText};
use mailstage::upload::UploadError;

fn throttled() -> ImapStepError {
    Err::<(), _>(ImapError::Rejected {
        command: "LOGIN".into(),
        status: Box::new(StatusText {
            status: Status::Bad,
            code: None,
            text: "Request is throttled. Suggested Backoff Time: 10 milliseconds".into(),
        }),
    })
    .during(|| "EXAMINE \"INBOX\"".into())
    .unwrap_err()
}

#[test]
fn a_step_error_reads_the_same_through_both_pipelines() {
    let shown = "EXAMINE \"INBOX\": LOGIN: server said BAD Request is throttled. \
                 Suggested Backoff Time: 10 milliseconds";
    let extract = ExtractError::from(throttled());
    let upload = UploadError::from(throttled());
    for e in [&extract as &dyn Error, &upload] {
        assert_eq!(e.to_string(), shown);
        let cause = e.source().map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some(&shown["EXAMINE \"INBOX\": ".len()..])
        );
    }
    assert!(extract.is_transient() && upload.is_transient());
    assert_eq!(upload.throttle_backoff(), Some(Duration::from_millis(10)));
}
