//! Hostile lines through the real binary: NUL bytes, invalid UTF-8, an nginx access line whose
//! user agent carries `","evil":"`, `\n` escapes and a raw CR, ANSI escapes, a line that is JSON
//! itself, and a 10 MB line of all of these.
//!
//! - `--output json`: every output line is one valid JSON object with only log-tail's keys (no
//!   `evil`), one per input line or per piece of the 10 MB line (split at `--max-line-bytes`,
//!   1 MiB by default, `"split":true` on all pieces but the last), and its `line` is the input
//!   line (lossily repaired where it is not UTF-8): the pieces put back together give the whole;
//! - `--output raw`: bytes out == bytes in, and with the 10 MB line split the pieces put back
//!   together are the line;
//! - memory: log-tail's RSS grows by less than `RSS_BOUND_KIB` while the 10 MB line goes through
//!   at the default `--max-line-bytes`, and by less than the line plus that bound when
//!   `--max-line-bytes` lets it through whole.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podmates_testkit::{Proc, eventually};

/// Most log-tail's RSS may grow while a 10 MB line goes through in 1 MiB pieces: 32 MiB.
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// Length of the long line.
const LONG: usize = 10_000_000;

/// The short hostile lines, without their newline.
fn short_lines() -> Vec<Vec<u8>> {
    vec![
        b"nul\0in\0\0the middle\0".to_vec(),
        b"invalid utf-8: \xff\xfe \xc3( \xed\xa0\x80 end".to_vec(),
        // As a hostile client gets it written by a server that does not escape: a quote that
        // closes the JSON string, `\n` as text, an escaped backslash, a raw CR, ANSI colours.
        b"10.0.0.1 - - [22/Nov/2026:01:46:40 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \
          \"Mozilla\",\"evil\":\"1 \\n \\\\n \\\" \r \x1b[31mred\x1b[0m\""
            .to_vec(),
        b"\x1b[2J\x1b[H\x1b]0;title\x07\x1b[31mred\x1b[0m\x08\x7f".to_vec(),
        br#"{"evil":"x","line":"forged","offset":-1}"#.to_vec(),
        b"\r".to_vec(),
        Vec::new(),
    ]
}

