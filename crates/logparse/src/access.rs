//! Access logs: nginx `log_format` and Apache `LogFormat` definitions compiled into parsers.
//!
//! A format is a sequence of literals and variables. Parsing walks the line once: a literal must
//! match where it stands; a variable's value runs up to the next occurrence of the literal that
//! follows it (or, for the format's final literal, up to that literal at the end of the line, so a
//! user agent with quotes in it still parses). Values are borrowed from the line.
//!
//! ```
//! use podmates_logparse::access::AccessFormat;
//!
//! let fmt = AccessFormat::nginx_combined();
//! let line = r#"::1 - - [22/Nov/2026:01:47:31 +0000] "GET /x?y=1 HTTP/1.1" 200 612 "-" "curl/8.5.0""#;
//! let rec = fmt.parse(line).unwrap();
//! assert_eq!(rec.get("remote_addr"), Some("::1"));
//! assert_eq!(rec.status(), Some(200));
//! assert_eq!(rec.request().unwrap().query, Some("y=1"));
//! assert_eq!(rec.time().unwrap().unwrap().to_string(), "2026-11-22T01:47:31Z");
//!
//! let custom = AccessFormat::nginx(r#"$remote_addr [$time_local] "$request" $status $request_time"#).unwrap();
//! let rec = custom.parse(r#"10.0.0.1 [22/Nov/2026:01:47:31 +0000] "GET / HTTP/2.0" 204 0.012"#).unwrap();
//! assert_eq!(rec.request_time(), Some(0.012));
//! ```

use std::fmt;

use crate::request::Request;
use crate::time::{self, TimeError, Timestamp};

/// The most variables one format may hold; spans live in a fixed array so that parsing a line
/// allocates nothing.
pub const MAX_VARIABLES: usize = 64;

/// nginx's built-in `combined` format (also Apache's `combined`).
pub const NGINX_COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// The `main` format of nginx's default `nginx.conf`: `combined` plus `X-Forwarded-For`.
pub const NGINX_MAIN: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#;

/// Apache's `common` (CLF) `LogFormat`.
pub const APACHE_COMMON: &str = r#"%h %l %u %t "%r" %>s %b"#;

/// Apache's `combined` `LogFormat` as Debian and Ubuntu ship it (`apache2.conf`): `%O`, the
/// bytes sent including headers, where upstream's `httpd.conf` has `%b` (body only).
pub const APACHE_COMBINED: &str = r#"%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#;

/// Debian's `vhost_combined`: `combined` after the virtual host and port.
pub const APACHE_VHOST_COMBINED: &str =
    r#"%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#;

/// A format definition that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// The format has no variables at all.
    NoVariables,
    /// More than [`MAX_VARIABLES`] variables.
    TooManyVariables(usize),
    /// `$` or `%` not followed by a name, or `${`/`%{` not closed; the byte offset.
    BadVariable(usize),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVariables => f.write_str("the format has no variables"),
            Self::TooManyVariables(n) => {
                write!(
                    f,
                    "the format has {n} variables, at most {MAX_VARIABLES} are supported"
                )
            }
            Self::BadVariable(at) => write!(f, "malformed variable at byte {at}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// Why a line did not match a format. Cheap to build: parsing is on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError<'f> {
    /// The literal that should follow `after` (a variable name, or `None` at the start) was not
    /// found; `at` is the byte offset where it was expected or searched from.
    ExpectedLiteral {
        /// The literal text, borrowed from the format.
        literal: &'f str,
        /// The variable before it, if any.
        after: Option<&'f str>,
        /// Byte offset in the line.
        at: usize,
    },
    /// The line goes on after the format ended.
    TrailingData {
        /// Byte offset where the extra data starts.
        at: usize,
    },
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExpectedLiteral {
                literal,
                after: Some(v),
                at,
            } => write!(f, "expected {literal:?} after ${v} (from byte {at})"),
            Self::ExpectedLiteral {
                literal,
                after: None,
                at,
            } => write!(f, "expected {literal:?} at byte {at}"),
            Self::TrailingData { at } => write!(f, "unexpected data after the format at byte {at}"),
        }
    }
}

