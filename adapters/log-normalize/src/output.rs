//! Writing an [`Event`] as one JSON line in the chosen schema.

use crate::event::{Event, Extra, Kind, ip_port};
use crate::json::{self, Nested};
use podmates_logparse::Timestamp;
use podmates_logparse::syslog::severity_name;
use podmates_logparse::time::write_rfc3339_seconds;

/// The output schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Schema {
    /// Elastic Common Schema: nested objects (`{"http":{"request":{"method":"GET"}}}`).
    #[default]
    Ecs,
    /// OpenTelemetry log data model as OTLP JSON log records.
    Otel,
}

/// Why an `--add-field` or `--add-resource` entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddFieldError {
    /// No `=`.
    #[error("`{0}` is not key=value")]
    NoValue(String),
    /// Not a dotted name.
    #[error("`{0}`: keys are dotted names of letters, digits, `_`, `-`, `@`")]
    BadKey(String),
    /// A key the schema writes itself.
    #[error("`{key}`: `{reserved}` is written by log-normalize itself; choose another key")]
    Reserved {
        /// The key given.
        key: String,
        /// The field it would overwrite.
        reserved: &'static str,
    },
}

/// A `--add-field` entry: a dotted path and a string value.
#[derive(Debug, Clone)]
pub struct AddField {
    /// The path split at dots (ECS nests them; OTel uses the dotted key).
    pub path: Vec<&'static str>,
    /// The dotted key.
    pub key: &'static str,
    /// The value.
    pub value: String,
}

impl AddField {
    /// Parses `key=value`; the key is made of letters, digits, `_`, `-`, `@` and dots.
    pub fn parse(s: &str) -> Result<Self, AddFieldError> {
        Self::parse_with(s, RESERVED)
    }

    /// Parses an `--add-resource` `key=value`: the same keys, none reserved (the Resource holds
    /// only the line's `host.name` and `service.name` otherwise, and those win).
    pub fn parse_resource(s: &str) -> Result<Self, AddFieldError> {
        Self::parse_with(s, &[])
    }

    fn parse_with(s: &str, reserved: &[&'static str]) -> Result<Self, AddFieldError> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| AddFieldError::NoValue(s.to_owned()))?;
        let ok = !k.is_empty()
            && k.split('.').all(|seg| {
                !seg.is_empty()
                    && seg
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'@'))
            });
        if !ok {
            return Err(AddFieldError::BadKey(k.to_owned()));
        }
        if let Some(r) = reserved.iter().find(|r| {
            k == **r
                || k.strip_prefix(**r)
                    .is_some_and(|rest| rest.starts_with('.'))
        }) {
            return Err(AddFieldError::Reserved {
                key: k.to_owned(),
                reserved: r,
            });
        }
        // Leaked once per `--add-field`/`--add-resource` flag, parsed at start-up only (main.rs),
        // so the memory is bounded by the command line; `&'static` lets the writers' key paths
        // (json.rs `Nested`) take these keys and the built-in ones alike.
        let key: &'static str = Box::leak(k.to_owned().into_boxed_str());
        Ok(Self {
            path: key.split('.').collect(),
            key,
            value: v.to_owned(),
        })
    }
}

/// Top-level ECS objects that `--add-field` entries may extend (written inside them, so an
/// object is never opened twice); other first segments become objects of their own at the end.
const GROUPS: &[&str] = &[
    "event",
    "error",
    "log",
    "source",
    "user",
    "http",
    "url",
    "user_agent",
    "host",
    "process",
];
const G_EVENT: usize = 0;
const G_ERROR: usize = 1;
const G_LOG: usize = 2;
const G_SOURCE: usize = 3;
const G_USER: usize = 4;
const G_HTTP: usize = 5;
const G_URL: usize = 6;
const G_USER_AGENT: usize = 7;
const G_HOST: usize = 8;
const G_PROCESS: usize = 9;
const OTHER: usize = GROUPS.len();

/// What `--add-field` may not name: fields and objects this program writes itself (a duplicate
/// key would make the line ambiguous JSON).
const RESERVED: &[&str] = &[
    "@timestamp",
    "message",
    "stream",
    "tags",
    "ecs",
    "nginx",
    "apache",
    "json",
    "logfmt",
    "cri",
    "plain",
    "klog",
    "pattern",
    "syslog",
    "event.original",
    "event.dataset",
    "event.duration",
    "event.kind",
    "event.category",
    "event.type",
    "event.outcome",
    "error.message",
    "log.level",
    "log.partial",
    "log.syslog",
    "log.origin",
    "source.address",
    "source.ip",
    "source.port",
    "user.name",
    "http.request",
    "http.response",
    "http.version",
    "url.original",
    "url.path",
    "url.query",
    "url.domain",
    "url.port",
    "user_agent.original",
    "host.hostname",
    "process.name",
    "process.pid",
    "process.thread",
];

