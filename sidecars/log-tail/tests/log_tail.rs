//! The real log-tail binary against files written by a concurrent writer and rotated by the real
//! logrotate. Every test checks exact line counts and order per file (numbered lines).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(30);

fn pattern(dir: &Path) -> String {
    format!("{}/*.log", dir.display())
}

fn text(lines: &[Vec<u8>]) -> Vec<String> {
    lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// Stops log-tail with SIGTERM, checks it exited 0, returns its output as text.
fn stop(tail: Tail) -> Vec<String> {
    let (status, lines, _) = tail.terminate(T);
    assert!(status.success(), "log-tail exited with {status}");
    text(&lines)
}

#[test]
fn rename_rotation_with_logrotate_create_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let tail = Tail::start(dir.path(), &["--output", "prefixed", &pattern(dir.path())]);
    let total = 30_000;
    let w = Writer::spawn(&log, "app", total, 20);
    for round in 1..=3 {
        // Rotate while the writer keeps writing to its open descriptor (now the renamed file),
        // then let it reopen the path as an application does on SIGHUP.
        tail.wait_count("app ", round * 5_000, T);
        logrotate(dir.path(), &log, "create");
        std::thread::sleep(Duration::from_millis(20));
        w.reopen();
    }
    assert_eq!(w.join(), total);
    tail.wait_count("app ", total as usize, T);
    let lines = stop(tail);
    assert!(
        dir.path().join("app.log.3").exists(),
        "logrotate rotated three times"
    );
    // Every line is attributed to the file it was written to.
    let prefix = format!("{}: ", log.display());
    assert!(
        lines.iter().all(|l| l.starts_with(&prefix)),
        "{:?}",
        &lines[..3]
    );
    assert_exact(&lines, "app", 0..total);
}

