//! OTLP output checked against OpenTelemetry's own definitions: every output line of every
//! fixture is parsed by the official `opentelemetry-proto` Python package as a `LogsData`
//! (what the Collector's `otlpjsonfile` receiver reads) with `json_format.Parse`, which rejects
//! unknown fields, wrong types and out-of-range integers; the records it finds must be as many
//! as the input lines. The encoding rules the parser does not enforce (unique, non-empty keys,
//! header arrays, `_OTHER` methods) are checked on the JSON here.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{CUSTOM_FORMAT, SCHEMA_CASES as CASES, json_lines, normalize};

/// Reads LogsData lines on stdin, prints the number of log records, or fails naming the line.
const CHECK: &str = r#"
import sys
from google.protobuf import json_format
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
n = 0
for i, line in enumerate(sys.stdin):
    d = LogsData()
    try:
        json_format.Parse(line, d)
    except Exception as e:
        sys.exit(f"line {i + 1}: {e}: {line}")
    for rl in d.resource_logs:
        for sl in rl.scope_logs:
            n += len(sl.log_records)
print(n)
"#;

fn check_with_proto(output: &str) -> usize {
    let out = podmates_testkit::proc::output(
        Command::new(podmates_testkit::clients::python()).args(["-c", CHECK]),
        output.as_bytes(),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "the official proto rejected the output: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The rules of OTLP/JSON and the semantic conventions that a proto parser accepts anyway.
fn check_rules(line: &serde_json::Value) {
    let keys = |attrs: &serde_json::Value| {
        let mut seen = std::collections::HashSet::new();
        for a in attrs.as_array().unwrap() {
            let k = a["key"].as_str().unwrap();
            assert!(!k.is_empty(), "empty key: {line}");
            assert!(seen.insert(k.to_owned()), "duplicate key {k}: {line}");
            if let Some(i) = a["value"].get("intValue") {
                assert!(i.is_string(), "intValue not a string: {line}");
            }
        }
    };
    for rl in line["resourceLogs"].as_array().unwrap() {
        keys(&rl["resource"]["attributes"]);
        for sl in rl["scopeLogs"].as_array().unwrap() {
            for r in sl["logRecords"].as_array().unwrap() {
                let attrs = &r["attributes"];
                keys(attrs);
                for k in ["timeUnixNano", "observedTimeUnixNano"] {
                    if let Some(t) = r.get(k) {
                        let t = t.as_str().unwrap();
                        assert!(t.parse::<u64>().is_ok(), "{k} {t}: {line}");
                    }
                }
                assert!(r["eventName"].is_string(), "{line}");
                for a in attrs.as_array().unwrap() {
                    let v = &a["value"];
                    match a["key"].as_str().unwrap() {
                        "event.name" | "http.server.request.duration" | "error.message" => {
                            panic!("not an attribute: {line}")
                        }
                        "http.request.header.referer" => {
                            assert!(v["arrayValue"]["values"].is_array(), "{line}")
                        }
                        "http.request.method" => assert!(
                            [
                                "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH",
                                "CONNECT", "TRACE", "_OTHER"
                            ]
                            .contains(&v["stringValue"].as_str().unwrap()),
                            "{line}"
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
}

#[test]
fn every_line_is_a_logs_data_the_official_proto_accepts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (fixture, args) in CASES {
        let input = std::fs::read(dir.join(fixture)).unwrap();
        let mut a = vec![
            "--schema",
            "otel",
            "--add-resource",
            "service.namespace=shop",
            "--add-resource",
            "host.name=configured",
        ];
        a.extend_from_slice(args);
        let (out, err, ok) = normalize(&a, &input);
        assert!(ok, "{fixture} {args:?}: {err}");
        let lines = input.split(|b| *b == b'\n').count() - usize::from(input.ends_with(b"\n"));
        assert_eq!(out.lines().count(), lines, "{fixture} {args:?}");
        for v in json_lines(&out) {
            check_rules(&v);
        }
        assert_eq!(
            check_with_proto(&out),
            lines,
            "records lost in {fixture} {args:?}"
        );
    }
}

/// The record one line gives, with its resource attributes.
fn one(args: &[&str], line: &str) -> (serde_json::Value, serde_json::Value) {
    let mut a = vec!["--schema", "otel"];
    a.extend_from_slice(args);
    let (out, err, ok) = normalize(&a, format!("{line}\n").as_bytes());
    assert!(ok, "{err}");
    let v = &json_lines(&out)[0]["resourceLogs"][0];
    (
        v["resource"]["attributes"].clone(),
        v["scopeLogs"][0]["logRecords"][0].clone(),
    )
}

fn attr<'v>(attrs: &'v serde_json::Value, key: &str) -> Option<&'v serde_json::Value> {
    attrs
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[test]
fn syslog_host_and_app_are_on_the_resource() {
    let (res, rec) = one(
        &["--add-resource", "service.namespace=shop"],
        "<165>1 2026-12-02T07:00:00.123Z web01 nginx 1234 ID47 - started",
    );
    assert_eq!(attr(&res, "host.name").unwrap()["stringValue"], "web01");
    assert_eq!(attr(&res, "service.name").unwrap()["stringValue"], "nginx");
    assert_eq!(
        attr(&res, "service.namespace").unwrap()["stringValue"],
        "shop"
    );
    assert!(attr(&rec["attributes"], "host.name").is_none());
    assert_eq!(rec["timeUnixNano"], "1796194800123000000");
    assert_eq!(rec["severityNumber"], 10);
}

#[test]
fn json_encoding_rules() {
    let (_, rec) = one(
        &[],
        r#"{"msg":"m","n":18446744073709551615,"i":-5,"event.name":"user.login","":"x","time":1764659253123456789,"level":"informational"}"#,
    );
    let a = &rec["attributes"];
    assert_eq!(attr(a, "n").unwrap()["stringValue"], "18446744073709551615");
    assert_eq!(attr(a, "i").unwrap()["intValue"], "-5");
    assert_eq!(rec["eventName"], "user.login");
    // Epoch nanoseconds keep every digit.
    assert_eq!(rec["timeUnixNano"], "1764659253123456789");
    assert_eq!(rec["severityNumber"], 9);
    assert_eq!(rec["severityText"], "informational");

    // Before 1970: no timeUnixNano (unsigned), the observed time remains.
    let (_, rec) = one(&[], r#"{"msg":"m","ts":"1969-07-20T20:17:40Z"}"#);
    assert!(rec.get("timeUnixNano").is_none(), "{rec}");
    assert!(rec["observedTimeUnixNano"].is_string());

    for (level, number) in [("verbose", 1), ("severe", 17), ("30", 9), ("60", 21)] {
        let (_, rec) = one(&[], &format!(r#"{{"msg":"m","level":"{level}"}}"#));
        assert_eq!(rec["severityNumber"], number, "{level}");
    }
    let (_, rec) = one(&[], r#"{"msg":"m","level":40}"#);
    assert_eq!(rec["severityNumber"], 13);
    // An unknown word keeps its text, without a number.
    let (_, rec) = one(&[], r#"{"msg":"m","level":"chatty"}"#);
    assert_eq!(rec["severityText"], "chatty");
    assert!(rec.get("severityNumber").is_none());
}

#[test]
fn http_semantic_conventions() {
    let (_, rec) = one(
        &["--nginx-log-format", CUSTOM_FORMAT],
        r#"10.0.0.1 [2026-12-02T07:00:00+00:00] "PROPFIND /dav HTTP/1.1" 207 12 rt=0.250 host=example.com:8443 ua="curl/8""#,
    );
    let a = &rec["attributes"];
    assert_eq!(
        attr(a, "http.request.method").unwrap()["stringValue"],
        "_OTHER"
    );
    assert_eq!(
        attr(a, "http.request.method_original").unwrap()["stringValue"],
        "PROPFIND"
    );
    assert_eq!(
        attr(a, "server.address").unwrap()["stringValue"],
        "example.com"
    );
    assert_eq!(attr(a, "server.port").unwrap()["intValue"], "8443");
    assert_eq!(
        attr(a, "nginx.access.request_time").unwrap()["doubleValue"],
        0.25
    );
    assert!(attr(a, "http.server.request.duration").is_none());

    let (_, rec) = one(
        &["--format", "nginx-combined"],
        r#"10.0.0.1 - - [02/Dec/2026:07:00:00 +0000] "GET / HTTP/1.1" 200 5 "http://r.example/" "curl/8""#,
    );
    let a = &rec["attributes"];
    assert_eq!(
        attr(a, "http.request.header.referer").unwrap()["arrayValue"]["values"][0]["stringValue"],
        "http://r.example/"
    );
    assert_eq!(
        attr(a, "http.request.method").unwrap()["stringValue"],
        "GET"
    );
}