/// 10 MB of quotes, NULs, invalid bytes, two-byte characters, ANSI escapes and CRs.
fn long_line() -> Vec<u8> {
    let unit: &[u8] = b"\",\"evil\":\"\0\xff\xc3\xa9\x1b[0m\r\\n\xc3";
    let mut l = unit.repeat(LONG / unit.len() + 1);
    l.truncate(LONG);
    l
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// log-tail following `file`, its stdout collected on a thread, its RSS sampled every 5 ms.
struct Tail {
    proc: Proc,
    out: Arc<Mutex<Vec<u8>>>,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Tail {
    fn start(file: &Path, args: &[&str]) -> Self {
        let mut proc = Proc::spawn(
            "log-tail",
            Command::new(env!("CARGO_BIN_EXE_log-tail"))
                .args(["--no-admin-server", "--log-level", "warn"])
                .args(args)
                .arg(file)
                .stdin(Stdio::null())
                .stdout(Stdio::piped()),
        );
        let mut stdout = proc.child().stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let o = out.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let pid = proc.pid();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !s.load(Relaxed) {
                match std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    Ok(st) => {
                        if let Some(kib) = st
                            .lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .and_then(|v| v.split_whitespace().next()?.parse().ok())
                        {
                            p.fetch_max(kib, Relaxed);
                        }
                    }
                    Err(_) => break,
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        // Settled: the file is open and the follower idle.
        std::thread::sleep(Duration::from_millis(300));
        Self {
            proc,
            out,
            peak,
            stop,
        }
    }

    /// The RSS now, which becomes the baseline the peak is compared with.
    fn baseline(&self) -> u64 {
        let b = rss_kib(self.proc.pid());
        self.peak.store(b, Relaxed);
        b
    }

    /// Waits until stdout ends with `tail` and a newline; returns all of stdout.
    fn wait_for_end(&self, tail: &[u8]) -> Vec<u8> {
        let mut want = tail.to_vec();
        want.push(b'\n');
        eventually(Duration::from_secs(30), "the last line on stdout", || {
            let o = self.out.lock().unwrap();
            o.ends_with(&want).then(|| o.clone())
        })
    }

    fn peak_growth(&self, baseline: u64, what: &str) -> u64 {
        self.stop.store(true, Relaxed);
        let peak = self.peak.load(Relaxed);
        let grew = peak.saturating_sub(baseline);
        eprintln!("{what}: RSS {baseline} KiB before, peak {peak} KiB (+{grew} KiB)");
        grew
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// All input: the short lines, the long one, a last marker line; each with its newline.
fn input() -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut lines = short_lines();
    lines.push(long_line());
    lines.push(b"last".to_vec());
    let mut all = Vec::new();
    for l in &lines {
        all.extend_from_slice(l);
        all.push(b'\n');
    }
    (lines, all)
}

/// Every key of every object in `v`, at any depth.
fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn json_output_is_one_valid_object_per_line_or_piece_with_nothing_injected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    std::fs::write(&file, b"").unwrap();
    let tail = Tail::start(&file, &["--output", "json"]);
    let baseline = tail.baseline();
    let (lines, all) = input();
    append(&file, &all);
    let last = format!(r#""line":"last","offset":{}}}"#, all.len() - 5);
    let out = tail.wait_for_end(last.as_bytes());
    let grew = tail.peak_growth(baseline, "json, 10 MB line in 1 MiB pieces");
    assert!(
        grew < RSS_BOUND_KIB,
        "RSS grew by {grew} KiB (bound {RSS_BOUND_KIB} KiB)"
    );

    let objects: Vec<serde_json::Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "output line {i} is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&l[..l.len().min(200)])
                )
            })
        })
        .collect();
    let mut pieces = Vec::new();
    let mut offset = 0u64;
    let file_name = file.to_string_lossy().into_owned();
    let mut objects = objects.iter();
    for (i, line) in lines.iter().enumerate() {
        let want = String::from_utf8_lossy(line).into_owned();
        let mut got = String::new();
        // The long line comes as pieces with "split":true, then one without.
        loop {
            let o = objects
                .next()
                .unwrap_or_else(|| panic!("no object for line {i}"));
            let m = o.as_object().expect("an object");
            let mut ks = Vec::new();
            keys(o, &mut ks);
            assert!(
                ks.iter()
                    .all(|k| ["file", "line", "offset", "split"].contains(&k.as_str())),
                "line {i}: unexpected keys {ks:?}"
            );
            assert_eq!(m["file"], file_name.as_str());
            let piece = m["line"].as_str().expect("line is a string");
            if got.is_empty() {
                assert_eq!(m["offset"], offset, "line {i}: offset");
            }
            got.push_str(piece);
            if m.get("split") == Some(&serde_json::Value::Bool(true)) {
                pieces.push(piece.len());
                continue;
            }
            break;
        }
        assert!(got == want, "line {i} did not round-trip");
        offset += line.len() as u64 + 1;
    }
    assert!(objects.next().is_none(), "more objects than input lines");
    // 10 MB in pieces of at most 1 MiB (a piece never ends inside a UTF-8 sequence, so one may be
    // a few bytes short): 9 split pieces and the last.
    assert_eq!(pieces.len(), 9, "split pieces of the 10 MB line");
}

#[test]
fn raw_output_is_the_bytes_in_split_or_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (lines, all) = input();

    // Whole: --max-line-bytes above the long line; then bytes out == bytes in.
    let file = dir.path().join("whole.log");
    std::fs::write(&file, b"").unwrap();
    let tail = Tail::start(&file, &["--output", "raw", "--max-line-bytes", "16777216"]);
    let baseline = tail.baseline();
    append(&file, &all);
    let out = tail.wait_for_end(b"last");
    let grew = tail.peak_growth(baseline, "raw, 10 MB line whole");
    assert!(out == all, "raw output differs from the input");
    let bound = RSS_BOUND_KIB + (LONG / 1024) as u64;
    assert!(
        grew < bound,
        "RSS grew by {grew} KiB (bound {bound} KiB: the line plus {RSS_BOUND_KIB} KiB)"
    );
    drop(tail);

    // Split at the default 1 MiB: the short lines exactly, then pieces that put together are the
    // long line.
    let file = dir.path().join("split.log");
    std::fs::write(&file, b"").unwrap();
    let tail = Tail::start(&file, &["--output", "raw"]);
    let baseline = tail.baseline();
    append(&file, &all);
    let out = tail.wait_for_end(b"last");
    let grew = tail.peak_growth(baseline, "raw, 10 MB line in 1 MiB pieces");
    assert!(
        grew < RSS_BOUND_KIB,
        "RSS grew by {grew} KiB (bound {RSS_BOUND_KIB} KiB)"
    );
    let got: Vec<&[u8]> = out[..out.len() - 1].split(|b| *b == b'\n').collect();
    let n = lines.len() - 2;
    assert_eq!(&got[..n], &lines[..n], "the short lines, byte for byte");
    let pieces = &got[n..got.len() - 1];
    assert_eq!(pieces.len(), 10, "pieces of the 10 MB line");
    assert!(
        pieces.iter().all(|p| p.len() <= 1 << 20),
        "a piece over 1 MiB"
    );
    assert!(pieces.concat() == lines[n], "the pieces are not the line");
    assert_eq!(got.last(), Some(&b"last".as_slice()));
}
