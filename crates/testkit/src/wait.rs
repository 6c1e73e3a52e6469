//! Waiting for a condition, bounded: the one polling loop of the tests.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How often [`eventually`] polls.
const POLL: Duration = Duration::from_millis(20);

/// Polls `f` until it returns `Some`, at most `limit`; returns the value.
///
/// # Panics
/// When `limit` passes, naming `what`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// Polls `cond` until it holds, at most `limit`.
///
/// # Panics
/// When `limit` passes, naming `what`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    eventually(limit, what, || cond().then_some(()));
}

/// Polls `f` until it returns `Ok`, at most `limit`.
///
/// # Panics
/// When `limit` passes, naming `what` and the last error `f` gave.
pub fn eventually_ok(limit: Duration, what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(()) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; last: {e}"
            ),
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`, at most 10 s.
///
/// # Panics
/// When nothing does, naming `what`.
pub fn wait_port(port: u16, what: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until(Duration::from_secs(10), what, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}
