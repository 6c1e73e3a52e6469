//! Golden tests: every fixture in `tests/fixtures/` (written by real nginx and rsyslog where they
//! run here, and from the Apache, kubelet and library documentation otherwise) is normalized in
//! both schemas and compared with the reviewed output in `tests/golden/`.
//!
//! After an intended change, `LOG_NORMALIZE_UPDATE_GOLDEN=1 cargo test -p log-normalize --test
//! tests golden` rewrites the expected files; review their diff before committing.

use std::path::Path;

use crate::common::{CUSTOM_FORMAT, json_lines, normalize};

/// (fixture, golden name, arguments)
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "nginx/combined.log",
        "nginx-combined",
        &["--format", "nginx-combined"],
    ),
    ("nginx/main.log", "nginx-main", &["--format", "nginx-main"]),
    (
        "nginx/custom.log",
        "nginx-custom",
        &["--nginx-log-format", CUSTOM_FORMAT],
    ),
    (
        "nginx/error.log",
        "nginx-error",
        &["--format", "nginx-error"],
    ),
    (
        "tricky/access.log",
        "tricky-combined",
        &["--format", "nginx-combined"],
    ),
    ("tricky/access.log", "tricky-auto", &[]),
    (
        "apache/common.log",
        "apache-common",
        &["--format", "apache-common"],
    ),
    (
        "apache/combined.log",
        "apache-combined",
        &["--format", "apache-combined"],
    ),
    (
        "apache/combined.log",
        "apache-custom",
        &[
            "--apache-log-format",
            r#"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\""#,
        ],
    ),
    (
        "apache/error.log",
        "apache-error",
        &["--format", "apache-error", "--timezone-offset", "-07:00"],
    ),
    (
        "syslog/traditional.log",
        "syslog-traditional",
        &[
            "--format",
            "syslog",
            "--year-reference",
            "2026-11-22T03:00:00Z",
        ],
    ),
    ("syslog/file.log", "syslog-file", &["--format", "syslog"]),
    (
        "syslog/protocol23.log",
        "syslog-protocol23",
        &["--format", "syslog"],
    ),
    ("syslog/forward.log", "syslog-forward", &[]),
    ("app/json.log", "json", &["--format", "json"]),
    (
        "app/logfmt.log",
        "logfmt",
        &["--format", "logfmt", "--add-field", "service.name=web"],
    ),
    ("app/cri.log", "cri", &["--format", "cri"]),
];

/// OTel records carry the time they were read, and so do ECS events of lines without a time of
/// their own (as `@timestamp`); those values are blanked for comparison. An `@timestamp` is the
/// time read when it is within a day of now: the fixtures' own times are all older.
fn stable(s: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let recent = |t: &str| {
        podmates_logparse::time::parse_rfc3339(t, 0).is_ok_and(|t| (now - t.secs).abs() < 86_400)
    };
    s.lines()
        .map(|l| {
            let mut line = l.to_owned();
            let key = "\"observedTimeUnixNano\":\"";
            if let Some(at) = line.find(key) {
                let v = at + key.len();
                let end = v + line[v..].find('"').unwrap();
                line = format!("{}0{}", &line[..v], &line[end..]);
            }
            let key = "{\"@timestamp\":\"";
            if line.starts_with(key) {
                let v = key.len();
                let end = v + line[v..].find('"').unwrap();
                if recent(&line[v..end]) {
                    line = format!("{}(time read){}", &line[..v], &line[end..]);
                }
            }
            line + "\n"
        })
        .collect()
}

#[test]
fn golden() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let update = std::env::var_os("LOG_NORMALIZE_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (fixture, name, args) in CASES {
        let input = std::fs::read(root.join("fixtures").join(fixture)).unwrap();
        let input_lines =
            input.split(|b| *b == b'\n').count() - usize::from(input.ends_with(b"\n"));
        for schema in ["ecs", "otel"] {
            let mut a = args.to_vec();
            a.extend(["--schema", schema]);
            let (out, err, ok) = normalize(&a, &input);
            assert!(ok, "{fixture} {a:?}: {err}");
            // No line is ever dropped.
            assert_eq!(json_lines(&out).len(), input_lines, "{fixture} {a:?}");
            let got = stable(&out);
            let path = root.join("golden").join(format!("{name}.{schema}.jsonl"));
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (set LOG_NORMALIZE_UPDATE_GOLDEN=1)",
                    path.display()
                )
            });
            if got != want {
                let diff = got
                    .lines()
                    .zip(want.lines())
                    .find(|(g, w)| g != w)
                    .map(|(g, w)| format!("\n  got:  {g}\n  want: {w}"))
                    .unwrap_or_else(|| " (line count differs)".to_owned());
                failures.push(format!("{}{diff}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}
