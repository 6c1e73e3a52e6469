//! Syslog lines in the forms rsyslog receives and writes:
//!
//! - RFC 5424: `<165>1 2003-10-11T22:14:15.003Z host app 1234 ID47 [sd] message`
//!   (rsyslog's `RSYSLOG_SyslogProtocol23Format`);
//! - RFC 3164: `<34>Oct 11 22:14:15 host su[123]: message`;
//! - rsyslog's `RSYSLOG_ForwardFormat`: `<34>2003-10-11T22:14:15.003+02:00 host su: message`;
//! - rsyslog's file formats, without `<PRI>`: `RSYSLOG_TraditionalFileFormat`
//!   (`Oct 11 22:14:15 host su: message`) and `RSYSLOG_FileFormat`
//!   (`2003-10-11T22:14:15.003+02:00 host su: message`).

use std::borrow::Cow;
use std::fmt;

use crate::time::{self, Timestamp};

/// Why a line is not syslog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogError {
    /// `<` not followed by 1-3 digits and `>`, or a priority above 191.
    BadPriority,
    /// No RFC 3164 or RFC 3339 timestamp where one must be.
    BadTimestamp,
    /// The line ends before the hostname.
    MissingHostname,
    /// An RFC 5424 header field is missing.
    Truncated,
    /// RFC 5424 structured data is not closed.
    BadStructuredData,
}

impl fmt::Display for SyslogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadPriority => "syslog: invalid <PRI>",
            Self::BadTimestamp => "syslog: invalid timestamp",
            Self::MissingHostname => "syslog: missing hostname",
            Self::Truncated => "syslog: truncated RFC 5424 header",
            Self::BadStructuredData => "syslog: unterminated structured data",
        })
    }
}

impl std::error::Error for SyslogError {}

/// One syslog message; text borrowed from the line. RFC 5424's `-` (nil) fields are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogRecord<'a> {
    /// `<PRI>`: facility * 8 + severity, when the line has one.
    pub priority: Option<u8>,
    /// The timestamp in UTC (RFC 3164's missing year inferred).
    pub timestamp: Option<Timestamp>,
    /// HOSTNAME.
    pub hostname: Option<&'a str>,
    /// APP-NAME (RFC 5424) or the TAG before `[pid]:` (RFC 3164).
    pub app_name: Option<&'a str>,
    /// PROCID, or the pid in `tag[pid]:`.
    pub proc_id: Option<&'a str>,
    /// MSGID (RFC 5424 only).
    pub msg_id: Option<&'a str>,
    /// STRUCTURED-DATA as written, `[id k="v"]...` (RFC 5424 only).
    pub structured_data: Option<&'a str>,
    /// MSG (a leading UTF-8 BOM removed).
    pub message: &'a str,
    /// Whether the line was RFC 5424.
    pub rfc5424: bool,
}

impl SyslogRecord<'_> {
    /// The facility code (`priority / 8`).
    pub fn facility(&self) -> Option<u8> {
        self.priority.map(|p| p / 8)
    }

    /// The severity code, 0 (emergency) to 7 (debug).
    pub fn severity(&self) -> Option<u8> {
        self.priority.map(|p| p % 8)
    }

    /// The process id, when PROCID is a number.
    pub fn pid(&self) -> Option<u32> {
        self.proc_id.and_then(|p| p.parse().ok())
    }
}

/// The keyword of a severity code: `emerg`, `alert`, `crit`, `err`, `warning`, `notice`,
/// `info`, `debug`.
pub fn severity_name(severity: u8) -> &'static str {
    match severity {
        0 => "emerg",
        1 => "alert",
        2 => "crit",
        3 => "err",
        4 => "warning",
        5 => "notice",
        6 => "info",
        _ => "debug",
    }
}

