//! A private redis-server, and the arguments that make one (for a benchmark that starts it in
//! its own way).

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Proc, TempDir, free_port, require};

/// The Debian package redis-server's binary.
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// The arguments of a redis-server on `127.0.0.1:port` that writes nothing to disk.
pub fn server_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// A running redis-server, killed on drop.
pub struct Redis {
    /// The process.
    pub proc: Proc,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: TempDir,
}

impl Redis {
    /// Starts one on a [`free_port`].
    ///
    /// # Panics
    /// As [`Redis::start_on`].
    pub fn start(extra: &[&str]) -> Self {
        Self::start_on(free_port(), extra)
    }

    /// Starts one on `port` (one given out before, e.g. to start a server again where a stopped
    /// one was) with `extra` arguments (`--requirepass`, ...), in a temp dir, and waits until it
    /// accepts connections.
    ///
    /// # Panics
    /// When redis-server is not installed, exits or does not listen within 10 s.
    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        require(REDIS_SERVER);
        let dir = TempDir::new().expect("redis-server's temp dir");
        let mut cmd = Command::new(REDIS_SERVER);
        cmd.args(server_args(port))
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let mut proc = Proc::spawn("redis-server", &mut cmd);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        crate::wait_until(Duration::from_secs(10), "redis-server listening", || {
            if let Some(s) = proc.try_status() {
                panic!("redis-server exited ({s}): {}", proc.stderr());
            }
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        Self {
            proc,
            port,
            _dir: dir,
        }
    }
}
