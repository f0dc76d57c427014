//! The batch CSV reader: any bytes give rows or problems named by row, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mailstage::catalog::parse_batch_csv;

fuzz_target!(|data: &[u8]| {
    match parse_batch_csv(data, Path::new("fuzz.csv")) {
        Ok(rows) => assert!(rows.len() <= data.len()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
