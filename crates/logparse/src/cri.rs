//! Container runtime (CRI) log lines, as kubelet and containerd write them under
//! `/var/log/pods`: `2016-10-06T00:17:09.669794202Z stdout F message`.

use std::fmt;

use crate::time::{self, Timestamp};

/// Why a line is not a CRI log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriError {
    /// The RFC 3339 timestamp at the start is missing or invalid.
    BadTimestamp,
    /// The stream is not `stdout` or `stderr`.
    BadStream,
    /// The tag (`F`, `P`) is missing.
    MissingTag,
}

impl fmt::Display for CriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadTimestamp => "cri: invalid timestamp",
            Self::BadStream => "cri: stream is not stdout or stderr",
            Self::MissingTag => "cri: missing F/P tag",
        })
    }
}

impl std::error::Error for CriError {}

/// One CRI log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriRecord<'a> {
    /// When the runtime read the line, in UTC.
    pub timestamp: Timestamp,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// `true` for `P`: the container wrote a longer line, split by the runtime; the rest follows.
    pub partial: bool,
    /// The container's output.
    pub message: &'a str,
}

/// Parses a CRI log line.
pub fn parse_cri(line: &str) -> Result<CriRecord<'_>, CriError> {
    let (timestamp, n) =
        time::parse_rfc3339_prefix(line.as_bytes(), 0).map_err(|_| CriError::BadTimestamp)?;
    let rest = line[n..].strip_prefix(' ').ok_or(CriError::BadTimestamp)?;
    let (stream, rest) = if let Some(r) = rest.strip_prefix("stdout ") {
        ("stdout", r)
    } else if let Some(r) = rest.strip_prefix("stderr ") {
        ("stderr", r)
    } else {
        return Err(CriError::BadStream);
    };
    // The tag is `F` or `P`, possibly followed by more `:`-separated flags in future versions.
    let end = memchr::memchr(b' ', rest.as_bytes()).unwrap_or(rest.len());
    let tag = &rest[..end];
    let partial = match tag.split(':').next() {
        Some("F") => false,
        Some("P") => true,
        _ => return Err(CriError::MissingTag),
    };
    let message = rest.get(end + 1..).unwrap_or("");
    Ok(CriRecord {
        timestamp,
        stream,
        partial,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let r = parse_cri("2016-10-06T00:17:09.669794202Z stdout F hello world").unwrap();
        assert_eq!(
            (r.stream, r.partial, r.message),
            ("stdout", false, "hello world")
        );
        assert_eq!(r.timestamp.to_string(), "2016-10-06T00:17:09.669794202Z");
        let r = parse_cri("2016-10-06T00:17:09.669794202+02:00 stderr P").unwrap();
        assert_eq!((r.stream, r.partial, r.message), ("stderr", true, ""));
        assert_eq!(
            parse_cri("2016-10-06T00:17:09Z stdin F x"),
            Err(CriError::BadStream)
        );
        assert_eq!(parse_cri("x"), Err(CriError::BadTimestamp));
    }
}
