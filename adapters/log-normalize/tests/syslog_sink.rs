//! `--syslog-tcp`: the JSON lines shipped to a real rsyslog (Debian's `rsyslog`, `imtcp` on
//! loopback) as RFC 5424 messages with octet counting; rsyslog parses each frame and writes
//! its header fields and MSG to a file, which must hold every line, in order, intact.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podmates_testkit::{Proc, free_port, require, wait_port};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

struct Rsyslog {
    dir: tempfile::TempDir,
    port: u16,
    _proc: Proc,
}

/// rsyslog's template: the header fields it parsed, then MSG.
const FIELDS: &str = "%pri% %hostname% %app-name% %procid% %msgid% %msg%\\n";

impl Rsyslog {
    fn start() -> Self {
        Self::start_on(free_port(), FIELDS)
    }

    /// rsyslogd receiving on `port`, writing each message with `template`.
    fn start_on(port: u16, template: &str) -> Self {
        require(RSYSLOGD);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            r#"global(workDirectory="{d}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="t" type="string" string="{template}")
*.* action(type="omfile" file="{d}/received.log" template="t")
"#
        );
        std::fs::write(dir.path().join("rsyslog.conf"), conf).unwrap();
        let proc = Proc::spawn(
            "rsyslogd",
            Command::new(RSYSLOGD)
                .args(["-n", "-f"])
                .arg(dir.path().join("rsyslog.conf"))
                .arg("-i")
                .arg(dir.path().join("rsyslog.pid"))
                .stdout(Stdio::null()),
        );
        wait_port(port, "rsyslogd listening");
        Self {
            dir,
            port,
            _proc: proc,
        }
    }

    /// The lines rsyslog wrote, once there are `n` of them (bounded wait).
    fn received(&self, n: usize) -> Vec<String> {
        let path = self.dir.path().join("received.log");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn every_line_reaches_rsyslog_framed_as_rfc5424() {
    let r = Rsyslog::start();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut input = std::fs::read(fixtures.join("nginx/combined.log")).unwrap();
    input.extend_from_slice(
        b"<165>1 2026-12-02T07:00:00.123Z web01 billing 4242 ID47 - card declined\n",
    );
    input.extend_from_slice("a plain line with unicode: h\u{e9}llo \u{2713}\n".as_bytes());
    let lines: Vec<String> = String::from_utf8(input.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for schema in ["ecs", "otel"] {
        let before = r.received(0).len();
        let mut child = Command::new(env!("CARGO_BIN_EXE_log-normalize"))
            .args(["--no-admin-server", "--schema", schema, "--syslog-tcp"])
            .arg(format!("127.0.0.1:{}", r.port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "nothing on stdout with --syslog-tcp");

        let got = r.received(before + lines.len());
        let got = &got[before..];
        assert_eq!(got.len(), lines.len(), "{schema}: {got:?}");
        for (g, want) in got.iter().zip(&lines) {
            let mut f = g.splitn(6, ' ');
            let (pri, host, app, procid, msgid) = (
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap(),
            );
            let msg = f.next().unwrap();
            let v: serde_json::Value = serde_json::from_str(msg)
                .unwrap_or_else(|e| panic!("{schema}: MSG is not the JSON line ({e}): {g}"));
            let original = v["event"]["original"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    let r = &v["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
                    let a = r["attributes"].as_array().unwrap();
                    a.iter()
                        .find(|a| a["key"] == "log.record.original")
                        .map(|a| a["value"]["stringValue"].as_str().unwrap().to_owned())
                        .unwrap_or_else(|| r["body"]["stringValue"].as_str().unwrap().to_owned())
                });
            assert_eq!(&original, want, "{schema}");
            if want.starts_with("<165>") {
                // A syslog line's own header passes through.
                assert_eq!(
                    (pri, host, app, procid, msgid),
                    ("165", "web01", "billing", "4242", "ID47")
                );
            } else {
                assert_eq!(app, "log-normalize", "{g}");
                assert_ne!(host, "-");
                // Facility user; access lines' severity from the status (info, 4xx warning).
                assert!(["14", "12", "11"].contains(&pri), "{g}");
            }
        }
    }
}

#[test]
fn a_receiver_that_comes_up_late_still_gets_everything() {
    // The port is chosen first and nothing listens yet: log-normalize retries with backoff.
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_log-normalize"))
        .args(["--no-admin-server", "--format", "plain", "--syslog-tcp"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input: String = (0..100).map(|i| format!("line {i}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    // Wait (bounded) until it reports the receiver unreachable: it is retrying.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("syslog receiver unreachable") => break,
            Ok(_) => {}
            Err(e) => panic!("no retry reported: {e}"),
        }
    }
    let r = Rsyslog::start_on(port, "%msg%\\n");
    let status = child.wait().unwrap();
    assert!(status.success());
    let got = r.received(100);
    assert_eq!(got.len(), 100, "{got:?}");
    for (i, g) in got.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(g).unwrap();
        assert_eq!(v["message"], format!("line {i}"));
    }
}
