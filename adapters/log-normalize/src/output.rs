//! Writing an [`Event`] as one JSON line in the chosen schema.

use crate::event::{Event, Extra, ip_port};
use crate::json::{self, Nested};
use podmates_logparse::Timestamp;
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
    pub fn parse(s: &str) -> Result<Self, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not key=value"))?;
        let ok = !k.is_empty()
            && k.split('.').all(|seg| {
                !seg.is_empty()
                    && seg
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'@'))
            });
        if !ok {
            return Err(format!(
                "`{k}`: keys are dotted names of letters, digits, `_`, `-`, `@`"
            ));
        }
        let key: &'static str = Box::leak(k.to_owned().into_boxed_str());
        Ok(Self {
            path: key.split('.').collect(),
            key,
            value: v.to_owned(),
        })
    }
}

/// Top-level ECS objects in the order they are written; `--add-field` entries are written inside
/// the group of their first segment so that an object is never opened twice.
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
    "stream",
    "nginx",
    "apache",
    "syslog",
    "json",
    "logfmt",
    "cri",
    "plain",
];

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
        }
    }

    /// Appends the event as one JSON line (with its newline). `observed` is when it was read.
    pub fn write(&mut self, ev: &Event<'_>, observed: Timestamp, out: &mut Vec<u8>) {
        match self.schema {
            Schema::Ecs => self.ecs(ev, out),
            Schema::Otel => self.otel(ev, observed, out),
        }
        out.push(b'\n');
    }

    fn group_adds(&mut self, g: usize, out: &mut Vec<u8>) {
        for a in &self.add_by_group[g] {
            self.nested.str(out, &a.path, &a.value);
        }
    }

    fn ecs(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        let n = &mut self.nested;
        n.begin(out);
        if let Some(t) = ev.timestamp {
            n.key(out, &["@timestamp"]);
            out.push(b'"');
            self.seconds.write(t, out);
            out.push(b'"');
        }
        if let Some(m) = &ev.message {
            n.str(out, &["message"], m);
        }
        n.str(out, &["event", "original"], ev.original);
        n.str(out, &["event", "dataset"], ev.kind.dataset());
        if let Some(d) = ev.duration_ns {
            n.uint(out, &["event", "duration"], d);
        }
        self.group_adds(0, out);
        let n = &mut self.nested;
        if let Some(e) = &ev.error {
            n.str(out, &["error", "message"], e);
        }
        self.group_adds(1, out);
        let n = &mut self.nested;
        if let Some(l) = &ev.level {
            n.str(out, &["log", "level"], l);
        }
        if let Some(p) = ev.priority {
            n.uint(out, &["log", "syslog", "priority"], u64::from(p));
            n.uint(
                out,
                &["log", "syslog", "facility", "code"],
                u64::from(p / 8),
            );
            n.uint(
                out,
                &["log", "syslog", "severity", "code"],
                u64::from(p % 8),
            );
        }
        if let Some(m) = ev.msg_id {
            n.str(out, &["log", "syslog", "msgid"], m);
        }
        if let Some(s) = ev.structured_data {
            n.str(out, &["log", "syslog", "structured_data"], s);
        }
        if ev.partial {
            n.key(out, &["log", "partial"]);
            out.extend_from_slice(b"true");
        }
        self.group_adds(2, out);
        let n = &mut self.nested;
        if let Some(a) = ev.source_address {
            n.str(out, &["source", "address"], a);
            match ip_port(a) {
                // The common case, a bare address: written as logged, without re-formatting.
                Some((_, None)) => n.str(out, &["source", "ip"], a),
                Some((ip, Some(port))) => {
                    n.str(out, &["source", "ip"], &ip.to_string());
                    n.uint(out, &["source", "port"], u64::from(port));
                }
                None => {}
            }
        }
        self.group_adds(3, out);
        let n = &mut self.nested;
        if let Some(u) = ev.user_name {
            n.str(out, &["user", "name"], u);
        }
        self.group_adds(4, out);
        let n = &mut self.nested;
        if let Some(m) = ev.method {
            n.str(out, &["http", "request", "method"], m);
        }
        if let Some(r) = &ev.referrer {
            n.str(out, &["http", "request", "referrer"], r);
        }
        if let Some(s) = ev.status {
            n.uint(out, &["http", "response", "status_code"], u64::from(s));
        }
        if let Some(b) = ev.body_bytes {
            n.uint(out, &["http", "response", "body", "bytes"], b);
        }
        if let Some(v) = ev.http_version {
            n.str(out, &["http", "version"], v);
        }
        self.group_adds(5, out);
        let n = &mut self.nested;
        if let Some(u) = ev.url_original {
            n.str(out, &["url", "original"], u);
        }
        if let Some(u) = ev.url_path {
            n.str(out, &["url", "path"], u);
        }
        if let Some(u) = ev.url_query {
            n.str(out, &["url", "query"], u);
        }
        if let Some(h) = ev.host_header {
            n.str(out, &["url", "domain"], h);
        }
        self.group_adds(6, out);
        let n = &mut self.nested;
        if let Some(u) = &ev.user_agent {
            n.str(out, &["user_agent", "original"], u);
        }
        self.group_adds(7, out);
        let n = &mut self.nested;
        if let Some(h) = ev.hostname {
            n.str(out, &["host", "hostname"], h);
        }
        self.group_adds(8, out);
        let n = &mut self.nested;
        if let Some(p) = ev.process_name {
            n.str(out, &["process", "name"], p);
        }
        if let Some(p) = ev.pid {
            n.uint(out, &["process", "pid"], u64::from(p));
        }
        if let Some(t) = ev.thread_id {
            n.uint(out, &["process", "thread", "id"], t);
        }
        self.group_adds(9, out);
        let n = &mut self.nested;
        if let Some(s) = ev.stream {
            n.str(out, &["stream"], s);
        }
        self.group_adds(10, out);
        // Format-specific fields: `nginx.*`, `apache.*`, then `json.*` / `logfmt.*`.
        let ns = ev.kind.namespace();
        let n = &mut self.nested;
        match ns {
            "nginx" => {
                if let Some(c) = ev.connection {
                    n.uint(out, &["nginx", "error", "connection_id"], c);
                }
                if let Some(s) = ev.server {
                    n.str(out, &["nginx", "error", "server"], s);
                }
                if let Some(u) = ev.upstream {
                    n.str(out, &["nginx", "error", "upstream"], u);
                }
                if let Some((r, vars)) = &ev.access_extra {
                    for (slot, name) in vars.iter() {
                        let v = r.get_slot(*slot);
                        if v != "-" && !v.is_empty() {
                            n.str(out, &["nginx", "access", name], v);
                        }
                    }
                }
            }
            "apache" => {
                if let Some(m) = ev.module {
                    n.str(out, &["apache", "error", "module"], m);
                }
                if let Some(c) = ev.code {
                    n.str(out, &["apache", "error", "code"], c);
                }
                if let Some((r, vars)) = &ev.access_extra {
                    for (slot, name) in vars.iter() {
                        let v = r.get_slot(*slot);
                        if v != "-" && !v.is_empty() {
                            n.str(out, &["apache", "access", name], v);
                        }
                    }
                }
            }
            _ => {}
        }
        for g in 11..=13 {
            self.group_adds(g, out);
        }
        if !ev.extra.is_empty() {
            // JSON and logfmt keys are arbitrary: they are written under the format's object
            // with their own (escaped) names, as one flat level.
            let n = &mut self.nested;
            n.key(out, &[ns]);
            out.push(b'{');
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
        for g in 14..=GROUPS.len() {
            self.group_adds(g, out);
        }
        let n = &mut self.nested;
        if ev.invalid_utf8 {
            n.key(out, &["tags"]);
            out.extend_from_slice(b"[\"invalid_utf8\"]");
        }
        n.end(out);
    }

    fn otel(&mut self, ev: &Event<'_>, observed: Timestamp, out: &mut Vec<u8>) {
        out.push(b'{');
        if let Some(t) = ev.timestamp {
            out.extend_from_slice(b"\"timeUnixNano\":\"");
            json::int(out, t.unix_nanos());
            out.extend_from_slice(b"\",");
        }
        out.extend_from_slice(b"\"observedTimeUnixNano\":\"");
        json::int(out, observed.unix_nanos());
        out.push(b'"');
        if let Some(s) = ev.severity {
            out.extend_from_slice(b",\"severityNumber\":");
            json::uint(out, u64::from(s.number));
            out.extend_from_slice(b",\"severityText\":");
            match &ev.level {
                Some(l) => json::string(out, l),
                None => json::string(out, s.text),
            }
        }
        let body: &str = ev.message.as_deref().unwrap_or(ev.original);
        out.extend_from_slice(b",\"body\":{\"stringValue\":");
        json::string(out, body);
        out.extend_from_slice(b"},\"attributes\":[");
        let mut a = Attrs { out, first: true };
        if body.len() != ev.original.len() {
            a.str("log.record.original", ev.original);
        }
        a.str("event.name", ev.kind.dataset());
        if let Some(e) = &ev.error {
            a.str("error.message", e);
        }
        if ev.invalid_utf8 {
            a.bool("log.record.invalid_utf8", true);
        }
        if let Some(addr) = ev.source_address {
            match ip_port(addr) {
                Some((ip, Some(port))) => {
                    a.str("client.address", &ip.to_string());
                    a.int("client.port", i64::from(port));
                }
                _ => a.str("client.address", addr),
            }
        }
        if let Some(u) = ev.user_name {
            a.str("user.name", u);
        }
        if let Some(m) = ev.method {
            a.str("http.request.method", m);
        }
        if let Some(u) = ev.url_path {
            a.str("url.path", u);
        }
        if let Some(u) = ev.url_query {
            a.str("url.query", u);
        }
        if let Some(h) = ev.host_header {
            a.str("server.address", h);
        } else if let Some(s) = ev.server {
            a.str("server.address", s);
        }
        if let Some(v) = ev.http_version {
            a.str("network.protocol.name", "http");
            a.str("network.protocol.version", v);
        }
        if let Some(s) = ev.status {
            a.int("http.response.status_code", i64::from(s));
        }
        if let Some(b) = ev.body_bytes {
            a.int("http.response.body.size", b as i64);
        }
        if let Some(r) = &ev.referrer {
            a.str("http.request.header.referer", r);
        }
        if let Some(u) = &ev.user_agent {
            a.str("user_agent.original", u);
        }
        if let Some(d) = ev.duration_ns {
            a.double("http.server.request.duration", d as f64 / 1e9);
        }
        if let Some(h) = ev.hostname {
            a.str("host.name", h);
        }
        if let Some(p) = ev.process_name {
            a.str("service.name", p);
        }
        if let Some(p) = ev.pid {
            a.int("process.pid", i64::from(p));
        }
        if let Some(t) = ev.thread_id {
            a.int("thread.id", t as i64);
        }
        if let Some(p) = ev.priority {
            a.int("syslog.priority", i64::from(p));
            a.int("syslog.facility", i64::from(p / 8));
            a.int("syslog.severity", i64::from(p % 8));
        }
        if let Some(m) = ev.msg_id {
            a.str("syslog.msgid", m);
        }
        if let Some(s) = ev.structured_data {
            a.str("syslog.structured_data", s);
        }
        if let Some(c) = ev.connection {
            a.int("nginx.connection_id", c as i64);
        }
        if let Some(u) = ev.upstream {
            a.str("nginx.upstream", u);
        }
        if let Some(m) = ev.module {
            a.str("apache.module", m);
        }
        if let Some(c) = ev.code {
            a.str("apache.error_code", c);
        }
        if let Some(s) = ev.stream {
            a.str("log.iostream", s);
        }
        if ev.partial {
            a.bool("log.partial", true);
        }
        if let Some((r, vars)) = &ev.access_extra {
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
        for (k, v) in &ev.extra {
            a.open(k);
            match v {
                Extra::Str(s) => {
                    a.out.extend_from_slice(b"{\"stringValue\":");
                    json::string(a.out, s);
                }
                Extra::Json(serde_json::Value::Bool(b)) => {
                    a.out.extend_from_slice(if *b {
                        b"{\"boolValue\":true"
                    } else {
                        b"{\"boolValue\":false"
                    });
                }
                Extra::Json(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => {
                    a.out.extend_from_slice(b"{\"intValue\":\"");
                    a.out.extend_from_slice(n.to_string().as_bytes());
                    a.out.push(b'"');
                }
                Extra::Json(serde_json::Value::Number(n)) => {
                    a.out.extend_from_slice(b"{\"doubleValue\":");
                    a.out.extend_from_slice(n.to_string().as_bytes());
                }
                Extra::Json(v) => {
                    // Objects, arrays and null: their JSON text, so nothing is lost.
                    a.out.extend_from_slice(b"{\"stringValue\":");
                    json::string(a.out, &v.to_string());
                }
            }
            a.out.extend_from_slice(b"}}");
        }
        for f in &self.add {
            a.str(f.key, &f.value);
        }
        out.extend_from_slice(b"]}");
    }
}

fn extra_value(out: &mut Vec<u8>, v: &Extra<'_>) {
    match v {
        Extra::Str(s) => json::string(out, s),
        Extra::Json(v) => out.extend_from_slice(v.to_string().as_bytes()),
    }
}

/// The OTLP `attributes` array being written.
struct Attrs<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl Attrs<'_> {
    fn open(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(b"{\"key\":");
        json::string(self.out, key);
        self.out.extend_from_slice(b",\"value\":");
    }

    fn key_prefixed(&mut self, ns: &str, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.extend_from_slice(b"{\"key\":\"");
        self.out.extend_from_slice(ns.as_bytes());
        self.out.extend_from_slice(b".access.");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\",\"value\":");
    }

    fn str(&mut self, key: &str, v: &str) {
        self.open(key);
        self.out.extend_from_slice(b"{\"stringValue\":");
        json::string(self.out, v);
        self.out.extend_from_slice(b"}}");
    }

    fn int(&mut self, key: &str, v: i64) {
        self.open(key);
        // OTLP JSON writes 64-bit integers as strings.
        self.out.extend_from_slice(b"{\"intValue\":\"");
        json::int(self.out, v);
        self.out.extend_from_slice(b"\"}}");
    }

    fn double(&mut self, key: &str, v: f64) {
        self.open(key);
        self.out.extend_from_slice(b"{\"doubleValue\":");
        self.out.extend_from_slice(format!("{v}").as_bytes());
        self.out.extend_from_slice(b"}}");
    }

    fn bool(&mut self, key: &str, v: bool) {
        self.open(key);
        self.out.extend_from_slice(if v {
            b"{\"boolValue\":true}}"
        } else {
            b"{\"boolValue\":false}}"
        });
    }
}
