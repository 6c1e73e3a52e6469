//! Helpers for the integration tests: the wait-for binary with its stderr in a file, and the real
//! servers it waits for (nginx, redis-server, PostgreSQL, MariaDB, dnsmasq) started on loopback
//! ports in temporary directories, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podmates_testkit::nginx::{Nginx, set_mode};
use podmates_testkit::proc::run_ok;
use podmates_testkit::redis::Redis;
pub(crate) use podmates_testkit::{Proc, free_port, require, wait_port};

pub(crate) const OURS: &str = env!("CARGO_BIN_EXE_wait-for");

/// Polls `f` every 20 ms for up to `secs` seconds.
pub(crate) fn eventually<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    podmates_testkit::eventually(Duration::from_secs(secs), what, f)
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A running wait-for, its stderr captured; killed on drop.
pub(crate) struct WaitFor {
    proc: Proc,
    pub(crate) started: Instant,
}

/// How a wait-for run ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) code: Option<i32>,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl WaitFor {
    /// Starts wait-for with `args` and no `WAIT_FOR_*`/`PODMATES_*` variables from the
    /// environment of the test run.
    pub(crate) fn spawn(args: &[&str]) -> Self {
        Self::spawn_env(args, &[])
    }

    pub(crate) fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(OURS);
        for (k, _) in std::env::vars() {
            if k.starts_with("WAIT_FOR_") || k.starts_with("PODMATES_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let started = Instant::now();
        Self {
            proc: Proc::spawn("wait-for", &mut cmd),
            started,
        }
    }

    pub(crate) fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// Waits until stderr contains `text`.
    pub(crate) fn wait_log(&mut self, text: &str, secs: u64) {
        self.proc.wait_stderr(text, Duration::from_secs(secs));
        // The process must still be waiting for what the caller does next to matter.
    }

    pub(crate) fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Waits up to `secs` for the exit.
    pub(crate) fn finish(mut self, secs: u64) -> Finished {
        let status = self.proc.wait(Duration::from_secs(secs));
        Finished {
            code: status.code(),
            stderr: self.stderr(),
            elapsed: self.started.elapsed(),
        }
    }
}

/// Runs wait-for to its end (at most `secs`).
pub(crate) fn run(args: &[&str], secs: u64) -> Finished {
    WaitFor::spawn(args).finish(secs)
}

/// A server process stopped (SIGTERM, then SIGKILL after 10 s) on drop.
pub(crate) struct Server {
    pub(crate) proc: Proc,
    pub(crate) port: u16,
    pub(crate) dir: tempfile::TempDir,
}

impl Server {
    fn spawn(what: &str, cmd: &mut Command, port: u16, dir: tempfile::TempDir) -> Self {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        Self {
            proc: Proc::spawn(what, cmd),
            port,
            dir,
        }
    }

