//! redis-ambassador's reply scanner (`resp::scan_reply`) over random bytes, as a stream of
//! replies, and the helpers that read a complete reply. Invariants: a reply spans at least one
//! byte and at most what was given; it is complete on its own and incomplete when cut short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_ambassador::resp::{array_elements, bulk_value, parse_int_reply, scan_reply};

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    while let Ok(Some(n)) = scan_reply(buf) {
        assert!(
            n > 0 && n <= buf.len(),
            "reply of {n} bytes in {}",
            buf.len()
        );
        let reply = &buf[..n];
        assert_eq!(scan_reply(reply), Ok(Some(n)), "not complete on its own");
        for cut in [n - 1, n / 2] {
            if cut < n {
                assert_eq!(
                    scan_reply(&reply[..cut]),
                    Ok(None),
                    "complete when cut at {cut}"
                );
            }
        }
        let _ = parse_int_reply(reply);
        if let Some(v) = bulk_value(reply) {
            assert!(v.len() <= n);
        }
        if let Some(elems) = array_elements(reply) {
            for (start, end) in elems {
                assert!(
                    start <= end && end <= n,
                    "element {start}..{end} outside the reply"
                );
            }
        }
        buf = &buf[n..];
    }
});
