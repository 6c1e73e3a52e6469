//! nginx-exporter's stub_status body parser. Invariant: a parsed body's numbers are in the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nginx_exporter::stub_status::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    match parse(body) {
        Ok(s) => {
            for n in [
                s.active, s.accepted, s.handled, s.requests, s.reading, s.writing,
            ] {
                assert!(body.contains(&n.to_string()), "{n} is not in the body");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
