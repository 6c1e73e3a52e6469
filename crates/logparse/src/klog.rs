//! klog, the format of Kubernetes components' own logs (kubelet, kube-apiserver, controllers):
//! `Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg`, with `L` one of `I W E F` and no year.

use std::fmt;

use crate::time::{self, Timestamp};

/// One klog line; text borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlogRecord<'a> {
    /// `info`, `warning`, `error`, `fatal`.
    pub level: &'static str,
    /// The time in UTC, the year inferred as for RFC 3164.
    pub timestamp: Timestamp,
    /// The thread id klog writes (the goroutine's OS thread, or the pid).
    pub thread_id: u64,
    /// The source file.
    pub file: &'a str,
    /// The source line.
    pub line: u32,
    /// The message.
    pub message: &'a str,
}

/// Why a line is not klog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KlogError {
    /// Not `[IWEF]mmdd hh:mm:ss.uuuuuu`.
    BadHeader,
    /// The thread id is not a number.
    BadThreadId,
    /// No `file:line]`.
    BadSource,
}

impl fmt::Display for KlogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadHeader => "klog: expected `Lmmdd hh:mm:ss.uuuuuu` (L one of I W E F)",
            Self::BadThreadId => "klog: the thread id is not a number",
            Self::BadSource => "klog: expected `file:line]` after the thread id",
        })
    }
}

impl std::error::Error for KlogError {}

/// Whether a line starts like klog (for detection): `[IWEF]dddd dd:dd:dd.`.
pub fn looks_like_klog(b: &[u8]) -> bool {
    b.len() > 22
        && matches!(b[0], b'I' | b'W' | b'E' | b'F')
        && b[1..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' '
        && b[8] == b':'
        && b[11] == b':'
        && b[14] == b'.'
}

/// Parses one klog line; `reference` and `offset` resolve the missing year and zone.
pub fn parse_klog(
    line: &str,
    reference: Timestamp,
    offset: i64,
) -> Result<KlogRecord<'_>, KlogError> {
    // vrl's parse_klog strips surrounding whitespace.
    let line = line.trim();
    let b = line.as_bytes();
    if !looks_like_klog(b) {
        return Err(KlogError::BadHeader);
    }
    let level = match b[0] {
        b'I' => "info",
        b'W' => "warning",
        b'E' => "error",
        _ => "fatal",
    };
    let num = |s: &[u8]| -> Option<u8> {
        let v = (s[0] as char).to_digit(10)? * 10 + (s[1] as char).to_digit(10)?;
        u8::try_from(v).ok()
    };
    let (month, day) = (num(&b[1..3]), num(&b[3..5]));
    let (h, m, s) = (num(&b[6..8]), num(&b[9..11]), num(&b[12..14]));
    let (Some(month), Some(day), Some(h), Some(m), Some(s)) = (month, day, h, m, s) else {
        return Err(KlogError::BadHeader);
    };
    if !(1..=12).contains(&month) || h > 23 || m > 59 || s > 60 {
        return Err(KlogError::BadHeader);
    }
    let frac_end = 15 + b[15..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut nanos: u32 = 0;
    for (i, &c) in b[15..frac_end].iter().take(9).enumerate() {
        nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    let secs = time::infer_year(month, day, (h, m, s.min(59)), reference, offset)
        .ok_or(KlogError::BadHeader)?;
    let rest = line[frac_end..].trim_start_matches(' ');
    let tid_end = rest.find(' ').ok_or(KlogError::BadThreadId)?;
    let thread_id = rest[..tid_end]
        .parse()
        .map_err(|_| KlogError::BadThreadId)?;
    let rest = rest[tid_end..].trim_start_matches(' ');
    let close = rest
        .find("] ")
        .or_else(|| rest.strip_suffix(']').map(|r| r.len()));
    let close = close.ok_or(KlogError::BadSource)?;
    let (file, line_no) = rest[..close].rsplit_once(':').ok_or(KlogError::BadSource)?;
    let line_no = line_no.parse().map_err(|_| KlogError::BadSource)?;
    Ok(KlogRecord {
        level,
        timestamp: Timestamp { secs, nanos },
        thread_id,
        file,
        line: line_no,
        message: rest.get(close + 2..).unwrap_or(""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Timestamp {
        time::parse_rfc3339("2026-12-02T12:00:00Z", 0).unwrap()
    }

    /// vectordotdev/vrl's parse_klog vectors.
    #[test]
    fn vrl_vectors() {
        for line in [
            "I0505 17:59:40.692994   28133 klog.go:70] hello from klog",
            "\n     I0505 17:59:40.692994   28133 klog.go:70] hello from klog    \n",
        ] {
            let r = parse_klog(line, reference(), 0).unwrap();
            assert_eq!(r.level, "info");
            assert_eq!(r.timestamp.to_string(), "2026-05-05T17:59:40.692994Z");
            assert_eq!((r.thread_id, r.file, r.line), (28133, "klog.go", 70));
            assert_eq!(r.message, "hello from klog");
        }
        assert!(parse_klog("not a klog line", reference(), 0).is_err());
        assert!(
            parse_klog(
                "X0505 17:59:40.692994   28133 klog.go:70] hello from klog",
                reference(),
                0
            )
            .is_err()
        );
        assert!(
            parse_klog(
                "I0000 17:59:40.692994   28133 klog.go:70] hello from klog",
                reference(),
                0
            )
            .is_err()
        );
        assert!(
            parse_klog(
                "I0505 17:59:40.692994   99999999999999999999999999999 klog.go:70] hello from klog",
                reference(),
                0
            )
            .is_err()
        );
    }

    #[test]
    fn kubelet_line() {
        let r = parse_klog(
            "E1202 07:00:00.123456 12345 file.go:42] \"Failed to sync pod\" pod=\"default/web\"",
            reference(),
            0,
        )
        .unwrap();
        assert_eq!(r.level, "error");
        assert_eq!(r.timestamp.to_string(), "2026-12-02T07:00:00.123456Z");
        assert_eq!((r.thread_id, r.file, r.line), (12345, "file.go", 42));
        assert_eq!(r.message, "\"Failed to sync pod\" pod=\"default/web\"");
    }
}
