//! Access-log mode against a real nginx writing its access log: responses by status class and
//! latency histograms, next to the stub_status metrics.

use std::net::SocketAddr;
use std::time::Duration;

use podmates_testkit::eventually;

use crate::common::{Exporter, Metrics, Nginx, get};

const TIMED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_response_time"#;

/// 3 + 2 x 2 (each /up is logged twice: the proxied request to / and /up itself) responses 2xx,
/// 2 4xx, 1 5xx.
fn traffic(nginx: &Nginx) {
    let addr: SocketAddr = ([127, 0, 0, 1], nginx.port).into();
    for (path, status, times) in [
        ("/", 200, 3),
        ("/missing", 404, 2),
        ("/err", 503, 1),
        ("/up", 200, 2),
    ] {
        for _ in 0..times {
            assert_eq!(get(addr, path).unwrap().0, status, "{path}");
        }
    }
}

fn wait_for_lines(e: &Exporter, labels: &str, n: f64) -> Metrics {
    let series = format!("nginx_exporter_access_log_lines_total{labels}");
    eventually(
        Duration::from_secs(10),
        &format!("{n} lines in {series}"),
        || {
            let m = e.metrics();
            (m.samples.get(&series) == Some(&n)).then_some(m)
        },
    )
}

#[test]
fn status_classes_and_latency_histograms_from_a_log_format_string() {
    let nginx = Nginx::start_with(
        false,
        &format!("log_format timed '{TIMED}';\n  access_log {{dir}}/access.log timed;"),
    );
    // Lines from before the exporter started are not counted.
    get(([127, 0, 0, 1], nginx.port).into(), "/").unwrap();
    let log = nginx.path("access.log").display().to_string();
    let e = Exporter::ours(&[
        "--nginx.scrape-uri",
        &nginx.url("/stub_status"),
        "--access-log",
        &log,
        "--access-log-format",
        TIMED,
        "--prometheus.const-label=app=web",
    ]);
    traffic(&nginx);
    let m = wait_for_lines(&e, "{app=\"web\",result=\"parsed\"}", 10.0);
    let class = |c: &str| {
        m.get(&format!(
            "nginx_http_responses_total{{app=\"web\",status=\"{c}\"}}"
        ))
    };
    assert_eq!(class("2xx"), 7.0);
    assert_eq!(class("4xx"), 2.0);
    assert_eq!(class("5xx"), 1.0);
    assert_eq!(class("1xx"), 0.0);
    assert_eq!(m.types["nginx_http_request_duration_seconds"], "histogram");
    assert_eq!(
        m.get("nginx_http_request_duration_seconds_count{app=\"web\"}"),
        10.0
    );
    assert_eq!(
        m.get("nginx_http_request_duration_seconds_bucket{app=\"web\",le=\"+Inf\"}"),
        10.0
    );
    assert!(m.get("nginx_http_request_duration_seconds_bucket{app=\"web\",le=\"10\"}") >= 9.0);
    // Only the two proxied requests have an upstream time.
    assert_eq!(
        m.get("nginx_http_upstream_response_time_seconds_count{app=\"web\"}"),
        2.0
    );
    assert_eq!(
        m.get("nginx_exporter_access_log_lines_total{app=\"web\",result=\"unparsed\"}"),
        0.0
    );
    // stub_status metrics are still there.
    assert_eq!(m.get("nginx_up{app=\"web\"}"), 1.0);
}

#[test]
fn combined_format_from_the_environment_counts_statuses_without_histograms() {
    let nginx = Nginx::start_with(false, "access_log {dir}/access.log combined;");
    let e = Exporter::ours_env(
        &["--nginx.scrape-uri", &nginx.url("/stub_status")],
        &[
            ("ACCESS_LOG", nginx.path("access.log").display().to_string()),
            ("ACCESS_LOG_FORMAT", "combined".to_owned()),
        ],
    );
    traffic(&nginx);
    let m = wait_for_lines(&e, "{result=\"parsed\"}", 10.0);
    assert_eq!(m.get("nginx_http_responses_total{status=\"2xx\"}"), 7.0);
    assert_eq!(m.get("nginx_http_responses_total{status=\"5xx\"}"), 1.0);
    assert!(!m.types.contains_key("nginx_http_request_duration_seconds"));
    // A line in another format is counted as unparsed, not as a response.
    std::fs::OpenOptions::new()
        .append(true)
        .open(nginx.path("access.log"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"not an access log line\n"))
        .unwrap();
    let m = eventually(Duration::from_secs(10), "the unparsed line", || {
        let m = e.metrics();
        (m.samples
            .get("nginx_exporter_access_log_lines_total{result=\"unparsed\"}")
            == Some(&1.0))
        .then_some(m)
    });
    assert_eq!(m.get("nginx_http_responses_total{status=\"2xx\"}"), 7.0);
}
