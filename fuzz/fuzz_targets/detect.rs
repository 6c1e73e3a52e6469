//! Format detection from a line's first bytes, and the timestamp parsers the detected families
//! use, on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_logparse::{Timestamp, detect, time};

fuzz_target!(|data: &[u8]| {
    let _ = detect(data);
    let reference = Timestamp::from_secs(1_800_000_000);
    let _ = time::parse_rfc3164(data, reference, 3600);
    // A prefix parser's length is within what it was given.
    if let Ok((_, n)) = time::parse_rfc3164_prefix(data, reference, -3600) {
        assert!(n <= data.len());
    }
    if let Some((_, n)) = time::rfc3164_shape(data) {
        assert!(n <= data.len());
    }
    if let Ok((_, n)) = time::parse_ctime_prefix(data, 0) {
        assert!(n <= data.len());
    }
    if let Ok((_, n)) = time::parse_rfc3339_prefix(data, 0) {
        assert!(n <= data.len());
    }
    let _ = time::parse_slash_datetime(data, 0);
    let _ = time::month_from_abbr(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = time::parse_time_local(s);
        let _ = time::parse_rfc3339(s, 0);
        if let Ok(t) = time::parse_epoch_seconds(s) {
            let mut out = Vec::new();
            t.write_rfc3339(&mut out);
            assert!(std::str::from_utf8(&out).is_ok());
        }
    }
});
