//! klog lines (Kubernetes components).
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_logparse::Timestamp;
use podmates_logparse::klog::{looks_like_klog, parse_klog};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let reference = Timestamp::from_secs(1_800_000_000 + i64::from(sel) * 86_400 * 11);
    let offset = (i64::from(sel) - 128) * 900;
    let text = String::from_utf8_lossy(rest);
    for line in text.split('\n') {
        let looks = looks_like_klog(line.trim().as_bytes());
        match parse_klog(line, reference, offset) {
            Ok(r) => {
                assert!(looks, "parsed a line that does not look like klog");
                let _ = format!("{r:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
