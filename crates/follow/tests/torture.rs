//! Fast rotation under load: several writers in one directory at full speed, with every way a log
//! file changes under a follower, while other threads compete for the CPU. Every line must come out
//! exactly once and in order per writer (for the rotated writer: across its rotated files too).
//!
//! - `app`: rename rotation (logrotate's `create`) every 2,000 lines, at full speed: most segments
//!   are created, filled and renamed to a name the glob does not match within a millisecond;
//! - `ct`: copytruncate, each time the follower has read what was there (the one case where
//!   copytruncate loses nothing), the writer going on at once after the truncate;
//! - `dr`: delete and recreate, the file deleted as soon as its first line came out;
//! - `late`: files that appear during the run;
//! - `part`: every line written in two writes, the second after a yield.
//!
//! Rounds: `PODMATES_TORTURE_ROUNDS` (default 1).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use podmates_follow::{Config, Follower};
use tokio_util::sync::CancellationToken;

const APP_LINES: u64 = 60_000;
const APP_SEGMENT: u64 = 2_000;
const CT_LINES: u64 = 6_000;
const DR_LINES: u64 = 6_000;
const LATE_FILES: u64 = 8;
const LATE_LINES: u64 = 1_000;
const PART_LINES: u64 = 3_000;

fn line(tag: &str, n: u64) -> String {
    format!(
        "{tag} {n:08} lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\n"
    )
}

