//! The follower in process against real files: rotation by rename, late files, shutdown drain and
//! resuming from a checkpoint.

use std::io::Write;
use std::time::Duration;

use podmates_follow::{Config, Follower, Line, LineKind, StartFrom};
use tokio_util::sync::CancellationToken;

async fn take(f: &mut Follower, n: usize) -> Vec<Line> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), f.next()).await {
            Ok(Some(l)) => out.push(l),
            Ok(None) => break,
            Err(_) => panic!("timed out after {} of {n} lines", out.len()),
        }
    }
    out
}

fn text(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
        .collect()
}

fn append(path: &std::path::Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_late_file_and_checkpoint_resume() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let cp = dir.path().join("cp.json");
    append(&log, "a0\na1\n");
    let mut cfg = Config::new([format!("{}/*.log", dir.path().display())]);
    cfg.checkpoint_file = Some(cp.clone());
    let token = CancellationToken::new();
    let mut f = Follower::start(cfg.clone(), token.clone()).unwrap();
    assert_eq!(text(&take(&mut f, 2).await), ["a0", "a1"]);

    // Rotation by rename with a writer still holding the old file open.
    let mut old = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    old.write_all(b"a2\n").unwrap();
    append(&log, "b0\n");
    old.write_all(b"a3\n").unwrap();
    drop(old);
    let got = take(&mut f, 3).await;
    let got = text(&got);
    // Per file, order is kept; across the old and the new file it depends on timing.
    let old: Vec<&String> = got.iter().filter(|l| l.starts_with('a')).collect();
    assert_eq!(old, ["a2", "a3"]);
    assert!(got.contains(&"b0".to_owned()));
    assert_eq!(f.metrics().rotations(), 1);

    // A late file.
    let late = dir.path().join("late.log");
    append(&late, "l0\nl1\npartial");
    let got = take(&mut f, 2).await;
    assert_eq!(text(&got), ["l0", "l1"]);
    f.commit();

    token.cancel();
    let rest = take(&mut f, 10).await;
    assert_eq!(text(&rest), ["partial"]);
    assert_eq!(rest[0].kind, LineKind::Unterminated);
    f.commit();
    f.finish().await.unwrap();

    // Restart: only what was written since.
    append(&late, "\nl2\n");
    append(&log, "b1\n");
    let token = CancellationToken::new();
    let mut f = Follower::start(cfg, token.clone()).unwrap();
    let mut got = text(&take(&mut f, 3).await);
    got.sort();
    assert_eq!(got, ["", "b1", "l2"]);
    token.cancel();
    assert!(take(&mut f, 10).await.is_empty());
    f.finish().await.unwrap();
}

/// With `StartFrom::End`, the start offset is fixed when `start` returns, not when the reader thread
/// first runs: a line appended right after `start` is read, one from before is not. Repeated, since
/// a scan on the thread would race the append and lose it only some of the time.
#[tokio::test(flavor = "current_thread")]
async fn from_end_counts_a_line_written_right_after_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    append(&log, "before\n");
    for round in 0..20 {
        let mut cfg = Config::new([log.display().to_string()]);
        cfg.from = StartFrom::End;
        let token = CancellationToken::new();
        let mut f = Follower::start(cfg, token.clone()).unwrap();
        append(&log, &format!("after{round}\n"));
        token.cancel();
        let got = text(&take(&mut f, 10).await);
        assert_eq!(got, [format!("after{round}")], "round {round}");
        f.finish().await.unwrap();
    }
}

/// A backlog (the sidecar started after the application) comes out at full speed: a read that
/// stopped at its budget goes on at once instead of waiting for the rescan timer. With a 10 s
/// rescan, 100k existing lines (4 MiB, four budgets) must all be out well before the first rescan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_read_without_waiting_for_the_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("backlog.log");
    let mut text_in = String::new();
    for n in 0..100_000 {
        text_in.push_str(&format!("line {n:08} of the backlog, 41 bytes\n"));
    }
    append(&log, &text_in);
    let mut cfg = Config::new([log.display().to_string()]);
    cfg.rescan_interval = Duration::from_secs(10);
    let token = CancellationToken::new();
    let start = std::time::Instant::now();
    let mut f = Follower::start(cfg, token.clone()).unwrap();
    let mut n = 0usize;
    while n < 100_000 {
        let batch = tokio::time::timeout(Duration::from_secs(30), f.next_batch())
            .await
            .expect("lines within 30 s")
            .expect("follower open");
        for l in &batch {
            assert_eq!(
                &l.bytes[..],
                format!("line {n:08} of the backlog, 41 bytes").as_bytes()
            );
            n += 1;
        }
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "100k lines took {took:?}: the read waited for the 10 s rescan"
    );
    token.cancel();
    assert!(take(&mut f, 1).await.is_empty());
    f.finish().await.unwrap();
}
