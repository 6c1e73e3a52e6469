//! `cargo xtask bench redis-ambassador`: redis-ambassador against nutcracker (twemproxy 0.5.0)
//! with the same pool over the same two redis-server shards on loopback, and against one shard
//! directly for reference.
//!
//! For each workload (`redis-benchmark -c 50 -r 100000`: SET and GET at `-P 1` and `-P 16`, MGET of
//! 10 keys) the targets run one after the other, alternating, for `--rounds` rounds; the median
//! run by ops/s is reported with its p50/p99, plus the ratio ours/nutcracker. Then the RSS of each
//! proxy holding 1000 idle clients (`redis-benchmark -I`).
//!
//! Options: `--rounds N` (3), `--requests N` (requests per run at -P 1; x5 at -P 16; 200000).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use podmates_testkit::Proc;
use podmates_testkit::redis::REDIS_SERVER;

use super::{free_port, proc_status_kib};
use crate::sh;

const NUTCRACKER: &str = "/usr/sbin/nutcracker";
const REDIS_BENCHMARK: &str = "/usr/bin/redis-benchmark";

/// Starts a program with a raised file limit (1000 idle clients need more than the usual 1024).
fn spawn(program: &Path, args: &[String]) -> Result<Proc, String> {
    let mut line = format!(
        "ulimit -n 65536 2>/dev/null || ulimit -n 4096; exec {}",
        program.display()
    );
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    Command::new("bash")
        .args(["-c", &line])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|c| Proc::adopt(&program.display().to_string(), c))
        .map_err(|e| format!("cannot start {}: {e}", program.display()))
}

