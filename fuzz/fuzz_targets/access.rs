//! Access-log formats compiled from random format strings (nginx `log_format` or Apache
//! `LogFormat`), then random lines parsed with them, and the built-in formats on the same lines.
//! Input: a selector byte, the format up to the first newline, then lines. Invariants: every
//! value is a slice of the line, and the typed accessors never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podmates_logparse::AccessFormat;
use podmates_logparse::access::unescape;

fn check(f: &AccessFormat, line: &str) {
    let Ok(r) = f.parse(line) else {
        return;
    };
    let range = line.as_ptr() as usize..=line.as_ptr() as usize + line.len();
    assert_eq!(r.fields().count(), f.variables().count());
    for (name, v) in r.fields() {
        assert!(
            range.contains(&(v.as_ptr() as usize)),
            "{name} is not from the line"
        );
        assert!(range.contains(&(v.as_ptr() as usize + v.len())));
        assert!(r.get(name).is_some(), "{name} has no slot");
        let _ = unescape(v);
    }
    let _ = (
        r.remote_addr(),
        r.remote_user(),
        r.time_text(),
        r.time(),
        r.request(),
    );
    let _ = (
        r.status(),
        r.body_bytes_sent(),
        r.bytes_sent(),
        r.referer(),
        r.user_agent(),
    );
    let _ = (
        r.x_forwarded_for(),
        r.request_time(),
        r.upstream_response_time(),
    );
    let _ = r.seconds("request_time");
    let _ = format!("{r:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (format, lines) = text.split_once('\n').unwrap_or((&text, ""));
    let compiled = if sel & 1 == 0 {
        AccessFormat::nginx(format)
    } else {
        AccessFormat::apache(format)
    };
    let builtin = match sel >> 1 & 7 {
        0 => AccessFormat::nginx_combined(),
        1 => AccessFormat::nginx_main(),
        2 => AccessFormat::apache_common(),
        3 => AccessFormat::apache_combined(),
        _ => AccessFormat::apache_vhost_combined(),
    };
    match compiled {
        Ok(f) => {
            assert!(f.variables().count() > 0);
            for line in lines.split('\n') {
                check(&f, line);
                check(&builtin, line);
                if let Err(e) = f.parse(line) {
                    let _ = e.to_string();
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
            for line in lines.split('\n') {
                check(&builtin, line);
            }
        }
    }
});