impl std::error::Error for ParseError<'_> {}

#[derive(Debug, Clone)]
enum Item {
    /// Literal text, owned by the format: errors borrow it from there, so compiling a format
    /// any number of times (a fuzzer, a config reload) holds no memory once the format is gone.
    Lit(Box<str>),
    /// A variable, by its slot.
    Var(usize),
}

/// Slots of the variables the typed accessors use, resolved once at compile time.
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    remote_addr: Option<usize>,
    remote_user: Option<usize>,
    time_local: Option<usize>,
    time_iso8601: Option<usize>,
    msec: Option<usize>,
    request: Option<usize>,
    request_method: Option<usize>,
    request_uri: Option<usize>,
    server_protocol: Option<usize>,
    status: Option<usize>,
    body_bytes_sent: Option<usize>,
    bytes_sent: Option<usize>,
    http_referer: Option<usize>,
    http_user_agent: Option<usize>,
    http_x_forwarded_for: Option<usize>,
    request_time: Option<usize>,
    request_time_us: Option<usize>,
    upstream_response_time: Option<usize>,
}

/// A compiled access-log format. Compile once, parse many lines; `Send + Sync`.
#[derive(Debug, Clone)]
pub struct AccessFormat {
    items: Vec<Item>,
    /// Variable names by slot (nginx names; Apache directives are mapped to nginx names).
    names: Vec<Box<str>>,
    known: Known,
    /// Whether the literal after each slot's variable is searched quote-aware (the variable is
    /// inside double quotes, where Apache writes `\"`).
    quoted: Vec<bool>,
}

