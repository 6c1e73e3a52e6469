//! A child process of a test: killed on drop, its stderr kept in a file, signalled by name, waited
//! for with a bound.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// A running child process that is killed (and reaped) when dropped, so a failing test leaves
/// nothing behind.
pub struct Proc {
    child: Child,
    stderr: Option<(PathBuf, TempDir)>,
    what: String,
}

impl Proc {
    /// Starts `cmd` with its stderr captured (see [`Proc::stderr`]); stdin and stdout are as
    /// `cmd` sets them.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn spawn(what: &str, cmd: &mut Command) -> Self {
        let dir = TempDir::new().expect("temp dir for stderr");
        let path = dir.path().join("stderr");
        let file = std::fs::File::create(&path).expect("stderr file");
        let child = cmd
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({:?}): {e}", cmd.get_program()));
        Self {
            child,
            stderr: Some((path, dir)),
            what: what.to_owned(),
        }
    }

    /// Wraps a child started elsewhere (its stderr is not captured).
    pub fn adopt(what: &str, child: Child) -> Self {
        Self {
            child,
            stderr: None,
            what: what.to_owned(),
        }
    }

    /// What was written to stderr so far (empty when not captured).
    pub fn stderr(&self) -> String {
        self.stderr
            .as_ref()
            .and_then(|(p, _)| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child itself.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends a signal by name (`TERM`, `HUP`, `STOP`, ...).
    ///
    /// # Panics
    /// When `kill` fails (the process is gone, or the name is unknown).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot send SIG{name} to {} ({})",
            self.what,
            self.pid()
        );
    }

    /// Whether it has exited, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the exit, at most `limit`.
    ///
    /// # Panics
    /// When it is still running after `limit`, with its stderr.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_status() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}; stderr:\n{}",
                self.what,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The exit code after at most `limit` (-1 for a death by signal).
    pub fn wait_code(&mut self, limit: Duration) -> i32 {
        self.wait(limit).code().unwrap_or(-1)
    }

    /// Stops it gracefully: sends `signal` (`TERM`, or `QUIT` for nginx, which then finishes its
    /// requests and flushes its logs), waits at most `limit`, then kills it. Returns the exit
    /// status, `None` when it had to be killed. A process already gone is only reaped.
    pub fn stop(&mut self, signal: &str, limit: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.try_status() {
            return Some(s);
        }
        // Not `signal()`: the process may exit between the check and the kill.
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Waits until its stderr contains `text`, at most `limit`.
    ///
    /// # Panics
    /// When `limit` passes, or the process exits first, with its stderr.
    pub fn wait_stderr(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let err = self.stderr();
            if err.contains(text) {
                return;
            }
            if let Some(s) = self.try_status() {
                // It may have written the text just before exiting.
                let err = self.stderr();
                assert!(
                    err.contains(text),
                    "{} exited ({s}) without logging `{text}`; stderr:\n{err}",
                    self.what
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log `{text}` within {limit:?}; stderr:\n{err}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory in KiB (`VmRSS` of /proc/PID/status).
    ///
    /// # Panics
    /// When the process is gone.
    pub fn rss_kib(&self) -> u64 {
        status_kib(self.pid(), "VmRSS:")
            .unwrap_or_else(|| panic!("no VmRSS for {} ({})", self.what, self.pid()))
    }

    /// What it was started as (the name given to [`Proc::spawn`]).
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// A memory field of /proc/PID/status in KiB (`VmRSS:`, `VmHWM:`, `RssAnon:`, ...).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to its end with `input` on its stdin, at most `limit`, and returns its exit status,
/// stdout and stderr. The input is written and the outputs read by threads of their own, so a
/// child that fills its stdout before it has read all of its input cannot deadlock the test.
///
/// # Panics
/// When the program cannot be started, or is still running after `limit` (then it is killed and
/// the panic shows its stderr).
pub fn output(cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let mut stdin = child.stdin.take().expect("stdin piped");
    let input = input.to_vec();
    // A child that exits without reading all of it makes the write fail: not an error here.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let read = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = read(Box::new(child.stdout.take().expect("stdout piped")));
    let err = read(Box::new(child.stderr.take().expect("stderr piped")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().ok().flatten() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap_or_default();
            panic!(
                "{cmd:?} still running after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Runs `cmd` to its end and returns its stdout, for a setup step (git, openssl, initdb,
/// logrotate, ...) that must succeed.
///
/// # Panics
/// When it cannot be started or fails, with its stdout and stderr.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