#[test]
fn copytruncate_restarts_at_zero_exactly_when_the_writer_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let tail = Tail::start(dir.path(), &[&pattern(dir.path())]);
    let w = Writer::spawn(&log, "ct", 10_000, 20);
    for round in 1..=2u64 {
        // The writer pauses around logrotate's copy-then-truncate window, and log-tail has read
        // everything before it: then no line may be lost.
        tail.wait_count("ct ", (round * 3_000) as usize, T);
        w.paused(|written| {
            let n = written as usize;
            tail.wait_count("ct ", n, T);
            logrotate(dir.path(), &log, "copytruncate");
            // The writer resumes only once the truncation was seen, as an application's next
            // line would usually come later than that.
            podmates_testkit::eventually_ok(T, "the truncation detected", || {
                if tail.stderr().matches("file truncated").count() >= round as usize {
                    return Ok(());
                }
                Err(format!(
                    "logrotate left {:?}; stderr:\n{}",
                    std::fs::read_dir(dir.path())
                        .unwrap()
                        .flatten()
                        .map(|e| (e.file_name(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                        .collect::<Vec<_>>(),
                    tail.stderr()
                ))
            });
        });
    }
    assert_eq!(w.join(), 10_000);
    tail.wait_count("ct ", 10_000, T);
    let stderr = tail.stderr();
    let lines = stop(tail);
    assert_exact(&lines, "ct", 0..10_000);
    assert!(dir.path().join("app.log.2").exists());
    assert_eq!(
        stderr.matches("file truncated").count(),
        2,
        "two truncations detected: {stderr}"
    );
}

#[test]
fn a_truncation_rewritten_to_the_old_length_before_the_next_read_is_still_seen() {
    // copytruncate racing a writer: the file is truncated and written again up to the length
    // log-tail had read before log-tail looks at it, so its size alone shows nothing. log-tail is
    // stopped (SIGSTOP) across the rewrite to make that ordering certain.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rw.log");
    append(&log, &numbered("rw", 0));
    let tail = Tail::start(dir.path(), &[&pattern(dir.path())]);
    tail.wait_count("rw ", 1, T);
    tail.signal("STOP");
    std::fs::write(&log, "").unwrap();
    append(&log, &numbered("rw", 1));
    tail.signal("CONT");
    tail.wait_count("rw ", 2, T);
    // And once more past the old length.
    tail.signal("STOP");
    std::fs::write(&log, "").unwrap();
    append(&log, &format!("{}{}", numbered("rw", 2), numbered("rw", 3)));
    tail.signal("CONT");
    tail.wait_count("rw ", 4, T);
    let stderr = tail.stderr();
    let lines = stop(tail);
    assert_exact(&lines, "rw", 0..4);
    assert_eq!(stderr.matches("file truncated").count(), 2, "{stderr}");
}

#[test]
fn copytruncate_under_load_loses_only_the_copy_window() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let tail = Tail::start(dir.path(), &[&pattern(dir.path())]);
    let total = 20_000;
    let w = Writer::spawn(&log, "cl", total, 10);
    tail.wait_count("cl ", 5_000, T);
    // Everything written before logrotate starts has been read; lines written while it copies
    // and truncates may be lost (logrotate documents this window); everything after must arrive.
    let before = w.written();
    tail.wait_count("cl ", before as usize, T);
    logrotate(dir.path(), &log, "copytruncate");
    let after = w.written();
    assert_eq!(w.join(), total);
    tail.wait_count(&format!("cl {:07}", total - 1), 1, T);
    let lines = stop(tail);
    let got = numbers(&lines, "cl");
    assert!(
        got.windows(2).all(|p| p[0] < p[1]),
        "no duplicate and no reordering"
    );
    let set: std::collections::HashSet<u64> = got.iter().copied().collect();
    for n in (0..before).chain(after..total) {
        assert!(
            set.contains(&n),
            "line {n} outside the copy window [{before}, {after}) is missing"
        );
    }
    let lost = total - got.len() as u64;
    assert!(
        lost <= after - before,
        "lost {lost} > window {}",
        after - before
    );
    eprintln!("copytruncate under load: window {before}..{after}, lost {lost}");
}

#[test]
fn deleted_file_is_read_to_its_end_and_closed_and_recreated_file_read_from_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gone.log");
    let tail = Tail::start(
        dir.path(),
        &[
            "--output",
            "prefixed",
            "--rotate-wait",
            "60s",
            &pattern(dir.path()),
        ],
    );
    let w = Writer::spawn(&log, "del", 2_000, 50);
    tail.wait_count("del ", 500, T);
    // Deleted while the writer still writes to it: everything written must come out.
    std::fs::remove_file(&log).unwrap();
    assert_eq!(w.join(), 2_000);
    tail.wait_count("del ", 2_000, T);
    // Bounded; the assertion below says what is left open.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tail.deleted_fds().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        tail.deleted_fds(),
        Vec::<String>::new(),
        "deleted file kept open"
    );
    // Recreated under the same name: followed from its first line.
    let w = Writer::spawn(&log, "new", 1_000, 50);
    assert_eq!(w.join(), 1_000);
    tail.wait_count("new ", 1_000, T);
    let lines = stop(tail);
    assert_exact(&lines, "del", 0..2_000);
    assert_exact(&lines, "new", 0..1_000);
}

#[test]
fn late_files_matching_the_glob_are_picked_up_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let tail = Tail::start(dir.path(), &["--output", "json", &pattern(dir.path())]);
    // A file that does not match is ignored.
    append(&dir.path().join("other.txt"), "nope 1\n");
    let mut writers = Vec::new();
    for name in ["a", "b", "c"] {
        let start = Instant::now();
        append(&dir.path().join(format!("{name}.log")), &numbered(name, 0));
        tail.wait_count(&format!("{name} 0000000"), 1, T);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{name}.log picked up after {:?}",
            start.elapsed()
        );
        writers.push(Writer::spawn_from(
            &dir.path().join(format!("{name}.log")),
            name,
            1..3_000,
            50,
        ));
    }
    for w in writers {
        assert_eq!(w.join(), 3_000);
    }
    for name in ["a", "b", "c"] {
        tail.wait_count(&format!("\"{name} "), 3_000, T);
    }
    let lines = stop(tail);
    assert!(!lines.iter().any(|l| l.contains("nope")));
    for name in ["a", "b", "c"] {
        let file = dir.path().join(format!("{name}.log"));
        let mine: Vec<String> = lines
            .iter()
            .filter(|l| l.contains(&format!("\"file\":\"{}\"", file.display())))
            .cloned()
            .collect();
        assert_exact(&mine, name, 0..3_000);
        // JSON carries file, line and offset: the offset of line n is n line lengths.
        let v: serde_json::Value = serde_json::from_str(&mine[10]).unwrap();
        assert_eq!(v["offset"], (10 * numbered(name, 0).len()) as u64);
        assert_eq!(v["line"], numbered(name, 10).trim_end());
    }
}

