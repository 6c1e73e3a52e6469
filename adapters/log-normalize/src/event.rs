//! One input line, parsed into the fields both output schemas are written from.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use podmates_logparse::level::Severity;
use podmates_logparse::{AccessRecord, Timestamp};

/// Which parser read (or failed to read) a line: the `format` label of the line counters and the
/// source of `event.dataset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// nginx `combined`.
    NginxCombined,
    /// nginx `main`.
    NginxMain,
    /// `--nginx-log-format`.
    NginxCustom,
    /// nginx `error_log`.
    NginxError,
    /// Apache `common`.
    ApacheCommon,
    /// Apache `combined`.
    ApacheCombined,
    /// `--apache-log-format`.
    ApacheCustom,
    /// Apache `ErrorLog`.
    ApacheError,
    /// Debian's Apache `vhost_combined`.
    ApacheVhostCombined,
    /// klog (Kubernetes components).
    Klog,
    /// `--pattern`.
    Pattern,
    /// Syslog (RFC 5424, RFC 3164, rsyslog's file formats).
    Syslog,
    /// JSON objects.
    Json,
    /// logfmt.
    Logfmt,
    /// CRI container log lines.
    Cri,
    /// Anything else: the line is the message.
    #[default]
    Plain,
}

impl Kind {
    /// Every kind, in metric order.
    pub const ALL: [Kind; 16] = [
        Kind::NginxCombined,
        Kind::NginxMain,
        Kind::NginxCustom,
        Kind::NginxError,
        Kind::ApacheCommon,
        Kind::ApacheCombined,
        Kind::ApacheCustom,
        Kind::ApacheError,
        Kind::ApacheVhostCombined,
        Kind::Klog,
        Kind::Pattern,
        Kind::Syslog,
        Kind::Json,
        Kind::Logfmt,
        Kind::Cri,
        Kind::Plain,
    ];

    /// The `format` label: the `--format` value that selects this parser.
    pub fn label(self) -> &'static str {
        match self {
            Kind::NginxCombined => "nginx-combined",
            Kind::NginxMain => "nginx-main",
            Kind::NginxCustom => "nginx-custom",
            Kind::NginxError => "nginx-error",
            Kind::ApacheCommon => "apache-common",
            Kind::ApacheCombined => "apache-combined",
            Kind::ApacheCustom => "apache-custom",
            Kind::ApacheError => "apache-error",
            Kind::ApacheVhostCombined => "apache-vhost-combined",
            Kind::Klog => "klog",
            Kind::Pattern => "pattern",
            Kind::Syslog => "syslog",
            Kind::Json => "json",
            Kind::Logfmt => "logfmt",
            Kind::Cri => "cri",
            Kind::Plain => "plain",
        }
    }

    /// `event.dataset`, after Elastic's integrations (`nginx.access`, `system.syslog`).
    pub fn dataset(self) -> &'static str {
        match self {
            Kind::NginxCombined | Kind::NginxMain | Kind::NginxCustom => "nginx.access",
            Kind::NginxError => "nginx.error",
            Kind::ApacheCommon
            | Kind::ApacheCombined
            | Kind::ApacheCustom
            | Kind::ApacheVhostCombined => "apache.access",
            Kind::ApacheError => "apache.error",
            Kind::Klog => "kubernetes.klog",
            Kind::Pattern => "pattern",
            Kind::Syslog => "system.syslog",
            Kind::Json => "json",
            Kind::Logfmt => "logfmt",
            Kind::Cri => "cri",
            Kind::Plain => "plain",
        }
    }

    /// The namespace of format-specific fields (`nginx.access.request_length`).
    pub fn namespace(self) -> &'static str {
        match self {
            Kind::NginxCombined | Kind::NginxMain | Kind::NginxCustom | Kind::NginxError => "nginx",
            Kind::ApacheCommon
            | Kind::ApacheCombined
            | Kind::ApacheCustom
            | Kind::ApacheError
            | Kind::ApacheVhostCombined => "apache",
            Kind::Klog => "klog",
            Kind::Pattern => "pattern",
            Kind::Syslog => "syslog",
            Kind::Json => "json",
            Kind::Logfmt => "logfmt",
            Kind::Cri => "cri",
            Kind::Plain => "plain",
        }
    }

    /// Index into counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A value of a field that has no fixed place in the schemas (JSON and logfmt keys).
#[derive(Debug, Clone)]
pub enum Extra<'a> {
    /// Text.
    Str(Cow<'a, str>),
    /// A JSON value other than a string.
    Json(serde_json::Value),
}

/// Variables of an access format that have no fixed schema field: (slot, JSON-safe name).
pub type ExtraVars = [(usize, Box<str>)];