fn create(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// What the consumer has seen: per tag, the numbers in order of arrival, and the path of each
/// `app` line.
#[derive(Default)]
struct Seen {
    by_tag: HashMap<String, Vec<u64>>,
    bad_paths: u64,
}

impl Seen {
    fn count(&self, tag: &str) -> usize {
        self.by_tag.get(tag).map_or(0, Vec::len)
    }
}

fn wait_for(seen: &Mutex<Seen>, tag: &str, n: usize, deadline: Instant) {
    while seen.lock().unwrap().count(tag) < n {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {n} `{tag}` lines, have {}",
            seen.lock().unwrap().count(tag)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn check(seen: &Seen, tag: &str, total: u64) {
    let got = seen.by_tag.get(tag).cloned().unwrap_or_default();
    if got.len() as u64 == total && got.iter().copied().eq(0..total) {
        return;
    }
    let first_bad = got
        .iter()
        .zip(0..total)
        .position(|(a, b)| *a != b)
        .unwrap_or(got.len().min(total as usize));
    let mut missing = 0;
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    for n in 0..total {
        if sorted.binary_search(&n).is_err() {
            missing += 1;
        }
    }
    panic!(
        "{tag}: want {total} lines 0..{total} in order, got {} ({missing} missing, {} duplicated); first difference at index {first_bad}: got {:?}",
        got.len(),
        got.len() as u64 + missing - total,
        got.get(first_bad)
    );
}

/// The rotated writer: every line exactly once, and in order across the rotated files: a watcher
/// behind by several rotations must not put a newer file before older ones.
fn check_segments(seen: &Seen, total: u64, segment: u64) {
    let got = seen.by_tag.get("app").cloned().unwrap_or_default();
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert!(
        sorted.iter().copied().eq(0..total),
        "app: want each of 0..{total} exactly once, got {} lines",
        got.len()
    );
    let order: Vec<u64> = {
        let mut v: Vec<u64> = got.iter().map(|n| n / segment).collect();
        v.dedup();
        v
    };
    assert!(
        got.iter().copied().eq(0..total),
        "app: lines out of order; segments came out as {order:?}"
    );
}

fn round(round: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let mut cfg = Config::new([format!("{}/*.log", d.display())]);
    cfg.rotate_wait = Duration::from_secs(2);
    let token = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app_path: PathBuf = d.join("app.log");
    let consumer = {
        let _g = rt.enter();
        let mut f = Follower::start(cfg, token.clone()).unwrap();
        let seen = seen.clone();
        let app_path = app_path.clone();
        rt.spawn(async move {
            while let Some(batch) = f.next_batch().await {
                let mut s = seen.lock().unwrap();
                for l in &batch {
                    let text = std::str::from_utf8(&l.bytes).unwrap();
                    let mut it = text.split(' ');
                    let tag = it.next().unwrap().to_owned();
                    let n: u64 = it.next().unwrap().parse().unwrap();
                    if tag == "app" && *l.path != *app_path {
                        s.bad_paths += 1;
                    }
                    s.by_tag.entry(tag).or_default().push(n);
                }
                drop(s);
                if f.is_idle() {
                    f.commit();
                }
            }
            f.finish().await.unwrap();
        })
    };

    // Competing load: two threads spinning for as long as the writers run.
    let busy = Arc::new(AtomicBool::new(true));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let busy = busy.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while busy.load(Ordering::Relaxed) {
                    for _ in 0..10_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                }
                x
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut writers = Vec::new();
    // Rename rotation at full speed.
    {
        let d = d.clone();
        writers.push(std::thread::spawn(move || {
            let log = d.join("app.log");
            let mut f = create(&log);
            let mut buf = String::new();
            for n in 0..APP_LINES {
                buf.push_str(&line("app", n));
                if buf.len() >= 8192 || (n + 1) % APP_SEGMENT == 0 {
                    f.write_all(buf.as_bytes()).unwrap();
                    buf.clear();
                }
                if (n + 1) % APP_SEGMENT == 0 && n + 1 < APP_LINES {
                    std::fs::rename(&log, d.join(format!("app.log.{}", n / APP_SEGMENT))).unwrap();
                    f = create(&log);
                }
            }
        }));
    }
    // copytruncate once the follower has read what is there.
    {
        let d = d.clone();
        let seen = seen.clone();
        writers.push(std::thread::spawn(move || {
            let log = d.join("ct.log");
            let mut f = create(&log);
            for n in 0..CT_LINES {
                f.write_all(line("ct", n).as_bytes()).unwrap();
                if (n + 1) % 1_500 == 0 && n + 1 < CT_LINES {
                    wait_for(&seen, "ct", (n + 1) as usize, deadline);
                    std::fs::copy(&log, d.join(format!("ct.log.{n}"))).unwrap();
                    f.set_len(0).unwrap();
                }
            }
        }));
    }
    // Delete and recreate, deleting a file as soon as its first line came out.
    {
        let d = d.clone();
        let seen = seen.clone();
        writers.push(std::thread::spawn(move || {
            let log = d.join("dr.log");
            let mut f = create(&log);
            for n in 0..DR_LINES {
                f.write_all(line("dr", n).as_bytes()).unwrap();
                if (n + 1) % 1_000 == 0 && n + 1 < DR_LINES {
                    wait_for(&seen, "dr", (n + 1 - 999) as usize, deadline);
                    std::fs::remove_file(&log).unwrap();
                    f = create(&log);
                }
            }
        }));
    }
    // Late files, one after the other, each written in one go.
    {
        let d = d.clone();
        writers.push(std::thread::spawn(move || {
            for k in 0..LATE_FILES {
                std::thread::sleep(Duration::from_millis(20));
                let mut all = String::new();
                for n in 0..LATE_LINES {
                    all.push_str(&line("late", k * LATE_LINES + n));
                }
                create(&d.join(format!("late-{k}.log")))
                    .write_all(all.as_bytes())
                    .unwrap();
            }
        }));
    }
    // Partial lines: each line in two writes.
    {
        let d = d.clone();
        writers.push(std::thread::spawn(move || {
            let mut f = create(&d.join("part.log"));
            for n in 0..PART_LINES {
                let l = line("part", n);
                let (a, b) = l.split_at(l.len() / 2);
                f.write_all(a.as_bytes()).unwrap();
                std::thread::yield_now();
                f.write_all(b.as_bytes()).unwrap();
            }
        }));
    }
    let written = AtomicU64::new(0);
    for w in writers {
        w.join().unwrap();
        written.fetch_add(1, Ordering::Relaxed);
    }
    busy.store(false, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    // Everything must come out; then shutdown must add nothing more.
    let want = [
        ("app", APP_LINES),
        ("ct", CT_LINES),
        ("dr", DR_LINES),
        ("part", PART_LINES),
    ];
    let settle = Instant::now() + Duration::from_secs(30);
    loop {
        let s = seen.lock().unwrap();
        let done = want.iter().all(|(t, n)| s.count(t) >= *n as usize)
            && s.count("late") >= (LATE_FILES * LATE_LINES) as usize;
        drop(s);
        if done || Instant::now() > settle {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    token.cancel();
    rt.block_on(consumer).unwrap();
    let s = seen.lock().unwrap();
    for (tag, n) in want {
        if tag == "app" {
            check_segments(&s, APP_LINES, APP_SEGMENT);
        } else {
            check(&s, tag, n);
        }
    }
    // Late files each in order; across files any order.
    let mut late = s.by_tag.get("late").cloned().unwrap_or_default();
    for k in 0..LATE_FILES {
        let of_k: Vec<u64> = late
            .iter()
            .copied()
            .filter(|n| n / LATE_LINES == k)
            .collect();
        assert!(
            of_k.iter()
                .copied()
                .eq(k * LATE_LINES..(k + 1) * LATE_LINES),
            "late file {k}: {} lines, not in order",
            of_k.len()
        );
    }
    late.sort_unstable();
    assert_eq!(late.len() as u64, LATE_FILES * LATE_LINES);
    assert_eq!(s.bad_paths, 0, "app lines attributed to another path");
    eprintln!("round {round}: all lines exactly once and in order");
}

#[test]
fn fast_rotation_under_load_loses_and_duplicates_nothing() {
    let rounds: usize = std::env::var("PODMATES_TORTURE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for r in 0..rounds {
        round(r);
    }
}