#[test]
fn partial_lines_wait_for_their_newline_and_are_flushed_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("p.log");
    append(&log, "first\npart");
    let tail = Tail::start(dir.path(), &[log.to_str().unwrap()]);
    tail.wait_count("first", 1, T);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tail.text(), ["first"], "a partial line must be held");
    append(&log, "ial\nnext\nunterminated");
    tail.wait_count("next", 1, T);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(tail.text(), ["first", "partial", "next"]);
    let lines = stop(tail);
    assert_eq!(lines, ["first", "partial", "next", "unterminated"]);
}

/// log-tail's output for `log` with `--max-line-bytes 63 --long-lines <mode>`, up to the line
/// ending in `end`; checks it exited 0.
fn long_lines(dir: &Path, log: &Path, mode: &str) -> Vec<Vec<u8>> {
    let args = ["--max-line-bytes", "63", "--long-lines", mode];
    let tail = Tail::start(dir, &[&args[..], &[log.to_str().unwrap()]].concat());
    tail.wait_count("end", 1, T);
    let (status, lines, _) = tail.terminate(T);
    assert!(status.success());
    lines
}

#[test]
fn long_lines_are_split_or_truncated_without_cutting_utf8_and_raw_bytes_pass() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("long.log");
    let long = "é".repeat(100); // 200 bytes
    let mut content = Vec::new();
    content.extend_from_slice(format!("short 1\n{long}\nshort 2\n").as_bytes());
    content.extend_from_slice(b"bin \xff\xfe\x00 end\n");
    std::fs::write(&log, &content).unwrap();

    let lines = long_lines(dir.path(), &log, "split");
    // 200 bytes in pieces of at most 63 that never cut a 2-byte character: 62+62+62+14.
    assert_eq!(lines.len(), 7, "{:?}", text(&lines));
    assert_eq!(lines[0], b"short 1");
    let pieces = &lines[1..5];
    assert!(
        pieces
            .iter()
            .all(|p| p.len() <= 63 && std::str::from_utf8(p).is_ok())
    );
    assert_eq!(pieces.concat(), long.as_bytes());
    assert_eq!(lines[5], b"short 2");
    // Raw mode passes bytes that are not UTF-8 unchanged.
    assert_eq!(lines[6], b"bin \xff\xfe\x00 end");

    let lines = long_lines(dir.path(), &log, "truncate");
    assert_eq!(lines.len(), 4, "{:?}", text(&lines));
    assert_eq!(lines[1], "é".repeat(31).as_bytes());
    assert_eq!(lines[2], b"short 2");
}

