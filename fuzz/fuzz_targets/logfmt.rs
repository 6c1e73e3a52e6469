//! logfmt lines: every pair's key and value come from the line, and the iterator ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_logparse::logfmt::{looks_like_logfmt, parse_logfmt};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let _ = looks_like_logfmt(line.as_bytes());
        let mut n = 0usize;
        for pair in parse_logfmt(line) {
            n += 1;
            // Each pair consumes at least one byte of the line.
            assert!(n <= line.len() + 1, "more pairs than bytes");
            let _ = format!("{pair:?}");
        }
    }
});
