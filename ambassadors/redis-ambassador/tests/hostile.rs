//! Hostile clients against the real proxy over a real redis-server: lengths no Redis takes, a
//! multibulk of 10^9 elements, 100k-deep nested arrays, a 64 MB line without CRLF and a million
//! pipelined PINGs whose replies are not read. For each, on its own connection:
//!
//! - the proxy's resident memory (VmRSS, sampled every 5 ms) stays under `RSS_BOUND_KIB` above
//!   what it was before the attack;
//! - another client, connected all along, has every PING, SET and GET answered within 1 s;
//! - the offender gets the answer asserted (for the garbage that redis-server also refuses, the
//!   same bytes as redis-server sends, checked against a redis-server started for it) and the
//!   connection is closed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use podmates_testkit::{Proc, eventually, free_port, http, require, wait_port};
use redis_ambassador::resp;

/// Most the proxy's RSS may grow during one attack: 32 MiB. A 64 MB line, a 2 GiB bulk or a
/// million PINGs must not be buffered, only a bounded window of them.
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// Longest a request of the well-behaved client may take during an attack.
const SERVED_WITHIN: Duration = Duration::from_secs(1);

fn redis_server() -> (Proc, u16) {
    require("/usr/bin/redis-server");
    let port = free_port();
    let p = Proc::spawn(
        "redis-server",
        Command::new("/usr/bin/redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null()),
    );
    wait_port(port, "redis-server");
    (p, port)
}

/// The proxy in front of a redis-server, ready.
struct Setup {
    proxy: Proc,
    port: u16,
    _redis: Proc,
    redis_port: u16,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let (redis, redis_port) = redis_server();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let admin = free_port();
    let conf = dir.path().join("nutcracker.yml");
    std::fs::write(
        &conf,
        format!(
            "p:\n  listen: 127.0.0.1:{port}\n  redis: true\n  servers:\n   - 127.0.0.1:{redis_port}:1 shard0\n"
        ),
    )
    .unwrap();
    let proxy = Proc::spawn(
        "redis-ambassador",
        Command::new(env!("CARGO_BIN_EXE_redis-ambassador"))
            .arg("-c")
            .arg(&conf)
            .args(["-s", &free_port().to_string(), "-a", "127.0.0.1"])
            .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
            .args(["--log-level", "warn"])
            .stdout(Stdio::null()),
    );
    wait_port(port, "redis-ambassador");
    eventually(Duration::from_secs(15), "redis-ambassador /readyz", || {
        http::get(admin, "/readyz").ok().filter(|r| r.status == 200)
    });
    Setup {
        proxy,
        port,
        _redis: redis,
        redis_port,
        _dir: dir,
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).unwrap();
    s
}

/// One command, one reply, within `SERVED_WITHIN`.
fn call(s: &mut TcpStream, buf: &mut Vec<u8>, args: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    let started = Instant::now();
    s.write_all(&req).map_err(|e| format!("write: {e}"))?;
    loop {
        if let Ok(Some(n)) = resp::scan_reply(buf) {
            let r = buf.drain(..n).collect();
            let took = started.elapsed();
            if took > SERVED_WITHIN {
                return Err(format!("{args:?} took {took:?}"));
            }
            return Ok(r);
        }
        let left = SERVED_WITHIN.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(format!("{args:?}: no reply within {SERVED_WITHIN:?}"));
        }
        s.set_read_timeout(Some(left)).unwrap();
        let mut tmp = [0u8; 4096];
        match s.read(&mut tmp) {
            Ok(0) => return Err(format!("{args:?}: connection closed")),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => return Err(format!("{args:?}: {e} after {:?}", started.elapsed())),
        }
    }
}

/// What happened around one attack.
struct Watch {
    stop: Arc<AtomicBool>,
    peak_rss: Arc<AtomicU64>,
    sampler: JoinHandle<()>,
    client: JoinHandle<Result<u64, String>>,
}

