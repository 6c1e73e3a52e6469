//! `cargo xtask fuzz [TARGET...] [--seconds N] [--jobs N] [--dev]`: the coverage-guided fuzz
//! targets of `fuzz/` (cargo-fuzz, libFuzzer), each run for N seconds (60 by default) from its
//! committed seed corpus, failing on the first crash. `cargo xtask test` runs every target for
//! 10 s ("fuzz (short)") from an unoptimised build (`--dev`), which compiles much faster.
//!
//! cargo-fuzz needs nightly compiler flags (sanitizer coverage); `RUSTC_BOOTSTRAP=1` lets the
//! stable toolchain accept them, so no second toolchain is installed. cargo-fuzz itself is
//! installed from crates.io into `target/tools` when the machine lacks it, as cargo-audit is.
//!
//! Built without a sanitizer: the code under test has no `unsafe` (the workspace forbids it), so
//! AddressSanitizer would look for memory errors safe Rust cannot make while slowing the build
//! and halving the executions per second. Debug assertions and overflow checks are on
//! (fuzz/Cargo.toml), so an overflow is a crash; libFuzzer's `-rss_limit_mb` makes unbounded
//! memory one too, and `-timeout` a hang.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sh;

/// The cargo-fuzz release installed when none is on the machine.
const CARGO_FUZZ: &str = "cargo-fuzz@0.13.1";

/// Per-target memory ceiling: a parser that grows past it on one input is a finding.
const RSS_LIMIT_MB: u32 = 2048;

/// Seconds a single input may take before libFuzzer calls it a hang.
const TIMEOUT_S: u32 = 10;

/// The cargo-fuzz executable: on PATH, or installed into `target/tools`.
fn cargo_fuzz() -> Result<Command, String> {
    if Command::new("cargo-fuzz")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(Command::new("cargo-fuzz"));
    }
    let tools = sh::root().join("target/tools");
    let bin = tools.join("bin/cargo-fuzz");
    if !bin.exists() {
        sh::run(
            sh::cargo()
                // `--debug`: cargo-fuzz's own speed does not matter, and an unoptimised build of
                // it compiles in half the time on a fresh machine.
                .args(["install", "--locked", "--quiet", "--debug", "--root"])
                .arg(&tools)
                .arg(CARGO_FUZZ),
        )?;
    }
    Ok(Command::new(bin))
}

/// The fuzz targets: one file each in `fuzz/fuzz_targets`, sorted.
pub(crate) fn targets() -> Result<Vec<String>, String> {
    let dir = sh::root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".rs"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Where the fuzz builds, working corpora and logs go: beside the workspace's own builds.
fn work_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sh::root().join("target"))
        .join("fuzz")
}

/// How the targets are compiled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Build {
    /// cargo-fuzz's default: optimised, one codegen unit; the fastest fuzzing, for long runs.
    Release,
    /// Unoptimised: it compiles in a fraction of the time and still runs some 10^5 inputs in
    /// 10 s, which is what the short stage of `cargo xtask test` needs on a fresh machine.
    Dev,
}

/// cargo-fuzz with the flags every build and run shares (the same flags, so a run does not
/// rebuild what `build` made); each kind of build has its own target dir, so switching between
/// them rebuilds nothing.
fn fuzz_command(sub: &str, build: Build) -> Result<Command, String> {
    let mut cmd = cargo_fuzz()?;
    cmd.current_dir(sh::root())
        .env("RUSTC_BOOTSTRAP", "1")
        .arg(sub)
        .args(["--sanitizer", "none", "--target-dir"]);
    match build {
        Build::Release => cmd.arg(work_dir().join("build")),
        Build::Dev => cmd.arg(work_dir().join("build-dev")).arg("--dev"),
    };
    Ok(cmd)
}

/// What one run did, from libFuzzer's final statistics.
struct Outcome {
    target: String,
    ok: bool,
    secs: f64,
    execs: Option<u64>,
    log: PathBuf,
}