/// A syslog parser: holds what timestamps without year or zone are resolved against.
#[derive(Debug, Clone, Copy)]
pub struct SyslogParser {
    /// RFC 3164 timestamps take the year that puts them at most a month after this time.
    pub reference: Timestamp,
    /// Offset east of UTC, in seconds, of timestamps written without a zone.
    pub offset: i64,
}

impl Default for SyslogParser {
    fn default() -> Self {
        Self {
            reference: Timestamp::now(),
            offset: 0,
        }
    }
}

fn nil(s: &str) -> Option<&str> {
    if s == "-" || s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// Splits off the next space-delimited word.
fn word(s: &str) -> Option<(&str, &str)> {
    let i = memchr::memchr(b' ', s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
}

impl SyslogParser {
    /// Parses one line.
    pub fn parse<'a>(&self, line: &'a str) -> Result<SyslogRecord<'a>, SyslogError> {
        let b = line.as_bytes();
        let (priority, rest) = if b.first() == Some(&b'<') {
            let close = b
                .iter()
                .take(5)
                .position(|c| *c == b'>')
                .ok_or(SyslogError::BadPriority)?;
            let digits = &line[1..close];
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(SyslogError::BadPriority);
            }
            let p: u16 = digits.parse().map_err(|_| SyslogError::BadPriority)?;
            if p > 191 {
                return Err(SyslogError::BadPriority);
            }
            (Some(p as u8), &line[close + 1..])
        } else {
            (None, line)
        };
        if priority.is_some() && rest.starts_with("1 ") {
            return self.rfc5424(priority, &rest[2..]);
        }
        let rb = rest.as_bytes();
        let (timestamp, after) = if rb.first().is_some_and(u8::is_ascii_uppercase) {
            let (t, n) = time::parse_rfc3164_prefix(rb, self.reference, self.offset)
                .map_err(|_| SyslogError::BadTimestamp)?;
            (t, &rest[n..])
        } else {
            let (t, n) = time::parse_rfc3339_prefix(rb, self.offset)
                .map_err(|_| SyslogError::BadTimestamp)?;
            (t, &rest[n..])
        };
        let after = after
            .strip_prefix(' ')
            .ok_or(SyslogError::MissingHostname)?;
        // Some senders (haproxy, many devices) leave the hostname out: a first word that is a
        // whole tag (`app[pid]:`, `app:`) is the tag, not a host.
        let first = &after[..memchr::memchr(b' ', after.as_bytes()).unwrap_or(after.len())];
        let (hostname, msg) = if first.ends_with(':') && tag(first).0.is_some() {
            (None, after)
        } else {
            let (h, m) = word(after).unwrap_or((after, ""));
            if h.is_empty() {
                return Err(SyslogError::MissingHostname);
            }
            (Some(h), m)
        };
        let (app_name, proc_id, message) = tag(msg);
        Ok(SyslogRecord {
            priority,
            timestamp: Some(timestamp),
            hostname,
            app_name,
            proc_id,
            msg_id: None,
            structured_data: None,
            message,
            rfc5424: false,
        })
    }

    fn rfc5424<'a>(
        &self,
        priority: Option<u8>,
        rest: &'a str,
    ) -> Result<SyslogRecord<'a>, SyslogError> {
        let (ts, rest) = word(rest).ok_or(SyslogError::Truncated)?;
        let timestamp = if ts == "-" {
            None
        } else {
            Some(time::parse_rfc3339(ts, self.offset).map_err(|_| SyslogError::BadTimestamp)?)
        };
        let (host, rest) = word(rest).ok_or(SyslogError::Truncated)?;
        let (app, rest) = word(rest).ok_or(SyslogError::Truncated)?;
        let (procid, rest) = word(rest).ok_or(SyslogError::Truncated)?;
        let (msgid, rest) = word(rest).unwrap_or((rest, ""));
        let (sd, msg) = if let Some(r) = rest.strip_prefix('-') {
            (None, r)
        } else if rest.starts_with('[') {
            let end = sd_end(rest.as_bytes()).ok_or(SyslogError::BadStructuredData)?;
            (Some(&rest[..end]), &rest[end..])
        } else if rest.is_empty() {
            (None, "")
        } else {
            return Err(SyslogError::BadStructuredData);
        };
        let msg = msg.strip_prefix(' ').unwrap_or(msg);
        let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
        Ok(SyslogRecord {
            priority,
            timestamp,
            hostname: nil(host),
            app_name: nil(app),
            proc_id: nil(procid),
            msg_id: nil(msgid),
            structured_data: sd,
            message: msg,
            rfc5424: true,
        })
    }
}

