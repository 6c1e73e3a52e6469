//! The command line: bad settings exit 64 naming the setting, files and stdin are read in order,
//! and the line counters appear on /metrics while lines flow.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{json_lines, normalize};

fn usage_error(args: &[&str], names: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_log-normalize"))
        .arg("--no-admin-server")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
    assert!(err.contains(names), "{args:?}: {err} should name {names}");
}

#[test]
fn bad_settings_exit_64() {
    usage_error(&["--nginx-log-format", "${oops"], "--nginx-log-format");
    usage_error(
        &["--nginx-log-format", "no variables"],
        "--nginx-log-format",
    );
    usage_error(&["--apache-log-format", "%h %{x"], "--apache-log-format");
    usage_error(&["--add-field", "novalue"], "--add-field");
    usage_error(&["--add-field", "event.original=x"], "--add-field");
    usage_error(&["--add-field", "http.request.id=x"], "--add-field");
    usage_error(&["--add-field", "pattern.x=1"], "--add-field");
    usage_error(&["--add-field", "ecs.version=1"], "--add-field");
    usage_error(
        &["--schema", "otel", "--add-resource", "=x"],
        "--add-resource",
    );
    usage_error(&["--add-resource", "k=v"], "--add-resource");
    usage_error(&["--pattern", "%{a}%{b}"], "--pattern");
    usage_error(&["--timezone-offset", "+25:00"], "--timezone-offset");
    usage_error(&["--year-reference", "yesterday"], "--year-reference");
    usage_error(&["--follow"], "--follow");
    usage_error(&["--follow", "-"], "--follow");
    usage_error(&["--checkpoint-file", "/tmp/x"], "--checkpoint-file");
    usage_error(
        &["--format", "syslog", "--nginx-log-format", "$remote_addr"],
        "--format",
    );
    // clap's own errors (an unknown value or flag) use the same code.
    usage_error(&["--format", "nope"], "--format");
    usage_error(&["--no-such-flag"], "--no-such-flag");
}

#[test]
fn env_vars_set_flags() {
    let line = b"<34>Oct 11 22:14:15 host su: hi\n";
    let out = Command::new(env!("CARGO_BIN_EXE_log-normalize"))
        .env("PODMATES_NO_ADMIN", "true")
        .env("LOG_NORMALIZE_SCHEMA", "otel")
        .env("LOG_NORMALIZE_FORMAT", "syslog")
        .env("LOG_NORMALIZE_ADD_FIELD", "k8s.pod=web-1")
        .env("LOG_NORMALIZE_ADD_RESOURCE", "service.namespace=shop")
        .env("LOG_NORMALIZE_YEAR_REFERENCE", "2026-01-01T00:00:00Z")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(line)?;
            c.wait_with_output()
        })
        .unwrap();
    let lines = json_lines(&String::from_utf8(out.stdout).unwrap());
    let resource = &lines[0]["resourceLogs"][0]["resource"]["attributes"];
    assert!(
        resource
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == "service.namespace" && a["value"]["stringValue"] == "shop")
    );
    let v = [&lines[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]];
    assert_eq!(v[0]["severityNumber"], 18);
    assert_eq!(
        v[0]["timeUnixNano"], "1760220855000000000",
        "2025-10-11T22:14:15Z"
    );
    let attrs = v[0]["attributes"].as_array().unwrap();
    assert!(
        attrs
            .iter()
            .any(|a| a["key"] == "k8s.pod" && a["value"]["stringValue"] == "web-1")
    );
}

#[test]
fn files_then_stdin_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    std::fs::write(&a, "one\ntwo\n").unwrap();
    std::fs::write(&b, "three").unwrap();
    let (out, err, ok) = normalize(
        &[
            a.to_str().unwrap(),
            "-",
            b.to_str().unwrap(),
            "--format",
            "plain",
        ],
        b"from stdin\n",
    );
    assert!(ok, "{err}");
    let msgs: Vec<_> = json_lines(&out)
        .iter()
        .map(|v| v["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(msgs, ["one", "two", "from stdin", "three"]);

    let (_, err, ok) = normalize(&["/nonexistent/file.log"], b"");
    assert!(!ok);
    assert!(err.contains("/nonexistent/file.log"), "{err}");
}

#[test]
fn counters_on_metrics() {
    let mut bin = podmates_testkit::spawn_binary(
        "log-normalize",
        Command::new(env!("CARGO_BIN_EXE_log-normalize"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null()),
    );
    let mut stdin = bin.child().stdin.take().unwrap();
    stdin
        .write_all(
            b"::1 - - [22/Nov/2026:02:13:13 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"c\"\n\
              <34>Oct 11 22:14:15 host su: hi\n<999>bad\nplain \xff text\n{\"broken\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    let want = [
        r#"log_normalize_lines_total{format="nginx-combined",result="parsed"} 1"#,
        r#"log_normalize_lines_total{format="syslog",result="parsed"} 1"#,
        r#"log_normalize_lines_total{format="syslog",result="failed"} 1"#,
        r#"log_normalize_lines_total{format="plain",result="parsed"} 1"#,
        r#"log_normalize_lines_total{format="json",result="failed"} 1"#,
        "log_normalize_invalid_utf8_lines_total 1",
    ];
    let what = "every counter on /metrics";
    podmates_testkit::eventually_ok(Duration::from_secs(15), what, || {
        let body = bin.get("/metrics").map_err(|e| e.to_string())?.text();
        match want.iter().find(|w| !body.contains(*w)) {
            None => Ok(()),
            Some(w) => Err(format!("missing {w} in:\n{body}")),
        }
    });
    drop(stdin);
    let status = bin.wait(Duration::from_secs(15));
    assert!(status.success());
}
