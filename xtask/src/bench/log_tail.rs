//! `cargo xtask bench log-tail`: log-tail against GNU `tail -F` and busybox `tail -F`, in one run.
//!
//! 1. Throughput: a writer appends 1M lines of about 150 bytes as fast as it can to a file the
//!    follower already follows; measured until the last line arrives on the follower's stdout.
//! 2. Latency: a writer appends 10k lines/s for a few seconds, one write per line, each line
//!    carrying its write time; the reader of stdout records how late each line arrives (p50, p99).
//! 3. Idle: the three followers watch a file that does not change for 30 s; CPU time used and RSS.
//! 4. Catch-up: a file of 1M lines exists before the follower starts (a pod restart, a sidecar
//!    started after the application); raw output to a pipe, timed from the start of the process
//!    until its last line is read. log-tail and GNU `tail -n +1 -F` take turns for 5 rounds
//!    (alternating which goes first); the median round of each counts.
//!
//! Options: `--lines N` (throughput and catch-up lines, default 1000000), `--latency-secs S`
//! (default 5), `--idle-secs S` (default 30), `--catchup-rounds N` (default 5; 0: skip).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{number, options, proc_status_kib, release_binary};

struct Tool {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
}

impl Tool {
    fn spawn(&self, file: &Path) -> Result<Child, String> {
        Command::new(&self.program)
            .args(&self.args)
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.name))
    }
}

