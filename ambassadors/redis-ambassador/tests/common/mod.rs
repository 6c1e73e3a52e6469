//! Test harness: real redis-server and nutcracker processes on free loopback ports, the proxy
//! binary, and a small blocking RESP client. Every process is killed when its guard drops.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_ambassador::resp;

pub use podmates_testkit::{free_port, free_ports};

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package `{package}` (apt-get install {package})"
    );
}

/// Kills the child on drop.
pub struct Proc {
    pub child: Child,
    pub port: u16,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited early: {st}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a redis-server on `port` (0: a free one), with extra arguments.
pub fn redis_on(port: u16, extra: &[&str]) -> Proc {
    require("/usr/bin/redis-server", "redis-server");
    let port = if port == 0 { free_port() } else { port };
    let mut child = Command::new("/usr/bin/redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server");
    wait_port(port, "redis-server", &mut child);
    Proc {
        child,
        port,
        name: "redis-server".into(),
    }
}

/// Starts a redis-server on a free port.
pub fn redis() -> Proc {
    redis_on(0, &[])
}

/// Starts nutcracker with `conf`, waiting for `port` to listen.
pub fn nutcracker(conf: &Path, port: u16, dir: &Path) -> Proc {
    require("/usr/sbin/nutcracker", "nutcracker");
    let stats = free_port();
    let mut child = Command::new("/usr/sbin/nutcracker")
        .arg("-c")
        .arg(conf)
        .args(["-s", &stats.to_string(), "-a", "127.0.0.1", "-o"])
        .arg(dir.join("nutcracker.log"))
        .arg("-p")
        .arg(dir.join("nutcracker.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nutcracker");
    wait_port(port, "nutcracker", &mut child);
    Proc {
        child,
        port,
        name: "nutcracker".into(),
    }
}

/// The proxy under test.
pub struct Ours {
    pub proc: Proc,
    pub stats_port: u16,
    pub admin_port: u16,
}

/// Starts our binary with `conf`, with extra arguments, waiting for `port` and then for `/readyz`
/// (every pool and the stats listener bound, the SIGHUP handler installed).
pub fn ours(conf: &Path, port: u16, extra: &[&str]) -> Ours {
    let stats_port = free_port();
    let admin_port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redis-ambassador"))
        .arg("-c")
        .arg(conf)
        .args([
            "-s",
            &stats_port.to_string(),
            "-a",
            "127.0.0.1",
            "--admin-addr",
            &format!("127.0.0.1:{admin_port}"),
            "--log-level",
            "warn",
            "--grace-period",
            "3s",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start redis-ambassador");
    wait_port(port, "redis-ambassador", &mut child);
    wait_port(admin_port, "redis-ambassador's admin server", &mut child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while http_get(admin_port, "/readyz").split_whitespace().nth(1) != Some("200") {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("redis-ambassador exited early: {st}");
        }
        assert!(
            Instant::now() < deadline,
            "redis-ambassador never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ours {
        proc: Proc {
            child,
            port,
            name: "redis-ambassador".into(),
        },
        stats_port,
        admin_port,
    }
}

/// A blocking RESP client.
pub struct Client {
    pub s: TcpStream,
    buf: Vec<u8>,
}

/// Encodes a command.
pub fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut o = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        o.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        o.extend_from_slice(a);
        o.extend_from_slice(b"\r\n");
    }
    o
}

impl Client {
    pub fn connect(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        Self { s, buf: Vec::new() }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    /// Reads one reply (raw RESP). Panics on EOF.
    pub fn read(&mut self) -> Vec<u8> {
        self.try_read().expect("connection closed")
    }

    /// Reads one reply; None on EOF.
    pub fn try_read(&mut self) -> Option<Vec<u8>> {
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
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&cmd(args));
        self.read()
    }

    /// One command given as words.
    pub fn q(&mut self, line: &str) -> String {
        let parts: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        String::from_utf8_lossy(&self.call(&parts)).into_owned()
    }

    /// Sends all commands in one write and reads all replies.
    pub fn pipeline(&mut self, cmds: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let all: Vec<u8> = cmds.concat();
        self.send(&all);
        (0..cmds.len()).map(|_| self.read()).collect()
    }
}

/// Writes a file in `dir`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Reads everything the stats port sends.
pub fn read_stats(port: u16) -> serde_json::Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("stats JSON: {e}: {out}"))
}

/// GET on the admin server.
pub fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Polls `f` until it returns true or the time is up.
pub fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    eventually_ok(what, secs, || if f() { Ok(()) } else { Err(String::new()) });
}

/// Polls `f` until it returns `Ok` or the time is up; the panic names what the last try saw.
pub fn eventually_ok(what: &str, secs: u64, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        match f() {
            Ok(()) => return,
            Err(seen) => last = seen,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}; last seen: {last}");
}

/// Where redis-ambassador (and nutcracker) place `key` in `pool` with every server live.
pub fn server_of(pool: &redis_ambassador::config::PoolConfig, key: &[u8]) -> usize {
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
pub fn port_of(pool: &redis_ambassador::config::PoolConfig, i: usize) -> u16 {
    match &pool.servers[i].addr {
        redis_ambassador::config::Addr::Tcp(_, p) => *p,
        redis_ambassador::config::Addr::Unix(_) => panic!("unix server"),
    }
}

/// Keys `prefix0..` until `n` of them map to server `server` of `pool`.
pub fn keys_on(
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

/// Sends a signal to a child with kill(1).
pub fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig}");
}
