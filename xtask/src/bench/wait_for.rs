//! `cargo xtask bench wait-for`: wait-for against the busybox loop it replaces
//! (`until nslookup NAME; do sleep 1; done`), both asking one dnsmasq on loopback, in one run.
//!
//! 1. Start to ready: the name already exists; from spawning the process to its exit 0 (20 runs
//!    each), and for wait-for also from spawn to its first TCP connection on a listening port.
//! 2. Time to ready: the name (or, for wait-for, a TCP port) appears at a known moment, 1.37 s
//!    after the start, off the 1 s interval of both; the delay from then to the exit (5 runs).
//! 3. A long wait: both wait `--idle-secs` (60 by default) for a name that never appears, at
//!    their default pace (1 s), and wait-for also with `--backoff-policy exponential`; CPU time
//!    used and resident memory at the end.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, proc_status_kib};

const NAME: &str = "myservice.svc.cluster.local";

struct Dns {
    _proc: podmates_testkit::Proc,
    port: u16,
    hosts: PathBuf,
}

impl Dns {
    fn start(dir: &Path) -> Result<Self, String> {
        let hosts = dir.join("hosts.d");
        std::fs::create_dir_all(&hosts).map_err(|e| e.to_string())?;
        let port = free_port();
        let child = Command::new("/usr/sbin/dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--cache-size=0",
                "--local=/cluster.local/",
                "--user=root",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--hostsdir={}", hosts.display()))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start dnsmasq: {e}"))?;
        let proc = podmates_testkit::Proc::adopt("dnsmasq", child);
        podmates_testkit::wait_port(port, "dnsmasq");
        Ok(Self {
            _proc: proc,
            port,
            hosts,
        })
    }

    fn set_present(&self, present: bool) -> Result<(), String> {
        let f = self.hosts.join("myservice");
        if present {
            let tmp = self.hosts.join(".tmp");
            std::fs::write(&tmp, format!("10.1.2.3 {NAME}\n")).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &f).map_err(|e| e.to_string())
        } else {
            let _ = std::fs::remove_file(&f);
            Ok(())
        }
    }
}

