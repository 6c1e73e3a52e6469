//! `--pattern` (dissect) and `--timestamp-format` (strftime layouts), compiled from random text as
//! from flags, then lines parsed with them. Input: pattern line, layout line, then lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_logparse::dissect::Dissect;
use podmates_logparse::{Timestamp, strftime};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let pattern = parts.next().unwrap_or("");
    let layout = parts.next().unwrap_or("");
    let lines = parts.next().unwrap_or("");
    let dissect = Dissect::new(pattern);
    let layout_ok = strftime::validate(layout).is_ok();
    for line in lines.split('\n') {
        if let Ok(d) = &dissect {
            match d.parse(line) {
                Ok(fields) => {
                    for (name, value, _conv) in fields {
                        assert!(d.names().any(|n| n == name), "a field the pattern has not");
                        assert!(line.contains(value), "a value not from the line");
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        if layout_ok {
            let _ = strftime::parse(line, layout, Timestamp::from_secs(1_800_000_000), 3600);
        }
    }
});
