//! The Elastic Common Schema fields log-normalize writes, with their ECS types, as data: read
//! from `generated/ecs/ecs_flat.yml` of elastic/ecs (8.x). The tests check every field of the
//! output against this table; a field outside it must sit under one of [`CUSTOM_ROOTS`].

/// (flat name, ECS type).
pub const FIELDS: &[(&str, &str)] = &[
    ("@timestamp", "date"),
    ("message", "match_only_text"),
    ("tags", "keyword"),
    ("ecs.version", "keyword"),
    ("event.original", "keyword"),
    ("event.dataset", "keyword"),
    ("event.duration", "long"),
    ("event.kind", "keyword"),
    ("event.category", "keyword"),
    ("event.type", "keyword"),
    ("event.outcome", "keyword"),
    ("error.message", "match_only_text"),
    ("log.level", "keyword"),
    ("log.origin.file.name", "keyword"),
    ("log.origin.file.line", "long"),
    ("log.syslog.priority", "long"),
    ("log.syslog.facility.code", "long"),
    ("log.syslog.facility.name", "keyword"),
    ("log.syslog.severity.code", "long"),
    ("log.syslog.severity.name", "keyword"),
    ("log.syslog.hostname", "keyword"),
    ("log.syslog.appname", "keyword"),
    ("log.syslog.procid", "keyword"),
    ("log.syslog.msgid", "keyword"),
    ("log.syslog.version", "keyword"),
    ("log.syslog.structured_data", "flattened"),
    ("source.address", "keyword"),
    ("source.ip", "ip"),
    ("source.port", "long"),
    ("user.name", "keyword"),
    ("http.request.method", "keyword"),
    ("http.request.referrer", "keyword"),
    ("http.request.id", "keyword"),
    ("http.request.bytes", "long"),
    ("http.response.status_code", "long"),
    ("http.response.body.bytes", "long"),
    ("http.response.bytes", "long"),
    ("http.version", "keyword"),
    ("url.original", "wildcard"),
    ("url.path", "wildcard"),
    ("url.query", "keyword"),
    ("url.domain", "keyword"),
    ("url.port", "long"),
    ("user_agent.original", "keyword"),
    ("host.hostname", "keyword"),
    ("process.name", "keyword"),
    ("process.pid", "long"),
    ("process.thread.id", "long"),
];

/// Top-level objects that are not ECS field sets: each format's own fields (`nginx.access.*`,
/// `json.*`), the CRI partial flag, and Filebeat's `stream` of container logs.
pub const CUSTOM_ROOTS: &[&str] = &[
    "nginx", "apache", "syslog", "json", "logfmt", "cri", "plain", "klog", "pattern", "stream",
];

/// The ECS type of a flat field name, if it is one this program writes.
pub fn type_of(field: &str) -> Option<&'static str> {
    FIELDS.iter().find(|(f, _)| *f == field).map(|(_, t)| *t)
}
