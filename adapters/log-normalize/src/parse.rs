//! From a line to an [`Event`]: choosing the parser (fixed or detected per line) and mapping its
//! record onto the event's fields. Never fails: a line that does not parse becomes an event with
//! `error` set, and the line itself is always kept.

use std::borrow::Cow;

use podmates_logparse::access::{AccessFormat, unescape};
use podmates_logparse::syslog::{SyslogParser, severity_name};
use podmates_logparse::{
    Family, Request, Timestamp, cri, detect, errorlog, klog, level, logfmt, time,
};

use crate::event::{Event, Extra, ExtraVars, Kind};

/// What `--format` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Detect the format of each line from its first bytes.
    #[default]
    Auto,
    /// nginx `combined` (= Apache `combined` with ident `-`).
    NginxCombined,
    /// nginx `main`: `combined` plus `"$http_x_forwarded_for"`.
    NginxMain,
    /// nginx `error_log`.
    NginxError,
    /// Apache `common` (CLF).
    ApacheCommon,
    /// Apache `combined`.
    ApacheCombined,
    /// Apache `ErrorLog`.
    ApacheError,
    /// Debian's Apache `vhost_combined` (`%v:%p` before `combined`).
    ApacheVhostCombined,
    /// klog, Kubernetes components' format: `I1202 07:00:00.123456 12345 file.go:42] msg`.
    Klog,
    /// RFC 5424, RFC 3164 and rsyslog's file formats.
    Syslog,
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
    /// Container runtime lines (`/var/log/pods`); the message is parsed again with auto-detection.
    Cri,
    /// No parsing: the line is the message.
    Plain,
}

/// An access format with the variables that have no schema field.
#[derive(Debug)]
pub struct Access {
    format: AccessFormat,
    kind: Kind,
    extra: Vec<(usize, Box<str>)>,
}

/// Variables that land in fixed schema fields; every other variable goes to
/// `nginx.access.<name>` (ECS) or an attribute of that name (OTel).
const MAPPED: &[&str] = &[
    "remote_addr",
    "remote_user",
    "remote_ident",
    "time_local",
    "time_iso8601",
    "msec",
    "request",
    "status",
    "body_bytes_sent",
    "http_referer",
    "http_user_agent",
    "request_time",
    "request_time_us",
    "bytes_sent",
    "request_length",
    "request_id",
    "request_log_id",
    "host",
    "http_host",
];

impl Access {
    /// Wraps a compiled format.
    pub fn new(format: AccessFormat, kind: Kind) -> Self {
        let extra = format
            .variables()
            .enumerate()
            .filter(|(_, n)| !MAPPED.contains(n))
            .map(|(s, n)| (s, key_safe(n)))
            .collect();
        Self {
            format,
            kind,
            extra,
        }
    }
}