impl AccessFormat {
    /// Compiles an nginx `log_format` string: `$name` or `${name}` are variables, everything
    /// else is literal. `\"` and `\\` (as copied from a double-quoted nginx.conf string) are
    /// unescaped.
    pub fn nginx(format: &str) -> Result<Self, FormatError> {
        let b = format.as_bytes();
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if matches!(b.get(i + 1), Some(b'"' | b'\\' | b'\'')) => {
                    lit.push(b[i + 1] as char);
                    i += 2;
                }
                b'$' => {
                    let (name, next) = if b.get(i + 1) == Some(&b'{') {
                        let end = format[i + 2..]
                            .find('}')
                            .ok_or(FormatError::BadVariable(i))?;
                        (&format[i + 2..i + 2 + end], i + 3 + end)
                    } else {
                        let len = b[i + 1..]
                            .iter()
                            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                            .count();
                        (&format[i + 1..i + 1 + len], i + 1 + len)
                    };
                    if name.is_empty() {
                        return Err(FormatError::BadVariable(i));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(name.to_owned()));
                    i = next;
                }
                _ => {
                    let ch = format[i..].chars().next().unwrap_or(' ');
                    lit.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Self::from_parts(parts)
    }

    /// Compiles an Apache `LogFormat` string. Directives are mapped to the nginx variable names
    /// the accessors use: `%h`/`%a` → `remote_addr`, `%u` → `remote_user`, `%t` →
    /// `[` `time_local` `]`, `%r` → `request`, `%s`/`%>s` → `status`, `%b` → `body_bytes_sent`,
    /// `%O` → `bytes_sent`, `%{Name}i` → `http_name` (lower case, `-` → `_`), `%D` →
    /// `request_time_us`, `%T` → `request_time`, `%m`, `%U`, `%q`, `%H`, `%v`, `%l`, ... Unknown
    /// directives keep their letter as name (`%X` → `apache_X`).
    pub fn apache(format: &str) -> Result<Self, FormatError> {
        let b = format.as_bytes();
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if matches!(b.get(i + 1), Some(b'"' | b'\\')) => {
                    lit.push(b[i + 1] as char);
                    i += 2;
                }
                b'\\' if b.get(i + 1) == Some(&b't') => {
                    lit.push('\t');
                    i += 2;
                }
                b'%' if b.get(i + 1) == Some(&b'%') => {
                    lit.push('%');
                    i += 2;
                }
                b'%' => {
                    let start = i;
                    i += 1;
                    // Modifiers: `<`, `>`, `!`, status lists like `400,501`.
                    while i < b.len() && matches!(b[i], b'<' | b'>' | b'!' | b',' | b'0'..=b'9') {
                        i += 1;
                    }
                    let mut arg = None;
                    if b.get(i) == Some(&b'{') {
                        let end = format[i + 1..]
                            .find('}')
                            .ok_or(FormatError::BadVariable(start))?;
                        arg = Some(&format[i + 1..i + 1 + end]);
                        i += end + 2;
                    }
                    let Some(&d) = b.get(i) else {
                        return Err(FormatError::BadVariable(start));
                    };
                    if !d.is_ascii_alphabetic() {
                        return Err(FormatError::BadVariable(start));
                    }
                    i += 1;
                    if d == b't' && arg.is_none() {
                        // `%t` writes its own brackets.
                        lit.push('[');
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                        parts.push(Part::Var("time_local".to_owned()));
                        lit.push(']');
                        continue;
                    }
                    let name = apache_name(d, arg);
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(name));
                }
                _ => {
                    let ch = format[i..].chars().next().unwrap_or(' ');
                    lit.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Self::from_parts(parts)
    }

    /// nginx's built-in `combined`.
    pub fn nginx_combined() -> Self {
        Self::nginx(NGINX_COMBINED).expect("built-in format compiles")
    }

    /// The `main` format of nginx's default configuration.
    pub fn nginx_main() -> Self {
        Self::nginx(NGINX_MAIN).expect("built-in format compiles")
    }

    /// Apache `common`.
    pub fn apache_common() -> Self {
        Self::apache(APACHE_COMMON).expect("built-in format compiles")
    }

    /// Apache `combined`.
    pub fn apache_combined() -> Self {
        Self::apache(APACHE_COMBINED).expect("built-in format compiles")
    }

    /// Debian's Apache `vhost_combined`.
    pub fn apache_vhost_combined() -> Self {
        Self::apache(APACHE_VHOST_COMBINED).expect("built-in format compiles")
    }

    fn from_parts(parts: Vec<Part>) -> Result<Self, FormatError> {
        let mut items = Vec::with_capacity(parts.len());
        let mut names: Vec<Box<str>> = Vec::new();
        let mut quoted = Vec::new();
        let mut prev_lit_ends_quote = false;
        for p in parts {
            match p {
                Part::Lit(s) => {
                    prev_lit_ends_quote = s.ends_with('"');
                    items.push(Item::Lit(s.into_boxed_str()));
                }
                Part::Var(name) => {
                    items.push(Item::Var(names.len()));
                    names.push(name.into_boxed_str());
                    quoted.push(prev_lit_ends_quote);
                    prev_lit_ends_quote = false;
                }
            }
        }
        if names.is_empty() {
            return Err(FormatError::NoVariables);
        }
        if names.len() > MAX_VARIABLES {
            return Err(FormatError::TooManyVariables(names.len()));
        }
        let slot = |n: &str| names.iter().position(|x| **x == *n);
        let known = Known {
            remote_addr: slot("remote_addr"),
            remote_user: slot("remote_user"),
            time_local: slot("time_local"),
            time_iso8601: slot("time_iso8601"),
            msec: slot("msec"),
            request: slot("request"),
            request_method: slot("request_method"),
            request_uri: slot("request_uri"),
            server_protocol: slot("server_protocol"),
            status: slot("status"),
            body_bytes_sent: slot("body_bytes_sent"),
            bytes_sent: slot("bytes_sent"),
            http_referer: slot("http_referer"),
            http_user_agent: slot("http_user_agent"),
            http_x_forwarded_for: slot("http_x_forwarded_for"),
            request_time: slot("request_time"),
            request_time_us: slot("request_time_us"),
            upstream_response_time: slot("upstream_response_time"),
        };
        Ok(Self {
            items,
            names,
            known,
            quoted,
        })
    }

    /// The variable names, in the order they appear (nginx names, without `$`).
    pub fn variables(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.names.iter().map(|n| &**n)
    }

    /// The slot of a variable, for [`AccessRecord::get_slot`] on a hot path.
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| **n == *name)
    }

    /// Parses one line (without its newline).
    pub fn parse<'a>(&'a self, line: &'a str) -> Result<AccessRecord<'a>, ParseError<'a>> {
        let b = line.as_bytes();
        let mut spans = [(0u32, 0u32); MAX_VARIABLES];
        let mut pos = 0usize;
        let n = self.items.len();
        let mut i = 0;
        while i < n {
            match &self.items[i] {
                Item::Lit(l) => {
                    if !starts_with(&b[pos..], l.as_bytes()) {
                        return Err(ParseError::ExpectedLiteral {
                            literal: l,
                            after: self.var_before(i),
                            at: pos,
                        });
                    }
                    pos += l.len();
                }
                Item::Var(slot) => {
                    let end = match self.items.get(i + 1) {
                        None => b.len(),
                        Some(Item::Lit(l)) if i + 2 == n => {
                            // The final literal anchors at the end of the line.
                            if b.len() >= pos + l.len() && b.ends_with(l.as_bytes()) {
                                b.len() - l.len()
                            } else {
                                return Err(ParseError::ExpectedLiteral {
                                    literal: l,
                                    after: Some(&self.names[*slot]),
                                    at: pos,
                                });
                            }
                        }
                        Some(Item::Lit(l)) => {
                            find_literal(b, pos, l.as_bytes(), self.quoted[*slot]).ok_or(
                                ParseError::ExpectedLiteral {
                                    literal: l,
                                    after: Some(&self.names[*slot]),
                                    at: pos,
                                },
                            )?
                        }
                        // Two variables with nothing between: split at the next space.
                        Some(Item::Var(_)) => {
                            memchr::memchr(b' ', &b[pos..]).map_or(b.len(), |k| pos + k)
                        }
                    };
                    spans[*slot] = (pos as u32, end as u32);
                    pos = end;
                }
            }
            i += 1;
        }
        if pos != b.len() {
            return Err(ParseError::TrailingData { at: pos });
        }
        Ok(AccessRecord {
            line,
            format: self,
            spans,
        })
    }

    fn var_before(&self, item: usize) -> Option<&str> {
        match item.checked_sub(1).map(|k| &self.items[k]) {
            Some(Item::Var(s)) => Some(&self.names[*s]),
            _ => None,
        }
    }
}

