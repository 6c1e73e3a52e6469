//! Test harness: runs the real `log-tail` binary, collects its stdout line by line, and writes
//! numbered lines to log files from a concurrent writer thread.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use podmates_testkit::{Binary, eventually_ok, require, spawn_binary};

/// A running log-tail with its stdout collected.
pub(crate) struct Tail {
    bin: Binary,
    lines: Arc<Mutex<Vec<Vec<u8>>>>,
    reader: Option<JoinHandle<()>>,
    /// Released by the test to let the stdout reader start (backpressure test).
    gate: Arc<AtomicBool>,
}

impl Tail {
    /// Starts log-tail with `args` and waits until it is ready.
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Tail {
        Self::start_gated(dir, args, true)
    }

    /// Like [`Tail::start`], for args that give their own `--admin-addr`.
    pub(crate) fn start_with_admin(dir: &Path, args: &[&str]) -> Tail {
        Self::start_gated(dir, args, true)
    }

    /// Like [`Tail::start`]; with `read = false` nobody reads stdout until [`Tail::open_gate`].
    /// `dir` is the test's directory (log-tail's stderr is kept by the testkit).
    pub(crate) fn start_gated(_dir: &Path, args: &[&str], read: bool) -> Tail {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_log-tail"));
        cmd.args(["--log-level", "debug", "--grace-period", "10s"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut bin = spawn_binary("log-tail", &mut cmd);
        let stdout = bin.child().stdout.take().unwrap();
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
        // Ready: the follower has opened the files (with --from end, what is written from now on
        // is read) and the signal handlers are installed.
        let bin = bin.wait_ready();
        Tail {
            bin,
            lines,
            reader: Some(reader),
            gate,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.bin.pid()
    }

    /// Sends a signal by name.
    pub(crate) fn signal(&self, sig: &str) {
        self.bin.signal(sig);
    }

    pub(crate) fn open_gate(&self) {
        self.gate.store(true, Ordering::SeqCst);
    }

    pub(crate) fn stderr(&self) -> String {
        self.bin.stderr()
    }

    pub(crate) fn wait_stderr(&mut self, needle: &str, timeout: Duration) {
        self.bin.wait_stderr(needle, timeout);
    }

    /// The lines so far.
    pub(crate) fn lines(&self) -> Vec<Vec<u8>> {
        self.lines.lock().unwrap().clone()
    }

    pub(crate) fn text(&self) -> Vec<String> {
        self.lines()
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// Waits until at least `n` lines containing `needle` were written; panics on timeout.
    pub(crate) fn wait_count(&self, needle: &str, n: usize, timeout: Duration) {
        let needle_bytes = needle.as_bytes();
        // Lines are only ever appended: count the new ones each round, under the lock but without
        // copying (re-decoding all of them every poll kept a core busy in the 400k-line tests,
        // starving log-tail and the stdout reader of the very CPU being measured).
        let (mut seen, mut c) = (0, 0);
        let what = format!("{n} lines with `{needle}`");
        eventually_ok(timeout, &what, || {
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
                Ok(())
            } else {
                Err(format!("have {c}; stderr:\n{}", self.stderr()))
            }
        });
    }

    /// Sends SIGTERM, waits for exit (at most `timeout`) and for stdout to close.
    pub(crate) fn terminate(mut self, timeout: Duration) -> (ExitStatus, Vec<Vec<u8>>, Duration) {
        let start = Instant::now();
        self.bin.signal("TERM");
        let status = self.bin.wait(timeout);
        let took = start.elapsed();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        (status, self.lines(), took)
    }

    /// The file descriptors of the process that point at deleted files.
    pub(crate) fn deleted_fds(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) {
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
    pub(crate) fn rss_kib(&self) -> u64 {
        self.bin.rss_kib()
    }
}

/// The numbered lines of `tag` in `lines`, in output order: `<prefix><tag> <n> ...`.
pub(crate) fn numbers(lines: &[String], tag: &str) -> Vec<u64> {
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
pub(crate) fn assert_exact(lines: &[String], tag: &str, range: std::ops::Range<u64>) {
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
pub(crate) fn numbered(tag: &str, n: u64) -> String {
    format!("{tag} {n:07} lorem ipsum dolor sit amet consectetur adipiscing\n")
}

pub(crate) fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A concurrent writer: appends numbered lines to a file through a descriptor it keeps open,
/// like an application does.
pub(crate) struct Writer {
    pub(crate) path: PathBuf,
    file: Arc<Mutex<File>>,
    written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Writes `tag` lines `0..total`, sleeping 1 ms every `burst` lines.
    pub(crate) fn spawn(path: &Path, tag: &str, total: u64, burst: u64) -> Writer {
        Self::spawn_from(path, tag, 0..total, burst)
    }

    pub(crate) fn spawn_from(
        path: &Path,
        tag: &str,
        range: std::ops::Range<u64>,
        burst: u64,
    ) -> Writer {
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

    /// Lines written so far (the next number to write). Read under the writer's lock: a line
    /// whose write(2) is done but whose count is not yet stored would otherwise be missed, and a
    /// test taking this as "everything written before now" (the end of logrotate's copytruncate
    /// window) would then expect a line the truncation rightly lost.
    pub(crate) fn written(&self) -> u64 {
        let _g = self.file.lock().unwrap_or_else(|e| e.into_inner());
        self.written.load(Ordering::SeqCst)
    }

    /// Holds the writer still while `f` runs (no line is half written meanwhile); `f` is given
    /// the lines written so far.
    pub(crate) fn paused<R>(&self, f: impl FnOnce(u64) -> R) -> R {
        let _g = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f(self.written.load(Ordering::SeqCst))
    }

    /// Reopens the path, as an application does on SIGHUP after logrotate's `create`.
    pub(crate) fn reopen(&self) {
        *self.file.lock().unwrap() = open_append(&self.path);
    }

    /// Waits for the writer to finish its range.
    pub(crate) fn join(mut self) -> u64 {
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
pub(crate) fn logrotate(dir: &Path, log: &Path, directives: &str) {
    require("/usr/sbin/logrotate");
    let conf = dir.join("logrotate.conf");
    std::fs::write(
        &conf,
        format!(
            "{} {{\n    rotate 5\n    missingok\n    nocompress\n    {directives}\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    podmates_testkit::proc::run_ok(
        Command::new("/usr/sbin/logrotate")
            .arg("-s")
            .arg(dir.join("logrotate.state"))
            .arg("-f")
            .arg(&conf),
    );
}
