//! Server error logs: nginx's `error_log` and Apache's `ErrorLog` lines.

use std::fmt;

use crate::time::{self, Timestamp};

/// Why a line is not an error-log line of the expected server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorLogError {
    /// The timestamp at the start is missing or invalid.
    BadTimestamp,
    /// The `[level]` after the timestamp is missing.
    MissingLevel,
}

impl fmt::Display for ErrorLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadTimestamp => "error log: invalid timestamp",
            Self::MissingLevel => "error log: missing [level]",
        })
    }
}

impl std::error::Error for ErrorLogError {}

/// An nginx error-log line:
/// `2026/11/22 01:47:31 [error] 1234#1234: *5 open() "/x" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /x HTTP/1.1", host: "localhost"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NginxError<'a> {
    /// The time in UTC (nginx writes local time without a zone: see [`parse_nginx_error`]).
    pub timestamp: Timestamp,
    /// `debug`, `info`, `notice`, `warn`, `error`, `crit`, `alert`, `emerg`.
    pub level: &'a str,
    /// The worker's process id.
    pub pid: Option<u32>,
    /// The thread id.
    pub tid: Option<u64>,
    /// The connection number after `*`.
    pub connection: Option<u64>,
    /// The message, without the `, client: ...` context nginx appends.
    pub message: &'a str,
    /// `client:` from the context.
    pub client: Option<&'a str>,
    /// `server:` from the context.
    pub server: Option<&'a str>,
    /// `request:` from the context, without its quotes.
    pub request: Option<&'a str>,
    /// `upstream:` from the context, without its quotes.
    pub upstream: Option<&'a str>,
    /// `host:` from the context, without its quotes.
    pub host: Option<&'a str>,
    /// `referrer:` from the context, without its quotes.
    pub referrer: Option<&'a str>,
}

/// Parses an nginx error-log line; `offset` is the server's offset east of UTC in seconds.
pub fn parse_nginx_error(line: &str, offset: i64) -> Result<NginxError<'_>, ErrorLogError> {
    let b = line.as_bytes();
    let timestamp =
        time::parse_slash_datetime(b, offset).map_err(|_| ErrorLogError::BadTimestamp)?;
    let rest = line[19..]
        .strip_prefix(" [")
        .ok_or(ErrorLogError::MissingLevel)?;
    let close = memchr::memchr(b']', rest.as_bytes()).ok_or(ErrorLogError::MissingLevel)?;
    let level = &rest[..close];
    let mut rest = rest[close + 1..].trim_start_matches(' ');
    let (mut pid, mut tid, mut connection) = (None, None, None);
    // `1234#5678: ` then optionally `*5 `.
    if let Some(hash) = memchr::memchr(b'#', rest.as_bytes())
        && let Some(colon) = rest[hash..].find(": ").map(|c| c + hash)
        && let (Ok(p), Ok(t)) = (rest[..hash].parse(), rest[hash + 1..colon].parse())
    {
        pid = Some(p);
        tid = Some(t);
        rest = &rest[colon + 2..];
    }
    if let Some(r) = rest.strip_prefix('*') {
        let end = r
            .bytes()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(r.len());
        if end > 0 {
            connection = r[..end].parse().ok();
            rest = r[end..].trim_start_matches(' ');
        }
    }
    let mut rec = NginxError {
        timestamp,
        level,
        pid,
        tid,
        connection,
        message: rest,
        client: None,
        server: None,
        request: None,
        upstream: None,
        host: None,
        referrer: None,
    };
    if let Some(at) = rest.find(", client: ") {
        rec.message = &rest[..at];
        let mut ctx = &rest[at + 2..];
        while !ctx.is_empty() {
            let Some(colon) = ctx.find(": ") else { break };
            let key = &ctx[..colon];
            let v = &ctx[colon + 2..];
            let (value, next) = if let Some(q) = v.strip_prefix('"') {
                // nginx escapes `"` in these values as `\x22`, so the next quote closes.
                match memchr::memchr(b'"', q.as_bytes()) {
                    Some(e) => (&q[..e], &q[e + 1..]),
                    None => (q, ""),
                }
            } else {
                match v.find(", ") {
                    Some(e) => (&v[..e], &v[e..]),
                    None => (v, ""),
                }
            };
            match key {
                "client" => rec.client = Some(value),
                "server" => rec.server = Some(value),
                "request" => rec.request = Some(value),
                "upstream" => rec.upstream = Some(value),
                "host" => rec.host = Some(value),
                "referrer" => rec.referrer = Some(value),
                _ => {}
            }
            ctx = next.strip_prefix(", ").unwrap_or(next);
        }
    }
    Ok(rec)
}

