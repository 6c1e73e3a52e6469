//! log-normalize's JSON input (`--format json`, and JSON lines in auto mode): random lines,
//! mostly JSON-shaped, must come out as one JSON object line in both schemas.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use log_normalize::parse::Parsers;
use log_normalize::{Format, Normalizer, Schema};
use podmates_logparse::Timestamp;

thread_local! {
    static NORMALIZERS: RefCell<Vec<Normalizer>> = RefCell::new(
        [Schema::Ecs, Schema::Otel]
            .into_iter()
            .flat_map(|s| [Format::Json, Format::Auto].map(|f| (s, f)))
            .map(|(s, f)| {
                Normalizer::new(Parsers::new(f, None, Timestamp::from_secs(1_800_000_000), 0), s, Vec::new())
            })
            .collect()
    );
}

fuzz_target!(|data: &[u8]| {
    if data.contains(&b'\n') {
        return;
    }
    NORMALIZERS.with_borrow_mut(|all| {
        for norm in all.iter_mut() {
            let mut out = Vec::new();
            norm.line(data, Timestamp::from_secs(1_800_000_001), &mut out);
            assert_eq!(out.last(), Some(&b'\n'), "output does not end a line");
            let body = &out[..out.len() - 1];
            assert!(!body.contains(&b'\n'), "output is more than one line");
            let v: serde_json::Value = serde_json::from_slice(body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
            assert!(v.is_object());
        }
    });
});