fn ours_cmd(bin: &Path, dns_port: u16, name: &str) -> Command {
    let mut c = Command::new(bin);
    c.args(["--resolv-conf", "/nonexistent", "--dns-server"])
        .arg(format!("127.0.0.1:{dns_port}"))
        .arg(format!("dns://{name}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn busybox_cmd(busybox: &Path, dns_port: u16, name: &str) -> Command {
    let bb = busybox.display();
    let mut c = Command::new(busybox);
    // The tutorials' loop; -type=a because dnsmasq refuses AAAA for names it only has A for,
    // which busybox counts as a failure.
    c.args([
        "sh",
        "-c",
        &format!(
            "until {bb} nslookup -type=a {name} 127.0.0.1:{dns_port} >/dev/null 2>&1; do sleep 1; done"
        ),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

fn wait_exit(child: &mut Child, limit: Duration) -> Result<Instant, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            if !s.success() {
                return Err(format!("exited with {s}"));
            }
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not exit within {limit:?}"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Starts wait-for waiting for `tcp://127.0.0.1:port`.
fn wait_tcp(bin: &Path, port: u16) -> Result<Child, String> {
    Command::new(bin)
        .arg(format!("tcp://127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())
}

/// Milliseconds from starting `cmd` until it exited successfully (at most 10 s).
fn ms_to_exit(mut cmd: Command) -> Result<f64, String> {
    let t = Instant::now();
    let mut c = cmd.spawn().map_err(|e| e.to_string())?;
    let done = wait_exit(&mut c, Duration::from_secs(10))?;
    Ok(done.duration_since(t).as_secs_f64() * 1e3)
}

fn stats(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let p50 = ms[ms.len() / 2];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    (p50, mean, *ms.last().unwrap_or(&0.0))
}

/// CPU of a process and of its waited-for children, in ms (10 ms ticks of /proc/PID/stat).
fn tree_cpu_ms(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(after) = s.rsplit_once(')').map(|(_, a)| a) else {
        return 0.0;
    };
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14..17 of stat (utime, stime, cutime, cstime) are 11..14 after the name.
    let ticks: u64 = f.get(11..15).map_or(0, |v| v.iter().sum());
    ticks as f64 * 10.0
}

/// CPU of all threads of a process in ms, from schedstat (nanoseconds).
fn cpu_ms(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e6
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut idle_secs: u64 = 60;
    super::options(args, |a, v| {
        match a {
            "--idle-secs" => idle_secs = super::number(a, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let ours = super::release_binary("wait-for")?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("busybox is missing")?;
    let work = super::target_dir().join("bench-wait-for");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let dns = Dns::start(&work)?;

    // 1. Start to ready.
    dns.set_present(true)?;
    let runs = 20;
    let mut ours_ready = Vec::new();
    let mut bb_ready = Vec::new();
    for _ in 0..runs {
        ours_ready.push(ms_to_exit(ours_cmd(&ours, dns.port, NAME))?);
        bb_ready.push(ms_to_exit(busybox_cmd(&busybox, dns.port, NAME))?);
    }
    let mut first_connect = Vec::new();
    for _ in 0..runs {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        let t = Instant::now();
        let mut c = wait_tcp(&ours, port)?;
        let _conn = l.accept().map_err(|e| e.to_string())?;
        first_connect.push(t.elapsed().as_secs_f64() * 1e3);
        wait_exit(&mut c, Duration::from_secs(10))?;
    }

    // 2. Time to ready after the dependency appears.
    let appear = Duration::from_millis(1370);
    let mut ours_dns = Vec::new();
    let mut bb_dns = Vec::new();
    let mut ours_tcp = Vec::new();
    for _ in 0..5 {
        for (which, out) in [(0, &mut ours_dns), (1, &mut bb_dns)] {
            dns.set_present(false)?;
            let mut c = if which == 0 {
                ours_cmd(&ours, dns.port, NAME)
            } else {
                busybox_cmd(&busybox, dns.port, NAME)
            }
            .spawn()
            .map_err(|e| e.to_string())?;
            std::thread::sleep(appear);
            dns.set_present(true)?;
            let t = Instant::now();
            let done = wait_exit(&mut c, Duration::from_secs(10))?;
            out.push(done.duration_since(t).as_secs_f64() * 1e3);
        }
        let port = free_port();
        let mut c = wait_tcp(&ours, port)?;
        std::thread::sleep(appear);
        let l = TcpListener::bind(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let done = wait_exit(&mut c, Duration::from_secs(10))?;
        ours_tcp.push(done.duration_since(t).as_secs_f64() * 1e3);
        drop(l);
    }

    // 3. A long wait for a name that never appears.
    eprintln!("waiting {idle_secs} s for a name that never appears (both at once)");
    let never = "never.svc.cluster.local";
    let mut o = ours_cmd(&ours, dns.port, never)
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut b = busybox_cmd(&busybox, dns.port, never)
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut e = ours_cmd(&ours, dns.port, never)
        .args(["--backoff-policy", "exponential"])
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(idle_secs));
    let o_cpu = cpu_ms(o.id());
    let o_rss = proc_status_kib(o.id(), "VmRSS:").unwrap_or(0);
    let o_hwm = proc_status_kib(o.id(), "VmHWM:").unwrap_or(0);
    let e_cpu = cpu_ms(e.id());
    let e_rss = proc_status_kib(e.id(), "VmRSS:").unwrap_or(0);
    let b_cpu = tree_cpu_ms(b.id());
    let b_rss = proc_status_kib(b.id(), "VmRSS:").unwrap_or(0);
    let b_hwm = proc_status_kib(b.id(), "VmHWM:").unwrap_or(0);
    for c in [&mut o, &mut b, &mut e] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let size = std::fs::metadata(&ours).map(|m| m.len()).unwrap_or(0);

    let ten_minutes_ms = o_cpu * 600.0 / idle_secs as f64;
    let (o50, omean, omax) = stats(ours_ready);
    let (b50, bmean, bmax) = stats(bb_ready);
    let (c50, _, cmax) = stats(first_connect);
    let (od50, odmean, odmax) = stats(ours_dns);
    let (bd50, bdmean, bdmax) = stats(bb_dns);
    let (ot50, otmean, otmax) = stats(ours_tcp);
    println!(
        "\nwait-for {} ({:.1} MB release binary, dynamic) vs busybox {} loop",
        crate::images::version(),
        size as f64 / 1e6,
        busybox.display()
    );
    println!("\n1. start to ready, name present ({runs} runs)        p50       mean      max");
    println!(
        "   wait-for dns://                         {o50:8.2} ms {omean:8.2} ms {omax:8.2} ms"
    );
    println!(
        "   busybox until nslookup                  {b50:8.2} ms {bmean:8.2} ms {bmax:8.2} ms"
    );
    println!(
        "   wait-for tcp://, spawn to first connect {c50:8.2} ms {:>11} {cmax:8.2} ms",
        ""
    );
    println!("\n2. from appearing to exit 0 (5 runs, interval 1 s)  p50       mean      max");
    println!(
        "   wait-for dns://                         {od50:8.1} ms {odmean:8.1} ms {odmax:8.1} ms"
    );
    println!(
        "   busybox until nslookup; sleep 1         {bd50:8.1} ms {bdmean:8.1} ms {bdmax:8.1} ms"
    );
    println!(
        "   wait-for tcp://                         {ot50:8.1} ms {otmean:8.1} ms {otmax:8.1} ms"
    );
    println!("\n3. a {idle_secs} s wait for a name that never appears");
    println!(
        "   wait-for       CPU {o_cpu:8.1} ms   RSS {:6.2} MB   peak {:6.2} MB",
        o_rss as f64 / 1024.0,
        o_hwm as f64 / 1024.0
    );
    println!(
        "   busybox loop   CPU {b_cpu:8.1} ms   RSS {:6.2} MB   peak {:6.2} MB (the shell; each nslookup is a new process)",
        b_rss as f64 / 1024.0,
        b_hwm as f64 / 1024.0
    );
    println!(
        "   wait-for --backoff-policy exponential (1 s doubling to 5 s)   CPU {e_cpu:8.1} ms   RSS {:6.2} MB",
        e_rss as f64 / 1024.0
    );
    println!(
        "\nratios: start to ready x{:.2}, CPU per {idle_secs} s x{:.2}; targets: first check < 5 ms: {}; RSS < 5 MB: {}; a 10-minute wait < 0.1 s CPU: {} ({:.0} ms extrapolated)",
        o50 / b50,
        if b_cpu > 0.0 { o_cpu / b_cpu } else { f64::NAN },
        if c50 < 5.0 { "yes" } else { "no" },
        if o_rss < 5 * 1024 { "yes" } else { "no" },
        if ten_minutes_ms < 100.0 { "yes" } else { "no" },
        ten_minutes_ms
    );
    Ok(())
}
