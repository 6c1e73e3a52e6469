//! git-sync's known_hosts parser and host-key check, and its ssh URL splitter. Input: the file's
//! text, then after a NUL the host, a port byte pair and the key. Invariant: a key listed for a
//! plain host pattern is accepted for that host.
#![no_main]

// The module's own source, compiled here rather than through the git-sync crate (see Cargo.toml:
// that crate's vendored C libraries would dominate the fuzz build); it only uses the crates
// listed there.
#[path = "../../sidecars/git-sync/src/known_hosts.rs"]
#[allow(dead_code, unreachable_pub)]
mod known_hosts;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;

use known_hosts::{KnownHosts, ssh_host_port};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (file, query) = text.split_once('\0').unwrap_or((&text, ""));
    let kh = KnownHosts::parse(file);
    let (host, rest) = query.split_once(' ').unwrap_or((query, ""));
    let port = rest
        .bytes()
        .take(2)
        .fold(0u16, |p, b| p << 8 | u16::from(b));
    let _ = kh.check(host, port, rest.as_bytes());
    let _ = ssh_host_port(query);
    // A line naming a literal host (no wildcard, negation or brackets) with a valid key accepts
    // that key for the host on port 22.
    if !host.is_empty()
        && !rest.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        let key = rest.as_bytes();
        let line = format!("{host} ssh-ed25519 {}\n", STANDARD.encode(key));
        let kh = KnownHosts::parse(&line);
        assert_eq!(kh.check(host, 22, key), Ok(()), "{line:?}");
    }
});