/// Starts sampling the proxy's RSS and a well-behaved client on its own connection, which sends
/// PING, SET and GET (checking each reply) until stopped.
fn watch(pid: u32, port: u16, tag: &str) -> Watch {
    let stop = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(rss_kib(pid)));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak_rss.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                peak.fetch_max(rss_kib(pid), Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut s = connect(port);
    let key = format!("hostile:{tag}");
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut rounds = 0u64;
            // Bounded: stops when told, or after 2 minutes at the latest.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Relaxed) && Instant::now() < deadline {
                let v = rounds.to_string();
                let pong = call(&mut s, &mut buf, &[b"PING"])?;
                let set = call(&mut s, &mut buf, &[b"SET", key.as_bytes(), v.as_bytes()])?;
                let get = call(&mut s, &mut buf, &[b"GET", key.as_bytes()])?;
                let want_get = format!("${}\r\n{v}\r\n", v.len()).into_bytes();
                if pong != b"+PONG\r\n" || set != b"+OK\r\n" || get != want_get {
                    return Err(format!(
                        "wrong replies: {:?} {:?} {:?}",
                        String::from_utf8_lossy(&pong),
                        String::from_utf8_lossy(&set),
                        String::from_utf8_lossy(&get)
                    ));
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(rounds)
        })
    };
    // The client is being served before the attack starts.
    std::thread::sleep(Duration::from_millis(100));
    Watch {
        stop,
        peak_rss,
        sampler,
        client,
    }
}

impl Watch {
    /// Stops watching: asserts the client was served throughout and the RSS bound held.
    fn finish(self, what: &str, baseline_kib: u64) {
        self.finish_within(what, baseline_kib, RSS_BOUND_KIB);
    }

    /// [`Watch::finish`] with another RSS bound.
    fn finish_within(self, what: &str, baseline_kib: u64, bound_kib: u64) {
        self.stop.store(true, Relaxed);
        self.sampler.join().unwrap();
        let rounds = self
            .client
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: the other client was not served: {e}"));
        assert!(rounds > 0, "{what}: the other client made no round");
        let peak = self.peak_rss.load(Relaxed);
        let grew = peak.saturating_sub(baseline_kib);
        eprintln!(
            "{what}: RSS {baseline_kib} KiB before, peak {peak} KiB (+{grew} KiB); other client: {rounds} rounds of PING/SET/GET"
        );
        assert!(
            grew < bound_kib,
            "{what}: RSS grew by {grew} KiB (bound {bound_kib} KiB)"
        );
    }
}