/// The first `c` in `b`: a plain loop over the first bytes (most values end within a few bytes,
/// where a SIMD search costs more to set up than it saves), `memchr` beyond.
#[inline]
fn find_byte(c: u8, b: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    let head = &b[..b.len().min(SHORT)];
    if let Some(i) = head.iter().position(|x| *x == c) {
        return Some(i);
    }
    if b.len() <= SHORT {
        return None;
    }
    memchr::memchr(c, &b[SHORT..]).map(|i| i + SHORT)
}

/// `b.starts_with(p)` for the short literals of log formats, without a `memcmp` call.
#[inline]
fn starts_with(b: &[u8], p: &[u8]) -> bool {
    b.len() >= p.len() && b.iter().zip(p).all(|(x, y)| x == y)
}

/// Finds `lit` in `b[from..]`; when `quoted`, a `"` preceded by an odd number of backslashes is
/// an escaped quote inside the value and is skipped.
fn find_literal(b: &[u8], from: usize, lit: &[u8], quoted: bool) -> Option<usize> {
    let first = lit[0];
    let mut at = from;
    while let Some(k) = find_byte(first, &b[at..]) {
        let cand = at + k;
        if starts_with(&b[cand..], lit) {
            let escaped = quoted
                && first == b'"'
                && b[from..cand]
                    .iter()
                    .rev()
                    .take_while(|c| **c == b'\\')
                    .count()
                    % 2
                    == 1;
            if !escaped {
                return Some(cand);
            }
        }
        at = cand + 1;
    }
    None
}

enum Part {
    Lit(String),
    Var(String),
}