/// The end of RFC 5424 STRUCTURED-DATA (`[..][..]`), honouring `\]` and `\"` inside values.
fn sd_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut in_quotes = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' if in_quotes => i += 2,
                b'"' => {
                    in_quotes = !in_quotes;
                    i += 1;
                }
                b']' if !in_quotes => {
                    i += 1;
                    break;
                }
                _ => i += 1,
            }
        }
    }
    Some(i)
}

/// The elements of RFC 5424 STRUCTURED-DATA (`[id k="v" k2="v2"][id2]`): each SD-ID with its
/// params, values unescaped (`\"`, `\\`, `\]`). Stops at the first malformed element.
pub fn sd_elements(sd: &str) -> impl Iterator<Item = (&str, Vec<(&str, Cow<'_, str>)>)> {
    let mut rest = sd;
    std::iter::from_fn(move || {
        let body = rest.strip_prefix('[')?;
        let b = body.as_bytes();
        let id_end = b.iter().position(|c| *c == b' ' || *c == b']')?;
        let id = &body[..id_end];
        let mut i = id_end;
        let mut params = Vec::new();
        loop {
            match b.get(i)? {
                b']' => {
                    i += 1;
                    break;
                }
                b' ' => i += 1,
                _ => {
                    let eq = i + memchr::memchr(b'=', &b[i..])?;
                    let name = &body[i..eq];
                    if b.get(eq + 1) != Some(&b'"') {
                        return None;
                    }
                    let start = eq + 2;
                    let mut j = start;
                    let mut escaped = false;
                    loop {
                        match *b.get(j)? {
                            b'\\' => {
                                escaped = true;
                                j += 2;
                            }
                            b'"' => break,
                            _ => j += 1,
                        }
                    }
                    let raw = body.get(start..j)?;
                    let value = if escaped {
                        Cow::Owned(unescape_param(raw))
                    } else {
                        Cow::Borrowed(raw)
                    };
                    params.push((name, value));
                    i = j + 1;
                }
            }
        }
        rest = &body[i..];
        Some((id, params))
    })
}

/// RFC 5424 PARAM-VALUE escapes: `\` before `"`, `\` or `]` is dropped; any other `\` stays.
fn unescape_param(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('"' | '\\' | ']')) {
            out.push(chars.next().unwrap_or('\\'));
        } else {
            out.push(c);
        }
    }
    out
}

