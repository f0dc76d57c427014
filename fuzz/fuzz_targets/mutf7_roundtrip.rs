//! Modified UTF-7: any name encodes to a wire form that decodes back to it, and any wire form
//! that decodes is canonical (encoding the result gives the same bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailstage_imap::mutf7;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let wire = mutf7::encode(&text);
    assert!(wire.is_ascii(), "{text:?} encodes to {wire:?}");
    assert_eq!(mutf7::decode(&wire).as_deref(), Ok(&*text), "wire {wire:?}");
    if let Ok(name) = mutf7::decode(&text) {
        assert_eq!(mutf7::encode(&name), text, "decoded {name:?}");
    }
});
