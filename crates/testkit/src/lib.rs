//! The one test harness of the workspace, for tests and benchmarks: child processes killed on
//! drop ([`Proc`]), the workspace's binaries started and waited for on `/readyz`
//! ([`spawn_binary`]), private nginx and redis-server instances ([`nginx`], [`redis`]), bounded
//! waits ([`eventually`], [`wait_port`]), a tiny HTTP client ([`http`]), the Debian package
//! table and [`require`] ([`tools`]), the PyPI and npm clients ([`clients`]), TLS certificates
//! made with openssl ([`certs`]), temporary directories ([`TempDir`]), a check that a binary's
//! flags are documented ([`assert_documented`]), and loopback ports ([`free_port`]).
//!
//! Loopback ports for tests that start real servers (redis-server, nutcracker, nginx, git daemon,
//! the binaries themselves) on a port chosen beforehand.
//!
//! The usual trick, binding port 0 and releasing it, races: the kernel picks port-0 binds and the
//! local ports of outgoing connections from the same ephemeral range, so between the release and
//! the server's own bind another test thread's port-0 bind, or any `connect`, can take the port
//! (seen as `Address already in use` from nutcracker and from redis-ambassador's stats listener on
//! a loaded 2-core machine). Here ports come from below the ephemeral range, where the kernel
//! never picks on its own, each handed out at most once per process, and each checked bindable
//! on 127.0.0.1 (and on ::1 where the host has IPv6) when handed out.

pub mod binary;
pub mod certs;
pub mod clients;
mod dir;
pub mod http;
pub mod nginx;
pub mod proc;
pub mod redis;
pub mod tools;
pub mod wait;

pub use binary::{Binary, spawn_binary};
pub use dir::TempDir;
pub use proc::Proc;
pub use tools::require;
pub use wait::{eventually, eventually_ok, wait_port, wait_until};

/// Fails naming every flag of `longs` (a binary's visible long flags, without the dashes) that
/// `readme` does not mention as `--flag`.
///
/// # Panics
/// When one is missing.
pub fn assert_documented<'a>(longs: impl IntoIterator<Item = &'a str>, readme: &str) {
    let missing: Vec<String> = longs
        .into_iter()
        .filter(|l| !matches!(*l, "help" | "version"))
        .map(|l| format!("--{l}"))
        .filter(|l| !readme.contains(l.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "flags missing from the README: {missing:?}"
    );
}

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Mutex;

/// Used when the ephemeral range cannot be read or leaves too little room below it; then the ports
/// may lie inside it, and only the once-per-process rule and the bind check protect them.
const FALLBACK: (u16, u16) = (20_000, 32_000);
/// The smallest span worth allocating from.
const MIN_SPAN: u16 = 2_000;
/// Ports below this are left to well-known services.
const FLOOR: u16 = 10_000;

struct Allocator {
    low: u16,
    high: u16,
    next: u16,
}

static ALLOCATOR: Mutex<Option<Allocator>> = Mutex::new(None);

/// The range to allocate from: from `FLOOR` (or `FALLBACK`) up to the start of the kernel's
/// ephemeral range.
fn range() -> (u16, u16) {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok());
    match start {
        Some(s) if s >= FLOOR.saturating_add(MIN_SPAN) => (FLOOR.max(s.saturating_sub(12_000)), s),
        _ => FALLBACK,
    }
}

/// Whether `port` can be bound on IPv4 loopback, and on IPv6 loopback where the host has it.
fn bindable(port: u16) -> bool {
    if TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_err() {
        return false;
    }
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
        Ok(_) => true,
        // No IPv6 on this host: only the IPv4 check matters.
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => true,
        Err(e) => e.raw_os_error() == Some(97), // EAFNOSUPPORT
    }
}

/// A loopback port that nothing listens on and that no other call in this process returns.
///
/// # Panics
/// When the whole range has been handed out or is in use.
pub fn free_port() -> u16 {
    let mut guard = ALLOCATOR.lock().unwrap_or_else(|e| e.into_inner());
    let a = guard.get_or_insert_with(|| {
        let (low, high) = range();
        // Start where another test process (run at the same time, e.g. by hand) is unlikely to.
        Allocator::new(low, high, std::process::id())
    });
    a.take().unwrap_or_else(|| {
        panic!(
            "no free loopback port left in {}..{} for this test process",
            a.low, a.high
        )
    })
}

impl Allocator {
    fn new(low: u16, high: u16, seed: u32) -> Self {
        // Spread by a multiplicative hash: test processes started one after another have
        // neighbouring pids, which as plain offsets would hand out neighbouring ports.
        let spread = u64::from(seed).wrapping_mul(0x9E37_79B9) % u64::from(high - low);
        let next = low + spread as u16;
        Self { low, high, next }
    }

    /// The next bindable port, going round the range once at most.
    fn take(&mut self) -> Option<u16> {
        for _ in self.low..self.high {
            let port = self.next;
            self.next = if self.next + 1 >= self.high {
                self.low
            } else {
                self.next + 1
            };
            if bindable(port) {
                return Some(port);
            }
        }
        None
    }
}

/// `n` distinct ports, each as from [`free_port`].
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let (_, high) = range();
        let ports = free_ports(200);
        let set: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(set.len(), ports.len(), "a port was handed out twice");
        for p in &ports {
            assert!(
                *p < high,
                "port {p} is in the ephemeral range (from {high})"
            );
            // Binding it now succeeds: nothing else took it.
            TcpListener::bind(("127.0.0.1", *p)).unwrap();
        }
    }

    #[test]
    fn a_port_in_use_is_skipped_and_the_range_wraps() {
        // Two neighbouring ports handed out to this test, so that no test running beside it
        // binds the second one while this one looks at it.
        let (held, _next) = (0..100)
            .map(|_| (free_port(), free_port()))
            .find(|(a, b)| *b == *a + 1)
            .expect("two neighbouring free ports in 100 tries");
        let _l = TcpListener::bind(("127.0.0.1", held)).unwrap();
        // A private allocator whose range is the held port and the one after it, starting on the
        // held one: it steps past it, then wraps back onto it and finds nothing more.
        let mut a = Allocator::new(held, held + 2, 0);
        let got = a.take();
        let next_free = TcpListener::bind(("127.0.0.1", held + 1)).is_ok();
        assert_eq!(got, next_free.then_some(held + 1));
        assert_eq!(a.next, held);
    }
}
