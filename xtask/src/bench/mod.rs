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

/// A benchmark: receives the arguments after its name.
type Bench = fn(&[String]) -> Result<(), String>;

/// The benchmarks, one module per binary: add `mod <name>;` above and a line here.
const BENCHES: &[(&str, Bench)] = &[
    ("log-tail", log_tail::run),
    ("log-normalize", log_normalize::run),
    ("git-sync", git_sync::run),
    ("nginx-exporter", nginx_exporter::run),
    ("redis-ambassador", redis_ambassador::run),
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