/// Sends `head`, then up to `flood` bytes of `fill` in 64 KiB writes (stopping at the first
/// write error, as the peer closes), on a thread, while reading everything the peer sends until
/// it closes. Returns what was read; panics if the peer has not closed within 20 s.
fn offend(port: u16, head: &[u8], flood: usize, fill: u8) -> Vec<u8> {
    let s = connect(port);
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = head.to_vec();
    let writer = std::thread::spawn(move || {
        if w.write_all(&head).is_err() {
            return;
        }
        let chunk = vec![fill; 64 * 1024];
        let mut left = flood;
        while left > 0 {
            let n = left.min(chunk.len());
            if w.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
    });
    let got = read_until_closed(s, Duration::from_secs(20));
    writer.join().unwrap();
    got
}

/// Everything the peer sends until it closes (EOF or reset); panics when it does not close
/// within `limit`.
fn read_until_closed(mut s: TcpStream, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the connection was not closed within {limit:?}; read so far: {:?}",
            String::from_utf8_lossy(&got[..got.len().min(300)])
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut tmp) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Whether `port` has sent nothing and kept the connection open for `wait`: redis-server's
/// answer to a multibulk it accepts and waits for.
fn waits_silently(port: u16, head: &[u8], wait: Duration) -> bool {
    let mut s = connect(port);
    s.write_all(head).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

/// One attack, against the proxy while it is watched; with `redis_too`, the same bytes to
/// redis-server itself, whose answer must be the proxy's.
fn attack(
    st: &Setup,
    what: &str,
    head: &[u8],
    flood: usize,
    fill: u8,
    want: &str,
    redis_too: bool,
) {
    let pid = st.proxy.pid();
    let baseline = rss_kib(pid);
    let w = watch(pid, st.port, what);
    let got = offend(st.port, head, flood, fill);
    w.finish(what, baseline);
    assert_eq!(
        String::from_utf8_lossy(&got),
        want,
        "{what}: the proxy's answer before closing"
    );
    if redis_too {
        let theirs = offend(st.redis_port, head, flood, fill);
        assert_eq!(
            String::from_utf8_lossy(&theirs),
            String::from_utf8_lossy(&got),
            "{what}: redis-server answers differently"
        );
    }
}

#[test]
fn garbage_lengths_and_nesting_get_redis_servers_answer_and_a_close() {
    let st = setup();
    let bulk = "-ERR Protocol error: invalid bulk length\r\n";
    // A bulk of 2^31 bytes announced, and 8 MiB of it sent: refused at the length.
    attack(
        &st,
        "bulk length 2^31",
        b"*1\r\n$2147483648\r\n",
        8 << 20,
        b'x',
        bulk,
        true,
    );
    for len in ["-5", "-1", "-2147483649", "99999999999999999999", "12ab"] {
        attack(
            &st,
            &format!("bulk length {len}"),
            format!("*1\r\n${len}\r\n").as_bytes(),
            0,
            0,
            bulk,
            true,
        );
    }
    // Nesting: a request is an array of bulk strings, so the first nested `*` is the error,
    // not 100k levels of anything.
    let nested = b"*1\r\n".repeat(100_000);
    attack(
        &st,
        "100k-deep nested arrays",
        &nested,
        0,
        0,
        "-ERR Protocol error: expected '$', got '*'\r\n",
        true,
    );
    // 64 MB of 'a' with no CRLF: an inline request longer than 64 KiB is refused, as by Redis.
    attack(
        &st,
        "64 MB line without CRLF",
        b"",
        64 << 20,
        b'a',
        "-ERR Protocol error: too big inline request\r\n",
        true,
    );
    // Counts beyond what redis-server takes (INT_MAX): both refuse.
    attack(
        &st,
        "multibulk of 3*10^9",
        b"*3000000000\r\n",
        0,
        0,
        "-ERR Protocol error: invalid multibulk length\r\n",
        true,
    );
}

#[test]
fn huge_counts_and_sizes_the_proxy_refuses_before_redis_would() {
    let st = setup();
    // redis-server accepts a count of 10^9 (below INT_MAX) and waits for the elements; the proxy
    // takes at most 1024*1024 arguments and refuses it at once, whatever follows.
    assert!(
        waits_silently(
            st.redis_port,
            b"*1000000000\r\n",
            Duration::from_millis(300)
        ),
        "redis-server was expected to wait for the elements"
    );
    let elements = b"$1\r\na\r\n".repeat(1 << 20);
    let mut head = b"*1000000000\r\n".to_vec();
    head.extend_from_slice(&elements);
    attack(
        &st,
        "multibulk of 10^9",
        &head,
        0,
        0,
        "-ERR Protocol error: invalid multibulk length\r\n",
        false,
    );
    // A bulk within redis-server's 512 MiB but beyond --max-request-bytes (64 MiB by default):
    // refused at the length, before any of it is buffered.
    attack(
        &st,
        "bulk of 100 MB",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n",
        16 << 20,
        b'v',
        "-ERR Protocol error: request exceeds the maximum request size\r\n",
        false,
    );
}

#[test]
fn a_million_pipelined_pings_not_read_are_held_back_not_buffered() {
    let st = setup();
    let pid = st.proxy.pid();
    let baseline = rss_kib(pid);
    let w = watch(pid, st.port, "pings");
    const N: usize = 1_000_000;
    // PING with a 50-byte argument: 72 MB of requests and 57 MB of replies, more than the
    // kernel's socket buffers hold, so the sender must be held back at some point.
    const PING: &[u8] =
        b"*2\r\n$4\r\nPING\r\n$50\r\npppppppppppppppppppppppppppppppppppppppppppppppppp\r\n";
    const PONG: &[u8] = b"$50\r\npppppppppppppppppppppppppppppppppppppppppppppppppp\r\n";
    let s = connect(st.port);
    let mut writer = s.try_clone().unwrap();
    // Bounded in time: a write blocked for 60 s fails the test instead of hanging it.
    writer
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            let ping = PING.repeat(1000);
            for _ in 0..N / 1000 {
                writer.write_all(&ping).map_err(|e| e.to_string())?;
                sent.fetch_add(1000, Relaxed);
            }
            writer.shutdown(Shutdown::Write).map_err(|e| e.to_string())
        })
    };
    // Nothing is read until the sender has been stuck for a while: the proxy must stop reading
    // (its writes of PONGs block) rather than buffer the rest.
    let mut last = 0;
    let mut still = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while still < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = sent.load(Relaxed);
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    let stuck_at = sent.load(Relaxed);
    assert!(
        (stuck_at as usize) < N,
        "all {N} PINGs were taken without a reply being read"
    );
    // Then every reply is read, in full: nothing was dropped while held back.
    let mut r = s;
    r.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let want = N * PONG.len();
    let mut got = 0usize;
    let mut tmp = vec![0u8; 256 * 1024];
    let mut bad = None;
    while got < want {
        let n = r.read(&mut tmp).expect("reading the replies");
        assert!(n > 0, "closed after {got} of {want} bytes of replies");
        let chunk = &tmp[..n];
        // Each byte is where it must be in the stream of replies.
        if bad.is_none()
            && let Some(i) = chunk
                .iter()
                .enumerate()
                .position(|(i, b)| *b != PONG[(got + i) % PONG.len()])
        {
            bad = Some(got + i);
        }
        got += n;
    }
    assert_eq!(bad, None, "the reply stream is wrong at byte {bad:?}");
    sender.join().unwrap().expect("sending the PINGs");
    // Write side closed: the proxy closes too, with nothing more.
    assert_eq!(read_until_closed(r, Duration::from_secs(10)), b"");
    eprintln!("pings: the sender was held back after {stuck_at} of {N} PINGs");
    w.finish("a million pipelined PINGs", baseline);
}