/// Variable names become JSON keys written without escaping: anything but letters, digits,
/// `_`, `-` and `.` (possible in Apache's `%{Header}i`) becomes `_`.
fn key_safe(name: &str) -> Box<str> {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `--pattern` with its `--timestamp-format`.
#[derive(Debug)]
pub struct Pattern {
    dissect: podmates_logparse::dissect::Dissect,
    timestamp_format: Option<String>,
}

/// Layouts tried for a pattern's time without `--timestamp-format`, after RFC 3339 and epoch
/// numbers: `date`'s default output and the common `yyyy-mm-dd hh:mm:ss` forms.
const DEFAULT_LAYOUTS: &[&str] = &[
    "%a %b %e %H:%M:%S %Z %Y",
    "%a %b %e %H:%M:%S %Y",
    "%F %T",
    "%F %T.%f",
    "%F %T,%f",
    "%Y/%m/%d %T",
    "%d/%b/%Y:%T %z",
];

/// Why `--pattern` or `--timestamp-format` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// The dissect pattern does not compile.
    #[error("{0}")]
    Dissect(#[source] podmates_logparse::dissect::DissectError),
    /// The strftime layout is not valid (the reason, from the layout checker).
    #[error("{0}")]
    TimestampFormat(String),
}

impl Pattern {
    /// Compiles `--pattern` and checks `--timestamp-format`.
    pub fn new(pattern: &str, timestamp_format: Option<String>) -> Result<Self, PatternError> {
        let dissect =
            podmates_logparse::dissect::Dissect::new(pattern).map_err(PatternError::Dissect)?;
        if let Some(f) = &timestamp_format {
            podmates_logparse::strftime::validate(f).map_err(PatternError::TimestampFormat)?;
        }
        Ok(Self {
            dissect,
            timestamp_format,
        })
    }
}

/// The parsers a run uses, built once from the configuration.
#[derive(Debug)]
pub struct Parsers {
    /// `--pattern`, tried first.
    pub pattern: Option<Pattern>,
    /// `--format`.
    pub format: Format,
    /// `--nginx-log-format` / `--apache-log-format`, tried first in auto mode.
    pub custom: Option<Access>,
    nginx_combined: Access,
    combined_ua_slot: usize,
    nginx_main: Access,
    apache_combined: Access,
    apache_common: Access,
    apache_vhost: Access,
    /// Apache `combined` with the referer and agent written as bare `- -`.
    apache_combined_bare: Access,
    /// Syslog year inference and zone.
    pub syslog: SyslogParser,
    /// Offset east of UTC of timestamps logged without a zone (error logs, RFC 3164).
    pub offset: i64,
}

impl Parsers {
    /// Parsers for `format`, with an optional custom access format.
    pub fn new(format: Format, custom: Option<Access>, reference: Timestamp, offset: i64) -> Self {
        let combined = AccessFormat::nginx_combined();
        let combined_ua_slot = combined
            .slot("http_user_agent")
            .expect("combined logs the user agent");
        Self {
            pattern: None,
            format,
            custom,
            nginx_combined: Access::new(combined, Kind::NginxCombined),
            combined_ua_slot,
            nginx_main: Access::new(AccessFormat::nginx_main(), Kind::NginxMain),
            apache_combined: Access::new(AccessFormat::apache_combined(), Kind::ApacheCombined),
            apache_common: Access::new(AccessFormat::apache_common(), Kind::ApacheCommon),
            apache_vhost: Access::new(
                AccessFormat::apache_vhost_combined(),
                Kind::ApacheVhostCombined,
            ),
            apache_combined_bare: Access::new(
                AccessFormat::apache(r#"%h %l %u %t "%r" %>s %O - -"#)
                    .expect("built-in format compiles"),
                Kind::ApacheCombined,
            ),
            syslog: SyslogParser { reference, offset },
            offset,
        }
    }
}

impl Parsers {
    /// Adds `--pattern`, tried on every line first.
    pub fn with_pattern(mut self, pattern: Option<Pattern>) -> Self {
        self.pattern = pattern;
        self
    }
}

/// Remembers the last timestamp text and its conversion: consecutive access-log lines mostly
/// share their second, so most lines skip the date arithmetic.
#[derive(Debug, Default)]
pub struct TimeCache {
    text: String,
    value: Option<Timestamp>,
}

impl TimeCache {
    fn get(
        &mut self,
        text: &str,
        parse: impl FnOnce(&str) -> Option<Timestamp>,
    ) -> Option<Timestamp> {
        if self.text != text {
            self.text.clear();
            self.text.push_str(text);
            self.value = parse(text);
        }
        self.value
    }
}

/// Parses one line into `ev` (a fresh event: filled in place rather than returned, as events
/// are large).
pub fn parse<'a>(p: &'a Parsers, tc: &mut TimeCache, line: &'a str, ev: &mut Event<'a>) {
    ev.original = line;
    // A line the pattern does not match is detected like any other (a stack trace's
    // continuation lines become plain events).
    if let Some(pat) = &p.pattern
        && pattern_line(p, pat, line, ev)
    {
        return;
    }
    match p.format {
        Format::Auto => auto(p, tc, line, ev, true),
        Format::NginxCombined => match &p.custom {
            Some(c) => access(c, tc, line, ev),
            None => {
                if let Some(s) = combined_spans(line) {
                    fill_combined(tc, line, &s, ev);
                } else {
                    access(&p.nginx_combined, tc, line, ev);
                }
            }
        },
        Format::NginxMain => access(p.custom.as_ref().unwrap_or(&p.nginx_main), tc, line, ev),
        Format::ApacheCombined => match &p.custom {
            Some(c) => access(c, tc, line, ev),
            None => {
                if !try_access(&p.apache_combined_bare, tc, line, ev) {
                    access(&p.apache_combined, tc, line, ev);
                }
            }
        },
        Format::ApacheVhostCombined => {
            access(p.custom.as_ref().unwrap_or(&p.apache_vhost), tc, line, ev);
        }
        Format::Klog => klog_line(p, line, ev),
        Format::ApacheCommon => access(p.custom.as_ref().unwrap_or(&p.apache_common), tc, line, ev),
        Format::NginxError => nginx_error(p, line, ev),
        Format::ApacheError => apache_error(p, line, ev),
        Format::Syslog => syslog(p, line, ev),
        Format::Json => json(line, ev),
        Format::Logfmt => logfmt_line(line, ev),
        Format::Cri => cri_line(p, tc, line, ev),
        Format::Plain => plain(line, ev),
    }
}

fn auto<'a>(
    p: &'a Parsers,
    tc: &mut TimeCache,
    line: &'a str,
    ev: &mut Event<'a>,
    allow_cri: bool,
) {
    if let Some(c) = &p.custom
        && try_access(c, tc, line, ev)
    {
        return;
    }
    match detect(line.as_bytes()) {
        Family::Access => {
            // `vhost:port` first: no other access format starts with a port.
            if first_word_has_port(line.as_bytes()) && try_access(&p.apache_vhost, tc, line, ev) {
                return;
            }
            // `combined` first, the most common. A `main` line also matches it, with the user
            // agent swallowing `" "$http_x_forwarded_for`: an unescaped quote in the agent
            // (nginx writes quotes as \x22, Apache as \") gives that away, and `main` is tried.
            if let Some(s) = combined_spans(line) {
                let ua = &line.as_bytes()[s.agent.0..s.agent.1];
                if !(maybe_main(ua) && try_access(&p.nginx_main, tc, line, ev)) {
                    fill_combined(tc, line, &s, ev);
                }
                return;
            }
            if let Ok(r) = p.nginx_combined.format.parse(line) {
                let ua = r.get_slot(p.combined_ua_slot).as_bytes();
                if !(maybe_main(ua) && try_access(&p.nginx_main, tc, line, ev)) {
                    fill_access(&p.nginx_combined, tc, &r, ev);
                }
                return;
            }
            // Apache's combined differs from nginx's only by a non-`-` ident; `common` lacks
            // the last two fields; `vhost_combined` has `vhost:port` first.
            if try_access(&p.apache_combined, tc, line, ev)
                || try_access(&p.apache_combined_bare, tc, line, ev)
                || try_access(&p.apache_vhost, tc, line, ev)
            {
                return;
            }
            access(&p.apache_common, tc, line, ev);
            if let Some(e) = &mut ev.error {
                *e = format!("not nginx-combined, nginx-main or apache-combined; {e}");
            }
        }
        Family::Json => json(line, ev),
        Family::Syslog => syslog(p, line, ev),
        Family::NginxError => nginx_error(p, line, ev),
        Family::ApacheError => apache_error(p, line, ev),
        Family::Cri if allow_cri => cri_line(p, tc, line, ev),
        Family::Logfmt => logfmt_line(line, ev),
        Family::Klog => klog_line(p, line, ev),
        Family::Cri | Family::Plain => plain(line, ev),
    }
}