fn apache_name(d: u8, arg: Option<&str>) -> String {
    let fixed = match d {
        b'h' | b'a' => "remote_addr",
        b'A' => "server_addr",
        b'l' => "remote_ident",
        b'u' => "remote_user",
        b'r' => "request",
        b's' => "status",
        b'b' => "body_bytes_sent",
        b'B' => "body_bytes_sent",
        b'O' => "bytes_sent",
        b'I' => "request_length",
        b'D' => "request_time_us",
        b'T' => "request_time",
        b'm' => "request_method",
        b'U' => "uri",
        b'q' => "args",
        b'H' => "server_protocol",
        b'v' | b'V' => "server_name",
        b'p' => "server_port",
        b'P' => "pid",
        b'f' => "request_filename",
        b'L' => "request_log_id",
        b'X' => "connection_status",
        b'k' => "keepalive_requests",
        b'R' => "handler",
        b'i' => {
            return format!(
                "http_{}",
                arg.unwrap_or("").to_ascii_lowercase().replace('-', "_")
            );
        }
        b'o' => {
            return format!(
                "sent_http_{}",
                arg.unwrap_or("").to_ascii_lowercase().replace('-', "_")
            );
        }
        b'C' => return format!("cookie_{}", arg.unwrap_or("")),
        b'e' => return format!("env_{}", arg.unwrap_or("")),
        b'n' => return format!("note_{}", arg.unwrap_or("")),
        b't' => "time",
        _ => return format!("apache_{}", d as char),
    };
    fixed.to_owned()
}

/// One parsed access-log line: values borrowed from the line, looked up by variable name.
#[derive(Clone, Copy)]
pub struct AccessRecord<'a> {
    line: &'a str,
    format: &'a AccessFormat,
    spans: [(u32, u32); MAX_VARIABLES],
}

impl fmt::Debug for AccessRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.fields()).finish()
    }
}

/// `-` and the empty string are how nginx and Apache write "no value".
fn present(v: &str) -> Option<&str> {
    if v.is_empty() || v == "-" {
        None
    } else {
        Some(v)
    }
}

