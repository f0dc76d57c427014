//! What the resume key reads from a message: its header as read from the blob, the
//! Message-ID the extractor stages, and the Subject/Date/From fingerprint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstage::fuzzing;
use mailstage::upload::HeaderFingerprint;

fuzz_target!(|data: &[u8]| {
    let limit = 4096;
    if let Some(header) = fuzzing::read_header(data, limit) {
        assert!(
            data.starts_with(&header),
            "the header is a prefix of the message"
        );
        assert!((header.len() as u64) < limit);
    }
    if let Some(id) = fuzzing::resume_message_id(data) {
        assert!(
            !id.is_empty() && id.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{id:?}"
        );
    }
    let fingerprint = HeaderFingerprint::of_header(data);
    assert!(fingerprint.matches(&fingerprint, 0));
});
