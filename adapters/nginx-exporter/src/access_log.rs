//! Access-log mode: follows nginx's access log and counts what stub_status cannot tell: responses by
//! status class and, when the `log_format` has them, `$request_time` and `$upstream_response_time`
//! histograms.
//!
//! Following (rotation, truncation, files that appear late) is `podmates-follow`; the `log_format`
//! compiler is `podmates-logparse`. Only lines written after the exporter started are counted, so a
//! restart does not replay the file's history into counters that start at zero anyway.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use podmates_follow::{Follower, LineKind, StartFrom};
use podmates_logparse::AccessFormat;
use podmates_runtime::Shutdown;

use crate::render::label_block;

/// Upper bounds of the latency buckets, in seconds (the Prometheus client defaults).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The access log to follow and how its lines are written.
#[derive(Clone)]
pub struct AccessLogConfig {
    /// `--access-log`: a path or a glob.
    pub path: PathBuf,
    /// `--access-log-format`, compiled.
    pub format: Arc<AccessFormat>,
}

impl std::fmt::Debug for AccessLogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogConfig")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A `--access-log-format` that cannot be used; a parse error is kept as its `source`.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not an nginx `log_format` string.
    #[error("`{format}`: {source}")]
    Parse {
        /// The format given.
        format: String,
        /// Why it does not parse.
        #[source]
        source: podmates_logparse::access::FormatError,
    },
    /// A format without `$status`.
    #[error("`{0}` has no $status, so responses cannot be counted")]
    NoStatus(String),
}

/// Compiles `combined`, `main` or a `log_format` string; the format must contain `$status`.
pub fn compile_format(s: &str) -> Result<AccessFormat, FormatError> {
    let format = match s {
        "combined" => AccessFormat::nginx_combined(),
        "main" => AccessFormat::nginx_main(),
        other => AccessFormat::nginx(other).map_err(|source| FormatError::Parse {
            format: other.to_owned(),
            source,
        })?,
    };
    if format.slot("status").is_none() {
        return Err(FormatError::NoStatus(s.to_owned()));
    }
    Ok(format)
}

/// A histogram with fixed buckets, updated lock-free by the follower task and read by scrapes.
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// The sum in microseconds: nginx logs times with millisecond resolution, so an integer keeps
    /// it exact without a float compare-and-swap loop.
    sum_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, secs: f64) {
        if !(secs.is_finite() && secs >= 0.0) {
            return;
        }
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let us = (secs * 1e6).round() as u64;
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &[(String, String)]) {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
        let mut cumulative = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let block = with_label(labels, "le", &le.to_string());
            let _ = writeln!(out, "{name}_bucket{block} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{} {count}",
            with_label(labels, "le", "+Inf")
        );
        let plain = label_block(labels, None);
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{plain} {sum}");
        let _ = writeln!(out, "{name}_count{plain} {count}");
    }
}

fn with_label(labels: &[(String, String)], k: &str, v: &str) -> String {
    let mut all = labels.to_vec();
    all.retain(|(name, _)| name != k);
    all.push((k.to_owned(), v.to_owned()));
    label_block(&all, None)
}

/// The access-log metrics, shared by the follower task (writer) and the scrapes (readers).
pub struct AccessMetrics {
    const_labels: Vec<(String, String)>,
    /// Responses by status class 1xx..5xx.
    classes: [AtomicU64; 5],
    lines: AtomicU64,
    unparsed: AtomicU64,
    request_time: Option<Histogram>,
    upstream_time: Option<Histogram>,
}

impl AccessMetrics {
    /// Metrics for `config`'s format: histograms only for the times the format has.
    pub fn new(config: &AccessLogConfig, const_labels: &[(String, String)]) -> Self {
        let f = &config.format;
        Self {
            const_labels: const_labels.to_vec(),
            classes: std::array::from_fn(|_| AtomicU64::new(0)),
            lines: AtomicU64::new(0),
            unparsed: AtomicU64::new(0),
            request_time: f.slot("request_time").map(|_| Histogram::new()),
            upstream_time: f.slot("upstream_response_time").map(|_| Histogram::new()),
        }
    }