struct Options {
    rounds: usize,
    requests: usize,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut o = Options {
        rounds: 3,
        requests: 200_000,
    };
    super::options(args, |a, v| {
        match a {
            "--rounds" => o.rounds = super::number(a, v)?,
            "--requests" => o.requests = super::number(a, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    for p in [NUTCRACKER, REDIS_SERVER, REDIS_BENCHMARK] {
        if !Path::new(p).exists() {
            return Err(format!(
                "{p} is missing (apt-get install nutcracker redis-server redis-tools)"
            ));
        }
    }
    let ours_bin = super::release_binary("redis-ambassador")?;
    let work = std::env::temp_dir().join(format!("podmates-bench-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = bench(&work, &ours_bin, &o);
    let _ = std::fs::remove_dir_all(&work);
    result
}

struct Run {
    rps: f64,
    p50: f64,
    p99: f64,
}

/// One redis-benchmark run; parses its `--csv` line.
fn benchmark(port: u16, pipeline: usize, requests: usize, test: &[&str]) -> Result<Run, String> {
    let mut c = Command::new(REDIS_BENCHMARK);
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        "50",
        "-r",
        "100000",
    ])
    .args([
        "-n",
        &requests.to_string(),
        "-P",
        &pipeline.to_string(),
        "--csv",
    ])
    .args(test);
    let out = sh::output(&mut c)?;
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let line = out
        .lines()
        .filter(|l| !l.starts_with("\"test\""))
        .find(|l| l.starts_with('"'))
        .ok_or_else(|| format!("no result from redis-benchmark: {out}"))?;
    let f: Vec<f64> = line
        .split(',')
        .skip(1)
        .map(|x| x.trim_matches('"').parse().unwrap_or(f64::NAN))
        .collect();
    if f.len() < 6 {
        return Err(format!("cannot parse redis-benchmark output: {line}"));
    }
    Ok(Run {
        rps: f[0],
        p50: f[3],
        p99: f[5],
    })
}

fn rss_kb(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

/// The pid of the process a `bash -c 'exec ...'` child became.
fn pid(g: &Proc) -> u32 {
    g.pid()
}

fn bench(work: &Path, ours_bin: &Path, o: &Options) -> Result<(), String> {
    let shard_ports = [free_port(), free_port()];
    let mut shards = Vec::new();
    for p in shard_ports {
        let args = podmates_testkit::redis::server_args(p);
        shards.push(spawn(Path::new(REDIS_SERVER), &args)?);
        podmates_testkit::wait_port(p, "redis-server");
    }
    let (nc_port, our_port) = (free_port(), free_port());
    let pool = |listen: u16| {
        format!(
            "bench:\n  listen: 127.0.0.1:{listen}\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  server_connections: 1\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{}:1\n",
            shard_ports[0], shard_ports[1]
        )
    };
    let nc_conf = work.join("nutcracker.yml");
    let our_conf = work.join("ours.yml");
    std::fs::write(&nc_conf, pool(nc_port)).map_err(|e| e.to_string())?;
    std::fs::write(&our_conf, pool(our_port)).map_err(|e| e.to_string())?;
    let s = |x: &str| x.to_owned();
    // The flags both take (redis-ambassador reads nutcracker's): the pool file and the stats
    // listener on a port of its own.
    let proxy_args = |conf: &Path, extra: &[String]| -> Vec<String> {
        let stats = free_port().to_string();
        let common = [
            s("-c"),
            conf.display().to_string(),
            s("-s"),
            stats,
            s("-a"),
            s("127.0.0.1"),
        ];
        common.into_iter().chain(extra.iter().cloned()).collect()
    };
    let nc_log = work.join("nutcracker.log").display().to_string();
    let nc = spawn(
        Path::new(NUTCRACKER),
        &proxy_args(&nc_conf, &[s("-o"), nc_log]),
    )?;
    podmates_testkit::wait_port(nc_port, "nutcracker");
    let ours = spawn(
        ours_bin,
        &proxy_args(
            &our_conf,
            &[
                s("--admin-addr"),
                format!("127.0.0.1:{}", free_port()),
                s("--log-level"),
                s("warn"),
            ],
        ),
    )?;
    podmates_testkit::wait_port(our_port, "redis-ambassador");

    let mget: Vec<String> = std::iter::once(s("MGET"))
        .chain((0..10).map(|i| format!("key:{i}:__rand_int__")))
        .collect();
    let mget: Vec<&str> = mget.iter().map(String::as_str).collect();
    let workloads: Vec<(String, usize, Vec<&str>)> = vec![
        (s("SET -P 1"), 1, vec!["-t", "set"]),
        (s("GET -P 1"), 1, vec!["-t", "get"]),
        (s("SET -P 16"), 16, vec!["-t", "set"]),
        (s("GET -P 16"), 16, vec!["-t", "get"]),
        (s("MGET x10 -P 1"), 1, mget),
        // RESP3 clients (`HELLO 3`): ours only, nutcracker closes the connection on HELLO.
        (s("R3 SET -P 16"), 16, vec!["-3", "-t", "set"]),
        (s("R3 GET -P 16"), 16, vec!["-3", "-t", "get"]),
    ];
    let targets = [
        ("direct", shard_ports[0]),
        ("nutcracker", nc_port),
        ("ours", our_port),
    ];
    println!();
    println!(
        "{:<14} {:>12} {:>8} {:>8} {:>12} {:>8} {:>8} {:>12} {:>8} {:>8} {:>7}",
        "workload",
        "direct/s",
        "p50",
        "p99",
        "nutcracker/s",
        "p50",
        "p99",
        "ours/s",
        "p50",
        "p99",
        "ours/nc"
    );
    for (name, pipeline, test) in &workloads {
        let n = if *pipeline > 1 {
            o.requests * 5
        } else {
            o.requests
        };
        let mut runs: Vec<Vec<Run>> = vec![Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..o.rounds {
            for (i, (target, port)) in targets.iter().enumerate() {
                if *target == "nutcracker" && test.first() == Some(&"-3") {
                    runs[i].push(Run {
                        rps: f64::NAN,
                        p50: f64::NAN,
                        p99: f64::NAN,
                    });
                    continue;
                }
                runs[i].push(benchmark(*port, *pipeline, n, test)?);
            }
        }
        let med: Vec<Run> = runs
            .into_iter()
            .map(|mut r| {
                r.sort_by(|a, b| a.rps.total_cmp(&b.rps));
                r.swap_remove(r.len() / 2)
            })
            .collect();
        println!(
            "{:<14} {:>12.0} {:>8.3} {:>8.3} {:>12.0} {:>8.3} {:>8.3} {:>12.0} {:>8.3} {:>8.3} {:>6.2}x",
            name,
            med[0].rps,
            med[0].p50,
            med[0].p99,
            med[1].rps,
            med[1].p50,
            med[1].p99,
            med[2].rps,
            med[2].p50,
            med[2].p99,
            med[2].rps / med[1].rps
        );
    }

    println!("(R3: RESP3 clients; nutcracker does not speak RESP3, so it has no figures there)");

    // RSS with 1000 idle clients on each proxy.
    println!();
    for (name, port, g) in [("nutcracker", nc_port, &nc), ("ours", our_port, &ours)] {
        let before = rss_kb(pid(g)).unwrap_or(0);
        let idle = spawn(
            Path::new(REDIS_BENCHMARK),
            &[
                s("-h"),
                s("127.0.0.1"),
                s("-p"),
                port.to_string(),
                s("-c"),
                s("1000"),
                s("-I"),
            ],
        )?;
        std::thread::sleep(Duration::from_secs(3));
        let after = rss_kb(pid(g)).unwrap_or(0);
        drop(idle);
        println!(
            "{name:<10} RSS: {:.1} MB idle, {:.1} MB with 1000 idle clients",
            before as f64 / 1024.0,
            after as f64 / 1024.0
        );
    }
    drop(ours);
    drop(nc);
    drop(shards);
    Ok(())
}
