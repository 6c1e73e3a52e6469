//! `cargo xtask bench <name>`: each binary against its rival in one run, printing ratios.
//!
//! Benchmarks are commands, not tests: the machines are shared and noisy, so figures are read by a
//! person and copied into the binary's README, never asserted.

use crate::system;

mod git_sync;
mod log_normalize;
mod log_tail;
mod nginx_exporter;
mod redis_ambassador;
mod wait_for;

/// A benchmark: receives the arguments after its name.
type Bench = fn(&[String]) -> Result<(), String>;

/// The benchmarks, one module per binary: add `mod <name>;` above and a line here.
const BENCHES: &[(&str, Bench)] = &[
    ("log-tail", log_tail::run),
    ("log-normalize", log_normalize::run),
    ("git-sync", git_sync::run),
    ("nginx-exporter", nginx_exporter::run),
    ("redis-ambassador", redis_ambassador::run),
    ("wait-for", wait_for::run),
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let names: Vec<&str> = BENCHES.iter().map(|(n, _)| *n).collect();
    let Some(name) = args.first() else {
        return Err(format!("usage: cargo xtask bench <{}>", names.join("|")));
    };
    let Some((_, bench)) = BENCHES.iter().find(|(n, _)| n == name) else {
        return Err(format!(
            "no benchmark named `{name}`; available: {}",
            names.join(", ")
        ));
    };
    system::ensure_packages(system::TEST_PACKAGES)?;
    system::ensure_packages(system::BENCH_PACKAGES)?;
    bench(&args[1..])
}

/// Loopback ports for the servers a benchmark starts: below the ephemeral range, so no outgoing
/// connection of the load generator takes one between choosing it and the server's bind.
pub(super) use podmates_testkit::free_port;

/// Waits up to 10 s until something accepts connections on 127.0.0.1:`port`.
pub(super) fn wait_port(port: u16, what: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(format!("{what} did not listen on port {port}"))
}

/// A memory field of /proc/PID/status in KiB (`VmRSS:`, `VmHWM:`, `RssAnon:`, `RssFile:`).
pub(super) fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
