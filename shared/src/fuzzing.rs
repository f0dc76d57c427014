//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, never enabled by the
//! binaries): the crate-private readers the resume key rests on. Not part of the API.

/// The Message-ID the extractor stages for a message whose first bytes are `head`, as the
/// resume key uses it: `None` when there is none or it is not usable (printable ASCII).
pub fn resume_message_id(head: &[u8]) -> Option<String> {
    crate::extract::message_id(head).filter(|id| crate::upload::key::usable_message_id(id))
}

/// The header of a staged message as the resume key reads it from its blob (at most
/// `limit` bytes; `None` when no end of header comes within them).
pub fn read_header(message: &[u8], limit: u64) -> Option<Vec<u8>> {
    crate::upload::fingerprint::read_header(message, limit)
        .ok()
        .flatten()
}
