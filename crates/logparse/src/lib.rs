//! Fast, zero-copy parsers for the log formats servers write, for podmates' log adapters and
//! exporters.
//!
//! Every parser takes one line (without its newline) and returns a typed record whose text fields
//! borrow from the line; nothing allocates per line, nothing panics on any input, and no regular
//! expressions are involved: each format is a hand-written byte-level parser.
//!
//! - [`access`]: nginx `log_format` and Apache `LogFormat` strings compiled into parsers
//!   ([`AccessFormat`]), with the built-in `combined` and `main` formats; fields by variable name
//!   and typed accessors (status, sizes, `$request_time`, `$upstream_response_time`, time in UTC).
//! - [`request`]: the request line split into method, path, query and protocol.
//! - [`errorlog`]: nginx and Apache error logs.
//! - [`syslog`]: RFC 5424, RFC 3164 and rsyslog's file formats.
//! - [`cri`]: container runtime log lines (`/var/log/pods`).
//! - [`logfmt`]: `key=value` lines.
//! - [`klog`]: Kubernetes components' klog lines.
//! - [`dissect`]: user-defined dissect patterns (`%{@timestamp}#%{message}`), and
//!   [`strftime`]: times in a user-given layout.
//! - [`level`]: level words, syslog severities and HTTP statuses on the OpenTelemetry severity
//!   scale.
//! - [`detect`]: which family a line belongs to, from a few bytes.
//! - [`time`]: the timestamps of every format converted to UTC ([`Timestamp`]).

pub mod access;
pub mod cri;
pub mod detect;
pub mod dissect;
pub mod errorlog;
pub mod klog;
pub mod level;
pub mod logfmt;
pub mod request;
pub mod strftime;
pub mod syslog;
pub mod time;

pub use access::{AccessFormat, AccessRecord, FormatError, ParseError};
pub use detect::{Family, detect};
pub use request::Request;
pub use time::Timestamp;