/// RFC 3164 TAG: the first word when it is made of tag characters, optionally with `[pid]`,
/// then `:` and a space (`su[123]: msg`), `:` alone (`root[8539]:msg`), or just a space (rsyslog
/// writes `app[pid] msg` for messages it received as RFC 5424, and RFC 3164 ends the TAG at any
/// non-alphanumeric character). A first word of other characters is not a tag.
fn tag(msg: &str) -> (Option<&str>, Option<&str>, &str) {
    let b = msg.as_bytes();
    let name_len = b
        .iter()
        .take(64)
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/' | b'@'))
        .count();
    if name_len == 0 {
        return (None, None, msg);
    }
    let mut i = name_len;
    let mut pid = None;
    if b.get(i) == Some(&b'[') {
        let Some(close) = memchr::memchr(b']', &b[i..]).map(|k| i + k) else {
            return (None, None, msg);
        };
        pid = Some(&msg[i + 1..close]);
        i = close + 1;
    }
    let rest = match b.get(i) {
        Some(b':') => msg[i + 1..].strip_prefix(' ').unwrap_or(&msg[i + 1..]),
        Some(b' ') => &msg[i + 1..],
        None => "",
        Some(_) => return (None, None, msg),
    };
    (nil(&msg[..name_len]), pid.and_then(nil), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> SyslogParser {
        SyslogParser {
            reference: time::parse_rfc3339("2026-11-22T00:00:00Z", 0).unwrap(),
            offset: 0,
        }
    }

    #[test]
    fn rfc5424() {
        let r = p()
            .parse(r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application\]"] An application event"#)
            .unwrap();
        assert_eq!((r.facility(), r.severity()), (Some(20), Some(5)));
        assert_eq!(r.hostname, Some("mymachine.example.com"));
        assert_eq!(r.app_name, Some("evntslog"));
        assert_eq!(r.proc_id, None);
        assert_eq!(r.msg_id, Some("ID47"));
        assert_eq!(r.message, "An application event");
        assert_eq!(r.timestamp.unwrap().to_string(), "2003-10-11T22:14:15.003Z");
    }

    #[test]
    fn rfc3164_and_file_formats() {
        let r = p()
            .parse("<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed")
            .unwrap();
        assert_eq!((r.app_name, r.pid()), (Some("su"), Some(123)));
        assert_eq!(r.message, "'su root' failed");
        assert_eq!(r.timestamp.unwrap().to_string(), "2026-10-11T22:14:15Z");
        let r = p()
            .parse("2026-11-22T01:47:31.123456+00:00 web1 kernel: [ 0.1] x")
            .unwrap();
        assert_eq!(
            (r.priority, r.app_name, r.message),
            (None, Some("kernel"), "[ 0.1] x")
        );
        // RFC 3164: the TAG ends at the first non-alphanumeric character.
        let r = p().parse("Nov  2 01:02:03 web1 no tag here").unwrap();
        assert_eq!((r.app_name, r.message), (Some("no"), "tag here"));
        let r = p()
            .parse("Nov  2 01:02:03 web1 'quoted' first word")
            .unwrap();
        assert_eq!((r.app_name, r.message), (None, "'quoted' first word"));
        assert!(p().parse("<999>x").is_err());

        // One-digit days, padded or not, and a year.
        for line in [
            "<34>Jun  8 11:54:08 web1 su[1]: m",
            "<34>Jun 8 11:54:08 web1 su[1]: m",
        ] {
            let r = p().parse(line).unwrap();
            assert_eq!(
                r.timestamp.unwrap().to_string(),
                "2026-06-08T11:54:08Z",
                "{line}"
            );
            assert_eq!(
                (r.hostname, r.app_name, r.message),
                (Some("web1"), Some("su"), "m")
            );
        }
        let r = p().parse("<34>Jun  8 2021 11:54:08 web1 su: m").unwrap();
        assert_eq!(r.timestamp.unwrap().to_string(), "2021-06-08T11:54:08Z");
        // No space after the tag's colon.
        let r = p()
            .parse("<13>Dec  2 07:00:00 web1 root[8539]:msg")
            .unwrap();
        assert_eq!(
            (r.app_name, r.pid(), r.message),
            (Some("root"), Some(8539), "msg")
        );
        // No colon: rsyslog's file line of a message received as RFC 5424.
        let r = p().parse("Dec  2 07:00:00 web1 app[77] started").unwrap();
        assert_eq!(
            (r.app_name, r.pid(), r.message),
            (Some("app"), Some(77), "started")
        );
    }

    /// vectordotdev/vrl's parse_syslog vectors that apply (their lines and expected values).
    #[test]
    fn vrl_vectors() {
        let r = p()
            .parse(r#"<13>1 2020-03-13T20:45:38.119Z dynamicwireless.name non 2426 ID931 [exampleSDID@32473 iut="3" eventSource= "Application" eventID="1011"] Try to override the THX port, maybe it will reboot the neural interface!"#)
            .unwrap();
        assert_eq!(
            (
                r.severity(),
                r.facility(),
                r.hostname,
                r.app_name,
                r.pid(),
                r.msg_id
            ),
            (
                Some(5),
                Some(1),
                Some("dynamicwireless.name"),
                Some("non"),
                Some(2426),
                Some("ID931")
            )
        );
        assert_eq!(r.timestamp.unwrap().to_string(), "2020-03-13T20:45:38.119Z");
        assert_eq!(
            r.message,
            "Try to override the THX port, maybe it will reboot the neural interface!"
        );

        // haproxy: no hostname.
        let r = p()
            .parse("<133>Jun 13 16:33:35 haproxy[73411]: Proxy sticky-servers started.")
            .unwrap();
        assert_eq!(
            (
                r.facility(),
                r.severity(),
                r.hostname,
                r.app_name,
                r.pid(),
                r.message
            ),
            (
                Some(16),
                Some(5),
                None,
                Some("haproxy"),
                Some(73411),
                "Proxy sticky-servers started."
            )
        );
        assert_eq!(r.timestamp.unwrap().to_string(), "2026-06-13T16:33:35Z");
        let r = p()
            .parse("Jun 13 16:33:35 haproxy[73411]: I am missing a pri.")
            .unwrap();
        assert_eq!(
            (r.priority, r.app_name, r.pid(), r.message),
            (None, Some("haproxy"), Some(73411), "I am missing a pri.")
        );

        // non_structured_data_in_message: one-digit day, tag without a colon.
        let r = p()
            .parse("<131>Jun 8 11:54:08 master apache_error [Tue Jun 08 11:54:08.929301 2021] [php7:emerg] [pid 1374899] [client 95.223.77.60:41888] rest of message")
            .unwrap();
        assert_eq!(
            (r.facility(), r.severity(), r.hostname, r.app_name),
            (Some(16), Some(3), Some("master"), Some("apache_error"))
        );
        assert_eq!(r.timestamp.unwrap().to_string(), "2026-06-08T11:54:08Z");
        assert_eq!(
            r.message,
            "[Tue Jun 08 11:54:08.929301 2021] [php7:emerg] [pid 1374899] [client 95.223.77.60:41888] rest of message"
        );

        // Structured data: empty elements, empty values, escapes.
        let sd = |line: &str| {
            let r = p().parse(line).unwrap();
            sd_elements(r.structured_data.unwrap())
                .map(|(id, ps)| {
                    (
                        id.to_owned(),
                        ps.into_iter()
                            .map(|(k, v)| (k.to_owned(), v.into_owned()))
                            .collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sd("<13>1 2019-02-13T19:48:34+00:00 74794bfb6795 root 8449 - [empty] qwerty"),
            [("empty".to_owned(), vec![])]
        );
        assert_eq!(
            sd(
                r#"<13>1 2019-02-13T19:48:34+00:00 74794bfb6795 root 8449 - [non_empty x=""][empty] qwerty"#
            ),
            [
                (
                    "non_empty".to_owned(),
                    vec![("x".to_owned(), String::new())]
                ),
                ("empty".to_owned(), vec![])
            ]
        );
        for (line, want) in [
            (
                r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 key="hello \"test\""] An application event log entry..."#,
                r#"hello "test""#,
            ),
            (
                r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 key="hello a\\b"] An application event log entry..."#,
                r"hello a\b",
            ),
            (
                r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 key="hello [bye\]"] An application event log entry..."#,
                "hello [bye]",
            ),
        ] {
            assert_eq!(sd(line)[0].1[0].1, want, "{line}");
            assert_eq!(
                p().parse(line).unwrap().message,
                "An application event log entry..."
            );
        }
        assert!(p().parse("hello").is_err());
    }
}