/// Whether the line's first word is `host:digits` with one colon (Apache's `%v:%p`; an IPv6
/// client address has several).
fn first_word_has_port(b: &[u8]) -> bool {
    let first = &b[..memchr::memchr(b' ', b).unwrap_or(b.len())];
    match memchr::memchr(b':', first) {
        Some(c) => c > 0 && c + 1 < first.len() && first[c + 1..].iter().all(u8::is_ascii_digit),
        None => false,
    }
}

/// A `combined` user agent up to its first unescaped quote: nginx writes quotes inside values
/// as `\x22`, so an unescaped one ends the agent, and what follows is a field `combined` does
/// not have (`"$http_x_forwarded_for"`, `"$gzip_ratio"`), kept in `event.original` only.
fn cut_agent(ua: &str) -> &str {
    match memchr::memchr_iter(b'"', ua.as_bytes())
        .find(|&i| i == 0 || ua.as_bytes()[i - 1] != b'\\')
    {
        Some(i) => &ua[..i],
        None => ua,
    }
}

/// Whether a `combined` user agent holds an unescaped quote, as when it swallowed `main`'s
/// `" "$http_x_forwarded_for`.
fn maybe_main(ua: &[u8]) -> bool {
    memchr::memchr_iter(b'"', ua).any(|i| i == 0 || ua[i - 1] != b'\\')
}

fn plain<'a>(line: &'a str, ev: &mut Event<'a>) {
    ev.kind = Kind::Plain;
    ev.message = Some(Cow::Borrowed(line));
}

fn try_access<'a>(a: &'a Access, tc: &mut TimeCache, line: &'a str, ev: &mut Event<'a>) -> bool {
    match a.format.parse(line) {
        Ok(r) => {
            fill_access(a, tc, &r, ev);
            true
        }
        Err(_) => false,
    }
}

