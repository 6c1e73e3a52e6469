//! A child process of a test: killed on drop, its stderr kept in a file, signalled by name, waited
//! for with a bound.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running child process that is killed (and reaped) when dropped, so a failing test leaves
/// nothing behind.
pub struct Proc {
    child: Child,
    stderr: Option<(PathBuf, tempfile_dir::Dir)>,
    what: String,
}

/// A private directory for the captured stderr, removed on drop (std only: no tempfile crate).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub(super) struct Dir(PathBuf);

    impl Dir {
        pub(super) fn new() -> std::io::Result<Self> {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("podmates-testkit-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p)?;
            Ok(Self(p))
        }

        pub(super) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Proc {
    /// Starts `cmd` with its stderr captured (see [`Proc::stderr`]); stdin and stdout are as
    /// `cmd` sets them.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn spawn(what: &str, cmd: &mut Command) -> Self {
        let dir = tempfile_dir::Dir::new().expect("temp dir for stderr");
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
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