    /// Counts one log line.
    pub fn observe_line(&self, format: &AccessFormat, line: &str) {
        self.lines.fetch_add(1, Ordering::Relaxed);
        let Ok(rec) = format.parse(line) else {
            self.unparsed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match rec.status() {
            Some(s @ 100..=599) => {
                self.classes[usize::from(s / 100 - 1)].fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.unparsed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let (Some(h), Some(t)) = (&self.request_time, rec.request_time()) {
            h.observe(t);
        }
        // `-` (no upstream: a static file, a cached response) is simply not observed.
        if let (Some(h), Some(t)) = (&self.upstream_time, rec.upstream_response_time()) {
            h.observe(t);
        }
    }

    /// Writes the access-log families in text format.
    pub fn render(&self, out: &mut String) {
        let name = "nginx_http_responses_total";
        let _ = write!(
            out,
            "# HELP {name} Responses by status class, from the access log\n# TYPE {name} counter\n"
        );
        for (i, c) in self.classes.iter().enumerate() {
            let block = with_label(&self.const_labels, "status", &format!("{}xx", i + 1));
            let _ = writeln!(out, "{name}{block} {}", c.load(Ordering::Relaxed));
        }
        if let Some(h) = &self.request_time {
            h.render(
                out,
                "nginx_http_request_duration_seconds",
                "Request processing time ($request_time), from the access log",
                &self.const_labels,
            );
        }
        if let Some(h) = &self.upstream_time {
            h.render(
                out,
                "nginx_http_upstream_response_time_seconds",
                "Time to receive the upstream response ($upstream_response_time), from the access log",
                &self.const_labels,
            );
        }
        let name = "nginx_exporter_access_log_lines_total";
        let _ = write!(
            out,
            "# HELP {name} Access log lines read, by whether they matched the format\n# TYPE {name} counter\n"
        );
        let unparsed = self.unparsed.load(Ordering::Relaxed);
        let parsed = self.lines.load(Ordering::Relaxed).saturating_sub(unparsed);
        for (result, v) in [("parsed", parsed), ("unparsed", unparsed)] {
            let block = with_label(&self.const_labels, "result", result);
            let _ = writeln!(out, "{name}{block} {v}");
        }
    }
}

/// Starts following the access log; lines are counted into `metrics` until shutdown.
pub fn spawn(
    config: AccessLogConfig,
    metrics: Arc<AccessMetrics>,
    shutdown: &Shutdown,
) -> Result<(), podmates_follow::Error> {
    let mut fc = podmates_follow::Config::new([config.path.display().to_string()]);
    fc.from = StartFrom::End;
    let mut follower = Follower::start(fc, shutdown.token())?;
    tracing::info!(path = %config.path.display(), "following the access log");
    shutdown.spawn(async move {
        while let Some(batch) = follower.next_batch().await {
            for line in &batch {
                // Pieces of over-long lines are not access-log records.
                if line.kind != LineKind::Complete && line.kind != LineKind::Unterminated {
                    continue;
                }
                match std::str::from_utf8(&line.bytes) {
                    Ok(s) => metrics.observe_line(&config.format, s),
                    Err(_) => {
                        metrics.lines.fetch_add(1, Ordering::Relaxed);
                        metrics.unparsed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            follower.commit();
        }
        if let Err(e) = follower.finish().await {
            tracing::warn!(error = %e, "access log follower stopped with an error");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(format: &str) -> (AccessMetrics, Arc<AccessFormat>) {
        let format = Arc::new(compile_format(format).unwrap());
        let cfg = AccessLogConfig {
            path: "/dev/null".into(),
            format: format.clone(),
        };
        (
            AccessMetrics::new(&cfg, &[("app".to_owned(), "x".to_owned())]),
            format,
        )
    }

    #[test]
    fn counts_status_classes_and_latency() {
        let (m, f) = metrics(
            r#"$remote_addr [$time_local] "$request" $status $request_time $upstream_response_time"#,
        );
        for line in [
            r#"1.2.3.4 [22/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 0.004 0.003"#,
            r#"1.2.3.4 [22/Nov/2026:10:00:00 +0000] "GET /x HTTP/1.1" 404 0.020 -"#,
            r#"1.2.3.4 [22/Nov/2026:10:00:00 +0000] "GET /y HTTP/1.1" 502 1.500 0.100, 1.300"#,
            "garbage",
        ] {
            m.observe_line(&f, line);
        }
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("nginx_http_responses_total{app=\"x\",status=\"2xx\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("nginx_http_responses_total{app=\"x\",status=\"4xx\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("nginx_http_responses_total{app=\"x\",status=\"5xx\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("nginx_http_request_duration_seconds_bucket{app=\"x\",le=\"0.005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("nginx_http_request_duration_seconds_bucket{app=\"x\",le=\"0.025\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("nginx_http_request_duration_seconds_bucket{app=\"x\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("nginx_http_request_duration_seconds_sum{app=\"x\"} 1.524\n"),
            "{out}"
        );
        assert!(
            out.contains("nginx_http_upstream_response_time_seconds_count{app=\"x\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("nginx_http_upstream_response_time_seconds_sum{app=\"x\"} 1.403\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "nginx_exporter_access_log_lines_total{app=\"x\",result=\"unparsed\"} 1\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn combined_has_no_histograms_and_formats_need_status() {
        let (m, _) = metrics("combined");
        let mut out = String::new();
        m.render(&mut out);
        assert!(!out.contains("histogram"), "{out}");
        assert!(
            compile_format("$remote_addr $request_time")
                .unwrap_err()
                .to_string()
                .contains("$status")
        );
        assert!(compile_format("main").is_ok());
    }
}
