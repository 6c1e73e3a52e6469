//! Test harness: real redis-server and nutcracker processes on free loopback ports, the proxy
//! binary, and a small blocking RESP client. Every process is killed when its guard drops.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use redis_ambassador::resp;

pub(crate) use podmates_testkit::redis::Redis;
pub(crate) use podmates_testkit::{Binary, Proc, free_port, free_ports, require, spawn_binary};

/// Starts a redis-server on `port` (0: a free one), with extra arguments.
pub(crate) fn redis_on(port: u16, extra: &[&str]) -> Redis {
    if port == 0 {
        Redis::start(extra)
    } else {
        Redis::start_on(port, extra)
    }
}

/// Starts a redis-server on a free port.
pub(crate) fn redis() -> Redis {
    Redis::start(&[])
}

/// Starts nutcracker with `conf`, waiting for `port` to listen.
pub(crate) fn nutcracker(conf: &Path, port: u16, dir: &Path) -> Proc {
    nutcracker_with_stats(conf, port, free_port(), dir)
}

/// Starts nutcracker with `conf` and its stats on `stats`, aggregated every second (`-i 1`, as
/// twemproxy's own test suite runs it), waiting for `port` to listen.
pub(crate) fn nutcracker_with_stats(conf: &Path, port: u16, stats: u16, dir: &Path) -> Proc {
    require("/usr/sbin/nutcracker");
    let mut cmd = Command::new("/usr/sbin/nutcracker");
    cmd.arg("-c")
        .arg(conf)
        .args(["-s", &stats.to_string(), "-a", "127.0.0.1", "-i", "1", "-o"])
        .arg(dir.join("nutcracker.log"))
        .arg("-p")
        .arg(dir.join("nutcracker.pid"))
        .stdout(Stdio::null());
    let mut nc = Proc::spawn("nutcracker", &mut cmd);
    listening(&mut nc, port);
    nc
}

/// Waits until `port` accepts, failing at once when `proc` exits first.
fn listening(proc: &mut Proc, port: u16) {
    let what = format!("{} listening on {port}", proc.what());
    podmates_testkit::wait_until(Duration::from_secs(15), &what, || {
        if let Some(st) = proc.try_status() {
            panic!("{} exited early ({st}): {}", proc.what(), proc.stderr());
        }
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// The proxy under test.
pub(crate) struct Ours {
    pub(crate) proc: Binary,
    /// The pool's listening port.
    pub(crate) port: u16,
    pub(crate) stats_port: u16,
    pub(crate) admin_port: u16,
}

/// Starts our binary with `conf`, with extra arguments, waiting for `port` and then for `/readyz`
/// (every pool and the stats listener bound, the SIGHUP handler installed).
pub(crate) fn ours(conf: &Path, port: u16, extra: &[&str]) -> Ours {
    let stats_port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redis-ambassador"));
    cmd.arg("-c")
        .arg(conf)
        .args([
            "-s",
            &stats_port.to_string(),
            "-a",
            "127.0.0.1",
            "--log-level",
            "warn",
            "--grace-period",
            "3s",
        ])
        .args(extra)
        .stdout(Stdio::null());
    let mut proc = spawn_binary("redis-ambassador", &mut cmd);
    listening(&mut proc, port);
    let proc = proc.wait_ready();
    Ours {
        admin_port: proc.admin_port(),
        proc,
        port,
        stats_port,
    }
}

/// A blocking RESP client.
pub(crate) struct Client {
    pub(crate) s: TcpStream,
    buf: Vec<u8>,
}

/// Encodes a command.
pub(crate) fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut o = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        o.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        o.extend_from_slice(a);
        o.extend_from_slice(b"\r\n");
    }
    o
}

impl Client {
    pub(crate) fn connect(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        Self { s, buf: Vec::new() }
    }

    /// Sends raw bytes.
    pub(crate) fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    /// Reads one reply (raw RESP). Panics on EOF.
    pub(crate) fn read(&mut self) -> Vec<u8> {
        self.try_read().expect("connection closed")
    }

    /// Reads one reply; None on EOF.
    pub(crate) fn try_read(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Ok(Some(n)) = resp::scan_reply(&self.buf) {
                let r: Vec<u8> = self.buf.drain(..n).collect();
                return Some(r);
            }
            let mut tmp = [0u8; 65536];
            match self.s.read(&mut tmp) {
                Ok(0) => return None,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// One command, one reply.
    pub(crate) fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&cmd(args));
        self.read()
    }

    /// One command given as words.
    pub(crate) fn q(&mut self, line: &str) -> String {
        let parts: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        String::from_utf8_lossy(&self.call(&parts)).into_owned()
    }

    /// Sends all commands in one write and reads all replies.
    pub(crate) fn pipeline(&mut self, cmds: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let all: Vec<u8> = cmds.concat();
        self.send(&all);
        (0..cmds.len()).map(|_| self.read()).collect()
    }
}

/// Writes a file in `dir`.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Reads everything the stats port sends.
pub(crate) fn read_stats(port: u16) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("stats JSON: {e}: {out}"))
}

/// The body of a GET on the admin server.
pub(crate) fn http_get(port: u16, path: &str) -> String {
    podmates_testkit::http::get(port, path)
        .expect("GET on the admin server")
        .text()
}

/// Polls `f` until it returns true or `secs` seconds are up.
pub(crate) fn eventually(what: &str, secs: u64, f: impl FnMut() -> bool) {
    podmates_testkit::wait_until(Duration::from_secs(secs), what, f);
}

/// Polls `f` until it returns `Ok` or `secs` seconds are up; the panic names what the last try
/// saw.
pub(crate) fn eventually_ok(what: &str, secs: u64, f: impl FnMut() -> Result<(), String>) {
    podmates_testkit::eventually_ok(Duration::from_secs(secs), what, f);
}

/// Where redis-ambassador (and nutcracker) place `key` in `pool` with every server live.
pub(crate) fn server_of(pool: &redis_ambassador::config::PoolConfig, key: &[u8]) -> usize {
    use redis_ambassador::dist::{Ring, RingServer, key_hash};
    let rs: Vec<RingServer<'_>> = pool
        .servers
        .iter()
        .map(|s| RingServer {
            label: &s.label,
            weight: s.weight,
            live: true,
        })
        .collect();
    let ring = Ring::build(pool.distribution, &rs);
    let h = key_hash(pool.hash, key, pool.hash_tag, pool.servers.len());
    ring.dispatch(h, 0).unwrap()
}

/// The port of server `i` of `pool` (configs in these tests use 127.0.0.1:port).
pub(crate) fn port_of(pool: &redis_ambassador::config::PoolConfig, i: usize) -> u16 {
    match &pool.servers[i].addr {
        redis_ambassador::config::Addr::Tcp(_, p) => *p,
        redis_ambassador::config::Addr::Unix(_) => panic!("unix server"),
    }
}

/// Keys `prefix0..` until `n` of them map to server `server` of `pool`.
pub(crate) fn keys_on(
    pool: &redis_ambassador::config::PoolConfig,
    server: usize,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    (0..100_000)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| server_of(pool, k.as_bytes()) == server)
        .take(n)
        .collect()
}
