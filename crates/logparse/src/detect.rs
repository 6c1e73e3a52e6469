//! Telling formats apart line by line, by looking at a few bytes at fixed places: no parse is
//! attempted here, so detection costs a handful of comparisons per line.

use crate::time::month_from_abbr;

/// The family a line looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `host ident user [time] ...`: an nginx or Apache access log (combined, main, common).
    Access,
    /// A JSON object.
    Json,
    /// `<PRI>...`, `Mmm dd hh:mm:ss host ...` or `RFC3339 host ...`.
    Syslog,
    /// `yyyy/mm/dd hh:mm:ss [level] ...`.
    NginxError,
    /// `[Www Mmm dd hh:mm:ss yyyy] [level] ...`.
    ApacheError,
    /// `RFC3339 stdout|stderr F|P ...`.
    Cri,
    /// `key=value ...`.
    Logfmt,
    /// `I1202 07:00:00.123456 12345 file.go:42] ...` (Kubernetes components).
    Klog,
    /// None of the above.
    Plain,
}

fn is_rfc3339_start(b: &[u8]) -> bool {
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
}

/// Guesses the family of one line.
pub fn detect(b: &[u8]) -> Family {
    let Some(&first) = b.first() else {
        return Family::Plain;
    };
    match first {
        b'{' => return Family::Json,
        b'<' if b.get(1).is_some_and(u8::is_ascii_digit) => return Family::Syslog,
        b'[' if b.len() > 25
            && b[1].is_ascii_uppercase()
            && b[4] == b' '
            && month_from_abbr(&b[5..8]).is_some() =>
        {
            return Family::ApacheError;
        }
        b'0'..=b'9' if b.len() >= 20 => {
            if b[4] == b'/' && b[7] == b'/' && b[10] == b' ' && b[13] == b':' {
                return Family::NginxError;
            }
            if is_rfc3339_start(b) {
                if let Some(sp) = memchr::memchr(b' ', b) {
                    let rest = &b[sp + 1..];
                    if rest.starts_with(b"stdout ") || rest.starts_with(b"stderr ") {
                        return Family::Cri;
                    }
                }
                return Family::Syslog;
            }
        }
        b'I' | b'W' | b'E' | b'F' if crate::klog::looks_like_klog(b) => return Family::Klog,
        b'A'..=b'Z'
            if b.len() >= 14
                && month_from_abbr(&b[..3]).is_some()
                && crate::time::rfc3164_shape(b).is_some() =>
        {
            return Family::Syslog;
        }
        _ => {}
    }
    if looks_like_access(b) {
        return Family::Access;
    }
    if crate::logfmt::looks_like_logfmt(b) {
        return Family::Logfmt;
    }
    Family::Plain
}

/// `word word word [`: client, ident and user, then the bracketed time; or four words, the
/// first `vhost:port` (Apache's `vhost_combined`).
fn looks_like_access(b: &[u8]) -> bool {
    let mut at = 0;
    for n in 0..4 {
        match memchr::memchr(b' ', &b[at..]) {
            Some(k) if k > 0 => at += k + 1,
            _ => return false,
        }
        if n == 2 && b.get(at) == Some(&b'[') {
            return true;
        }
    }
    b.get(at) == Some(&b'[') && vhost_port(b)
}

/// Whether the first word ends in `:port`.
fn vhost_port(b: &[u8]) -> bool {
    let first = &b[..memchr::memchr(b' ', b).unwrap_or(b.len())];
    match memchr::memrchr(b':', first) {
        Some(c) => c + 1 < first.len() && first[c + 1..].iter().all(u8::is_ascii_digit),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        let cases: &[(&str, Family)] = &[
            (
                r#"::1 - - [22/Nov/2026:01:47:31 +0000] "GET / HTTP/1.1" 200 1 "-" "c""#,
                Family::Access,
            ),
            (r#"{"a":1}"#, Family::Json),
            ("<34>Oct 11 22:14:15 h su: x", Family::Syslog),
            ("Oct 11 22:14:15 h su: x", Family::Syslog),
            ("Jun 8 11:54:08 h su: x", Family::Syslog),
            (
                "<131>Jun 8 11:54:08 master apache_error [x]",
                Family::Syslog,
            ),
            ("I1202 07:00:00.123456 12345 file.go:42] msg", Family::Klog),
            ("Info: not klog", Family::Plain),
            (
                r#"www.example.com:80 ::1 - - [22/Nov/2026:01:47:31 +0000] "GET / HTTP/1.1" 200 1 "-" "c""#,
                Family::Access,
            ),
            ("2026-11-22T01:47:31.1+00:00 h su: x", Family::Syslog),
            ("2026-11-22T01:47:31.1Z stdout F x", Family::Cri),
            ("2026/11/22 01:47:31 [error] 1#1: x", Family::NginxError),
            ("[Wed Oct 11 14:32:52 2000] [error] x", Family::ApacheError),
            ("level=info msg=hi", Family::Logfmt),
            ("hello world", Family::Plain),
            ("", Family::Plain),
        ];
        for (line, want) in cases {
            assert_eq!(detect(line.as_bytes()), *want, "{line}");
        }
    }
}
