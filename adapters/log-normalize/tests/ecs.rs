//! ECS output checked against ECS's own field definitions: every field of every output line
//! of every fixture must be in the table read from elastic/ecs's `ecs_flat.yml`
//! (`log_normalize::ecs_fields`) with a JSON value that fits its type, or sit under one of the
//! format namespaces; `ecs.version` and `@timestamp` are on every event.

use std::path::Path;

use crate::common::{SCHEMA_CASES as CASES, json_lines, normalize};
use log_normalize::ecs_fields::{CUSTOM_ROOTS, type_of};
use serde_json::Value;

fn fits(ty: &str, v: &Value) -> bool {
    match ty {
        "keyword" | "wildcard" | "match_only_text" | "ip" | "date" => {
            v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        }
        "long" => v.is_i64() || v.is_u64(),
        "flattened" => v.is_object(),
        "boolean" => v.is_boolean(),
        _ => false,
    }
}

/// Walks an event, checking each leaf (or flattened object) against the table.
fn check(path: &str, v: &Value, line: &Value) {
    if let Some(ty) = type_of(path) {
        assert!(fits(ty, v), "{path} is {ty} in ECS, written as {v}: {line}");
        if let Value::String(s) = v
            && ty == "ip"
        {
            assert!(s.parse::<std::net::IpAddr>().is_ok(), "{path}: {line}");
        }
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check(&p, v, line);
            }
        }
        _ => panic!("{path} is not an ECS field: {line}"),
    }
}

#[test]
fn every_field_is_an_ecs_field_of_its_type() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (fixture, args) in CASES {
        let input = std::fs::read(dir.join(fixture)).unwrap();
        let (out, err, ok) = normalize(args, &input);
        assert!(ok, "{fixture}: {err}");
        for line in json_lines(&out) {
            assert!(line["@timestamp"].is_string(), "{line}");
            assert!(line["ecs"]["version"].is_string(), "{line}");
            for (k, v) in line.as_object().unwrap() {
                if CUSTOM_ROOTS.contains(&k.as_str()) {
                    continue;
                }
                check(k, v, &line);
            }
        }
    }
}

fn one(args: &[&str], line: &str) -> Value {
    let (out, err, ok) = normalize(args, format!("{line}\n").as_bytes());
    assert!(ok, "{err}");
    json_lines(&out).remove(0)
}

#[test]
fn plain_lines_get_the_time_read() {
    let before = std::time::SystemTime::now();
    let v = one(&["--format", "plain"], "no time here");
    let t = v["@timestamp"].as_str().unwrap();
    let year: i32 = t[..4].parse().unwrap();
    let now_year = 1970
        + (before
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 31_556_952) as i32;
    assert!((year - now_year).abs() <= 1, "{t}");
    assert_eq!(v["event"]["kind"], "event");
}

#[test]
fn syslog_fields() {
    let v = one(
        &[],
        r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 [exampleSDID@32473 iut="3" eventSource="Application" key="hello \"test\""][examplePriority@32473 class="high"] An application event"#,
    );
    let s = &v["log"]["syslog"];
    assert_eq!(s["hostname"], "mymachine.example.com");
    assert_eq!(s["appname"], "evntslog");
    assert_eq!(s["procid"], "42");
    assert_eq!(s["msgid"], "ID47");
    assert_eq!(s["version"], "1");
    assert_eq!(s["facility"]["name"], "local4");
    assert_eq!(s["severity"]["name"], "notice");
    assert_eq!(
        s["structured_data"],
        serde_json::json!({
            "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "key": "hello \"test\""},
            "examplePriority@32473": {"class": "high"}
        })
    );
    // vrl's parse_syslog `empty_sd_element`.
    let v = one(
        &[],
        "<13>1 2019-02-13T19:48:34+00:00 74794bfb6795 root 8449 - [empty] qwerty",
    );
    assert_eq!(
        v["log"]["syslog"]["structured_data"],
        serde_json::json!({"empty": {}})
    );
    assert_eq!(v["log"]["syslog"]["facility"]["name"], "user");
    assert_eq!(v["message"], "qwerty");
}

#[test]
fn access_fields() {
    let v = one(
        &[
            "--nginx-log-format",
            r#"$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent $bytes_sent $request_length $request_id host=$host"#,
        ],
        r#"10.0.0.1 [2026-12-02T07:00:00+00:00] "GET /a HTTP/1.1" 404 12 250 80 5f1a2b host=example.com:8443"#,
    );
    assert_eq!(v["url"]["domain"], "example.com");
    assert_eq!(v["url"]["port"], 8443);
    assert_eq!(v["http"]["response"]["body"]["bytes"], 12);
    assert_eq!(v["http"]["response"]["bytes"], 250);
    assert_eq!(v["http"]["request"]["bytes"], 80);
    assert_eq!(v["http"]["request"]["id"], "5f1a2b");
    assert_eq!(v["event"]["category"], serde_json::json!(["web"]));
    assert_eq!(v["event"]["type"], serde_json::json!(["access"]));
    assert_eq!(v["event"]["outcome"], "failure");

    // Debian's combined logs %O, the bytes with headers.
    let v = one(
        &["--format", "apache-combined"],
        r#"::1 - - [02/Dec/2026:07:00:00 +0000] "GET / HTTP/1.1" 200 3380 "-" "curl/8""#,
    );
    assert_eq!(v["http"]["response"]["bytes"], 3380);
    assert!(v["http"]["response"].get("body").is_none(), "{v}");
    assert_eq!(v["event"]["outcome"], "success");

    let v = one(&["--format", "nginx-combined"], "not an access line");
    assert_eq!(v["event"]["kind"], "pipeline_error");
}