impl<'a> AccessRecord<'a> {
    /// The value of a variable exactly as logged (`-` included), by nginx name without `$`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.format.slot(name).map(|s| self.get_slot(s))
    }

    /// The value of the variable in `slot` (see [`AccessFormat::slot`]). Panics if `slot` is not
    /// a slot of this record's format.
    pub fn get_slot(&self, slot: usize) -> &'a str {
        let (s, e) = self.spans[slot];
        &self.line[s as usize..e as usize]
    }

    fn known(&self, slot: Option<usize>) -> Option<&'a str> {
        slot.map(|s| self.get_slot(s))
    }

    fn known_present(&self, slot: Option<usize>) -> Option<&'a str> {
        self.known(slot).and_then(present)
    }

    /// Every variable with its value as logged, in format order.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.format
            .names
            .iter()
            .enumerate()
            .map(|(s, n)| (&**n, self.get_slot(s)))
    }

    /// The whole line.
    pub fn line(&self) -> &'a str {
        self.line
    }

    /// `$remote_addr`, unless `-`.
    pub fn remote_addr(&self) -> Option<&'a str> {
        self.known_present(self.format.known.remote_addr)
    }

    /// `$remote_user`, unless `-`.
    pub fn remote_user(&self) -> Option<&'a str> {
        self.known_present(self.format.known.remote_user)
    }

    /// The raw `$time_local` (or `$time_iso8601`, or `$msec`) text.
    pub fn time_text(&self) -> Option<&'a str> {
        let k = &self.format.known;
        self.known_present(k.time_local)
            .or_else(|| self.known_present(k.time_iso8601))
            .or_else(|| self.known_present(k.msec))
    }

    /// The request time in UTC, from `$time_local`, `$time_iso8601` or `$msec` (the first the
    /// format has). `None` when the format has none of them.
    pub fn time(&self) -> Option<Result<Timestamp, TimeError>> {
        let k = &self.format.known;
        if let Some(t) = self.known_present(k.time_local) {
            return Some(time::parse_time_local(t));
        }
        if let Some(t) = self.known_present(k.time_iso8601) {
            return Some(time::parse_rfc3339(t, 0));
        }
        self.known_present(k.msec).map(time::parse_epoch_seconds)
    }

    /// `$request` split into method, target, path, query and protocol; or, when the format logs
    /// them separately, `$request_method`, `$request_uri` and `$server_protocol`.
    pub fn request(&self) -> Option<Request<'a>> {
        let k = &self.format.known;
        if let Some(r) = self.known(k.request) {
            return Request::parse(r);
        }
        let method = self.known_present(k.request_method)?;
        let target = self.known_present(k.request_uri);
        let (path, query) = match target.map(|t| (t, memchr::memchr(b'?', t.as_bytes()))) {
            Some((t, Some(i))) => (Some(&t[..i]), Some(&t[i + 1..])),
            Some((t, None)) => (Some(t), None),
            None => (None, None),
        };
        Some(Request {
            method,
            target,
            path,
            query,
            protocol: self.known_present(k.server_protocol),
        })
    }

    /// `$status` as a number.
    pub fn status(&self) -> Option<u16> {
        self.known_present(self.format.known.status)
            .and_then(|s| s.parse().ok())
    }

    /// `$body_bytes_sent` (Apache `%b`/`%B`) as a number; `-` (Apache's zero) is `None`.
    pub fn body_bytes_sent(&self) -> Option<u64> {
        self.known_present(self.format.known.body_bytes_sent)
            .and_then(|s| s.parse().ok())
    }

    /// `$bytes_sent` (Apache `%O`) as a number.
    pub fn bytes_sent(&self) -> Option<u64> {
        self.known_present(self.format.known.bytes_sent)
            .and_then(|s| s.parse().ok())
    }

    /// `$http_referer`, unless `-`.
    pub fn referer(&self) -> Option<&'a str> {
        self.known_present(self.format.known.http_referer)
    }

    /// `$http_user_agent`, unless `-`.
    pub fn user_agent(&self) -> Option<&'a str> {
        self.known_present(self.format.known.http_user_agent)
    }

    /// `$http_x_forwarded_for`, unless `-`.
    pub fn x_forwarded_for(&self) -> Option<&'a str> {
        self.known_present(self.format.known.http_x_forwarded_for)
    }

    /// `$request_time` in seconds (nginx: `0.012`; Apache `%T`: whole seconds, `%D`:
    /// microseconds).
    pub fn request_time(&self) -> Option<f64> {
        let k = &self.format.known;
        if let Some(v) = self.known_present(k.request_time) {
            return v.parse().ok();
        }
        self.known_present(k.request_time_us)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|us| us as f64 / 1e6)
    }

    /// `$upstream_response_time` in seconds, summed over every upstream tried (nginx writes
    /// `0.010, 0.020` when it retried and `0.010 : 0.020` across internal redirects); `-`
    /// entries (no response) are skipped. `None` if no entry has a time.
    pub fn upstream_response_time(&self) -> Option<f64> {
        let v = self.known_present(self.format.known.upstream_response_time)?;
        sum_seconds(v)
    }

    /// A variable's value as seconds (`0.012`, or a list as in
    /// [`upstream_response_time`](Self::upstream_response_time)).
    pub fn seconds(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(present).and_then(sum_seconds)
    }
}