fn access<'a>(a: &'a Access, tc: &mut TimeCache, line: &'a str, ev: &mut Event<'a>) {
    match a.format.parse(line) {
        Ok(r) => fill_access(a, tc, &r, ev),
        Err(e) => {
            ev.kind = a.kind;
            ev.error = Some(format!("{}: {e}", a.kind.label()));
            // Keep the time if the line has a `[time_local]` where the formats put it.
            if let Some(open) = memchr::memchr(b'[', line.as_bytes())
                && let Some(t) = line.get(open + 1..open + 27)
            {
                ev.timestamp = tc.get(t, |t| time::parse_time_local(t).ok());
            }
        }
    }
}

fn fill_access<'a>(
    a: &'a Access,
    tc: &mut TimeCache,
    r: &podmates_logparse::AccessRecord<'a>,
    ev: &mut Event<'a>,
) {
    ev.kind = a.kind;
    ev.source_address = r.remote_addr();
    ev.user_name = r.remote_user().map(unescape);
    if let Some(t) = r.time_text() {
        ev.timestamp = tc.get(t, |_| r.time().and_then(Result::ok));
        if ev.timestamp.is_none() {
            ev.error = Some(format!("{}: invalid time {t:?}", a.kind.label()));
        }
    }
    if let Some(q) = r.request() {
        ev.method = Some(q.method);
        ev.url_original = q.target;
        ev.url_path = q.path.map(unescape);
        ev.url_query = q.query;
        ev.http_version = q.version();
    }
    ev.status = r.status();
    ev.body_bytes = r.body_bytes_sent();
    ev.response_bytes = r.bytes_sent();
    ev.request_bytes = r
        .get("request_length")
        .and_then(present)
        .and_then(|v| v.parse().ok());
    ev.request_id = r
        .get("request_id")
        .or_else(|| r.get("request_log_id"))
        .and_then(present);
    ev.host_header = r
        .get("host")
        .or_else(|| r.get("http_host"))
        .and_then(present);
    ev.referrer = r.referer().map(unescape);
    ev.user_agent = r.user_agent().map(|ua| {
        if a.kind == Kind::NginxCombined {
            unescape(cut_agent(ua))
        } else {
            unescape(ua)
        }
    });
    ev.duration_ns = r
        .request_time()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| (s * 1e9).round() as u64);
    if let Some(s) = ev.status {
        ev.severity = Some(level::severity_of_status(s));
    }
    if !a.extra.is_empty() {
        let extra: &'a ExtraVars = &a.extra;
        ev.access_extra = Some(Box::new((*r, extra)));
    }
}

/// The eight values of an nginx `combined` line, as byte ranges of the line.
struct CombinedSpans {
    addr: (usize, usize),
    user: (usize, usize),
    time: (usize, usize),
    request: (usize, usize),
    status: (usize, usize),
    body: (usize, usize),
    referer: (usize, usize),
    agent: (usize, usize),
}

/// The first `c` in `b[from..]`, as an index into `b`.
#[inline]
fn find_from(c: u8, b: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(c, b.get(from..)?).map(|k| from + k)
}

/// Splits a `combined` line in one pass over its delimiters, for the hot path of
/// `--format nginx-combined`. It gives the same ranges as the compiled format's matcher, but
/// only for regular lines: each delimiter must be the first byte of its kind after the previous
/// value (a quote inside the request or referer, escaped or not, is left to the compiled
/// format), so the first candidate the matcher would try is the one it accepts. `None` means
/// "irregular, use the compiled format", never "does not parse".
fn combined_spans(line: &str) -> Option<CombinedSpans> {
    let b = line.as_bytes();
    // `$remote_addr - `
    let a = find_from(b' ', b, 0)?;
    if b.get(a + 1..a + 3)? != b"- " {
        return None;
    }
    // `$remote_user [`
    let u0 = a + 3;
    let u = find_from(b' ', b, u0)?;
    if *b.get(u + 1)? != b'[' {
        return None;
    }
    // `$time_local] "`
    let t0 = u + 2;
    let t = find_from(b']', b, t0)?;
    if b.get(t + 1..t + 3)? != b" \"" {
        return None;
    }
    // `$request" `: the quote must not be escaped (the matcher would skip it).
    let r0 = t + 3;
    let r = find_from(b'"', b, r0)?;
    if (r > r0 && b[r - 1] == b'\\') || *b.get(r + 1)? != b' ' {
        return None;
    }
    // `$status `
    let s0 = r + 2;
    let s = find_from(b' ', b, s0)?;
    // `$body_bytes_sent "`
    let n0 = s + 1;
    let n = find_from(b' ', b, n0)?;
    if *b.get(n + 1)? != b'"' {
        return None;
    }
    // `$http_referer" "`
    let f0 = n + 2;
    let f = find_from(b'"', b, f0)?;
    if (f > f0 && b[f - 1] == b'\\') || b.get(f + 1..f + 3)? != b" \"" {
        return None;
    }
    // `$http_user_agent"`, anchored at the end of the line like the matcher's last literal.
    let g0 = f + 3;
    if b.len() < g0 + 1 || b[b.len() - 1] != b'"' {
        return None;
    }
    Some(CombinedSpans {
        addr: (0, a),
        user: (u0, u),
        time: (t0, t),
        request: (r0, r),
        status: (s0, s),
        body: (n0, n),
        referer: (f0, f),
        agent: (g0, b.len() - 1),
    })
}

