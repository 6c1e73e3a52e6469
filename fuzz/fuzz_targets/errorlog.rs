//! nginx and Apache error-log lines, and Apache's `client ip:port` split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_logparse::errorlog::{parse_apache_error, parse_nginx_error, split_client};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let offset = (i64::from(sel) - 128) * 900;
    let text = String::from_utf8_lossy(rest);
    for line in text.split('\n') {
        if let Ok(r) = parse_nginx_error(line, offset) {
            let _ = format!("{r:?}");
        }
        match parse_apache_error(line, offset) {
            Ok(r) => {
                let _ = format!("{r:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        let (host, _port) = split_client(line);
        assert!(line.contains(host), "split_client invented a host");
    }
});
