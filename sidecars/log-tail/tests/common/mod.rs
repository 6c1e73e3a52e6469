//! Test harness: runs the real `log-tail` binary, collects its stdout line by line, and writes
//! numbered lines to log files from a concurrent writer thread.

#![allow(dead_code, unreachable_pub)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running log-tail with its stdout collected.
pub struct Tail {
    child: Child,
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
    reader: Option<JoinHandle<()>>,
    stderr_path: PathBuf,
    /// Released by the test to let the stdout reader start (backpressure test).
    gate: Arc<AtomicBool>,
}

impl Tail {
    /// Starts log-tail with `args`, its stderr going to `<dir>/stderr-<n>.log`, and waits until it
    /// reports ready.
    pub fn start(dir: &Path, args: &[&str]) -> Tail {
        Self::start_gated(dir, args, true)
    }

    /// Like [`Tail::start`] but with the admin server on (pass `--admin-addr`).
    pub fn start_with_admin(dir: &Path, args: &[&str]) -> Tail {
        Self::spawn(dir, args, true, false)
    }

    /// Like [`Tail::start`]; with `read = false` nobody reads stdout until [`Tail::open_gate`].
    pub fn start_gated(dir: &Path, args: &[&str], read: bool) -> Tail {
        Self::spawn(dir, args, read, true)
    }