#[test]
fn restart_resumes_from_the_checkpoint_and_a_corrupt_checkpoint_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cp.log");
    let cp = dir.path().join("state").join("checkpoint.json");
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let args = [
        "--checkpoint-file",
        cp.to_str().unwrap(),
        "--checkpoint-interval",
        "200ms",
    ];
    let pat = pattern(dir.path());
    let with = |extra: &[&str]| -> Vec<String> {
        args.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |a: &[String]| {
        Tail::start(
            dir.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    let tail = run(&with(&[&pat]));
    let w = Writer::spawn(&log, "r", 3_000, 50);
    assert_eq!(w.join(), 3_000);
    tail.wait_count("r ", 3_000, T);
    let first = stop(tail);
    assert_exact(&first, "r", 0..3_000);
    assert!(cp.exists(), "checkpoint saved at shutdown");

    // Written while log-tail is down: a restart prints exactly these.
    let w = Writer::spawn_from(&log, "r", 3_000..5_000, 0);
    assert_eq!(w.join(), 5_000);
    let tail = run(&with(&[&pat]));
    tail.wait_count("r ", 2_000, T);
    let w = Writer::spawn_from(&log, "r", 5_000..6_000, 50);
    assert_eq!(w.join(), 6_000);
    tail.wait_count("r ", 3_000, T);
    let second = stop(tail);
    assert_exact(&second, "r", 3_000..6_000);

    // A corrupt checkpoint is reported and ignored: reading starts per --from (start).
    std::fs::write(&cp, b"{\"version\":1,\"files\":[{\"pa").unwrap();
    let mut tail = run(&with(&[&pat]));
    tail.wait_count("r ", 6_000, T);
    tail.wait_stderr("ignoring unreadable checkpoint", T);
    let third = stop(tail);
    assert_exact(&third, "r", 0..6_000);
    // ...and replaced by a valid one.
    let saved = std::fs::read_to_string(&cp).unwrap();
    let v: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(
        v["files"][0]["offset"],
        6_000 * numbered("r", 0).len() as u64
    );
}

#[test]
fn sigterm_reads_every_file_to_its_end_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let tail = Tail::start(dir.path(), &["--output", "prefixed", &pattern(dir.path())]);
    // Two files, 100k lines each (6 MB each), written in one burst: SIGTERM arrives while most of
    // them are still unread.
    let a = Writer::spawn(&dir.path().join("a.log"), "sa", 100_000, 0);
    let b = Writer::spawn(&dir.path().join("b.log"), "sb", 100_000, 0);
    assert_eq!(a.join(), 100_000);
    assert_eq!(b.join(), 100_000);
    let seen_at_signal = tail.lines().len();
    let (status, lines, took) = tail.terminate(T);
    assert!(status.success(), "exit {status}");
    assert!(took < Duration::from_secs(10), "drain took {took:?}");
    let lines = text(&lines);
    assert_exact(&lines, "sa", 0..100_000);
    assert_exact(&lines, "sb", 0..100_000);
    eprintln!("{seen_at_signal} of 200000 lines were out at SIGTERM; drained in {took:?}");
}

#[test]
fn blocked_stdout_pauses_reading_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    // 400k lines, 24 MB, written before anyone reads stdout.
    let w = Writer::spawn(&log, "bp", 400_000, 0);
    assert_eq!(w.join(), 400_000);
    let tail = Tail::start_gated(dir.path(), &[log.to_str().unwrap()], false);
    std::thread::sleep(Duration::from_millis(1500));
    let rss = tail.rss_kib();
    assert!(rss < 20 * 1024, "RSS {rss} KiB while stdout is blocked");
    tail.open_gate();
    tail.wait_count("bp ", 400_000, T);
    let lines = stop(tail);
    assert_exact(&lines, "bp", 0..400_000);
    eprintln!("RSS with stdout blocked: {rss} KiB");
}

/// Files created and renamed away while stdout is blocked (the reader is held up on output and
/// cannot look at the directory) are still read: they were opened by the inotify thread the
/// moment they appeared. A slow stdout delays lines, never loses them.
#[test]
fn files_renamed_away_while_stdout_is_blocked_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.log");
    let w = Writer::spawn(&big, "bb", 200_000, 0);
    assert_eq!(w.join(), 200_000);
    let tail = Tail::start_gated(dir.path(), &[&pattern(dir.path())], false);
    // Nobody reads stdout: once the pipe and the channel are full the reader blocks.
    std::thread::sleep(Duration::from_millis(300));
    for k in 0..3u64 {
        let log = dir.path().join("app.log");
        let w = Writer::spawn_from(&log, "ra", k * 1_000..(k + 1) * 1_000, 0);
        assert_eq!(w.join(), (k + 1) * 1_000);
        std::fs::rename(&log, dir.path().join(format!("app.log.{k}"))).unwrap();
    }
    tail.open_gate();
    tail.wait_count("bb ", 200_000, T);
    tail.wait_count("ra ", 3_000, T);
    let lines = stop(tail);
    assert_exact(&lines, "bb", 0..200_000);
    assert_exact(&lines, "ra", 0..3_000);
}