/// Undoes the escaping servers apply inside quoted values: Apache's `\"` and `\\`, nginx's
/// `\xHH` (bytes that are not printable ASCII, `"` and `\`). Borrows when there is nothing to
/// undo; bytes that do not form UTF-8 are replaced lossily.
pub fn unescape(s: &str) -> std::borrow::Cow<'_, str> {
    let b = s.as_bytes();
    let Some(first) = memchr::memchr(b'\\', b) else {
        return std::borrow::Cow::Borrowed(s);
    };
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..first]);
    let mut i = first;
    while i < b.len() {
        let c = b[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let hex = |k: usize| b.get(k).and_then(|c| (*c as char).to_digit(16));
        match (b.get(i + 1), hex(i + 2), hex(i + 3)) {
            (Some(b'"'), _, _) => {
                out.push(b'"');
                i += 2;
            }
            (Some(b'\\'), _, _) => {
                out.push(b'\\');
                i += 2;
            }
            (Some(b'x'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 4;
            }
            _ => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => std::borrow::Cow::Owned(s),
        Err(e) => std::borrow::Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn sum_seconds(v: &str) -> Option<f64> {
    let mut total = None;
    for part in v.split([',', ':']) {
        if let Ok(x) = part.trim().parse::<f64>() {
            *total.get_or_insert(0.0) += x;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"192.0.2.1 - alice [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?a=1 HTTP/1.0" 200 2326 "http://example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    #[test]
    fn combined() {
        let f = AccessFormat::nginx_combined();
        let r = f.parse(LINE).unwrap();
        assert_eq!(r.remote_addr(), Some("192.0.2.1"));
        assert_eq!(r.remote_user(), Some("alice"));
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.body_bytes_sent(), Some(2326));
        assert_eq!(r.referer(), Some("http://example.com/start.html"));
        assert_eq!(r.user_agent(), Some("Mozilla/4.08 [en] (Win98; I ;Nav)"));
        let q = r.request().unwrap();
        assert_eq!(
            (q.method, q.path, q.query),
            ("GET", Some("/apache_pb.gif"), Some("a=1"))
        );
        assert_eq!(
            r.time().unwrap().unwrap().to_string(),
            "2000-10-10T20:55:36Z"
        );
        assert_eq!(
            f.variables().collect::<Vec<_>>(),
            [
                "remote_addr",
                "remote_user",
                "time_local",
                "request",
                "status",
                "body_bytes_sent",
                "http_referer",
                "http_user_agent"
            ]
        );
    }

    #[test]
    fn apache_maps_to_the_same_names() {
        let f = AccessFormat::apache_combined();
        let r = f.parse(LINE).unwrap();
        assert_eq!(r.get("remote_ident"), Some("-"));
        assert_eq!(r.user_agent(), Some("Mozilla/4.08 [en] (Win98; I ;Nav)"));
        assert_eq!(r.status(), Some(200));
        let line = r#"::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 304 -"#;
        let common = AccessFormat::apache_common();
        let r = common.parse(line).unwrap();
        assert_eq!((r.body_bytes_sent(), r.remote_addr()), (None, Some("::1")));
    }

    #[test]
    fn escaped_quotes_inside_values() {
        let line = r#"::1 - - [10/Oct/2000:13:55:36 -0700] "GET /\"x\" HTTP/1.1" 200 1 "-" "a \"quoted\" agent""#;
        let f = AccessFormat::apache_combined();
        let r = f.parse(line).unwrap();
        assert_eq!(r.request().unwrap().path, Some(r#"/\"x\""#));
        assert_eq!(r.user_agent(), Some(r#"a \"quoted\" agent"#));
    }

    #[test]
    fn custom_with_times() {
        let f = AccessFormat::nginx(
            r#"$remote_addr [$time_iso8601] "$request" $status rt=$request_time urt="$upstream_response_time""#,
        )
        .unwrap();
        let r = f
            .parse(r#"2001:db8::1 [2026-11-22T01:47:31+01:00] "GET / HTTP/2.0" 502 rt=0.250 urt="0.100, 0.050 : -""#)
            .unwrap();
        assert_eq!(r.request_time(), Some(0.25));
        assert!((r.upstream_response_time().unwrap() - 0.15).abs() < 1e-9);
        assert_eq!(
            r.time().unwrap().unwrap().to_string(),
            "2026-11-22T00:47:31Z"
        );
        assert_eq!(r.request().unwrap().version(), Some("2.0"));
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape(r#"a \"q\" \\ \x22x\x5C"#), r#"a "q" \ "x\"#);
        assert!(matches!(
            unescape("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
        assert_eq!(unescape(r"\xff\x"), "\u{fffd}\\x");
    }

    #[test]
    fn errors() {
        let f = AccessFormat::nginx_combined();
        assert!(matches!(
            f.parse("garbage"),
            Err(ParseError::ExpectedLiteral { .. })
        ));
        assert!(f.parse("").is_err());
        assert_eq!(
            AccessFormat::nginx("plain").unwrap_err(),
            FormatError::NoVariables
        );
        assert!(AccessFormat::nginx("${x").is_err());
        assert!(AccessFormat::nginx("$ x").is_err());
        let e = f
            .parse(r#"1.2.3.4 - - [x] "GET / HTTP/1.1" 200"#)
            .unwrap_err();
        assert!(e.to_string().contains("after $status"), "{e}");
    }
}
