//! redis-ambassador's request scanner (`resp::parse_request`) over random bytes, as a pipeline:
//! requests are taken off the front one after the other, as the client loop does. Invariants: a
//! request spans at least one byte and at most what was given, its arguments lie inside it, in
//! order, and no request is longer than the size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_ambassador::resp::parse_request;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut buf)) = data.split_first() else {
        return;
    };
    let max = 16usize << (sel & 15);
    let mut args = Vec::new();
    while let Ok(Some(n)) = parse_request(buf, &mut args, max) {
        assert!(
            n > 0 && n <= buf.len(),
            "request of {n} bytes in {}",
            buf.len()
        );
        let mut prev = 0;
        for &(start, end) in &args {
            assert!(
                start <= end && end <= n,
                "argument {start}..{end} outside the request"
            );
            assert!(start >= prev, "arguments out of order");
            prev = end;
        }
        // The limit counts from the request's first byte to its last argument's end; an empty
        // multibulk is its header line alone (`*`, a sign, at most 18 digits, CRLF).
        if buf[0] == b'*' {
            let limit = if args.is_empty() { 22 } else { max + 2 };
            assert!(n <= limit, "request of {n} bytes past the limit {max}");
        }
        // The same bytes, or more after them, give the same request.
        let mut again = Vec::new();
        assert_eq!(parse_request(&buf[..n], &mut again, max), Ok(Some(n)));
        assert_eq!(again, args);
        buf = &buf[n..];
    }
});