/// `-` and the empty string are how nginx writes "no value".
#[inline]
fn present(v: &str) -> Option<&str> {
    if v.is_empty() || v == "-" {
        None
    } else {
        Some(v)
    }
}

/// [`fill_access`] for the ranges of [`combined_spans`], without the compiled format's record.
fn fill_combined<'a>(tc: &mut TimeCache, line: &'a str, s: &CombinedSpans, ev: &mut Event<'a>) {
    let get = |(a, b): (usize, usize)| &line[a..b];
    let kind = Kind::NginxCombined;
    ev.kind = kind;
    ev.source_address = present(get(s.addr));
    ev.user_name = present(get(s.user)).map(unescape);
    if let Some(t) = present(get(s.time)) {
        ev.timestamp = tc.get(t, |t| time::parse_time_local(t).ok());
        if ev.timestamp.is_none() {
            ev.error = Some(format!("{}: invalid time {t:?}", kind.label()));
        }
    }
    if let Some(q) = Request::parse(get(s.request)) {
        ev.method = Some(q.method);
        ev.url_original = q.target;
        ev.url_path = q.path.map(unescape);
        ev.url_query = q.query;
        ev.http_version = q.version();
    }
    ev.status = present(get(s.status)).and_then(|v| v.parse().ok());
    ev.body_bytes = present(get(s.body)).and_then(|v| v.parse().ok());
    ev.referrer = present(get(s.referer)).map(unescape);
    ev.user_agent = present(get(s.agent)).map(|ua| unescape(cut_agent(ua)));
    if let Some(st) = ev.status {
        ev.severity = Some(level::severity_of_status(st));
    }
}

fn nginx_error<'a>(p: &Parsers, line: &'a str, ev: &mut Event<'a>) {
    ev.kind = Kind::NginxError;
    match errorlog::parse_nginx_error(line, p.offset) {
        Ok(r) => {
            ev.timestamp = Some(r.timestamp);
            ev.level = Some(Cow::Borrowed(r.level));
            ev.severity = level::severity_of(r.level);
            ev.pid = r.pid;
            ev.thread_id = r.tid;
            ev.connection = r.connection;
            ev.message = Some(Cow::Borrowed(r.message));
            ev.source_address = r.client;
            ev.server = r.server;
            ev.host_header = r.host;
            ev.upstream = r.upstream;
            ev.referrer = r.referrer.map(Cow::Borrowed);
            if let Some(q) = r.request.and_then(Request::parse) {
                ev.method = Some(q.method);
                ev.url_original = q.target;
                ev.url_path = q.path.map(unescape);
                ev.url_query = q.query;
                ev.http_version = q.version();
            }
        }
        Err(e) => {
            ev.error = Some(e.to_string());
            ev.timestamp = time::parse_slash_datetime(line.as_bytes(), p.offset).ok();
        }
    }
}

fn apache_error<'a>(p: &Parsers, line: &'a str, ev: &mut Event<'a>) {
    ev.kind = Kind::ApacheError;
    match errorlog::parse_apache_error(line, p.offset) {
        Ok(r) => {
            ev.timestamp = Some(r.timestamp);
            ev.level = Some(Cow::Borrowed(r.level));
            ev.severity = level::severity_of(r.level);
            ev.module = r.module;
            ev.pid = r.pid;
            ev.thread_id = r.tid;
            if let Some(c) = r.client {
                let (addr, port) = errorlog::split_client(c);
                ev.source_address = Some(addr);
                ev.source_port = port;
            }
            ev.code = r.code;
            ev.message = Some(Cow::Borrowed(r.message));
        }
        Err(e) => {
            ev.error = Some(e.to_string());
            ev.timestamp = line
                .get(1..)
                .and_then(|s| time::parse_ctime_prefix(s.as_bytes(), p.offset).ok())
                .map(|(t, _)| t);
        }
    }
}