/// An OTLP attribute key with its opening (see [`Key`]), built at compile time.
macro_rules! k {
    ($key:literal) => {
        Key {
            name: $key,
            opening: Some(concat!("{\"key\":\"", $key, "\",\"value\":")),
        }
    };
}

/// `-` and the empty string are "no value" in access logs.
fn present(v: &str) -> bool {
    !v.is_empty() && v != "-"
}

/// Writes `,` unless the object has no member yet, then `k` (a key with its quotes and colon,
/// possibly followed by an opening brace or a constant value).
#[inline]
fn key(out: &mut Vec<u8>, first: &mut bool, k: &[u8]) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.extend_from_slice(k);
}

/// Formats RFC 3339 seconds once per distinct second.
#[derive(Debug, Default)]
struct SecondCache {
    secs: Option<i64>,
    text: Vec<u8>,
}

impl SecondCache {
    fn write(&mut self, t: Timestamp, out: &mut Vec<u8>) {
        if self.secs != Some(t.secs) {
            self.text.clear();
            write_rfc3339_seconds(t.secs, &mut self.text);
            self.secs = Some(t.secs);
        }
        out.extend_from_slice(&self.text);
        podmates_logparse::time::write_fraction(t.nanos, out);
        out.push(b'Z');
    }
}

/// Writes events; holds what is reused from line to line.
#[derive(Debug)]
pub struct Writer {
    schema: Schema,
    /// `--add-field`s by index into [`GROUPS`] (last: others, written at the end).
    add_by_group: Vec<Vec<AddField>>,
    add: Vec<AddField>,
    nested: Nested,
    seconds: SecondCache,
    /// `--add-resource`s (OTel).
    resource: Vec<AddField>,
    /// The keys of the attribute array being written (OTel), reused from line to line.
    seen: Vec<&'static str>,
}

