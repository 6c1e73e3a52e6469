//! User-defined formats: `--pattern` (dissect) with typed conversions and `--timestamp-format`,
//! on the seeds' adapter example (`date` output, `#`, the message).

use crate::common::{json_lines, normalize};
use serde_json::json;

#[test]
fn the_seed_example_becomes_a_typed_event() {
    let line = b"Wed Dec  2 07:27:33 UTC 2026#This is log\n";
    for extra in [&[][..], &["--timestamp-format", "%a %b %e %H:%M:%S %Z %Y"]] {
        let mut args = vec!["--pattern", "%{@timestamp}#%{message}"];
        args.extend_from_slice(extra);
        let (out, err, ok) = normalize(&args, line);
        assert!(ok, "{err}");
        let v = &json_lines(&out)[0];
        assert_eq!(v["@timestamp"], "2026-12-02T07:27:33Z", "{v}");
        assert_eq!(v["message"], "This is log");
        assert_eq!(v["event"]["dataset"], "pattern");
        assert!(v.get("error").is_none(), "{v}");
    }
}

#[test]
fn typed_keys_and_fallback() {
    let input = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema/pattern.log"),
    )
    .unwrap();
    let (out, err, ok) = normalize(
        &[
            "--pattern",
            "%{@timestamp}#%{level} %{ms:int} %{cached:bool} %{ratio:float} %{message}",
            "--timestamp-format",
            "%a %b %e %H:%M:%S %Z %Y",
        ],
        &input,
    );
    assert!(ok, "{err}");
    let v = json_lines(&out);
    assert_eq!(v.len(), 4, "no line is dropped");
    // The first line lacks the typed keys: not this pattern, so it is detected (plain).
    assert_eq!(v[0]["event"]["dataset"], "plain");
    assert_eq!(v[1]["@timestamp"], "2026-12-02T07:27:34Z");
    assert_eq!(v[1]["log"]["level"], "WARN");
    assert_eq!(v[1]["message"], "slow request");
    assert_eq!(
        v[1]["pattern"],
        json!({"ms": 17, "cached": true, "ratio": 0.25})
    );
    assert_eq!(v[2]["event"]["dataset"], "plain");

    // OTel: typed attributes.
    let (out, _, _) = normalize(
        &[
            "--schema",
            "otel",
            "--pattern",
            "%{@timestamp}#%{level} %{ms:int} %{cached:bool} %{ratio:float} %{message}",
        ],
        &input,
    );
    let r = &json_lines(&out)[1]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(r["severityNumber"], 13);
    let attrs = r["attributes"].as_array().unwrap();
    let get = |k: &str| {
        attrs
            .iter()
            .find(|a| a["key"] == k)
            .map(|a| a["value"].clone())
    };
    assert_eq!(get("ms"), Some(json!({"intValue": "17"})));
    assert_eq!(get("cached"), Some(json!({"boolValue": true})));
    assert_eq!(get("ratio"), Some(json!({"doubleValue": 0.25})));
}

#[test]
fn a_time_that_does_not_fit_is_an_error_on_the_line() {
    let (out, err, ok) = normalize(
        &[
            "--pattern",
            "%{@timestamp}#%{message}",
            "--timestamp-format",
            "%F %T",
        ],
        b"not a time#message\n",
    );
    assert!(ok, "{err}");
    let v = &json_lines(&out)[0];
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--timestamp-format"),
        "{v}"
    );
    assert_eq!(v["message"], "message");
}

#[test]
fn bad_patterns_exit_64_naming_the_flag() {
    for args in [
        &["--pattern", "%{a}%{b}"][..],
        &["--pattern", "%{a:uuid} x"],
        &["--pattern", "%{a} %{b}", "--timestamp-format", "%Q"],
        &["--timestamp-format", "%F"],
        &["--pattern", "%{a} %{b}", "--format", "json"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_log-normalize"))
            .args(args)
            .arg("--no-admin-server")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--pattern") || err.contains("--timestamp-format"),
            "{err}"
        );
    }
}