fn syslog<'a>(p: &Parsers, line: &'a str, ev: &mut Event<'a>) {
    ev.kind = Kind::Syslog;
    match p.syslog.parse(line) {
        Ok(r) => {
            ev.timestamp = r.timestamp;
            ev.priority = r.priority;
            if let Some(sev) = r.severity() {
                ev.level = Some(Cow::Borrowed(severity_name(sev)));
                ev.severity = Some(level::severity_of_syslog(sev));
            }
            ev.hostname = r.hostname;
            ev.process_name = r.app_name;
            ev.pid = r.pid();
            ev.proc_id = r.proc_id;
            ev.syslog_version = r.rfc5424.then_some(1);
            ev.msg_id = r.msg_id;
            ev.structured_data = r.structured_data;
            ev.message = Some(Cow::Borrowed(r.message));
        }
        Err(e) => ev.error = Some(e.to_string()),
    }
}

/// Fills `ev` from `--pattern` when the line matches; `false` leaves `ev` untouched.
fn pattern_line<'a>(p: &Parsers, pat: &'a Pattern, line: &'a str, ev: &mut Event<'a>) -> bool {
    use podmates_logparse::dissect::Conversion;
    let Ok(fields) = pat.dissect.parse(line) else {
        return false;
    };
    ev.kind = Kind::Pattern;
    for (name, value, conv) in fields {
        match name {
            "@timestamp" | "timestamp" | "time" if ev.timestamp.is_none() => {
                let t = match &pat.timestamp_format {
                    Some(f) => {
                        podmates_logparse::strftime::parse(value, f, p.syslog.reference, p.offset)
                            .ok()
                    }
                    None => parse_any_time(value).or_else(|| {
                        DEFAULT_LAYOUTS.iter().find_map(|f| {
                            podmates_logparse::strftime::parse(
                                value,
                                f,
                                p.syslog.reference,
                                p.offset,
                            )
                            .ok()
                        })
                    }),
                };
                ev.timestamp = t;
                if t.is_none() {
                    let expected = match &pat.timestamp_format {
                        Some(f) => format!("--timestamp-format {f:?}"),
                        None => "any known time layout (set --timestamp-format)".to_owned(),
                    };
                    ev.error = Some(format!(
                        "pattern: `{name}` {value:?} does not match {expected}"
                    ));
                    ev.extra
                        .push((Cow::Borrowed(name), Extra::Str(Cow::Borrowed(value))));
                }
            }
            "message" | "msg" if ev.message.is_none() => ev.message = Some(Cow::Borrowed(value)),
            "level" | "log.level" if ev.level.is_none() => set_level(ev, Cow::Borrowed(value)),
            _ => {
                let typed = match conv {
                    Conversion::Text => None,
                    Conversion::Int => value
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .map(serde_json::Value::from),
                    Conversion::Float => value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(serde_json::Value::Number),
                    Conversion::Bool => match value.trim() {
                        "true" | "TRUE" | "True" => Some(serde_json::Value::Bool(true)),
                        "false" | "FALSE" | "False" => Some(serde_json::Value::Bool(false)),
                        _ => None,
                    },
                };
                let v = match typed {
                    Some(v) => Extra::Json(v),
                    // A value that does not convert is kept as text.
                    None => Extra::Str(Cow::Borrowed(value)),
                };
                ev.extra.push((Cow::Borrowed(name), v));
            }
        }
    }
    true
}

fn klog_line<'a>(p: &Parsers, line: &'a str, ev: &mut Event<'a>) {
    ev.kind = Kind::Klog;
    match klog::parse_klog(line, p.syslog.reference, p.offset) {
        Ok(r) => {
            ev.timestamp = Some(r.timestamp);
            ev.level = Some(Cow::Borrowed(r.level));
            ev.severity = level::severity_of(r.level);
            ev.thread_id = Some(r.thread_id);
            ev.origin = Some((r.file, r.line));
            ev.message = Some(Cow::Borrowed(r.message));
        }
        Err(e) => ev.error = Some(e.to_string()),
    }
}