    pub(crate) fn stop(&mut self) {
        self.proc.stop("TERM", Duration::from_secs(10));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A temporary directory that a server running as `user` may write to.
fn dir_for(user: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    set_mode(dir.path(), 0o755);
    if let Some(u) = user {
        chown(dir.path(), u);
    }
    dir
}

fn chown(p: &Path, user: &str) {
    let ok = Command::new("chown")
        .arg("-R")
        .arg(format!("{user}:"))
        .arg(p)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown {user} {}", p.display());
}

/// A command run as `user` when the tests run as root (PostgreSQL refuses to run as root).
fn as_user(user: Option<&str>, program: &str) -> Command {
    match user {
        Some(u) => {
            let mut c = Command::new("/usr/sbin/runuser");
            c.args(["-u", u, "--", program]);
            c
        }
        None => Command::new(program),
    }
}

// ---------------------------------------------------------------------------------------------
// nginx

/// nginx on a plain port (`Nginx::port`) and a TLS port (the second value), its certificate
/// signed by a CA made here with openssl (`ca.crt` in `Nginx::dir`).
pub(crate) fn nginx() -> (Nginx, u16) {
    let tls_port = free_port();
    let n = Nginx::start(|d, port| {
        make_certs(d);
        let d = d.display();
        format!(
            r#"  access_log off;
  server {{
    listen 127.0.0.1:{port};
    listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {d}/server.crt;
    ssl_certificate_key {d}/server.key;
    location = /healthz {{ add_header X-Health "db=up; cache=up"; return 200 '{{"status":"UP","checks":3}}'; }}
    location = /starting {{ return 503 "starting"; }}
    location = /moved {{ return 301 /healthz; }}
    location = /echo-auth {{ if ($http_authorization = "Basic dTpwQHNz") {{ return 200 "auth ok"; }} return 401; }}
    location = /need-header {{ if ($http_x_probe = "yes") {{ return 200 "header ok"; }} return 400; }}
    location = /post-only {{ if ($request_method = POST) {{ return 200 "posted"; }} return 405; }}
    location / {{ return 404; }}
  }}"#
        )
    });
    (n, tls_port)
}

/// A CA and a server certificate for 127.0.0.1 and localhost (the testkit's, made with openssl).
pub(crate) fn make_certs(dir: &Path) {
    podmates_testkit::certs::make(dir);
}

// ---------------------------------------------------------------------------------------------
// redis

/// redis-server on a free port, with `requirepass` when `password` is given.
pub(crate) fn redis(password: Option<&str>) -> Redis {
    match password {
        Some(p) => Redis::start(&["--requirepass", p]),
        None => Redis::start(&[]),
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// The newest Debian PostgreSQL's bin directory.
pub(crate) fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("postgres").exists());
    versions.sort();
    versions
        .pop()
        .expect("/usr/lib/postgresql/*/bin/postgres is missing: install the Debian package `postgresql` (cargo xtask test installs it)")
}

/// An initialised PostgreSQL data directory (superuser `postgres` with `password`,
/// scram-sha-256 for TCP logins), not started yet: [`pg_start`] starts it.
pub(crate) struct Pg {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
    user: Option<&'static str>,
}

pub(crate) fn pg_init(password: &str) -> Pg {
    let bin = pg_bin();
    let user = is_root().then_some("postgres");
    let dir = dir_for(user);
    let data = dir.path().join("data");
    let pwfile = dir.path().join("pwfile");
    std::fs::write(&pwfile, format!("{password}\n")).unwrap();
    if let Some(u) = user {
        chown(&pwfile, u);
    }
    run_ok(
        as_user(user, &bin.join("initdb").display().to_string())
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .arg(format!("--pwfile={}", pwfile.display())),
    );
    // Two accounts that log in with the older methods, matched before initdb's scram-sha-256
    // line (the first matching line wins); [`pg_sql`] creates them once the server runs.
    let hba = data.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(
        &hba,
        format!(
            "host all md5user 127.0.0.1/32 md5\nhost all plainuser 127.0.0.1/32 password\n{old}"
        ),
    )
    .unwrap();
    Pg {
        dir,
        port: free_port(),
        user,
    }
}

/// Runs `sql` with psql over the server's unix socket (trusted), retrying until the server
/// accepts it.
pub(crate) fn pg_sql(server: &Server, sql: &str) {
    let psql = pg_bin().join("psql").display().to_string();
    let user = is_root().then_some("postgres");
    eventually(60, "psql to succeed", || {
        as_user(user, &psql)
            .arg("-h")
            .arg(server.dir.path())
            .args([
                "-p",
                &server.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
    });
}

/// Starts the server of `pg` (on 127.0.0.1 only, its socket in its own directory).
pub(crate) fn pg_start(pg: Pg) -> Server {
    pg_start_with(pg, false)
}

/// Like [`pg_start`]; with `tls`, `ssl=on` with a certificate for 127.0.0.1 and localhost
/// signed by the CA `ca.crt` in the server's directory.
pub(crate) fn pg_start_with(pg: Pg, tls: bool) -> Server {
    let bin = pg_bin();
    let data = pg.dir.path().join("data");
    let mut ssl = Vec::new();
    if tls {
        make_certs(pg.dir.path());
        // PostgreSQL refuses a key that others may read.
        set_mode(&pg.dir.path().join("server.key"), 0o600);
        if let Some(u) = pg.user {
            chown(pg.dir.path(), u);
        }
        let d = pg.dir.path().display();
        for setting in [
            "ssl=on".to_owned(),
            format!("ssl_cert_file={d}/server.crt"),
            format!("ssl_key_file={d}/server.key"),
        ] {
            ssl.push("-c".to_owned());
            ssl.push(setting);
        }
    }
    let mut cmd = as_user(pg.user, &bin.join("postgres").display().to_string());
    cmd.arg("-D")
        .arg(&data)
        .args(["-p", &pg.port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .args(&ssl)
        .arg("-k")
        .arg(pg.dir.path());
    Server::spawn("postgres", &mut cmd, pg.port, pg.dir)
}

// ---------------------------------------------------------------------------------------------
// MariaDB

pub(crate) const MARIADBD: &str = "/usr/sbin/mariadbd";

/// MariaDB in a fresh data directory on a free port, with the account `app`@`127.0.0.1`
/// (password `password`, mysql_native_password) and a database `app`; waits until it answers.
pub(crate) fn mariadb(password: &str) -> Server {
    require(MARIADBD);
    let user = is_root().then_some("mysql");
    let dir = dir_for(user);
    let data = dir.path().join("data");
    let mut install = Command::new("/usr/bin/mariadb-install-db");
    install
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
    if let Some(u) = user {
        install.arg(format!("--user={u}"));
    }
    run_ok(&mut install);
    let port = free_port();
    let sock = dir.path().join("mysqld.sock");
    let mut cmd = Command::new(MARIADBD);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", sock.display()))
        .arg(format!(
            "--pid-file={}",
            dir.path().join("mysqld.pid").display()
        ))
        .args([
            &format!("--port={port}"),
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M",
            "--skip-log-bin",
        ]);
    if let Some(u) = user {
        cmd.arg(format!("--user={u}"));
    }
    let s = Server::spawn("mariadbd", &mut cmd, port, dir);
    eventually(60, "mariadbd's socket", || sock.exists().then_some(()));
    let sql = format!(
        "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY '{password}'; CREATE DATABASE app; GRANT ALL ON app.* TO 'app'@'127.0.0.1';"
    );
    eventually(30, "the app account created", || {
        Command::new("/usr/bin/mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", sock.display()))
            .args(["-u", "root", "-e", &sql])
            .output()
            .ok()
            .filter(|o| o.status.success())
    });
    s
}

// ---------------------------------------------------------------------------------------------
// DNS

pub(crate) const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// dnsmasq on a loopback port, answering only from the hosts files in `hosts_dir()` (read again
/// whenever one appears) and the `srv` records given; no upstream server.
pub(crate) fn dnsmasq(srv: &[&str]) -> Server {
    require(DNSMASQ);
    let dir = dir_for(None);
    std::fs::create_dir(dir.path().join("hosts.d")).unwrap();
    set_mode(&dir.path().join("hosts.d"), 0o755);
    let port = free_port();
    let mut cmd = Command::new(DNSMASQ);
    cmd.args([
        "--keep-in-foreground",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--log-facility=-",
        "--cache-size=0",
        // Names under cluster.local that it does not have are NXDOMAIN, as from CoreDNS.
        "--local=/cluster.local/",
    ])
    .arg(format!("--port={port}"))
    .arg(format!(
        "--hostsdir={}",
        dir.path().join("hosts.d").display()
    ))
    .arg(format!(
        "--pid-file={}",
        dir.path().join("dnsmasq.pid").display()
    ));
    if is_root() {
        // Stay root: the hosts files live in a test's temporary directory.
        cmd.arg("--user=root");
    }
    for s in srv {
        cmd.arg(format!("--srv-host={s}"));
    }
    let s = Server::spawn("dnsmasq", &mut cmd, port, dir);
    wait_port(port, "dnsmasq listening");
    s
}

/// Adds a hosts file to a dnsmasq from [`dnsmasq`] (written aside and renamed, so dnsmasq never
/// reads half of it).
pub(crate) fn add_hosts(s: &Server, name: &str, text: &str) {
    let tmp = s.dir.path().join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, s.dir.path().join("hosts.d").join(name)).unwrap();
}