/// An Apache error-log line (2.4's default `ErrorLogFormat`, and 2.2's):
/// `[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] [client 1.2.3.4:5678] AH00124: message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApacheError<'a> {
    /// The time in UTC (Apache writes local time without a zone).
    pub timestamp: Timestamp,
    /// The module (`core` in `[core:error]`), when logged.
    pub module: Option<&'a str>,
    /// `emerg` .. `debug`, `trace1`..`trace8`.
    pub level: &'a str,
    /// The process id.
    pub pid: Option<u32>,
    /// The thread id.
    pub tid: Option<u64>,
    /// The client address (with port on 2.4).
    pub client: Option<&'a str>,
    /// The `AH00124` error code, when logged.
    pub code: Option<&'a str>,
    /// The message.
    pub message: &'a str,
}

/// Parses an Apache error-log line; `offset` is the server's offset east of UTC in seconds.
pub fn parse_apache_error(line: &str, offset: i64) -> Result<ApacheError<'_>, ErrorLogError> {
    let inner = line.strip_prefix('[').ok_or(ErrorLogError::BadTimestamp)?;
    let (timestamp, n) = time::parse_ctime_prefix(inner.as_bytes(), offset)
        .map_err(|_| ErrorLogError::BadTimestamp)?;
    let rest = inner[n..]
        .strip_prefix("] [")
        .ok_or(ErrorLogError::MissingLevel)?;
    let close = memchr::memchr(b']', rest.as_bytes()).ok_or(ErrorLogError::MissingLevel)?;
    let lv = &rest[..close];
    let (module, level) = match memchr::memchr(b':', lv.as_bytes()) {
        Some(c) => (Some(&lv[..c]), &lv[c + 1..]),
        None => (None, lv),
    };
    let mut rec = ApacheError {
        timestamp,
        module,
        level,
        pid: None,
        tid: None,
        client: None,
        code: None,
        message: "",
    };
    let mut rest = rest[close + 1..].trim_start_matches(' ');
    while let Some(r) = rest.strip_prefix('[') {
        let Some(close) = memchr::memchr(b']', r.as_bytes()) else {
            break;
        };
        let field = &r[..close];
        if let Some(p) = field.strip_prefix("pid ") {
            let (p, t) = match p.split_once(":tid ") {
                Some((p, t)) => (p, Some(t)),
                None => (p, None),
            };
            rec.pid = p.parse().ok();
            rec.tid = t.and_then(|t| t.parse().ok());
        } else if let Some(c) = field
            .strip_prefix("client ")
            .or_else(|| field.strip_prefix("remote "))
        {
            rec.client = Some(c);
        } else {
            break;
        }
        rest = r[close + 1..].trim_start_matches(' ');
    }
    if rest.len() > 9
        && rest.starts_with("AH")
        && rest.as_bytes()[2..7].iter().all(u8::is_ascii_digit)
        && rest[7..].starts_with(": ")
    {
        rec.code = Some(&rest[..7]);
        rest = &rest[9..];
    }
    rec.message = rest;
    Ok(rec)
}

