//! `--follow`: files matched by a glob are followed through rename rotation, SIGTERM drains and
//! exits cleanly, and a restart with a checkpoint resumes without repeating or losing a line.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use podmates_testkit::Proc;
use std::sync::mpsc;
use std::time::Duration;

const LINE: &str =
    r#"192.0.2.1 - - [22/Nov/2026:02:13:13 +0000] "GET /PATH HTTP/1.1" 200 1 "-" "t""#;

struct Follower {
    proc: Proc,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(dir: &Path) -> Self {
        let mut proc = Proc::spawn(
            "log-normalize",
            Command::new(env!("CARGO_BIN_EXE_log-normalize"))
                .args([
                    "--no-admin-server",
                    "--follow",
                    "--format",
                    "nginx-combined",
                ])
                .arg("--checkpoint-file")
                .arg(dir.join("checkpoint.json"))
                .arg(format!("{}/*.log", dir.display()))
                .stdout(Stdio::piped()),
        );
        let stdout = proc.child().stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Self { proc, lines }
    }

    /// The next `n` URL paths written, waiting at most 10 s for each.
    fn paths(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let l = self
                    .lines
                    .recv_timeout(Duration::from_secs(10))
                    .expect("a line within 10 s");
                let v: serde_json::Value = serde_json::from_str(&l).unwrap();
                assert!(v.get("error").is_none(), "{l}");
                v["url"]["path"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    fn terminate(mut self) {
        self.proc.signal("TERM");
        let status = self.proc.wait(Duration::from_secs(10));
        assert!(status.success(), "exit status {status}");
        // Nothing more after the drain.
        assert!(self.lines.recv_timeout(Duration::from_millis(200)).is_err());
    }
}

fn append(path: &Path, paths: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for p in paths {
        writeln!(f, "{}", LINE.replace("PATH", p)).unwrap();
    }
}

#[test]
fn follows_rotation_and_resumes_from_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    append(&log, &["a", "b"]);

    let f = Follower::start(dir.path());
    assert_eq!(f.paths(2), ["/a", "/b"]);
    append(&log, &["c"]);
    assert_eq!(f.paths(1), ["/c"]);
    // logrotate's default: rename, then the server reopens a new file.
    append(&log, &["d"]);
    std::fs::rename(&log, dir.path().join("access.log.1")).unwrap();
    append(&log, &["e"]);
    assert_eq!(f.paths(2), ["/d", "/e"]);
    // A second file matching the glob.
    append(&dir.path().join("other.log"), &["f"]);
    assert_eq!(f.paths(1), ["/f"]);
    f.terminate();

    // Written while stopped: after the restart, exactly these come out.
    append(&log, &["g"]);
    let f = Follower::start(dir.path());
    assert_eq!(f.paths(1), ["/g"]);
    assert!(
        f.lines.recv_timeout(Duration::from_millis(500)).is_err(),
        "a line was repeated after the restart"
    );
    f.terminate();
}