/// Everything read from one line. Text borrows from the line.
#[derive(Debug, Default)]
pub struct Event<'a> {
    /// The line as read (after lossy UTF-8 repair).
    pub original: &'a str,
    /// The parser that read, or failed on, the line.
    pub kind: Kind,
    /// The input was not valid UTF-8 and was repaired.
    pub invalid_utf8: bool,
    /// What failed, for lines that did not parse.
    pub error: Option<String>,
    /// When it happened, in UTC.
    pub timestamp: Option<Timestamp>,
    /// The human message.
    pub message: Option<Cow<'a, str>>,
    /// The level as logged.
    pub level: Option<Cow<'a, str>>,
    /// The OpenTelemetry severity.
    pub severity: Option<Severity>,

    /// Client address as logged.
    pub source_address: Option<&'a str>,
    /// Client port, when logged apart from the address (Apache error logs).
    pub source_port: Option<u16>,
    /// Authenticated user (nginx's `\xHH` escapes decoded).
    pub user_name: Option<Cow<'a, str>>,
    /// HTTP method.
    pub method: Option<&'a str>,
    /// Request target as sent.
    pub url_original: Option<&'a str>,
    /// Target path (nginx's `\xHH` escapes decoded).
    pub url_path: Option<Cow<'a, str>>,
    /// Target query.
    pub url_query: Option<&'a str>,
    /// `1.1`, `2.0`.
    pub http_version: Option<&'a str>,
    /// Response status.
    pub status: Option<u16>,
    /// Response body size.
    pub body_bytes: Option<u64>,
    /// Bytes sent including headers (nginx `$bytes_sent`, Apache `%O`).
    pub response_bytes: Option<u64>,
    /// Bytes received including headers (nginx `$request_length`, Apache `%I`).
    pub request_bytes: Option<u64>,
    /// Request id (nginx `$request_id`, Apache `%L` / `UNIQUE_ID`).
    pub request_id: Option<&'a str>,
    /// Referer header (unescaped).
    pub referrer: Option<Cow<'a, str>>,
    /// User-Agent header (unescaped).
    pub user_agent: Option<Cow<'a, str>>,
    /// Request duration (nginx `$request_time`) in nanoseconds.
    pub duration_ns: Option<u64>,
    /// Server name (error logs).
    pub server: Option<&'a str>,
    /// Host header (nginx error logs).
    pub host_header: Option<&'a str>,
    /// Upstream (nginx error logs).
    pub upstream: Option<&'a str>,

    /// Syslog PRI.
    pub priority: Option<u8>,
    /// Host name (syslog).
    pub hostname: Option<&'a str>,
    /// Program name (syslog APP-NAME / TAG).
    pub process_name: Option<&'a str>,
    /// Syslog PROCID as logged (a number or a name).
    pub proc_id: Option<&'a str>,
    /// Process id.
    pub pid: Option<u32>,
    /// Thread id.
    pub thread_id: Option<u64>,
    /// Source file and line that logged (klog).
    pub origin: Option<(&'a str, u32)>,
    /// Syslog protocol VERSION (RFC 5424).
    pub syslog_version: Option<u8>,
    /// Syslog MSGID.
    pub msg_id: Option<&'a str>,
    /// Syslog STRUCTURED-DATA.
    pub structured_data: Option<&'a str>,

    /// nginx error-log connection number.
    pub connection: Option<u64>,
    /// Apache error-log module.
    pub module: Option<&'a str>,
    /// Apache error code (`AH00124`).
    pub code: Option<&'a str>,

    /// CRI stream.
    pub stream: Option<&'a str>,
    /// CRI partial line.
    pub partial: bool,

    /// Access-format variables without a schema field.
    /// Boxed: a record is half a kilobyte, and only formats with such variables need it, so
    /// the common event stays small and cheap to build.
    pub access_extra: Option<Box<(AccessRecord<'a>, &'a ExtraVars)>>,
    /// JSON or logfmt keys without a schema field.
    pub extra: Vec<(Cow<'a, str>, Extra<'a>)>,
}

/// `source.ip` and `source.port` from an address as logged (`::1`, `1.2.3.4:5678`).
pub fn ip_port(addr: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Some(ip) = ipv4(addr.as_bytes()) {
        return Some((IpAddr::V4(ip), None));
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Some((ip, None));
    }
    addr.parse::<SocketAddr>()
        .ok()
        .map(|s| (s.ip(), Some(s.port())))
}

/// Dotted-quad IPv4, the common client address, read without the general parser. The address
/// is shifted together in a register: bytes stored one by one and read back as a word stall on
/// store forwarding, which cost more than the whole scan.
fn ipv4(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut addr: u32 = 0;
    let mut n = 0;
    let mut v: u32 = 0;
    let mut digits = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                // No leading zeros (as the standard parser), at most three digits.
                if digits == 3 || (digits == 1 && v == 0) {
                    return None;
                }
                v = v * 10 + u32::from(c - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && n < 3 => {
                if v > 255 {
                    return None;
                }
                addr = addr << 8 | v;
                n += 1;
                v = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if n != 3 || digits == 0 || v > 255 {
        return None;
    }
    Some(std::net::Ipv4Addr::from(addr << 8 | v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_agrees_with_std() {
        for s in [
            "1.2.3.4",
            "255.255.255.255",
            "0.0.0.0",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.",
            "",
            "::1",
            "1.2.3.4:80",
            "10.0.0.100",
        ] {
            assert_eq!(ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn ipv4_matches_std_parser(s in "[0-9.]{0,17}") {
            proptest::prop_assert_eq!(ipv4(s.as_bytes()), s.parse().ok());
        }
    }
}