/// Splits an Apache error-log client (`1.2.3.4:5678`, `::1:34840`, `[::1]:34840`, or an
/// address alone on 2.2) into the address and the port. Apache 2.4 appends `:port` to IPv6
/// addresses without brackets, so the last colon splits when what is before it is an address.
pub fn split_client(client: &str) -> (&str, Option<u16>) {
    if let Some(rest) = client.strip_prefix('[')
        && let Some((addr, port)) = rest.split_once("]:")
    {
        return (addr, port.parse().ok());
    }
    if client.parse::<std::net::IpAddr>().is_ok() && client.matches(':').count() < 2 {
        return (client, None);
    }
    if let Some((addr, port)) = client.rsplit_once(':')
        && let Ok(p) = port.parse::<u16>()
        && addr.parse::<std::net::IpAddr>().is_ok()
    {
        return (addr, Some(p));
    }
    (client, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx() {
        let r = parse_nginx_error(
            r#"2026/11/22 01:47:31 [error] 1234#0: *5 open() "/usr/share/nginx/html/x" failed (2: No such file or directory), client: ::1, server: localhost, request: "GET /x HTTP/1.1", host: "localhost:8080""#,
            0,
        )
        .unwrap();
        assert_eq!(
            (r.level, r.pid, r.tid, r.connection),
            ("error", Some(1234), Some(0), Some(5))
        );
        assert_eq!(
            r.message,
            r#"open() "/usr/share/nginx/html/x" failed (2: No such file or directory)"#
        );
        assert_eq!(r.client, Some("::1"));
        assert_eq!(r.request, Some("GET /x HTTP/1.1"));
        assert_eq!(r.host, Some("localhost:8080"));
        assert_eq!(r.timestamp.to_string(), "2026-11-22T01:47:31Z");
        let r = parse_nginx_error(
            "2026/11/22 01:47:31 [notice] 99#99: start worker processes",
            0,
        )
        .unwrap();
        assert_eq!((r.message, r.client), ("start worker processes", None));
        assert!(parse_nginx_error("2026/11/22 01:47:31 error", 0).is_err());
    }

    #[test]
    fn apache() {
        let r = parse_apache_error(
            "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] [client 1.2.3.4:5678] AH00124: Request exceeded the limit",
            0,
        )
        .unwrap();
        assert_eq!(
            (r.module, r.level, r.pid, r.tid),
            (Some("core"), "error", Some(1234), Some(5678))
        );
        assert_eq!((r.client, r.code), (Some("1.2.3.4:5678"), Some("AH00124")));
        assert_eq!(r.message, "Request exceeded the limit");
        let r = parse_apache_error(
            "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] File does not exist: /x",
            0,
        )
        .unwrap();
        assert_eq!(
            (r.module, r.level, r.client),
            (None, "error", Some("127.0.0.1"))
        );
        assert_eq!(r.timestamp.to_string(), "2000-10-11T14:32:52Z");
    }

    #[test]
    fn apache_ipv6_client() {
        let r = parse_apache_error(
            "[Wed Dec 02 07:00:00.123456 2026] [authz_core:error] [pid 4242:tid 4243] [client ::1:34840] AH01630: client denied by server configuration: /var/www/html/private",
            0,
        )
        .unwrap();
        assert_eq!(split_client(r.client.unwrap()), ("::1", Some(34840)));
        assert_eq!(r.code, Some("AH01630"));
        for (c, want) in [
            ("1.2.3.4:5678", ("1.2.3.4", Some(5678))),
            ("127.0.0.1", ("127.0.0.1", None)),
            ("[::1]:80", ("::1", Some(80))),
            ("::1", ("::1", None)),
            // vrl's parse_apache_log error_line_ip_v6.
            (
                "eda7:35d:3ceb:ef1e:2133:e7bf:116e:24cc:24259",
                ("eda7:35d:3ceb:ef1e:2133:e7bf:116e:24cc", Some(24259)),
            ),
            ("fe80::1%eth0:80", ("fe80::1%eth0:80", None)),
        ] {
            assert_eq!(split_client(c), want, "{c}");
        }
    }
}
