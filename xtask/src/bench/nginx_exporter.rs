//! `cargo xtask bench nginx-exporter`: our exporter against Debian's prometheus-nginx-exporter (Go),
//! both scraping the same nginx on loopback, in one run.
//!
//! 1. Idle RSS of each exporter after one scrape.
//! 2. `wrk -t1 -cC -dD` against each exporter's `/metrics` (every request is a scrape of nginx),
//!    alternating ours and theirs for several rounds; the median scrapes/s of each.
//! 3. Loaded RSS: each process's peak RSS (VmHWM) after the load.
//!
//! Our binary is built the way its image ships it: static (`+crt-static`) for the host's
//! `<arch>-unknown-linux-gnu` target; `--dynamic` benchmarks a plain `cargo build --release`.
//!
//! Options: `--rounds N` (3), `--duration 5s`, `--connections N` (10), `--dynamic`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podmates_testkit::Proc;
use podmates_testkit::nginx::Nginx;

use super::{free_port, proc_status_kib};
use crate::sh;

const GO_EXPORTER: &str = "/usr/bin/prometheus-nginx-exporter";

struct Options {
    rounds: usize,
    duration: String,
    connections: usize,
    dynamic: bool,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut o = Options {
        rounds: 3,
        duration: "5s".to_owned(),
        connections: 10,
        dynamic: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--rounds" => o.rounds = value()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--duration" => o.duration = value()?.clone(),
            "--connections" => {
                o.connections = value()?.parse().map_err(|e| format!("{a}: {e}"))?;
            }
            "--dynamic" => o.dynamic = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let ours = build(o.dynamic)?;
    bench(&ours, &o)
}

fn build(dynamic: bool) -> Result<PathBuf, String> {
    let profile = crate::images::cargo_profile("nginx-exporter");
    if dynamic {
        let target_dir = super::target_dir();
        sh::run(sh::cargo().args(["build", "--profile", profile, "-p", "nginx-exporter"]))?;
        return Ok(target_dir.join(profile).join("nginx-exporter"));
    }
    let mut built = crate::images::build_static(&["nginx-exporter"])?;
    Ok(built.remove(0))
}

/// Waits up to 10 s until `path` on 127.0.0.1:`port` answers 200.
fn wait_http(port: u16, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        // One plain GET (no load generator: the idle RSS must be measured after a single request).
        if podmates_testkit::http::get(port, path).is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing answers on 127.0.0.1:{port}{path}"))
}

fn status_kb(pid: u32, field: &str) -> Result<u64, String> {
    proc_status_kib(pid, field).ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

fn wrk(port: u16, o: &Options) -> Result<f64, String> {
    let out = sh::output(Command::new("wrk").args([
        "-t1",
        &format!("-c{}", o.connections),
        &format!("-d{}", o.duration),
        &format!("http://127.0.0.1:{port}/metrics"),
    ]))?;
    if out.contains("Non-2xx") || out.contains("Socket errors") {
        eprintln!("{out}");
    }
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{out}"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(ours: &Path, o: &Options) -> Result<(), String> {
    // As nginx runs in production: a master and one worker (stopped together on drop).
    let options = podmates_testkit::nginx::Options {
        master_process: true,
        error_log: "error",
        worker_connections: 1024,
    };
    let nginx = Nginx::start_with(options, |_, port| {
        format!(
            "access_log off;\nserver {{ listen 127.0.0.1:{port}; location = /stub_status {{ stub_status; }} }}"
        )
    });
    let nginx_port = nginx.port();
    wait_http(nginx_port, "/stub_status")?;
    let uri = format!("-nginx.scrape-uri=http://127.0.0.1:{nginx_port}/stub_status");

    let go_port = free_port();
    let go = Proc::adopt(
        GO_EXPORTER,
        Command::new(GO_EXPORTER)
            .args([
                uri.clone(),
                format!("-web.listen-address=127.0.0.1:{go_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {GO_EXPORTER}: {e}"))?,
    );
    let ours_port = free_port();
    let us = Proc::adopt(
        "nginx-exporter",
        Command::new(ours)
            .args([
                uri,
                format!("-web.listen-address=127.0.0.1:{ours_port}"),
                "--log.level=warn".to_owned(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {}: {e}", ours.display()))?,
    );
    wait_http(go_port, "/metrics")?;
    wait_http(ours_port, "/metrics")?;
    // Let both settle after the warm-up requests before reading idle RSS.
    std::thread::sleep(Duration::from_secs(1));
    let idle_go = status_kb(go.pid(), "VmRSS:")?;
    let idle_us = status_kb(us.pid(), "VmRSS:")?;

    let (mut rate_go, mut rate_us) = (Vec::new(), Vec::new());
    for round in 1..=o.rounds.max(1) {
        let g = wrk(go_port, o)?;
        let u = wrk(ours_port, o)?;
        eprintln!("round {round}: Go {g:.0} scrapes/s, ours {u:.0} scrapes/s");
        rate_go.push(g);
        rate_us.push(u);
    }
    let loaded_go = status_kb(go.pid(), "VmHWM:")?;
    let loaded_us = status_kb(us.pid(), "VmHWM:")?;
    let (g, u) = (median(&mut rate_go), median(&mut rate_us));
    let mb = |kb: u64| kb as f64 / 1024.0;

    println!();
    println!(
        "nginx-exporter vs prometheus-nginx-exporter ({} rounds of wrk -t1 -c{} -d{}; ours: {})",
        o.rounds,
        o.connections,
        o.duration,
        if o.dynamic {
            "dynamic"
        } else {
            "static, as shipped"
        }
    );
    println!("{:<22} {:>12} {:>12} {:>10}", "", "ours", "Go", "ours/Go");
    println!(
        "{:<22} {:>12.0} {:>12.0} {:>9.2}x",
        "scrapes/s (median)",
        u,
        g,
        u / g
    );
    println!(
        "{:<22} {:>9.1} MB {:>9.1} MB {:>9.2}x",
        "RSS idle",
        mb(idle_us),
        mb(idle_go),
        idle_us as f64 / idle_go as f64
    );
    println!(
        "{:<22} {:>9.1} MB {:>9.1} MB {:>9.2}x",
        "RSS loaded (peak)",
        mb(loaded_us),
        mb(loaded_go),
        loaded_us as f64 / loaded_go as f64
    );
    Ok(())
}
