//! Container runtime (CRI) log lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_logparse::cri::parse_cri;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        match parse_cri(line) {
            Ok(r) => {
                let _ = format!("{r:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
