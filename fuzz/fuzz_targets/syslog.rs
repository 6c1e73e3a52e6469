//! syslog lines (RFC 5424, RFC 3164, rsyslog's file formats) and their STRUCTURED-DATA.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_logparse::Timestamp;
use podmates_logparse::syslog::{SyslogParser, sd_elements, severity_name};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let p = SyslogParser {
        // A fixed reference keeps runs reproducible; the selector moves it and the zone around.
        reference: Timestamp::from_secs(1_800_000_000 + i64::from(sel) * 86_400 * 7),
        offset: (i64::from(sel) - 128) * 900,
    };
    let text = String::from_utf8_lossy(rest);
    for line in text.split('\n') {
        match p.parse(line) {
            Ok(r) => {
                let _ = (r.facility(), r.pid(), format!("{r:?}"));
                if let Some(s) = r.severity() {
                    assert!(s < 8);
                    let _ = severity_name(s);
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        for (_id, params) in sd_elements(line) {
            let _ = params.len();
        }
    }
});