fn cri_line<'a>(p: &'a Parsers, tc: &mut TimeCache, line: &'a str, ev: &mut Event<'a>) {
    match cri::parse_cri(line) {
        Ok(r) => {
            // The container's own line is parsed too: nginx in a pod writes its access log to
            // stdout, and the runtime wraps it in CRI.
            auto(p, tc, r.message, ev, false);
            ev.original = line;
            if ev.kind == Kind::Plain {
                ev.kind = Kind::Cri;
            }
            if ev.timestamp.is_none() {
                ev.timestamp = Some(r.timestamp);
            }
            ev.stream = Some(r.stream);
            ev.partial = r.partial;
        }
        Err(e) => {
            ev.kind = Kind::Cri;
            ev.error = Some(e.to_string());
        }
    }
}

/// Keys apps use for the time, the level and the message.
fn key_role(k: &str) -> Option<u8> {
    match k {
        "@timestamp" | "time" | "timestamp" | "ts" | "t" | "datetime" => Some(0),
        "level" | "lvl" | "severity" | "log.level" | "levelname" | "loglevel" => Some(1),
        "msg" | "message" | "log" => Some(2),
        _ => None,
    }
}

/// A timestamp in a JSON or logfmt value: RFC 3339 text or Unix seconds (or milliseconds,
/// microseconds, nanoseconds, told apart by magnitude).
fn parse_any_time(s: &str) -> Option<Timestamp> {
    if let Ok(t) = time::parse_rfc3339(s, 0) {
        return Some(t);
    }
    // Integers exactly: epoch nanoseconds need 19 digits, more than a double holds.
    if let Ok(n) = s.parse::<u64>() {
        let (per_sec, secs_max) = match n {
            n if n < 100_000_000_000 => (1, n),
            n if n < 100_000_000_000_000 => (1_000, n / 1_000),
            n if n < 100_000_000_000_000_000 => (1_000_000, n / 1_000_000),
            n => (1_000_000_000, n / 1_000_000_000),
        };
        if secs_max > 253_402_300_799 {
            return None;
        }
        let frac = n % per_sec;
        return Some(Timestamp {
            secs: secs_max as i64,
            nanos: (frac * (1_000_000_000 / per_sec)) as u32,
        });
    }
    let f: f64 = s.parse().ok()?;
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    let secs = match f {
        f if f < 1e11 => f,
        f if f < 1e14 => f / 1e3,
        f if f < 1e17 => f / 1e6,
        f => f / 1e9,
    };
    // Up to 9999-12-31T23:59:59Z, the last time RFC 3339 can write.
    if secs > 253_402_300_799.0 {
        return None;
    }
    let whole = secs.trunc();
    Some(Timestamp {
        secs: whole as i64,
        nanos: ((secs - whole) * 1e9).round().min(999_999_999.0) as u32,
    })
}

fn set_level<'a>(ev: &mut Event<'a>, v: Cow<'a, str>) {
    ev.severity = level::severity_of(&v);
    ev.level = Some(v);
}

fn json<'a>(line: &'a str, ev: &mut Event<'a>) {
    ev.kind = Kind::Json;
    let map: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(line) {
        Ok(m) => m,
        Err(e) => {
            ev.error = Some(format!("json: {e}"));
            return;
        }
    };
    for (k, v) in map {
        match (key_role(&k), v) {
            (Some(0), serde_json::Value::String(s)) if ev.timestamp.is_none() => {
                ev.timestamp = parse_any_time(&s);
                if ev.timestamp.is_none() {
                    ev.extra.push((Cow::Owned(k), Extra::Str(Cow::Owned(s))));
                }
            }
            (Some(0), serde_json::Value::Number(n)) if ev.timestamp.is_none() => {
                ev.timestamp = parse_any_time(&n.to_string());
                if ev.timestamp.is_none() {
                    ev.extra
                        .push((Cow::Owned(k), Extra::Json(serde_json::Value::Number(n))));
                }
            }
            (Some(1), serde_json::Value::String(s)) if ev.level.is_none() => {
                set_level(ev, Cow::Owned(s));
            }
            // pino and bunyan write the level as a number.
            (Some(1), serde_json::Value::Number(n))
                if ev.level.is_none()
                    && n.as_u64().and_then(level::severity_of_number).is_some() =>
            {
                set_level(ev, Cow::Owned(n.to_string()));
            }
            (Some(2), serde_json::Value::String(s)) if ev.message.is_none() => {
                ev.message = Some(Cow::Owned(s));
            }
            (_, serde_json::Value::String(s)) => {
                ev.extra.push((Cow::Owned(k), Extra::Str(Cow::Owned(s))));
            }
            (_, v) => ev.extra.push((Cow::Owned(k), Extra::Json(v))),
        }
    }
}