/// Starts `target` for `seconds`: new inputs go to a working corpus under the target dir, the
/// committed seeds in `fuzz/corpus/<target>` are read only.
fn spawn(target: &str, seconds: u64, build: Build, log: &Path) -> Result<Child, String> {
    let corpus = work_dir().join("corpus").join(target);
    fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let seeds = sh::root().join("fuzz/corpus").join(target);
    let out = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = fuzz_command("run", build)?;
    cmd.arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={TIMEOUT_S}"))
        .arg("-print_final_stats=1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out);
    eprintln!("fuzz: {target} for {seconds} s (log {})", log.display());
    cmd.spawn()
        .map_err(|e| format!("cannot start cargo-fuzz: {e}"))
}

/// `stat::number_of_executed_units: N` from a finished run's log.
fn execs(log: &Path) -> Option<u64> {
    let f = fs::File::open(log).ok()?;
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            l.strip_prefix("stat::number_of_executed_units:")
                .and_then(|v| v.trim().parse().ok())
        })
        .last()
}

fn tail(log: &Path, n: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Builds every target, then runs `targets` for `seconds` each, `jobs` at a time; fails when any
/// crashed, leaked past the memory limit or hung, after printing a table of all of them.
fn run_targets(targets: &[String], seconds: u64, jobs: usize, build: Build) -> Result<(), String> {
    let all = self::targets()?;
    if let Some(t) = targets.iter().find(|t| !all.contains(t)) {
        return Err(format!(
            "no fuzz target `{t}` (there are: {})",
            all.join(", ")
        ));
    }
    let start = Instant::now();
    sh::run(&mut fuzz_command("build", build)?)?;
    eprintln!("fuzz: built in {:.0} s", start.elapsed().as_secs_f64());
    let logs = work_dir().join("logs");
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;

    let mut outcomes = Vec::new();
    let mut queue = targets.iter();
    let mut running: Vec<(String, Child, Instant, PathBuf)> = Vec::new();
    loop {
        while running.len() < jobs.max(1) {
            let Some(t) = queue.next() else { break };
            let log = logs.join(format!("{t}.log"));
            let child = spawn(t, seconds, build, &log)?;
            running.push((t.clone(), child, Instant::now(), log));
        }
        if running.is_empty() {
            break;
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].1.try_wait() {
                Ok(Some(status)) => {
                    let (target, _, began, log) = running.swap_remove(i);
                    let o = Outcome {
                        ok: status.success(),
                        secs: began.elapsed().as_secs_f64(),
                        execs: execs(&log),
                        target,
                        log,
                    };
                    if !o.ok {
                        eprintln!(
                            "fuzz: {} FAILED ({status}); end of {}:\n{}",
                            o.target,
                            o.log.display(),
                            tail(&o.log, 40)
                        );
                    }
                    outcomes.push(o);
                }
                Ok(None) => i += 1,
                Err(e) => return Err(format!("waiting for cargo-fuzz: {e}")),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    eprintln!(
        "\n{:<20} {:<7} {:>7} {:>12}",
        "target", "result", "seconds", "execs"
    );
    for o in &outcomes {
        eprintln!(
            "{:<20} {:<7} {:>7.0} {:>12}",
            o.target,
            if o.ok { "ok" } else { "FAILED" },
            o.secs,
            o.execs.map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| o.target.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz target(s) failed: {} (the input is under fuzz/artifacts/<target>/; add it \
             to fuzz/corpus/<target>/ with the fix)",
            failed.join(", ")
        ))
    }
}

/// The "fuzz (short)" stage of `cargo xtask test`: every target for 10 s, two at a time (the
/// machines have two cores and each run uses one), from an unoptimised build.
pub(crate) fn short() -> Result<(), String> {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    run_targets(&targets()?, 10, jobs, Build::Dev)
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = 60;
    let mut jobs = 1;
    let mut build = Build::Release;
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" | "--jobs" => {
                let v = it
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|v| *v > 0)
                    .ok_or_else(|| format!("{a} takes a positive number"))?;
                if a == "--seconds" {
                    seconds = v;
                } else {
                    jobs = v as usize;
                }
            }
            "--dev" => build = Build::Dev,
            other if other.starts_with('-') => return Err(format!("unknown option `{other}`")),
            name => names.push(name.to_owned()),
        }
    }
    if names.is_empty() {
        names = targets()?;
    }
    run_targets(&names, seconds, jobs, build)
}
