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

/// A memory field of /proc/PID/status in KiB (`VmRSS:`, `VmHWM:`, `RssAnon:`, `RssFile:`).
pub(super) use podmates_testkit::proc::status_kib as proc_status_kib;

/// Reads a benchmark's `--name VALUE` options: `set(name, value)` applies one it knows and says
/// whether it knew it.
pub(super) fn options(
    args: &[String],
    mut set: impl FnMut(&str, &str) -> Result<bool, String>,
) -> Result<(), String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        if !set(a, v)? {
            return Err(format!("unknown option {a}"));
        }
    }
    Ok(())
}

/// The value of option `name` as a number.
pub(super) fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e| format!("{name}: {e}"))
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or `target` of the workspace.
pub(super) fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::sh::root().join("target"))
}

/// Builds `package` with `cargo build --release` and returns its binary.
pub(super) fn release_binary(package: &str) -> Result<std::path::PathBuf, String> {
    crate::sh::run(crate::sh::cargo().args(["build", "--release", "-p", package]))?;
    Ok(target_dir().join("release").join(package))
}
