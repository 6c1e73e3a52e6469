//! One of the workspace's binaries started by a test or benchmark, and the wait until it is
//! ready, read from its admin server's `/readyz` (200 once its inputs are open and its listeners
//! bound) rather than from its log text.

use std::ops::{Deref, DerefMut};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Proc, free_port, http};

/// A started binary: its [`Proc`] (dereferenced to) and the port of its admin server.
pub struct Binary {
    proc: Proc,
    admin_port: u16,
}

/// Starts `cmd` (a binary of the workspace, `env!("CARGO_BIN_EXE_<name>")`) with its admin
/// server on `127.0.0.1` at a [`free_port`], unless `cmd` already has an `--admin-addr`, whose
/// port is then used. `cmd` must not pass `--no-admin-server`. Its stderr is captured as by
/// [`Proc::spawn`].
///
/// # Panics
/// When the program cannot be started.
pub fn spawn_binary(what: &str, cmd: &mut Command) -> Binary {
    let given = admin_port_of(cmd);
    let admin_port = given.unwrap_or_else(|| {
        let p = free_port();
        cmd.arg("--admin-addr").arg(format!("127.0.0.1:{p}"));
        p
    });
    Binary {
        proc: Proc::spawn(what, cmd),
        admin_port,
    }
}

/// The port of an `--admin-addr HOST:PORT` (or `--admin-addr=HOST:PORT`) among `cmd`'s arguments.
fn admin_port_of(cmd: &Command) -> Option<u16> {
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let value = args.iter().enumerate().find_map(|(i, a)| {
        if a == "--admin-addr" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--admin-addr=").map(str::to_owned)
        }
    })?;
    value.rsplit(':').next()?.parse().ok()
}

impl Binary {
    /// Waits (at most 20 s) until `/readyz` answers 200.
    ///
    /// # Panics
    /// When it exits first or is not ready in time, with its stderr.
    #[must_use]
    pub fn wait_ready(self) -> Self {
        self.wait_ready_within(Duration::from_secs(20))
    }

    /// Like [`Binary::wait_ready`], at most `limit`.
    ///
    /// # Panics
    /// When it exits first or is not ready in time, with its stderr.
    #[must_use]
    pub fn wait_ready_within(mut self, limit: Duration) -> Self {
        let deadline = Instant::now() + limit;
        loop {
            if self.get("/readyz").is_ok_and(|r| r.status == 200) {
                return self;
            }
            if let Some(s) = self.proc.try_status() {
                panic!(
                    "{} exited ({s}) before it was ready; stderr:\n{}",
                    self.proc.what(),
                    self.proc.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} was not ready (GET /readyz on port {}) within {limit:?}; stderr:\n{}",
                self.proc.what(),
                self.admin_port,
                self.proc.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The admin server's port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// `GET path` on the admin server.
    ///
    /// # Errors
    /// When the request fails.
    pub fn get(&self, path: &str) -> std::io::Result<http::Response> {
        http::get(self.admin_port, path)
    }

    /// The process, without the admin port.
    pub fn into_proc(self) -> Proc {
        self.proc
    }
}

impl Deref for Binary {
    type Target = Proc;

    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl DerefMut for Binary {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_admin_addr_is_kept_and_otherwise_one_is_added() {
        let mut c = Command::new("x");
        c.args(["--admin-addr", "127.0.0.1:4321"]);
        assert_eq!(admin_port_of(&c), Some(4321));
        let mut c = Command::new("x");
        c.arg("--admin-addr=[::1]:999");
        assert_eq!(admin_port_of(&c), Some(999));
        assert_eq!(admin_port_of(&Command::new("x")), None);
    }
}
