//! `datetime::parse` over any text; whatever parses formats back to the same instant and zone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstage_fuzz::known_date_crash;
use mailstage_imap::datetime;

fuzz_target!(|data: &[u8]| {
    if known_date_crash(data) {
        return;
    }
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((unix, offset)) = datetime::parse(raw) {
        let formatted = datetime::format(unix, offset);
        assert_eq!(
            datetime::parse(&formatted),
            Some((unix, offset)),
            "{raw:?} formats as {formatted:?}"
        );
    }
});
