//! A real nginx serves real requests (IPv6, HTTP/2, HTTP/0.9, garbage, quotes in the user agent)
//! and writes its access logs in `combined`, `main` and a custom `log_format`, and its error log;
//! log-normalize reads them and every line must come out parsed with the values sent.
//!
//! `LOG_NORMALIZE_CAPTURE=1 cargo test -p log-normalize --test tests -- --ignored capture`
//! refreshes the committed fixtures in `tests/fixtures/nginx/` from the same traffic.

use crate::common::{CUSTOM_FORMAT, Nginx, json_lines, normalize};
use serde_json::Value;

fn run_traffic() -> Nginx {
    let mut n = Nginx::start();
    n.traffic();
    n.stop();
    n
}

fn find<'a>(events: &'a [Value], path: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["url"]["path"] == path)
        .unwrap_or_else(|| panic!("no event for {path} in {events:#?}"))
}

fn check_access(events: &[Value], with_xff: bool) {
    for e in events {
        assert!(e.get("error").is_none(), "line failed: {e}");
        assert!(e["event"]["original"].is_string());
        assert!(e["@timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(e["http"]["response"]["status_code"].is_u64(), "{e}");
    }
    let root = find(events, "/");
    assert_eq!(root["http"]["response"]["status_code"], 200);
    let q = find(events, "/index.html");
    assert_eq!(q["url"]["query"], "lang=en&q=a%20b");
    assert_eq!(q["url"]["original"], "/index.html?lang=en&q=a%20b");
    assert_eq!(q["http"]["request"]["method"], "GET");
    assert_eq!(q["http"]["version"], "1.1");
    assert_eq!(q["http"]["response"]["body"]["bytes"], 6);
    assert_eq!(q["source"]["ip"], "127.0.0.1");
    if q.get("user_agent").is_some() {
        // nginx writes the quotes as \x22; the output has the agent as the client sent it.
        assert_eq!(
            q["user_agent"]["original"],
            "Mozilla/5.0 (X11; Linux x86_64) \"quoted\" agent"
        );
    }
    if q["http"]["request"].get("referrer").is_some() {
        assert_eq!(
            q["http"]["request"]["referrer"],
            "http://example.com/start?x=1"
        );
    }
    if with_xff {
        assert_eq!(
            q["nginx"]["access"]["http_x_forwarded_for"],
            "203.0.113.7, 198.51.100.2"
        );
    }
    assert_eq!(
        find(events, "/missing.png")["http"]["response"]["status_code"],
        404
    );
    let private = find(events, "/private");
    assert_eq!(private["http"]["response"]["status_code"], 401);
    let h2 = events
        .iter()
        .find(|e| e["http"]["version"] == "2.0")
        .expect("an HTTP/2.0 request");
    assert_eq!(h2["url"]["path"], "/");
    let garbage = events
        .iter()
        .find(|e| e["http"]["response"]["status_code"] == 400)
        .expect("the TLS handshake logged as a 400");
    assert!(garbage["url"].get("path").is_none(), "{garbage}");
    assert!(
        events
            .iter()
            .any(|e| e["url"]["path"] == "/" && e["http"].get("version").is_none()),
        "HTTP/0.9 request without protocol"
    );
}

#[test]
fn real_nginx_logs_parse_completely() {
    let n = run_traffic();
    let read = |name: &str| std::fs::read(n.path(name)).unwrap();

    let combined = read("combined.log");
    let lines = combined
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(lines >= 9, "nginx wrote {lines} lines");
    for format in ["nginx-combined", "auto"] {
        let (out, err, ok) = normalize(&["--format", format], &combined);
        assert!(ok, "{err}");
        let ev = json_lines(&out);
        assert_eq!(ev.len(), lines, "one output line per input line");
        check_access(&ev, false);
        assert!(
            ev.iter()
                .all(|e| e["user"]["name"].is_null() || e["url"]["path"] == "/private")
        );
        assert_eq!(find(&ev, "/private")["user"]["name"], "alice");
        if n.port6.is_some() {
            let v6 = find(&ev, "/v6");
            assert_eq!(v6["source"]["ip"], "::1");
            assert_eq!(v6["user_agent"]["original"], "six");
        }
    }

    let main = read("main.log");
    let (out, err, ok) = normalize(&["--format", "nginx-main"], &main);
    assert!(ok, "{err}");
    check_access(&json_lines(&out), true);
    let (out, _, _) = normalize(&[], &main);
    let auto = json_lines(&out);
    check_access(&auto, true);
    assert!(auto.iter().all(|e| e["event"]["dataset"] == "nginx.access"));

    let custom = read("custom.log");
    let (out, err, ok) = normalize(&["--nginx-log-format", CUSTOM_FORMAT], &custom);
    assert!(ok, "{err}");
    let ev = json_lines(&out);
    check_access(&ev, false);
    // $request_time becomes event.duration (ns); $host is url.domain.
    assert!(ev.iter().all(|e| e["event"]["duration"].is_u64()));
    assert_eq!(find(&ev, "/index.html")["url"]["domain"], "localhost");

    let error = read("error.log");
    let (out, err, ok) = normalize(&["--format", "nginx-error"], &error);
    assert!(ok, "{err}");
    let ev = json_lines(&out);
    assert!(!ev.is_empty());
    for e in &ev {
        assert!(e.get("error").is_none(), "line failed: {e}");
        assert!(e["log"]["level"].is_string());
        assert!(e["process"]["pid"].is_u64());
    }
    let missing = ev
        .iter()
        .find(|e| e["url"]["path"] == "/missing.png")
        .expect("the 404's error-log line");
    assert_eq!(missing["log"]["level"], "error");
    assert_eq!(missing["source"]["address"], "127.0.0.1");
    assert_eq!(missing["url"]["domain"], "localhost");
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("No such file")
    );

    // The same lines as OpenTelemetry records.
    let (out, err, ok) = normalize(&["--schema", "otel"], &combined);
    assert!(ok, "{err}");
    let ev = json_lines(&out);
    assert_eq!(ev.len(), lines);
    for e in &ev {
        let e = &e["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert!(e["timeUnixNano"].as_str().unwrap().parse::<u64>().is_ok());
        assert!(e["severityNumber"].as_u64().unwrap() >= 9);
        let attrs = e["attributes"].as_array().unwrap();
        assert!(
            attrs
                .iter()
                .any(|a| a["key"] == "http.response.status_code")
        );
    }
}

/// Refreshes `tests/fixtures/nginx/` from a live nginx (run by hand, see the module docs).
#[test]
#[ignore = "writes fixtures; run by hand with LOG_NORMALIZE_CAPTURE=1"]
fn capture() {
    if std::env::var_os("LOG_NORMALIZE_CAPTURE").is_none() {
        return;
    }
    let n = run_traffic();
    let dest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nginx");
    std::fs::create_dir_all(&dest).unwrap();
    for name in ["combined.log", "main.log", "custom.log", "error.log"] {
        std::fs::copy(n.path(name), dest.join(name)).unwrap();
    }
}