fn logfmt_line<'a>(line: &'a str, ev: &mut Event<'a>) {
    ev.kind = Kind::Logfmt;
    for (k, v) in logfmt::parse_logfmt(line) {
        match key_role(&k) {
            Some(0) if ev.timestamp.is_none() => {
                ev.timestamp = parse_any_time(&v);
                if ev.timestamp.is_none() {
                    ev.extra.push((k, Extra::Str(v)));
                }
            }
            Some(1) if ev.level.is_none() => set_level(ev, v),
            Some(2) if ev.message.is_none() => ev.message = Some(v),
            _ => ev.extra.push((k, Extra::Str(v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event of `line` through `--format nginx-combined` (the one-pass splitter when the line
    /// is regular) and through the compiled `combined` format alone.
    fn both(line: &str) -> (String, String) {
        let p = Parsers::new(
            Format::NginxCombined,
            None,
            Timestamp::from_secs(1_800_000_000),
            0,
        );
        let mut fast = Event::default();
        parse(&p, &mut TimeCache::default(), line, &mut fast);
        let mut generic = Event {
            original: line,
            ..Event::default()
        };
        access(
            &p.nginx_combined,
            &mut TimeCache::default(),
            line,
            &mut generic,
        );
        (format!("{fast:?}"), format!("{generic:?}"))
    }

    #[test]
    fn one_pass_splitter_takes_regular_lines() {
        let line = r#"10.0.0.1 - bob [10/Oct/2023:13:55:36 +0200] "GET /a?b=c HTTP/1.1" 200 512 "http://r/" "curl/8.0 \x22q\x22""#;
        assert!(combined_spans(line).is_some());
        let (fast, generic) = both(line);
        assert_eq!(fast, generic);
        assert!(fast.contains("curl/8.0 \\\"q\\\""), "{fast}");
        // A quote inside the request is left to the compiled format.
        assert!(combined_spans(r#"1 - - [t] "GET /"x" HTTP/1.1" 200 1 "-" "-""#).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn one_pass_splitter_agrees_with_compiled_format_on_any_text(
            line in r#"[ -\[\]"\\a0-9.:/+x]{0,60}"#
        ) {
            let (fast, generic) = both(&line);
            proptest::prop_assert_eq!(fast, generic);
        }

        #[test]
        fn one_pass_splitter_agrees_with_compiled_format_on_combined_lines(
            addr in proptest::prop_oneof![
                8 => r#"(-|[0-9.:a-f]{1,15})"#,
                1 => r#"([0-9 -]{0,6}|\[| - )"#,
            ],
            user in proptest::prop_oneof![8 => r#"(-|[a-z]{0,6})"#, 1 => r#"[a-z \[-]{0,6}"#],
            time in proptest::prop_oneof![
                8 => r#"[0-9]{2}/(Oct|Feb|Xyz)/20[0-9]{2}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}"#,
                1 => r#"([\] "]{0,4}|-|)"#,
            ],
            request in proptest::prop_oneof![
                8 => r#"([A-Z]{0,4} /[a-z?=&\\ %]{0,12}( HTTP/[0-9.]{1,3})?|-|)"#,
                1 => r#"([A-Z]{0,4} [/a-z"\\ ]{0,8}|"|\\"|" )"#,
            ],
            status in proptest::prop_oneof![8 => r#"([0-9]{1,4}|-)"#, 1 => r#"(x| |"|)"#],
            body in proptest::prop_oneof![8 => r#"([0-9]{1,6}|-)"#, 1 => r#"( "|x|)"#],
            referer in proptest::prop_oneof![
                8 => r#"[a-z:/\\ -]{0,8}"#,
                1 => r#"([a-z"\\ ]{0,8}|" "|\\" ")"#,
            ],
            agent in r#"([a-zA-Z/0-9 ."\\()-]{0,16}|\\x22|-)"#,
            tail in proptest::prop_oneof![8 => "", 1 => r#"("| "x")"#],
        ) {
            let line = format!(
                r#"{addr} - {user} [{time}] "{request}" {status} {body} "{referer}" "{agent}"{tail}"#
            );
            let (fast, generic) = both(&line);
            proptest::prop_assert_eq!(fast, generic, "line {:?}", line);
        }
    }
}