struct Figures {
    /// CPU time used by the follower for the throughput run (lowest round).
    cpu_ms: f64,
    lines_per_sec: f64,
    mib_per_sec: f64,
    peak_rss_kib: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    idle_cpu_pct: f64,
    idle_rss_kib: u64,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut lines: u64 = 1_000_000;
    let mut latency_secs: u64 = 5;
    let mut idle_secs: u64 = 30;
    let mut catchup_rounds: u64 = 5;
    options(args, |a, v| {
        let slot = match a {
            "--lines" => &mut lines,
            "--latency-secs" => &mut latency_secs,
            "--idle-secs" => &mut idle_secs,
            "--catchup-rounds" => &mut catchup_rounds,
            _ => return Ok(false),
        };
        *slot = number(a, v)?;
        Ok(true)
    })?;
    let ours = release_binary("log-tail")?;
    let gnu = PathBuf::from("/usr/bin/tail");
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("busybox is not installed (Debian package busybox)")?;
    let tools = [
        Tool {
            name: "log-tail",
            program: ours,
            args: vec![
                "--no-admin-server".into(),
                "--log-level".into(),
                "warn".into(),
            ],
        },
        Tool {
            name: "GNU tail -F",
            program: gnu,
            args: vec!["-n".into(), "+1".into(), "-F".into()],
        },
        Tool {
            name: "busybox tail -F",
            program: busybox,
            args: vec!["tail".into(), "-n".into(), "+1".into(), "-F".into()],
        },
    ];
    let dir = std::env::temp_dir().join(format!("bench-log-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let catchup = if catchup_rounds == 0 {
        Ok(None)
    } else {
        catch_up_all(&tools[..2], &dir, lines, catchup_rounds as usize).map(Some)
    };
    let result = catchup.and_then(|c| {
        Ok((
            c,
            measure_all(&tools, &dir, lines, latency_secs, idle_secs)?,
        ))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (catchup, figures) = result?;
    report(&tools, &figures, lines);
    if let Some(c) = catchup {
        report_catch_up(&tools[..2], &c, lines);
    }
    Ok(())
}

fn measure_all(
    tools: &[Tool],
    dir: &Path,
    lines: u64,
    latency_secs: u64,
    idle_secs: u64,
) -> Result<Vec<Figures>, String> {
    // Throughput: three rounds, the tools taking turns so that the machine's background load
    // hits all of them alike; each tool's best round counts. CPU time is the least sensitive to
    // that load: the lowest of the rounds is reported too.
    let mut best = vec![(0.0f64, 0.0f64, 0u64, f64::MAX); tools.len()];
    for round in 1..=ROUNDS {
        for (i, t) in tools.iter().enumerate() {
            eprintln!(
                "== {}: throughput, {lines} lines, round {round}/{ROUNDS}",
                t.name
            );
            let (lps, mibps, rss, cpu) = throughput(t, &dir.join(format!("tp{i}.log")), lines)?;
            eprintln!("   {lps:.0} lines/s, {mibps:.1} MiB/s, peak RSS {rss} KiB, CPU {cpu:.0} ms");
            let b = &mut best[i];
            if lps > b.0 {
                b.0 = lps;
                b.1 = mibps;
            }
            b.2 = b.2.max(rss);
            b.3 = b.3.min(cpu);
        }
    }
    let mut out = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        let (lps, mibps, rss, cpu_ms) = best[i];
        eprintln!("== {}: latency at 10k lines/s for {latency_secs}s", t.name);
        let (p50, p99, max) = if latency_secs == 0 {
            (0.0, 0.0, 0.0)
        } else {
            latency(t, &dir.join(format!("lat{i}.log")), latency_secs)?
        };
        eprintln!("   p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms");
        out.push(Figures {
            cpu_ms,
            lines_per_sec: lps,
            mib_per_sec: mibps,
            peak_rss_kib: rss,
            p50_ms: p50,
            p99_ms: p99,
            max_ms: max,
            idle_cpu_pct: 0.0,
            idle_rss_kib: 0,
        });
    }
    eprintln!("== idle: all three for {idle_secs}s");
    let idle = if idle_secs == 0 {
        vec![(0.0, 0); tools.len()]
    } else {
        idle(tools, dir, idle_secs)?
    };
    for (f, (cpu, rss)) in out.iter_mut().zip(idle) {
        f.idle_cpu_pct = cpu;
        f.idle_rss_kib = rss;
    }
    Ok(out)
}

/// Throughput rounds per tool.
const ROUNDS: usize = 3;

fn line_of(n: u64) -> Vec<u8> {
    // About 150 bytes, like an access log line.
    format!(
        "{n:010} 203.0.113.7 - - [22/Nov/2026:10:00:00 +0000] \"GET /api/v1/items?page={n} HTTP/1.1\" 200 5120 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt=0.012\n"
    )
    .into_bytes()
}

/// Reads `expected` bytes of `tool`'s output within 300 s of `start`; on failure `child` is
/// stopped and the error says how far it got.
fn read_output(
    tool: &Tool,
    child: Child,
    stdout: &mut impl Read,
    expected: u64,
    start: Instant,
) -> Result<Child, String> {
    let deadline = start + Duration::from_secs(300);
    let mut got: u64 = 0;
    let mut buf = vec![0u8; 1 << 16];
    let failed = loop {
        if got >= expected {
            return Ok(child);
        }
        let n = match stdout.read(&mut buf) {
            Ok(n) => n,
            Err(e) => break e.to_string(),
        };
        if n == 0 {
            break format!("{} exited after {got} of {expected} bytes", tool.name);
        }
        got += n as u64;
        if Instant::now() > deadline {
            break format!("{} too slow: {got} of {expected} bytes", tool.name);
        }
    };
    stop(child);
    Err(failed)
}

/// Kills and reaps a child.
fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    proc_status_kib(pid, field).unwrap_or(0)
}

/// CPU time used by all threads of a process, in nanoseconds (from schedstat, which counts
/// nanoseconds where /proc/PID/stat counts 10 ms ticks: too coarse for an idle process).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Waits until the follower has opened `file` (so no write races its startup).
fn wait_following(pid: u32, file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for e in rd.flatten() {
                if std::fs::read_link(e.path()).is_ok_and(|t| t == file) {
                    // Opened; give it a moment to set up its watch after the open.
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Returns lines/s, MiB/s, peak RSS (KiB) and the CPU time the follower used (ms).
fn throughput(tool: &Tool, file: &Path, lines: u64) -> Result<(f64, f64, u64, f64), String> {
    File::create(file).map_err(|e| e.to_string())?;
    let mut child = tool.spawn(file)?;
    let pid = child.id();
    wait_following(pid, file);
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    // The lines are formatted before the clock starts, so that the writer (64 KiB appends from
    // memory) is far faster than any follower and the figure is the follower's.
    let mut data = Vec::new();
    for n in 0..lines {
        data.extend_from_slice(&line_of(n));
    }
    let expected = data.len() as u64;
    let path = file.to_path_buf();
    let cpu_before = cpu_ns(pid);
    let start = Instant::now();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut f = OpenOptions::new().append(true).open(&path)?;
        for chunk in data.chunks(1 << 16) {
            f.write_all(chunk)?;
        }
        Ok(())
    });
    let child = read_output(tool, child, &mut stdout, expected, start)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu_ms = cpu_ns(pid).saturating_sub(cpu_before) as f64 / 1e6;
    let peak = rss_kib(pid, "VmHWM:");
    writer
        .join()
        .map_err(|_| "writer panicked")?
        .map_err(|e| e.to_string())?;
    stop(child);
    let _ = std::fs::remove_file(file);
    Ok((
        lines as f64 / secs,
        expected as f64 / secs / (1024.0 * 1024.0),
        peak,
        cpu_ms,
    ))
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn latency(tool: &Tool, file: &Path, secs: u64) -> Result<(f64, f64, f64), String> {
    File::create(file).map_err(|e| e.to_string())?;
    let mut child = tool.spawn(file)?;
    wait_following(child.id(), file);
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let total = secs * 10_000;
    let reader = std::thread::spawn(move || {
        let mut lat = Vec::with_capacity(total as usize);
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        while (lat.len() as u64) < total {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let now = now_ns();
            if let Some(ts) = line
                .split_whitespace()
                .next()
                .and_then(|t| t.parse::<u128>().ok())
            {
                lat.push(now.saturating_sub(ts) as f64 / 1e6);
            }
        }
        lat
    });
    let mut f = OpenOptions::new()
        .append(true)
        .open(file)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let pad = "x".repeat(110);
    // 10 lines per millisecond, each its own write(2) as a logger does.
    for n in 0..total {
        let due = start + Duration::from_micros(n * 100);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let line = format!("{} {n:08} {pad}\n", now_ns());
        f.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    }
    // busybox polls once a second: give every follower time to catch up before giving up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(child);
    let mut lat = reader.join().map_err(|_| "reader panicked")?;
    if (lat.len() as u64) < total {
        eprintln!("   {} delivered {} of {total} lines", tool.name, lat.len());
    }
    if lat.is_empty() {
        return Err(format!("{} delivered no line", tool.name));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    let _ = std::fs::remove_file(file);
    Ok((pct(0.50), pct(0.99), lat[lat.len() - 1]))
}

fn idle(tools: &[Tool], dir: &Path, secs: u64) -> Result<Vec<(f64, u64)>, String> {
    let mut children = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        let file = dir.join(format!("idle{i}.log"));
        std::fs::write(&file, "one line\n").map_err(|e| e.to_string())?;
        let c = t.spawn(&file)?;
        wait_following(c.id(), &file);
        children.push(c);
    }
    std::thread::sleep(Duration::from_secs(1));
    let before: Vec<u64> = children.iter().map(|c| cpu_ns(c.id())).collect();
    std::thread::sleep(Duration::from_secs(secs));
    let mut out = Vec::new();
    for (c, b) in children.into_iter().zip(before) {
        let used = cpu_ns(c.id()).saturating_sub(b) as f64 / 1e9;
        let rss = rss_kib(c.id(), "VmRSS:");
        out.push((used / secs as f64 * 100.0, rss));
        stop(c);
    }
    Ok(out)
}

fn report(tools: &[Tool], f: &[Figures], lines: u64) {
    println!();
    println!(
        "log-tail benchmark ({lines} lines of ~150 bytes, best of {ROUNDS} rounds; latency at 10k lines/s)"
    );
    println!(
        "{:<16} {:>12} {:>9} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "follower",
        "lines/s",
        "MiB/s",
        "CPU ms",
        "peak RSS",
        "p50 ms",
        "p99 ms",
        "max ms",
        "idle CPU",
        "idle RSS"
    );
    for (t, x) in tools.iter().zip(f) {
        println!(
            "{:<16} {:>12.0} {:>9.1} {:>8.0} {:>6} KiB {:>9.2} {:>9.2} {:>9.2} {:>8.4}% {:>6} KiB",
            t.name,
            x.lines_per_sec,
            x.mib_per_sec,
            x.cpu_ms,
            x.peak_rss_kib,
            x.p50_ms,
            x.p99_ms,
            x.max_ms,
            x.idle_cpu_pct,
            x.idle_rss_kib
        );
    }
    let ours = &f[0];
    for (t, x) in tools.iter().zip(f).skip(1) {
        println!(
            "log-tail vs {}: throughput x{:.2}, CPU per line x{:.2}, p99 latency x{:.2}, peak RSS x{:.2}",
            t.name,
            ours.lines_per_sec / x.lines_per_sec,
            ours.cpu_ms / x.cpu_ms.max(1e-9),
            ours.p99_ms / x.p99_ms.max(1e-9),
            ours.peak_rss_kib as f64 / (x.peak_rss_kib.max(1)) as f64
        );
    }
    println!(
        "targets: throughput >= GNU tail: {}; p99 < 50 ms: {}; RSS < 10 MB: {}",
        if ours.lines_per_sec >= f[1].lines_per_sec {
            "yes"
        } else {
            "NO"
        },
        if ours.p99_ms < 50.0 { "yes" } else { "NO" },
        if ours.peak_rss_kib < 10 * 1024 {
            "yes"
        } else {
            "NO"
        },
    );
}

/// Catch-up: per tool, the seconds of each round and the CPU time of each, in round order.
struct CatchUp {
    secs: Vec<f64>,
    cpu_ms: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn catch_up_all(
    tools: &[Tool],
    dir: &Path,
    lines: u64,
    rounds: usize,
) -> Result<Vec<CatchUp>, String> {
    let file = dir.join("catchup.log");
    {
        let mut f = std::io::BufWriter::new(File::create(&file).map_err(|e| e.to_string())?);
        for n in 0..lines {
            f.write_all(&line_of(n)).map_err(|e| e.to_string())?;
        }
        f.flush().map_err(|e| e.to_string())?;
    }
    let expected = std::fs::metadata(&file).map_err(|e| e.to_string())?.len();
    let mut out: Vec<CatchUp> = tools
        .iter()
        .map(|_| CatchUp {
            secs: Vec::new(),
            cpu_ms: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        // Alternate which tool goes first: the page cache and the background load favour neither.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..tools.len()).collect()
        } else {
            (0..tools.len()).rev().collect()
        };
        for i in order {
            let t = &tools[i];
            eprintln!(
                "== {}: catch-up on an existing file of {lines} lines, round {}/{rounds}",
                t.name,
                round + 1
            );
            let (secs, cpu) = catch_up(t, &file, expected)?;
            eprintln!(
                "   {:.0} lines/s ({:.3} s), CPU {cpu:.0} ms",
                lines as f64 / secs,
                secs
            );
            out[i].secs.push(secs);
            out[i].cpu_ms.push(cpu);
        }
    }
    let _ = std::fs::remove_file(&file);
    Ok(out)
}

/// Starts the tool on the existing `file` and reads its stdout until `expected` bytes came out.
/// Returns the wall time from spawn to the last byte and the CPU time the process used.
fn catch_up(tool: &Tool, file: &Path, expected: u64) -> Result<(f64, f64), String> {
    let start = Instant::now();
    let mut child = tool.spawn(file)?;
    let pid = child.id();
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let child = read_output(tool, child, &mut stdout, expected, start)?;
    let secs = start.elapsed().as_secs_f64();
    let cpu_ms = cpu_ns(pid) as f64 / 1e6;
    stop(child);
    Ok((secs, cpu_ms))
}

fn report_catch_up(tools: &[Tool], c: &[CatchUp], lines: u64) {
    let rounds = c.first().map_or(0, |x| x.secs.len());
    println!();
    println!(
        "catch-up: existing file of {lines} lines, raw output to a pipe, median of {rounds} alternating rounds"
    );
    println!(
        "{:<16} {:>12} {:>10} {:>9}   rounds (s)",
        "follower", "lines/s", "seconds", "CPU ms"
    );
    for (t, x) in tools.iter().zip(c) {
        let s = median(&x.secs);
        println!(
            "{:<16} {:>12.0} {:>10.3} {:>9.0}   {}",
            t.name,
            lines as f64 / s,
            s,
            median(&x.cpu_ms),
            x.secs
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if c.len() >= 2 {
        let ratio = median(&c[1].secs) / median(&c[0].secs).max(1e-9);
        println!(
            "log-tail vs {}: catch-up throughput x{ratio:.2} (target >= 1.5: {})",
            tools[1].name,
            if ratio >= 1.5 { "yes" } else { "NO" }
        );
    }
}