/// CPU seconds (user and system) the process has used, from /proc/<pid>/stat in clock ticks of
/// 1/100 s (Linux's USER_HZ).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name, which is in parentheses: utime and stime are the 12th and
    // 13th of them.
    let rest = &stat[stat.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// Most CPU the proxy may spend on the trickled request: 1 s (seen: about 0.3 s in a debug
/// build; scanning the request again from its start on every read, as before `resp::Resume`,
/// took 2.5 s).
const TRICKLE_CPU_SECS: f64 = 1.0;

#[test]
fn a_million_arguments_trickled_in_small_pieces_are_scanned_once() {
    let st = setup();
    let pid = st.proxy.pid();
    let baseline = rss_kib(pid);
    let w = watch(pid, st.port, "trickle");
    let mut s = connect(st.port);
    // A million 30-byte arguments: 37 MB, within --max-request-bytes (64 MiB).
    let mut req = b"*1000000\r\n".to_vec();
    req.extend_from_slice(&b"$30\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(1_000_000));
    let cpu_before = cpu_secs(pid);
    let started = Instant::now();
    for piece in req.chunks(16 * 1024) {
        s.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut buf = Vec::new();
    let r = call(&mut s, &mut buf, &[b"PING"]);
    let cpu = cpu_secs(pid) - cpu_before;
    // The request is a command the proxy does not know: refused, the connection kept.
    let (refusal, pong) = match r {
        Ok(first) => (first, call(&mut s, &mut buf, &[b"PING"])),
        Err(e) => panic!("no reply to the trickled request: {e}"),
    };
    let refusal = String::from_utf8_lossy(&refusal).into_owned();
    assert!(
        refusal.starts_with("-ERR unknown or unsupported command 'aaaaaaaaaa"),
        "{refusal}"
    );
    assert_eq!(pong.unwrap(), b"+PONG\r\n");
    eprintln!(
        "trickle: 37 MB in 16 KiB pieces over {:?}, proxy CPU {cpu:.2} s",
        started.elapsed()
    );
    // A request within the limits is held whole until complete: its 37 MB, the buffer's room
    // to grow and the places of its million arguments (16 MB), less than 128 MiB in all.
    w.finish_within("a million arguments trickled", baseline, 128 * 1024);
    assert!(
        cpu < TRICKLE_CPU_SECS,
        "the proxy spent {cpu:.2} s of CPU on one trickled request (bound {TRICKLE_CPU_SECS} s)"
    );
}
