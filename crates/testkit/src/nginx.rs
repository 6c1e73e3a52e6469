//! A private nginx for a test or benchmark: its configuration, logs, pid file and temp paths in
//! a [`TempDir`], listening on a [`free_port`], stopped gracefully on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Proc, TempDir, free_port, require};

/// The Debian package nginx-light's binary.
pub const NGINX: &str = "/usr/sbin/nginx";

/// The settings outside `http {}` that differ between the tests.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `master_process on` (a master and one worker, which runs as nobody when started by
    /// root), or one process.
    pub master_process: bool,
    /// The `error_log` level (`warn`, `info`, ...).
    pub error_log: &'static str,
    /// `worker_connections`.
    pub worker_connections: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            master_process: false,
            error_log: "warn",
            worker_connections: 512,
        }
    }
}

/// A running nginx.
pub struct Nginx {
    dir: TempDir,
    port: u16,
    proc: Option<Proc>,
}

impl Nginx {
    /// Starts nginx with [`Options::default`]; see [`Nginx::start_with`].
    ///
    /// # Panics
    /// As [`Nginx::start_with`].
    pub fn start(http: impl FnOnce(&Path, u16) -> String) -> Self {
        Self::start_with(Options::default(), http)
    }

    /// Writes `nginx.conf` in a fresh directory (mode 0755, so that a worker running as nobody
    /// reads it) and starts nginx in the foreground. `http(dir, port)` returns what goes into
    /// `http {}` after the temp paths: the `server` blocks, at least one listening on
    /// `127.0.0.1:port`, and any `log_format` / `access_log` (`access_log off` is not implied).
    /// It may write files into `dir` (certificates, htpasswd, pages). Waits until `port`
    /// accepts (nginx binds every listener before it accepts on any).
    ///
    /// # Panics
    /// When nginx is not installed or does not start, with its stderr and error log.
    pub fn start_with(options: Options, http: impl FnOnce(&Path, u16) -> String) -> Self {
        require(NGINX);
        let dir = TempDir::new().expect("nginx's temp dir");
        set_mode(dir.path(), 0o755);
        let port = free_port();
        let http = http(dir.path(), port);
        let Options {
            master_process,
            error_log,
            worker_connections,
        } = options;
        let conf = format!(
            "daemon off;
master_process {master};
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log {error_log};
events {{ worker_connections {worker_connections}; }}
http {{
  client_body_temp_path {d}/tmp_body;
  proxy_temp_path {d}/tmp_proxy;
  fastcgi_temp_path {d}/tmp_fastcgi;
  uwsgi_temp_path {d}/tmp_uwsgi;
  scgi_temp_path {d}/tmp_scgi;
  default_type text/plain;
{http}
}}
",
            master = if master_process { "on" } else { "off" },
            d = dir.path().display(),
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let mut n = Self {
            dir,
            port,
            proc: None,
        };
        n.resume();
        n
    }

    /// Starts it (again, after [`Nginx::stop`]) with the same configuration and waits until its
    /// port accepts. Unix sockets (`*.sock`) left in its directory are removed first: nginx does
    /// not listen on an existing one.
    ///
    /// # Panics
    /// When it does not come up within 10 s.
    pub fn resume(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.dir.path()) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "sock") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let mut cmd = Command::new(NGINX);
        cmd.arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let mut proc = Proc::spawn("nginx", &mut cmd);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let exited = proc.try_status();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "nginx did not listen on {addr} ({exited:?}): {}{}",
                proc.stderr(),
                std::fs::read_to_string(self.path("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.proc = Some(proc);
    }

    /// Stops it gracefully (SIGQUIT: requests finished, logs flushed, and with a master its
    /// workers waited for, so none is left behind), killing it after 10 s.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop("QUIT", Duration::from_secs(10));
        }
    }

    /// The port given to the configuration.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `name` in its directory (`error.log`, a log file the configuration writes, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The pid of nginx (the master with `master_process on`), when running.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets a file's permission bits.
///
/// # Panics
/// When chmod fails.
pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", p.display()));
}
