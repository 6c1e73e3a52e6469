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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, proc_status_kib};
use crate::sh;

const GO_EXPORTER: &str = "/usr/bin/prometheus-nginx-exporter";
const NGINX: &str = "/usr/sbin/nginx";

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
    let work = std::env::temp_dir().join(format!(
        "podmates-bench-nginx-exporter-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = bench(&work, &ours, &o);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn build(dynamic: bool) -> Result<PathBuf, String> {
    let profile = crate::images::cargo_profile("nginx-exporter");
    if dynamic {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| sh::root().join("target"));
        sh::run(sh::cargo().args(["build", "--profile", profile, "-p", "nginx-exporter"]))?;
        return Ok(target_dir.join(profile).join("nginx-exporter"));
    }
    let mut built = crate::images::build_static(&["nginx-exporter"])?;
    Ok(built.remove(0))
}

/// Kills the child on drop, so an error anywhere leaves no process behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx, stopped with `nginx -s quit` so that its worker does not outlive a killed master.
struct Nginx(Proc, PathBuf);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new(NGINX)
            .arg("-p")
            .arg(&self.1)
            .arg("-c")
            .arg(self.1.join("nginx.conf"))
            .args(["-s", "quit"])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn wait_http(port: u16, path: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if http_get_ok(port, path) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing answers on 127.0.0.1:{port}{path}"))
}

/// One plain GET (no load generator: the idle RSS must be measured after a single request).
fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
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

fn bench(work: &Path, ours: &Path, o: &Options) -> Result<(), String> {
    let nginx_port = free_port();
    let d = work.display();
    std::fs::write(
        work.join("nginx.conf"),
        format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\nhttp {{ access_log off;\n\
             client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
             uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
             server {{ listen 127.0.0.1:{nginx_port}; location = /stub_status {{ stub_status; }} }} }}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let _nginx = Nginx(
        Proc(
            Command::new(NGINX)
                .arg("-p")
                .arg(work)
                .arg("-c")
                .arg(work.join("nginx.conf"))
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("start nginx: {e}"))?,
        ),
        work.to_path_buf(),
    );
    wait_http(nginx_port, "/stub_status")?;
    let uri = format!("-nginx.scrape-uri=http://127.0.0.1:{nginx_port}/stub_status");

    let go_port = free_port();
    let go = Proc(
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
    let us = Proc(
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
    let idle_go = status_kb(go.0.id(), "VmRSS:")?;
    let idle_us = status_kb(us.0.id(), "VmRSS:")?;

    let (mut rate_go, mut rate_us) = (Vec::new(), Vec::new());
    for round in 1..=o.rounds.max(1) {
        let g = wrk(go_port, o)?;
        let u = wrk(ours_port, o)?;
        eprintln!("round {round}: Go {g:.0} scrapes/s, ours {u:.0} scrapes/s");
        rate_go.push(g);
        rate_us.push(u);
    }
    let loaded_go = status_kb(go.0.id(), "VmHWM:")?;
    let loaded_us = status_kb(us.0.id(), "VmHWM:")?;
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