impl Writer {
    /// A writer for `schema` adding `add` to every line.
    pub fn new(schema: Schema, add: Vec<AddField>) -> Self {
        let mut add_by_group = vec![Vec::new(); GROUPS.len() + 1];
        for a in &add {
            let g = GROUPS
                .iter()
                .position(|g| *g == a.path[0])
                .unwrap_or(GROUPS.len());
            add_by_group[g].push(a.clone());
        }
        for g in &mut add_by_group {
            g.sort_by(|a, b| a.path.cmp(&b.path));
        }
        Self {
            schema,
            add_by_group,
            add,
            nested: Nested::default(),
            seconds: SecondCache::default(),
            resource: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Appends the event as one JSON line (with its newline). `observed` is when it was read.
    pub fn write(&mut self, ev: &Event<'_>, observed: Timestamp, out: &mut Vec<u8>) {
        match self.schema {
            Schema::Ecs => self.ecs(ev, observed, out),
            Schema::Otel => self.otel(ev, observed, out),
        }
        out.push(b'\n');
    }

    /// Adds `--add-resource`s: attributes of every OTel record's Resource.
    pub fn with_resource(mut self, resource: Vec<AddField>) -> Self {
        self.resource = resource;
        self
    }

    fn has(&self, g: usize) -> bool {
        !self.add_by_group[g].is_empty()
    }

    /// Writes group `g`'s `--add-field`s inside the object being written (`first`: whether it
    /// has no member yet). Top-level fields of unknown groups keep their whole path.
    #[inline]
    fn adds(&mut self, g: usize, out: &mut Vec<u8>, first: &mut bool) {
        if !self.add_by_group[g].is_empty() {
            self.adds_slow(g, out, first);
        }
    }

    #[cold]
    fn adds_slow(&mut self, g: usize, out: &mut Vec<u8>, first: &mut bool) {
        let skip = usize::from(g != OTHER);
        self.nested.resume(!*first);
        for a in &self.add_by_group[g] {
            self.nested.str(out, &a.path[skip..], &a.value);
        }
        self.nested.close_inner(out);
        *first = false;
    }

    /// ECS, written object by object with fixed key fragments: the common case (access logs)
    /// costs a few copies per field and no key comparisons.
    fn ecs(&mut self, ev: &Event<'_>, observed: Timestamp, out: &mut Vec<u8>) {
        // `@timestamp` is required on every event: a line without a time of its own gets the
        // time it was read, as ECS prescribes.
        out.extend_from_slice(b"{\"@timestamp\":\"");
        self.seconds.write(ev.timestamp.unwrap_or(observed), out);
        out.extend_from_slice(ECS_VERSION);
        let mut top = false;
        if let Some(m) = &ev.message {
            key(out, &mut top, b"\"message\":");
            json::string(out, m);
        }

        key(out, &mut top, b"\"event\":{\"original\":");
        json::string(out, ev.original);
        out.extend_from_slice(b",\"dataset\":\"");
        out.extend_from_slice(ev.kind.dataset().as_bytes());
        out.push(b'"');
        out.extend_from_slice(event_categorization(ev));
        if let Some(d) = ev.duration_ns {
            out.extend_from_slice(b",\"duration\":");
            json::uint(out, d);
        }
        let mut f = false;
        self.adds(G_EVENT, out, &mut f);
        out.push(b'}');

        if ev.error.is_some() || self.has(G_ERROR) {
            key(out, &mut top, b"\"error\":{");
            let mut f = true;
            if let Some(e) = &ev.error {
                key(out, &mut f, b"\"message\":");
                json::string(out, e);
            }
            self.adds(G_ERROR, out, &mut f);
            out.push(b'}');
        }

        let syslog = ev.kind == Kind::Syslog && ev.error.is_none();
        if ev.level.is_some() || syslog || ev.origin.is_some() || self.has(G_LOG) {
            key(out, &mut top, b"\"log\":{");
            let mut f = true;
            if let Some(l) = &ev.level {
                key(out, &mut f, b"\"level\":");
                json::string(out, l);
            }
            if let Some((file, line)) = ev.origin {
                key(out, &mut f, b"\"origin\":{\"file\":{\"name\":");
                json::string(out, file);
                out.extend_from_slice(b",\"line\":");
                json::uint(out, u64::from(line));
                out.extend_from_slice(b"}}");
            }
            if syslog {
                key(out, &mut f, b"\"syslog\":{");
                let mut s = true;
                if let Some(p) = ev.priority {
                    key(out, &mut s, b"\"priority\":");
                    json::uint(out, u64::from(p));
                    out.extend_from_slice(b",\"facility\":{\"code\":");
                    json::uint(out, u64::from(p / 8));
                    out.extend_from_slice(b",\"name\":\"");
                    out.extend_from_slice(facility_name(p / 8).as_bytes());
                    out.extend_from_slice(b"\"},\"severity\":{\"code\":");
                    json::uint(out, u64::from(p % 8));
                    out.extend_from_slice(b",\"name\":\"");
                    out.extend_from_slice(severity_name(p % 8).as_bytes());
                    out.extend_from_slice(b"\"}");
                }
                for (k, v) in [
                    (&b"\"hostname\":"[..], ev.hostname),
                    (b"\"appname\":", ev.process_name),
                    (b"\"procid\":", ev.proc_id),
                    (b"\"msgid\":", ev.msg_id),
                ] {
                    if let Some(v) = v {
                        key(out, &mut s, k);
                        json::string(out, v);
                    }
                }
                if let Some(v) = ev.syslog_version {
                    key(out, &mut s, b"\"version\":\"");
                    json::uint(out, u64::from(v));
                    out.push(b'"');
                }
                if let Some(sd) = ev.structured_data {
                    // ECS type `flattened`: an object of SD-IDs, each an object of params.
                    key(out, &mut s, b"\"structured_data\":");
                    structured_data(out, sd);
                }
                out.push(b'}');
            }
            self.adds(G_LOG, out, &mut f);
            out.push(b'}');
        }

        if ev.source_address.is_some() || self.has(G_SOURCE) {
            key(out, &mut top, b"\"source\":{");
            let mut f = true;
            if let Some(a) = ev.source_address {
                key(out, &mut f, b"\"address\":");
                json::string(out, a);
                match ip_port(a) {
                    // The common case, a bare address: written as logged, not re-formatted.
                    Some((_, None)) => {
                        out.extend_from_slice(b",\"ip\":");
                        json::string(out, a);
                    }
                    Some((ip, Some(port))) => {
                        out.extend_from_slice(b",\"ip\":");
                        json::string(out, &ip.to_string());
                        out.extend_from_slice(b",\"port\":");
                        json::uint(out, u64::from(port));
                    }
                    None => {}
                }
                if let Some(p) = ev.source_port {
                    out.extend_from_slice(b",\"port\":");
                    json::uint(out, u64::from(p));
                }
            }
            self.adds(G_SOURCE, out, &mut f);
            out.push(b'}');
        }

        if ev.user_name.is_some() || self.has(G_USER) {
            key(out, &mut top, b"\"user\":{");
            let mut f = true;
            if let Some(u) = &ev.user_name {
                key(out, &mut f, b"\"name\":");
                json::string(out, u);
            }
            self.adds(G_USER, out, &mut f);
            out.push(b'}');
        }

        let request = ev.method.is_some()
            || ev.referrer.is_some()
            || ev.request_id.is_some()
            || ev.request_bytes.is_some();
        let response =
            ev.status.is_some() || ev.body_bytes.is_some() || ev.response_bytes.is_some();
        if request || response || ev.http_version.is_some() || self.has(G_HTTP) {
            key(out, &mut top, b"\"http\":{");
            let mut f = true;
            if request {
                key(out, &mut f, b"\"request\":{");
                let mut r = true;
                if let Some(m) = ev.method {
                    key(out, &mut r, b"\"method\":");
                    json::string(out, m);
                }
                if let Some(x) = &ev.referrer {
                    key(out, &mut r, b"\"referrer\":");
                    json::string(out, x);
                }
                if let Some(x) = ev.request_id {
                    key(out, &mut r, b"\"id\":");
                    json::string(out, x);
                }
                if let Some(b) = ev.request_bytes {
                    key(out, &mut r, b"\"bytes\":");
                    json::uint(out, b);
                }
                out.push(b'}');
            }
            if response {
                key(out, &mut f, b"\"response\":{");
                let mut r = true;
                if let Some(st) = ev.status {
                    key(out, &mut r, b"\"status_code\":");
                    json::uint(out, u64::from(st));
                }
                if let Some(b) = ev.body_bytes {
                    key(out, &mut r, b"\"body\":{\"bytes\":");
                    json::uint(out, b);
                    out.push(b'}');
                }
                if let Some(b) = ev.response_bytes {
                    key(out, &mut r, b"\"bytes\":");
                    json::uint(out, b);
                }
                out.push(b'}');
            }
            if let Some(v) = ev.http_version {
                key(out, &mut f, b"\"version\":");
                json::string(out, v);
            }
            self.adds(G_HTTP, out, &mut f);
            out.push(b'}');
        }

        if ev.url_original.is_some()
            || ev.url_path.is_some()
            || ev.host_header.is_some()
            || self.has(G_URL)
        {
            key(out, &mut top, b"\"url\":{");
            let mut f = true;
            let (domain, port) = match ev.host_header {
                Some(h) => {
                    let (d, p) = split_host_port(h);
                    (Some(d), p)
                }
                None => (None, None),
            };
            for (k, v) in [
                (&b"\"original\":"[..], ev.url_original),
                (b"\"path\":", ev.url_path.as_deref()),
                (b"\"query\":", ev.url_query),
                (b"\"domain\":", domain),
            ] {
                if let Some(v) = v {
                    key(out, &mut f, k);
                    json::string(out, v);
                }
            }
            if let Some(p) = port {
                key(out, &mut f, b"\"port\":");
                json::uint(out, u64::from(p));
            }
            self.adds(G_URL, out, &mut f);
            out.push(b'}');
        }

        if ev.user_agent.is_some() || self.has(G_USER_AGENT) {
            key(out, &mut top, b"\"user_agent\":{");
            let mut f = true;
            if let Some(u) = &ev.user_agent {
                key(out, &mut f, b"\"original\":");
                json::string(out, u);
            }
            self.adds(G_USER_AGENT, out, &mut f);
            out.push(b'}');
        }

        if ev.hostname.is_some() || self.has(G_HOST) {
            key(out, &mut top, b"\"host\":{");
            let mut f = true;
            if let Some(h) = ev.hostname {
                key(out, &mut f, b"\"hostname\":");
                json::string(out, h);
            }
            self.adds(G_HOST, out, &mut f);
            out.push(b'}');
        }

        if ev.process_name.is_some()
            || ev.pid.is_some()
            || ev.thread_id.is_some()
            || self.has(G_PROCESS)
        {
            key(out, &mut top, b"\"process\":{");
            let mut f = true;
            if let Some(p) = ev.process_name {
                key(out, &mut f, b"\"name\":");
                json::string(out, p);
            }
            if let Some(p) = ev.pid {
                key(out, &mut f, b"\"pid\":");
                json::uint(out, u64::from(p));
            }
            if let Some(t) = ev.thread_id {
                key(out, &mut f, b"\"thread\":{\"id\":");
                json::uint(out, t);
                out.push(b'}');
            }
            self.adds(G_PROCESS, out, &mut f);
            out.push(b'}');
        }

        if let Some(st) = ev.stream {
            // Filebeat's container-log field (not an ECS field; no ECS field holds the stream).
            key(out, &mut top, b"\"stream\":");
            json::string(out, st);
        }
        if ev.partial {
            key(out, &mut top, b"\"cri\":{\"partial\":true}");
        }

        // Format-specific fields: `nginx.*`, `apache.*`.
        let ns = ev.kind.namespace();
        let access = ev
            .access_extra
            .as_deref()
            .filter(|(r, vars)| vars.iter().any(|(slot, _)| present(r.get_slot(*slot))));
        let nginx_error = ev.connection.is_some() || ev.server.is_some() || ev.upstream.is_some();
        let apache_error = ev.module.is_some() || ev.code.is_some();
        if access.is_some() || nginx_error || apache_error {
            key(out, &mut top, b"\"");
            out.extend_from_slice(ns.as_bytes());
            out.extend_from_slice(b"\":{");
            let mut f = true;
            if nginx_error || apache_error {
                key(out, &mut f, b"\"error\":{");
                let mut e = true;
                if let Some(c) = ev.connection {
                    key(out, &mut e, b"\"connection_id\":");
                    json::uint(out, c);
                }
                for (k, v) in [
                    (&b"\"server\":"[..], ev.server),
                    (b"\"upstream\":", ev.upstream),
                    (b"\"module\":", ev.module),
                    (b"\"code\":", ev.code),
                ] {
                    if let Some(v) = v {
                        key(out, &mut e, k);
                        json::string(out, v);
                    }
                }
                out.push(b'}');
            }
            if let Some((r, vars)) = access {
                key(out, &mut f, b"\"access\":{");
                let mut a = true;
                for (slot, name) in vars.iter() {
                    let v = r.get_slot(*slot);
                    if present(v) {
                        key(out, &mut a, b"\"");
                        out.extend_from_slice(name.as_bytes());
                        out.extend_from_slice(b"\":");
                        json::string(out, v);
                    }
                }
                out.push(b'}');
            }
            out.push(b'}');
        }

        if !ev.extra.is_empty() {
            // JSON and logfmt keys are arbitrary: written under the format's object with their
            // own (escaped) names, as one flat level.
            key(out, &mut top, b"\"");
            out.extend_from_slice(ns.as_bytes());
            out.extend_from_slice(b"\":{");
            for (i, (k, v)) in ev.extra.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::string(out, k);
                out.push(b':');
                extra_value(out, v);
            }
            out.push(b'}');
        }

        if ev.invalid_utf8 {
            key(out, &mut top, b"\"tags\":[\"invalid_utf8\"]");
        }
        self.adds(OTHER, out, &mut top);
        out.push(b'}');
    }

    /// One OTLP/JSON `LogsData` per line, as the Collector's `otlpjsonfile` receiver and
    /// `ExportLogsServiceRequest` decoders read it: the line's own host and program (syslog)
    /// and the `--add-resource`s on the Resource, the record under this program's scope.
    fn otel(&mut self, ev: &Event<'_>, observed: Timestamp, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"resourceLogs\":[{\"resource\":{\"attributes\":[");
        self.seen.clear();
        let mut a = Attrs {
            out,
            first: true,
            seen: &mut self.seen,
        };
        if let Some(h) = ev.hostname {
            a.str(k!("host.name"), h);
        }
        if let Some(p) = ev.process_name {
            a.str(k!("service.name"), p);
        }
        for r in &self.resource {
            // The line's own host and program win over a configured default.
            if !a.seen.contains(&r.key) {
                a.str(Key::runtime(r.key), &r.value);
            }
        }
        out.extend_from_slice(SCOPE);
        self.otel_record(ev, observed, out);
        out.extend_from_slice(b"]}]}]}");
    }

    fn otel_record(&mut self, ev: &Event<'_>, observed: Timestamp, out: &mut Vec<u8>) {
        out.push(b'{');
        // `fixed64` nanoseconds: a time before 1970 (or after 2262) has none, and the record
        // keeps only its observed time, as the data model allows.
        if let Some(t) = ev.timestamp.filter(|t| nanos_fit(*t)) {
            out.extend_from_slice(b"\"timeUnixNano\":\"");
            json::int(out, t.unix_nanos());
            out.extend_from_slice(b"\",");
        }
        out.extend_from_slice(b"\"observedTimeUnixNano\":\"");
        json::int(
            out,
            if nanos_fit(observed) {
                observed.unix_nanos()
            } else {
                0
            },
        );
        out.push(b'"');
        if let Some(s) = ev.severity {
            out.extend_from_slice(b",\"severityNumber\":");
            json::uint(out, u64::from(s.number));
        }
        match (&ev.level, ev.severity) {
            (Some(l), _) => {
                out.extend_from_slice(b",\"severityText\":");
                json::string(out, l);
            }
            (None, Some(s)) => {
                out.extend_from_slice(b",\"severityText\":");
                json::string(out, s.text);
            }
            (None, None) => {}
        }
        let body: &str = ev.message.as_deref().unwrap_or(ev.original);
        out.extend_from_slice(b",\"body\":{\"stringValue\":");
        json::string(out, body);
        out.extend_from_slice(b"},\"attributes\":[");
        // The record's eventName: an `event.name` of the line itself, else the dataset.
        let mut event_name: &str = ev.kind.dataset();
        self.seen.clear();
        let mut a = Attrs {
            out,
            first: true,
            seen: &mut self.seen,
        };
        if body.len() != ev.original.len() {
            a.str(k!("log.record.original"), ev.original);
        }
        if let Some(e) = &ev.error {
            a.str(k!("log_normalize.parse_error"), e);
        }
        if ev.invalid_utf8 {
            a.bool(k!("log_normalize.invalid_utf8"), true);
        }
        if let Some(addr) = ev.source_address {
            // Only an address with a port ("ip:port", "[v6]:port") is split, and every such
            // address has a colon: the common IPv4 client skips the parse.
            let split = if addr.as_bytes().contains(&b':') {
                ip_port(addr)
            } else {
                None
            };
            match split {
                Some((ip, Some(port))) => {
                    a.str(k!("client.address"), &ip.to_string());
                    a.int(k!("client.port"), i64::from(port));
                }
                _ => a.str(k!("client.address"), addr),
            }
        }
        if let Some(p) = ev.source_port {
            a.int(k!("client.port"), i64::from(p));
        }
        if let Some(u) = &ev.user_name {
            a.str(k!("user.name"), u);
        }
        if let Some(m) = ev.method {
            // Semantic conventions: a method outside the registry is `_OTHER`, the original
            // kept beside it.
            if HTTP_METHODS.contains(&m) {
                a.str(k!("http.request.method"), m);
            } else {
                a.str(k!("http.request.method"), "_OTHER");
                a.str(k!("http.request.method_original"), m);
            }
        }
        if let Some(u) = &ev.url_path {
            a.str(k!("url.path"), u);
        }
        if let Some(u) = ev.url_query {
            a.str(k!("url.query"), u);
        }
        if let Some(h) = ev.host_header {
            let (host, port) = split_host_port(h);
            a.str(k!("server.address"), host);
            if let Some(p) = port {
                a.int(k!("server.port"), i64::from(p));
            }
        } else if let Some(s) = ev.server {
            a.str(k!("server.address"), s);
        }
        if let Some(v) = ev.http_version {
            a.str(k!("network.protocol.name"), "http");
            a.str(k!("network.protocol.version"), v);
        }
        if let Some(s) = ev.status {
            a.int(k!("http.response.status_code"), i64::from(s));
        }
        if let Some(b) = ev.body_bytes {
            a.int(k!("http.response.body.size"), clamp_i64(b));
        }
        if let Some(b) = ev.response_bytes {
            a.int(k!("http.response.size"), clamp_i64(b));
        }
        if let Some(b) = ev.request_bytes {
            a.int(k!("http.request.size"), clamp_i64(b));
        }
        if let Some(r) = &ev.referrer {
            // Header attributes are string arrays (a header may repeat).
            a.open(k!("http.request.header.referer"));
            a.out
                .extend_from_slice(b"{\"arrayValue\":{\"values\":[{\"stringValue\":");
            json::string(a.out, r);
            a.out.extend_from_slice(b"}]}}}");
        }
        if let Some(u) = &ev.user_agent {
            a.str(k!("user_agent.original"), u);
        }
        if let Some(d) = ev.duration_ns {
            // `http.server.request.duration` is a metric; the time nginx logged stays under
            // its own name, in seconds as logged.
            a.double(request_time_key(ev.kind), d as f64 / 1e9);
        }
        if let Some(id) = ev.request_id {
            a.str(k!("http.request.id"), id);
        }
        if let Some(p) = ev.pid {
            a.int(k!("process.pid"), i64::from(p));
        }
        if let Some(t) = ev.thread_id {
            a.int(k!("thread.id"), clamp_i64(t));
        }
        if let Some((file, line)) = ev.origin {
            a.str(k!("code.file.path"), file);
            a.int(k!("code.line.number"), i64::from(line));
        }
        if let Some(p) = ev.priority {
            a.int(k!("syslog.priority"), i64::from(p));
            a.int(k!("syslog.facility"), i64::from(p / 8));
            a.int(k!("syslog.severity"), i64::from(p % 8));
        }
        if let Some(v) = ev.syslog_version {
            a.int(k!("syslog.version"), i64::from(v));
        }
        if let Some(m) = ev.msg_id {
            a.str(k!("syslog.msgid"), m);
        }
        if let Some(s) = ev.structured_data {
            a.str(k!("syslog.structured_data"), s);
        }
        if let Some(c) = ev.connection {
            a.int(k!("nginx.connection_id"), clamp_i64(c));
        }
        if let Some(u) = ev.upstream {
            a.str(k!("nginx.upstream"), u);
        }
        if let Some(m) = ev.module {
            a.str(k!("apache.module"), m);
        }
        if let Some(c) = ev.code {
            a.str(k!("apache.error_code"), c);
        }
        if let Some(s) = ev.stream {
            a.str(k!("log.iostream"), s);
        }
        if ev.partial {
            a.bool(k!("log.partial"), true);
        }
        if let Some(p) = ev.proc_id.filter(|_| ev.pid.is_none()) {
            a.str(k!("syslog.procid"), p);
        }
        if let Some((r, vars)) = ev.access_extra.as_deref() {
            for (slot, name) in vars.iter() {
                let v = r.get_slot(*slot);
                if v != "-" && !v.is_empty() {
                    a.key_prefixed(ev.kind.namespace(), name);
                    a.out.extend_from_slice(b"{\"stringValue\":");
                    json::string(a.out, v);
                    a.out.extend_from_slice(b"}}");
                }
            }
        }
        let fixed = a.seen.len();
        let mut out_first = a.first;
        for (i, (k, v)) in ev.extra.iter().enumerate() {
            if k.is_empty() {
                // Not a valid attribute key; the line is still in the body or
                // log.record.original.
                continue;
            }
            if k == "event.name"
                && let Extra::Str(s) = v
                && !s.is_empty()
            {
                event_name = s;
                continue;
            }
            // A key this program already wrote, or one the line repeats (logfmt may): the
            // first is kept, as one key may appear once.
            if self.seen[..fixed].iter().any(|s| *s == k.as_ref())
                || ev.extra[..i].iter().any(|(e, _)| e == k)
            {
                continue;
            }
            key(out, &mut out_first, b"{\"key\":");
            json::string(out, k);
            out.extend_from_slice(b",\"value\":");
            any_value(out, v);
            out.push(b'}');
        }
        for f in &self.add {
            if self.seen[..fixed].contains(&f.key)
                || ev.extra.iter().any(|(e, _)| e == f.key)
                || (f.key == "event.name")
            {
                continue;
            }
            key(out, &mut out_first, b"{\"key\":\"");
            out.extend_from_slice(f.key.as_bytes());
            out.extend_from_slice(b"\",\"value\":{\"stringValue\":");
            json::string(out, &f.value);
            out.extend_from_slice(b"}}");
        }
        out.extend_from_slice(b"],\"eventName\":");
        json::string(out, event_name);
        out.push(b'}');
    }
}

/// The ECS release whose field definitions the output follows, written as `ecs.version` after
/// `@timestamp` (which it closes).
const ECS_VERSION: &[u8] = b"\",\"ecs\":{\"version\":\"8.17.0\"}";

/// `event.kind`, `event.category`, `event.type`, `event.outcome` (after a member of `event`):
/// access logs are web access events with an outcome from the status, error logs web errors,
/// lines that did not parse `pipeline_error`.
fn event_categorization(ev: &Event<'_>) -> &'static [u8] {
    if ev.error.is_some() {
        return b",\"kind\":\"pipeline_error\"";
    }
    match ev.kind {
        Kind::NginxCombined
        | Kind::NginxMain
        | Kind::NginxCustom
        | Kind::ApacheCommon
        | Kind::ApacheCombined
        | Kind::ApacheCustom => match ev.status {
            Some(s) if s >= 400 => {
                b",\"kind\":\"event\",\"category\":[\"web\"],\"type\":[\"access\"],\"outcome\":\"failure\""
            }
            Some(_) => {
                b",\"kind\":\"event\",\"category\":[\"web\"],\"type\":[\"access\"],\"outcome\":\"success\""
            }
            None => b",\"kind\":\"event\",\"category\":[\"web\"],\"type\":[\"access\"]",
        },
        Kind::NginxError | Kind::ApacheError => {
            b",\"kind\":\"event\",\"category\":[\"web\"],\"type\":[\"error\"]"
        }
        _ => b",\"kind\":\"event\"",
    }
}

/// Syslog facility keywords, by code (RFC 5424 table 1, as rsyslog names them).
fn facility_name(code: u8) -> &'static str {
    const NAMES: [&str; 24] = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    NAMES.get(usize::from(code)).copied().unwrap_or("unknown")
}

/// RFC 5424 STRUCTURED-DATA as a JSON object: `{"SD-ID":{"PARAM":"value"}}`, values
/// unescaped (`\"`, `\\`, `\]`). A repeated SD-ID or PARAM-NAME keeps its first value (a
/// JSON object has one member per key); the whole text stays in `event.original`.
fn structured_data(out: &mut Vec<u8>, sd: &str) {
    out.push(b'{');
    let mut ids: Vec<&str> = Vec::new();
    for (id, params) in podmates_logparse::syslog::sd_elements(sd) {
        if ids.contains(&id) {
            continue;
        }
        if !ids.is_empty() {
            out.push(b',');
        }
        ids.push(id);
        json::string(out, id);
        out.extend_from_slice(b":{");
        let mut names: Vec<&str> = Vec::new();
        for (name, value) in params {
            if names.contains(&name) {
                continue;
            }
            if !names.is_empty() {
                out.push(b',');
            }
            names.push(name);
            json::string(out, name);
            out.push(b':');
            json::string(out, &value);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// The scope, and the opening of its records, after the Resource's attributes.
const SCOPE: &[u8] = concat!(
    "]},\"scopeLogs\":[{\"scope\":{\"name\":\"log-normalize\",\"version\":\"",
    env!("CARGO_PKG_VERSION"),
    "\"},\"logRecords\":["
)
.as_bytes();

/// The methods of the semantic conventions' `http.request.method` registry.
const HTTP_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

/// Whether a time is writable as OTLP's unsigned 64-bit nanoseconds.
fn nanos_fit(t: Timestamp) -> bool {
    (0..=9_223_372_035).contains(&t.secs)
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn request_time_key(kind: Kind) -> Key {
    match kind.namespace() {
        "apache" => k!("apache.access.request_time"),
        _ => k!("nginx.access.request_time"),
    }
}

/// `host:port` (`[v6]:port`) of a Host header split; a host without a valid port is whole.
pub(crate) fn split_host_port(h: &str) -> (&str, Option<u16>) {
    if let Some(rest) = h.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host, port);
        }
        return (h, None);
    }
    match h.rsplit_once(':') {
        // One colon only: more is an IPv6 address without brackets.
        Some((host, p)) if !host.contains(':') && !host.is_empty() => match p.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (h, None),
        },
        _ => (h, None),
    }
}

/// An OTLP `AnyValue` for a JSON or logfmt value. Integers beyond int64 keep their digits as
/// text (a double would round them); objects and arrays keep their JSON text.
fn any_value(out: &mut Vec<u8>, v: &Extra<'_>) {
    match v {
        Extra::Str(s) => {
            out.extend_from_slice(b"{\"stringValue\":");
            json::string(out, s);
        }
        Extra::Json(serde_json::Value::Bool(b)) => {
            out.extend_from_slice(if *b {
                b"{\"boolValue\":true"
            } else {
                b"{\"boolValue\":false"
            });
        }
        Extra::Json(serde_json::Value::Number(n)) if n.is_i64() => {
            out.extend_from_slice(b"{\"intValue\":\"");
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'"');
        }
        Extra::Json(serde_json::Value::Number(n)) if n.is_u64() => {
            out.extend_from_slice(b"{\"stringValue\":\"");
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'"');
        }
        Extra::Json(serde_json::Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() => {
                out.extend_from_slice(b"{\"doubleValue\":");
                out.extend_from_slice(n.to_string().as_bytes());
            }
            _ => {
                out.extend_from_slice(b"{\"stringValue\":");
                json::string(out, &n.to_string());
            }
        },
        Extra::Json(v) => {
            out.extend_from_slice(b"{\"stringValue\":");
            json::string(out, &v.to_string());
        }
    }
    out.push(b'}');
}