    fn spawn(dir: &Path, args: &[&str], read: bool, no_admin: bool) -> Tail {
        static N: AtomicU64 = AtomicU64::new(0);
        let stderr_path = dir.join(format!("stderr-{}.txt", N.fetch_add(1, Ordering::SeqCst)));
        let stderr = File::create(&stderr_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_log-tail"))
            .args(no_admin.then_some("--no-admin-server"))
            .args(["--log-level", "debug", "--grace-period", "10s"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("run log-tail");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(AtomicBool::new(read));
        let (l, g) = (lines.clone(), gate.clone());
        let reader = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !g.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let mut r = BufReader::with_capacity(1 << 16, stdout);
            loop {
                let mut buf = Vec::new();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&b'\n') {
                            buf.pop();
                        }
                        l.lock().unwrap().push(buf);
                    }
                }
            }
        });
        let tail = Tail {
            child,
            lines,
            reader: Some(reader),
            stderr_path,
            gate,
        };
        // Ready: the follower has opened the files (with --from end, what is written from now on
        // is read) and the signal handlers are installed.
        tail.wait_stderr("podmates_runtime::admin: ready", Duration::from_secs(20));
        tail
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn open_gate(&self) {
        self.gate.store(true, Ordering::SeqCst);
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn wait_stderr(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "log-tail never logged `{needle}`; stderr:\n{}",
            self.stderr()
        );
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<Vec<u8>> {
        self.lines.lock().unwrap().clone()
    }

    pub fn text(&self) -> Vec<String> {
        self.lines()
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// Waits until at least `n` lines containing `needle` were written; panics on timeout.
    pub fn wait_count(&self, needle: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let needle_bytes = needle.as_bytes();
        // Lines are only ever appended: count the new ones each round, under the lock but without
        // copying (re-decoding all of them every 10 ms kept a core busy in the 400k-line tests,
        // starving log-tail and the stdout reader of the very CPU being measured).
        let (mut seen, mut c) = (0, 0);
        loop {
            {
                let lines = self.lines.lock().unwrap();
                c += lines[seen..]
                    .iter()
                    .filter(|l| {
                        needle_bytes.is_empty()
                            || l.windows(needle_bytes.len()).any(|w| w == needle_bytes)
                    })
                    .count();
                seen = lines.len();
            }
            if c >= n {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {n} lines with `{needle}`, have {c}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM, waits for exit (at most `timeout`) and for stdout to close.
    pub fn terminate(mut self, timeout: Duration) -> (ExitStatus, Vec<Vec<u8>>, Duration) {
        let start = Instant::now();
        signal(self.child.id(), "TERM");
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "log-tail did not exit within {timeout:?} of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = start.elapsed();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status, self.lines(), took)
    }

    /// The file descriptors of the process that point at deleted files.
    pub fn deleted_fds(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{}/fd", self.child.id())) {
            for e in rd.flatten() {
                if let Ok(t) = std::fs::read_link(e.path()) {
                    let t = t.to_string_lossy().into_owned();
                    if t.ends_with("(deleted)") {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
}

/// The numbered lines of `tag` in `lines`, in output order: `<prefix><tag> <n> ...`.
pub fn numbers(lines: &[String], tag: &str) -> Vec<u64> {
    let needle = format!("{tag} ");
    lines
        .iter()
        .filter_map(|l| {
            let i = l.find(&needle)?;
            l[i + needle.len()..].split(' ').next()?.parse().ok()
        })
        .collect()
}

/// Asserts that `tag`'s lines are exactly `range`, in order, each once.
pub fn assert_exact(lines: &[String], tag: &str, range: std::ops::Range<u64>) {
    let got = numbers(lines, tag);
    let want: Vec<u64> = range.clone().collect();
    if got != want {
        let first_bad = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{tag}: expected {} lines {range:?} in order, got {} (first difference at index {first_bad}: got {:?}, want {:?})",
            want.len(),
            got.len(),
            got.get(first_bad),
            want.get(first_bad)
        );
    }
}

/// The line the writers write: tag, number, padding to about 60 bytes.
pub fn numbered(tag: &str, n: u64) -> String {
    format!("{tag} {n:07} lorem ipsum dolor sit amet consectetur adipiscing\n")
}

pub fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A concurrent writer: appends numbered lines to a file through a descriptor it keeps open,
/// like an application does.
pub struct Writer {
    pub path: PathBuf,
    file: Arc<Mutex<File>>,
    written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Writes `tag` lines `0..total`, sleeping 1 ms every `burst` lines.
    pub fn spawn(path: &Path, tag: &str, total: u64, burst: u64) -> Writer {
        Self::spawn_from(path, tag, 0..total, burst)
    }

    pub fn spawn_from(path: &Path, tag: &str, range: std::ops::Range<u64>, burst: u64) -> Writer {
        let file = Arc::new(Mutex::new(open_append(path)));
        let written = Arc::new(AtomicU64::new(range.start));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, w, s, tag) = (file.clone(), written.clone(), stop.clone(), tag.to_owned());
        let handle = std::thread::spawn(move || {
            for i in range {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                {
                    let mut g = f.lock().unwrap();
                    g.write_all(numbered(&tag, i).as_bytes()).unwrap();
                    w.store(i + 1, Ordering::SeqCst);
                }
                if burst > 0 && (i + 1) % burst == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        Writer {
            path: path.to_path_buf(),
            file,
            written,
            stop,
            handle: Some(handle),
        }
    }

    /// Lines written so far (the next number to write).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Holds the writer still while `f` runs (no line is half written meanwhile).
    pub fn paused<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.file.lock().unwrap();
        f()
    }

    /// Reopens the path, as an application does on SIGHUP after logrotate's `create`.
    pub fn reopen(&self) {
        *self.file.lock().unwrap() = open_append(&self.path);
    }

    /// Waits for the writer to finish its range.
    pub fn join(mut self) -> u64 {
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.written()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Runs the real logrotate on `log` with `directives` (e.g. `create` or `copytruncate`), forced.
pub fn logrotate(dir: &Path, log: &Path, directives: &str) {
    let bin = ["/usr/sbin/logrotate", "/sbin/logrotate"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("logrotate is not installed: install the Debian package `logrotate` (cargo xtask deps)")
        });
    let conf = dir.join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {{\n    rotate 5\n    missingok\n    nocompress\n    {directives}\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    let out = Command::new(bin)
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg("-f")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "logrotate failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