#[test]
fn bad_flags_exit_64_naming_the_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_log-tail"))
        .args(["--max-line-bytes", "0", "/tmp/x.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-line-bytes"));
    assert!(out.stdout.is_empty());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_log-tail"))
        .args(["/tmp/[x.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PATH"));
    // Every flag is also an environment variable.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_log-tail"))
        .env("LOG_TAIL_LONG_LINES", "sideways")
        .args(["/tmp/x.log"])
        .output()
        .unwrap();
    // A value clap itself rejects exits with the same code as any other bad setting.
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sideways") && err.contains("--long-lines"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_log-tail"))
        .args(["--no-such-flag", "/tmp/x.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn a_reused_inode_with_other_content_is_read_from_its_start() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("reuse.log");
    let cp = dir.path().join("checkpoint.json");
    let w = Writer::spawn(&log, "iu", 100, 0);
    assert_eq!(w.join(), 100);
    // A checkpoint left by an earlier file that had this device and inode but other content: the
    // fingerprint of the first bytes differs, so the offset must not be applied.
    let meta = std::fs::metadata(&log).unwrap();
    let line_len = numbered("iu", 0).len() as u64;
    std::fs::write(
        &cp,
        format!(
            r#"{{"version":1,"files":[{{"path":"{}","dev":{},"ino":{},"fp_len":{},"fp":12345,"offset":{}}}]}}"#,
            log.display(),
            meta.dev(),
            meta.ino(),
            line_len,
            50 * line_len
        ),
    )
    .unwrap();
    let mut tail = Tail::start(
        dir.path(),
        &[
            "--checkpoint-file",
            cp.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
    );
    tail.wait_count("iu ", 100, T);
    tail.wait_stderr("inode reused", T);
    let lines = stop(tail);
    assert_exact(&lines, "iu", 0..100);
}

#[test]
fn from_end_skips_what_was_there_and_follows_what_comes() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("end.log");
    let w = Writer::spawn(&log, "fe", 500, 0);
    assert_eq!(w.join(), 500);
    // Started means ready, and ready means the end offset is fixed: writing at once loses nothing.
    let tail = Tail::start(dir.path(), &["--from", "end", log.to_str().unwrap()]);
    let w = Writer::spawn_from(&log, "fe", 500..1_000, 50);
    assert_eq!(w.join(), 1_000);
    tail.wait_count("fe ", 500, T);
    let lines = stop(tail);
    assert_exact(&lines, "fe", 500..1_000);
}

/// GET /metrics from the admin server.
fn metrics(port: u16) -> String {
    podmates_testkit::http::get(port, "/metrics")
        .expect("GET /metrics")
        .text()
}

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_count_lines_bytes_files_rotations_and_truncations() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("m.log");
    let port = podmates_testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let pat = pattern(dir.path());
    let tail = Tail::start_with_admin(dir.path(), &["--admin-addr", &addr, &pat]);
    let w = Writer::spawn(&log, "m", 1_000, 0);
    assert_eq!(w.join(), 1_000);
    tail.wait_count("m ", 1_000, T);
    logrotate(dir.path(), &log, "create");
    append(&log, &numbered("m", 1_000));
    tail.wait_count("m ", 1_001, T);
    // copytruncate of the new file: one truncation.
    std::thread::sleep(Duration::from_millis(200));
    logrotate(dir.path(), &log, "copytruncate");
    append(&log, &numbered("m", 1_001));
    tail.wait_count("m ", 1_002, T);
    let label = format!("{{file=\"{}\"}}", log.display());
    let text = podmates_testkit::eventually(T, "one truncation counted", || {
        let text = metrics(port);
        (metric(&text, "log_tail_truncations_total") == Some(1.0)).then_some(text)
    });
    assert_eq!(
        metric(&text, &format!("log_tail_lines_total{label}")),
        Some(1_002.0),
        "{text}"
    );
    let line_len = numbered("m", 0).len() as f64;
    assert_eq!(
        metric(&text, &format!("log_tail_bytes_total{label}")),
        Some(1_002.0 * line_len),
        "{text}"
    );
    assert_eq!(
        metric(&text, "log_tail_rotations_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "log_tail_truncations_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "log_tail_output_lines_total"),
        Some(1_002.0),
        "{text}"
    );
    assert!(
        metric(&text, "log_tail_files_watched").is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, &format!("log_tail_lag_bytes{label}")),
        Some(0.0),
        "{text}"
    );
    let lines = stop(tail);
    assert_exact(&lines, "m", 0..1_002);
}