fn extra_value(out: &mut Vec<u8>, v: &Extra<'_>) {
    match v {
        Extra::Str(s) => json::string(out, s),
        Extra::Json(v) => out.extend_from_slice(v.to_string().as_bytes()),
    }
}

/// An attribute key of this program: the name, and (for keys known at compile time) the
/// attribute's opening up to its value, made by [`k!`], so that it is one copy instead of three.
#[derive(Debug, Clone, Copy)]
struct Key {
    name: &'static str,
    opening: Option<&'static str>,
}

impl Key {
    /// A key known only at run time (an `--add-resource` key, validated as plain when parsed).
    fn runtime(name: &'static str) -> Self {
        Self {
            name,
            opening: None,
        }
    }
}

/// An OTLP `attributes` array being written; `seen` collects the keys, so that keys from the
/// input never repeat one.
struct Attrs<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
    seen: &'o mut Vec<&'static str>,
}

impl Attrs<'_> {
    /// Opens an attribute with one of this program's keys (plain, no escaping needed).
    #[inline]
    fn open(&mut self, k: Key) {
        match k.opening {
            Some(o) => key(self.out, &mut self.first, o.as_bytes()),
            None => {
                key(self.out, &mut self.first, b"{\"key\":\"");
                self.out.extend_from_slice(k.name.as_bytes());
                self.out.extend_from_slice(b"\",\"value\":");
            }
        }
        self.seen.push(k.name);
    }

    fn key_prefixed(&mut self, ns: &str, name: &str) {
        key(self.out, &mut self.first, b"{\"key\":\"");
        self.out.extend_from_slice(ns.as_bytes());
        self.out.extend_from_slice(b".access.");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\",\"value\":");
    }

    fn str(&mut self, key: Key, v: &str) {
        self.open(key);
        self.out.extend_from_slice(b"{\"stringValue\":");
        json::string(self.out, v);
        self.out.extend_from_slice(b"}}");
    }

    fn int(&mut self, key: Key, v: i64) {
        self.open(key);
        // OTLP JSON writes 64-bit integers as strings.
        self.out.extend_from_slice(b"{\"intValue\":\"");
        json::int(self.out, v);
        self.out.extend_from_slice(b"\"}}");
    }

    fn double(&mut self, key: Key, v: f64) {
        self.open(key);
        self.out.extend_from_slice(b"{\"doubleValue\":");
        if v.is_finite() {
            self.out.extend_from_slice(format!("{v}").as_bytes());
        } else {
            self.out.push(b'0');
        }
        self.out.extend_from_slice(b"}}");
    }

    fn bool(&mut self, key: Key, v: bool) {
        self.open(key);
        self.out.extend_from_slice(if v {
            b"{\"boolValue\":true}}"
        } else {
            b"{\"boolValue\":false}}"
        });
    }
}
