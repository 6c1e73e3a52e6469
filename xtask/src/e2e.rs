//! `cargo xtask e2e [EXAMPLE...]`: plays every example of `k8s-examples/` as a real pod with
//! `podman kube play --network none` (the pod gets only its own loopback), checks what its tutorial
//! promises, and tears it down, also on failure.
//!
//! The podmates images are built first (`cargo xtask images`); third-party images are local
//! stand-ins tagged with their upstream names (see standins.rs). Where an example needs something a
//! cluster would provide (a git server, a Redis StatefulSet), `k8s-examples/e2e-overlays/<example>/`
//! holds a kustomize overlay adding a stand-in container to the pod; `kubectl kustomize` renders it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::podman::{self, podman};
use crate::{images, manifests, sh, standins};

/// A running pod of an example.
pub(crate) struct Pod {
    pub(crate) name: String,
}

impl Pod {
    /// Runs a command in one of the pod's containers and returns its stdout.
    pub(crate) fn exec(&self, container: &str, args: &[&str]) -> Result<String, String> {
        sh::output(
            podman()
                .args(["exec", &format!("{}-{container}", self.name)])
                .args(args),
        )
    }

    /// A container's logs: (stdout, stderr).
    pub(crate) fn logs(&self, container: &str) -> Result<(String, String), String> {
        let out = podman()
            .args(["logs", &format!("{}-{container}", self.name)])
            .output()
            .map_err(|e| e.to_string())?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// An HTTP GET from inside the pod (busybox wget in the named container).
    pub(crate) fn http_get(&self, container: &str, url: &str) -> Result<String, String> {
        // No `-T`: Debian busybox 1.35 wget crashes with it; `timeout` bounds the request instead.
        self.exec(
            container,
            &["timeout", "10", "busybox", "wget", "-q", "-O", "-", url],
        )
    }
}

/// Retries `f` every 250 ms until it returns Ok or `timeout` passes; returns the last error.
pub(crate) fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() > timeout => {
                return Err(format!("{what}: not true after {timeout:?}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

type Check = fn(&Pod) -> Result<(), String>;

/// An example: its folder, the podmates binaries it needs, its pod's name and its checks.
struct Example {
    dir: &'static str,
    needs: &'static [&'static str],
    pod: &'static str,
    /// Checks made while `podman kube play` is still running: for a pod whose init containers
    /// wait for something the check provides (podman starts the pod's containers only once they
    /// have exited, and returns only then).
    during_play: Option<Check>,
    check: Check,
}

const EXAMPLES: &[Example] = &[
    Example {
        dir: "shared-volume",
        needs: &[],
        pod: "shared-volume",
        during_play: None,
        check: check_shared_volume,
    },
    Example {
        dir: "init-container",
        needs: &["git-sync"],
        pod: "init-container-pod-0",
        during_play: None,
        check: check_init_container,
    },
    Example {
        dir: "init-wait-for",
        needs: &["wait-for"],
        pod: "myapp-pod",
        during_play: Some(wait_for_services),
        check: check_init_wait_for,
    },
    Example {
        dir: "sidecar-git-sync",
        needs: &["git-sync"],
        pod: "sidecar-git-sync-pod-0",
        during_play: None,
        check: check_sidecar_git_sync,
    },
    Example {
        dir: "sidecar-log-tail",
        needs: &["log-tail"],
        pod: "sidecar-log-tail-pod-0",
        during_play: None,
        check: check_sidecar_log_tail,
    },
    Example {
        dir: "adapter-nginx-exporter",
        needs: &["nginx-exporter"],
        pod: "adapter-nginx-exporter-pod-0",
        during_play: None,
        check: check_adapter_nginx_exporter,
    },
    Example {
        dir: "adapter-log-normalize",
        needs: &["log-normalize"],
        pod: "adapter-log-normalize-pod-0",
        during_play: None,
        check: check_adapter_log_normalize,
    },
    Example {
        dir: "ambassador-redis",
        needs: &["redis-ambassador"],
        pod: "ambassador-redis-pod-0",
        during_play: None,
        check: check_ambassador_redis,
    },
    Example {
        dir: "httpd-log-tail",
        needs: &["log-tail"],
        pod: "httpd-log-tail-pod-0",
        during_play: None,
        check: check_httpd_log_tail,
    },
    Example {
        dir: "shared-network",
        needs: &[],
        pod: "shared-network",
        during_play: None,
        check: check_shared_network,
    },
    Example {
        dir: "demo",
        needs: &[
            "git-sync",
            "log-tail",
            "log-normalize",
            "nginx-exporter",
            "redis-ambassador",
        ],
        pod: "podmates-demo-web",
        during_play: None,
        check: check_demo,
    },
];

/// The flagship demo: every binary at work in two pods.
pub(crate) fn check_demo(web: &Pod) -> Result<(), String> {
    let cache = Pod {
        name: "podmates-demo-cache".to_owned(),
    };
    eventually(
        "git-sync published the site",
        Duration::from_secs(60),
        || page_contains(web, "visitor", "podmates demo, version 1"),
    )?;
    eventually(
        "log-tail streams nginx's logs",
        Duration::from_secs(30),
        || {
            let (out, _) = web.logs("log-tail")?;
            if out.contains("/var/log/nginx/access.log: 127.0.0.1 - - [") {
                Ok(())
            } else {
                Err(format!("log-tail output: {out}"))
            }
        },
    )?;
    eventually(
        "log-normalize emits ECS with 404s",
        Duration::from_secs(30),
        || {
            let (out, _) = web.logs("log-normalize")?;
            if out.contains("\"status_code\":404") && out.contains("\"status_code\":200") {
                Ok(())
            } else {
                Err(format!("log-normalize output: {out}"))
            }
        },
    )?;
    eventually("nginx-exporter reports", Duration::from_secs(30), || {
        let m = web.http_get("visitor", "http://127.0.0.1:9113/metrics")?;
        let up = sample(&m, "nginx_up") == Some(1.0);
        let classes = m.contains("nginx_http_responses_total{") && m.contains("4xx");
        if up && classes {
            Ok(())
        } else {
            Err(format!("metrics: {m}"))
        }
    })?;
    eventually(
        "the cache app reads its keys back",
        Duration::from_secs(30),
        || {
            let (out, _) = cache.logs("app")?;
            let ok = out
                .lines()
                .filter(|l| {
                    l.split_once(" -> ").is_some_and(|(k, v)| {
                        k.strip_prefix("GET user:") == v.strip_prefix("visit ")
                    })
                })
                .count();
            if ok >= 3 {
                Ok(())
            } else {
                Err(format!("app output: {out}"))
            }
        },
    )?;
    // Start-up order: the app's first command and nginx's first answer succeed (the app starts
    // after the ambassador and the shards, nginx after git-sync's first sync).
    let (out, err) = cache.logs("app")?;
    if out.lines().next() != Some("GET user:1 -> visit 1") || err.contains("Could not connect") {
        return Err(format!("the cache app's first command failed:\n{out}{err}"));
    }
    let (tail, _) = web.logs("log-tail")?;
    let first = tail
        .lines()
        .find_map(|l| l.strip_prefix("/var/log/nginx/access.log: "))
        .unwrap_or_default();
    if !first.contains("\" 200 ") {
        return Err(format!("nginx's first answer was not a 200: {first}"));
    }
    // Placement is deterministic (md5/ketama); as the app keeps writing, both shards get keys.
    eventually("both shards hold keys", Duration::from_secs(40), || {
        for port in ["6379", "6380"] {
            let n = cache.exec("app", &["redis-cli", "-p", port, "DBSIZE"])?;
            if n.trim() == "0" {
                return Err(format!("shard on {port} holds no key yet"));
            }
        }
        Ok(())
    })?;
    Ok(())
}

fn check_adapter_log_normalize(pod: &Pod) -> Result<(), String> {
    let out = eventually("ECS JSON comes out", Duration::from_secs(40), || {
        let (out, _) = pod.logs("log-normalize")?;
        if out.lines().count() >= 3 {
            Ok(out)
        } else {
            Err(format!("{} lines so far: {out}", out.lines().count()))
        }
    })?;
    for line in out.lines() {
        let want = [
            "{",
            "\"@timestamp\":\"",
            "\"original\":\"10.1.2.3 - alice [",
            "\"method\":\"GET\"",
            "\"status_code\":200",
            "\"path\":\"/search\"",
            "\"ip\":\"10.1.2.3\"",
            "\"demo-web\"",
        ];
        if let Some(missing) = want.iter().find(|w| !line.contains(*w)) {
            return Err(format!("ECS record lacks `{missing}`: {line}"));
        }
        if !line.ends_with('}') {
            return Err(format!("not one JSON object per line: {line}"));
        }
    }
    let metrics = pod.http_get("app", "http://127.0.0.1:9102/metrics")?;
    if !metrics.contains("log_normalize_") {
        return Err(format!("log-normalize metrics missing: {metrics}"));
    }
    Ok(())
}

fn check_ambassador_redis(pod: &Pod) -> Result<(), String> {
    let cli = |port: &str, args: &[&str]| {
        let mut a = vec!["redis-cli", "-h", "127.0.0.1", "-p", port];
        a.extend_from_slice(args);
        pod.exec("app", &a).map(|s| s.trim().to_owned())
    };
    // The app prints "visit N" when its GET of user:N through the ambassador returned what it SET.
    let written: Vec<u32> = eventually(
        "the app's keys go through the ambassador",
        Duration::from_secs(40),
        || {
            let (out, _) = pod.logs("app")?;
            let ok: Vec<u32> = out
                .lines()
                .filter_map(|l| l.strip_prefix("visit ")?.trim().parse().ok())
                .collect();
            // Enough keys that both shards must have some (placement is deterministic: md5/ketama).
            if ok.len() >= 10 {
                Ok(ok)
            } else {
                Err(format!("app output so far: {out}"))
            }
        },
    )?;
    // The ambassador is a native sidecar: the app starts once its startup probe passes (played
    // under podman by the gate of manifests.py's podman form), so its very first command works.
    let (out, err) = pod.logs("app")?;
    if out.lines().next() != Some("visit 1") || err.contains("Could not connect") {
        return Err(format!(
            "the app ran before the ambassador was ready:\n{out}{err}"
        ));
    }
    // Keys written through localhost:22121 landed on both shards, and read back through it.
    let shard0: u64 = cli("6379", &["DBSIZE"])?
        .parse()
        .map_err(|e| format!("DBSIZE: {e}"))?;
    let shard1: u64 = cli("6380", &["DBSIZE"])?
        .parse()
        .map_err(|e| format!("DBSIZE: {e}"))?;
    if shard0 == 0 || shard1 == 0 {
        return Err(format!(
            "keys not sharded: redis-0 has {shard0}, redis-1 has {shard1}"
        ));
    }
    for i in written.iter().take(5) {
        let v = cli("22121", &["GET", &format!("user:{i}")])?;
        if v != format!("visit {i}") {
            return Err(format!(
                "GET user:{i} through the ambassador returned `{v}`"
            ));
        }
    }
    let direct: Vec<String> = written
        .iter()
        .take(10)
        .map(|i| {
            let k = format!("user:{i}");
            let a = cli("6379", &["EXISTS", &k]).unwrap_or_default();
            let b = cli("6380", &["EXISTS", &k]).unwrap_or_default();
            format!("{a}{b}")
        })
        .collect();
    if direct.iter().any(|d| d != "10" && d != "01") {
        return Err(format!(
            "each key must live on exactly one shard: {direct:?}"
        ));
    }
    Ok(())
}

/// The value of an unlabelled sample in Prometheus text.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn check_adapter_nginx_exporter(pod: &Pod) -> Result<(), String> {
    let scrape = || pod.http_get("web", "http://127.0.0.1:9113/metrics");
    let first = eventually("nginx_up is 1", Duration::from_secs(30), || {
        let m = scrape()?;
        match sample(&m, "nginx_up") {
            Some(1.0) => Ok(m),
            _ => Err(format!("metrics: {m}")),
        }
    })?;
    let before = sample(&first, "nginx_http_requests_total")
        .ok_or_else(|| format!("no nginx_http_requests_total: {first}"))?;
    for _ in 0..5 {
        pod.http_get("web", "http://127.0.0.1:8080/")?;
    }
    let after = sample(&scrape()?, "nginx_http_requests_total").unwrap_or(0.0);
    if after < before + 5.0 {
        return Err(format!(
            "nginx_http_requests_total went from {before} to {after} after 5 requests"
        ));
    }
    Ok(())
}

fn check_httpd_log_tail(pod: &Pod) -> Result<(), String> {
    eventually("httpd serves the page", Duration::from_secs(40), || {
        page_contains(pod, "httpd", "hello from httpd")
    })?;
    // A miss: a 404 line in access.log and, at LogLevel info, an AH00128 line in error.log.
    if pod
        .http_get("httpd", "http://127.0.0.1:8080/missing-page")
        .is_ok()
    {
        return Err("GET /missing-page succeeded".to_owned());
    }
    let access = "/var/log/httpd/access.log: ";
    let error = "/var/log/httpd/error.log: ";
    eventually(
        "one log-tail streams both of httpd's files",
        Duration::from_secs(30),
        || {
            let (out, _) = pod.logs("log-tail")?;
            let has = |file: &str, want: &str| {
                out.lines()
                    .any(|l| l.strip_prefix(file).is_some_and(|l| l.contains(want)))
            };
            let ok = has(access, "\"GET / HTTP/1.1\" 200 ")
                && has(access, "\"GET /missing-page HTTP/1.1\" 404 ")
                && has(error, "resuming normal operations")
                && has(
                    error,
                    "AH00128: File does not exist: /usr/local/apache2/htdocs/missing-page",
                );
            if ok {
                Ok(())
            } else {
                Err(format!("log-tail output so far: {out}"))
            }
        },
    )?;
    let (_, err) = pod.logs("log-tail")?;
    if err.contains(access) || err.contains(error) {
        return Err("data lines on stderr".to_owned());
    }
    Ok(())
}

fn check_sidecar_log_tail(pod: &Pod) -> Result<(), String> {
    // Both files reach log-tail's stdout, prefixed with their path, in the order written.
    let out = eventually(
        "the app's lines stream out",
        Duration::from_secs(40),
        || {
            let (out, _) = pod.logs("log-tail")?;
            let access = out
                .lines()
                .filter(|l| l.starts_with("/var/log/app/access.log: "))
                .count();
            let errors = out
                .lines()
                .filter(|l| l.starts_with("/var/log/app/error.log: ") && l.contains("failed"))
                .count();
            if access >= 6 && errors >= 1 {
                Ok(out)
            } else {
                Err(format!(
                    "{access} access and {errors} error lines so far: {out}"
                ))
            }
        },
    )?;
    let items: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("/var/log/app/access.log: "))
        .filter_map(|l| {
            l.split("GET /item/")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let expected: Vec<u64> = (1..=items.len() as u64).collect();
    if items != expected {
        return Err(format!(
            "access lines lost, duplicated or reordered: {items:?}"
        ));
    }
    let (_, err) = pod.logs("log-tail")?;
    if err.contains("/var/log/app/access.log: ") {
        return Err("data lines on stderr".to_owned());
    }
    let metrics = pod.http_get("app", "http://127.0.0.1:9101/metrics")?;
    if !metrics.contains("log_tail_") {
        return Err(format!("log-tail metrics missing: {metrics}"));
    }
    Ok(())
}

/// The page nginx serves, fetched from inside the pod.
fn page_contains(pod: &Pod, via: &str, want: &str) -> Result<String, String> {
    let page = pod.http_get(via, "http://127.0.0.1:8080/")?;
    if page.contains(want) {
        Ok(page)
    } else {
        Err(format!("page lacks `{want}`: {page}"))
    }
}

fn check_init_container(pod: &Pod) -> Result<(), String> {
    // nginx only starts after git-sync --one-time exited 0, so the content is there at once.
    eventually("the synced page is served", Duration::from_secs(60), || {
        page_contains(pod, "web", "podmates e2e site, version 1")
    })?;
    // git-sync --one-time exited 0: `podman kube play` fails when an init container exits
    // non-zero (and then removes it), so reaching this point with the page served proves it.
    // The on-disk contract: a relative symlink named after the commit.
    let link = pod.exec("web", &["readlink", "/git/site"])?;
    if !link.trim().starts_with(".worktrees/") || link.trim().len() != ".worktrees/".len() + 40 {
        return Err(format!(
            "/git/site -> `{}`, want .worktrees/<sha>",
            link.trim()
        ));
    }
    Ok(())
}

/// A container's state as podman tells it: `created`, `running` or `exited 0` (status and, once
/// exited, the exit code); `gone` when podman has no such container.
fn state(pod: &Pod, container: &str) -> String {
    let name = format!("{}-{container}", pod.name);
    match sh::output(podman().args([
        "container",
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ])) {
        Ok(out) => {
            let out = out.trim();
            match out.split_once(' ') {
                Some(("exited", code)) => format!("exited {code}"),
                Some((status, _)) => status.to_owned(),
                None => out.to_owned(),
            }
        }
        Err(_) => "gone".to_owned(),
    }
}

/// The cluster DNS stand-in: Debian's dnsmasq on the host, run in the pod's network namespace
/// (outside the pod, as the cluster's DNS is; podman lets no container outside a pod join its
/// namespace), answering on the pod's 127.0.0.1:53 for the names in a hosts directory it reads
/// again whenever a file there changes, and NXDOMAIN for anything else under cluster.local, as
/// CoreDNS answers for a Service that does not exist. Killed on drop.
struct PodDns {
    child: std::process::Child,
    hosts: PathBuf,
}

impl PodDns {
    fn start(pod: &Pod) -> Result<Self, String> {
        let infra = eventually(
            "the pod's infra container runs",
            Duration::from_secs(60),
            || {
                // Not `podman pod inspect`: it waits for the pod's lock, which `kube play` holds
                // until the init containers have exited.
                let out = sh::output(podman().args([
                    "ps",
                    "--filter",
                    &format!("pod={}", pod.name),
                    "--format",
                    "{{.ID}} {{.IsInfra}}",
                ]))?;
                out.lines()
                    .find_map(|l| l.strip_suffix(" true"))
                    .map(str::to_owned)
                    .ok_or_else(|| format!("no infra container running yet: {out}"))
            },
        )?;
        let pid = sh::output(podman().args(["inspect", "--format", "{{.State.Pid}}", &infra]))?;
        let pid = pid.trim();
        let hosts = sh::root().join("target/e2e/dns-hosts.d");
        let _ = std::fs::remove_dir_all(&hosts);
        std::fs::create_dir_all(&hosts).map_err(|e| format!("{}: {e}", hosts.display()))?;
        let child = Command::new("nsenter")
            .args(["--target", pid, "--net", "/usr/sbin/dnsmasq"])
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--user=root",
                "--no-resolv",
                "--no-hosts",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--local=/cluster.local/",
                "--log-queries",
            ])
            .arg(format!(
                "--log-facility={}",
                hosts.with_extension("log").display()
            ))
            .arg(format!(
                "--pid-file={}",
                hosts.with_extension("pid").display()
            ))
            .arg(format!("--hostsdir={}", hosts.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("nsenter dnsmasq: {e}"))?;
        Ok(Self { child, hosts })
    }

    /// Whether the DNS server has answered `name` with `ip` (its query log: `<hosts file> NAME is
    /// IP` for an answer from the hosts directory).
    fn answered(&self, name: &str, ip: &str) -> bool {
        std::fs::read_to_string(self.hosts.with_extension("log"))
            .is_ok_and(|log| log.contains(&format!(" {name} is {ip}")))
    }

    /// Makes `name` resolve, as creating a Service does.
    fn add(&self, name: &str, ip: &str) -> Result<(), String> {
        let tmp = self.hosts.with_extension("tmp");
        std::fs::write(&tmp, format!("{ip} {name}\n")).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, self.hosts.join(name)).map_err(|e| e.to_string())
    }
}

impl Drop for PodDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A container's stderr, followed into a file from when it runs: podman removes an init
/// container of a pod that restarts on failure once it has exited 0, its logs with it.
struct Followed {
    child: std::process::Child,
    path: PathBuf,
}

impl Followed {
    fn start(pod: &Pod, container: &str) -> Result<Self, String> {
        let path = sh::root().join(format!("target/e2e/{}-{container}.stderr", pod.name));
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let child = podman()
            .args(["logs", "-f", &format!("{}-{container}", pod.name)])
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("podman logs -f: {e}"))?;
        Ok(Self { child, path })
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// Everything, once the container has exited (`podman logs -f` ends then).
    fn finish(mut self) -> Result<String, String> {
        let start = Instant::now();
        while self.child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("podman logs -f still running 10 s after the container ended".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(self.text())
    }
}

impl Drop for Followed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until init container `container` runs and has failed to resolve `fqdn` at least twice;
/// returns its followed stderr.
fn waits_for(pod: &Pod, container: &str, fqdn: &str) -> Result<Followed, String> {
    eventually(
        &format!("{container} runs"),
        Duration::from_secs(60),
        || match state(pod, container).as_str() {
            "running" => Ok(()),
            other => Err(other.to_owned()),
        },
    )?;
    let log = Followed::start(pod, container)?;
    eventually(
        &format!("{container} tries {fqdn}"),
        Duration::from_secs(30),
        || {
            let err = log.text();
            let tries = err
                .lines()
                .filter(|l| l.contains("not ready") && l.contains(fqdn))
                .count();
            if tries >= 2 {
                Ok(())
            } else {
                Err(format!("stderr so far: {err}"))
            }
        },
    )?;
    Ok(log)
}

/// Waits until init container `container` has exited 0 (podman removes it then), the DNS server
/// having answered `fqdn` (the name as the search list made it) with `ip`. Its "ready" line, if
/// the followed log caught it before podman removed the container, names that answer.
fn answered(
    pod: &Pod,
    dns: &PodDns,
    container: &str,
    log: Followed,
    fqdn: &str,
    ip: &str,
) -> Result<(), String> {
    eventually(
        &format!("{container} exits 0"),
        Duration::from_secs(30),
        || match state(pod, container).as_str() {
            "exited 0" | "gone" => Ok(()),
            other => Err(other.to_owned()),
        },
    )?;
    if !dns.answered(fqdn, ip) {
        return Err(format!(
            "{container} exited, but the DNS never answered {fqdn} with {ip}"
        ));
    }
    let err = log.finish()?;
    match err.lines().find(|l| l.contains(": ready ")) {
        Some(line) if !line.contains(&format!("{fqdn}: {ip}")) => Err(format!(
            "{container}: its ready line names another answer than {fqdn}: {ip}: {line}"
        )),
        Some(line) => {
            eprintln!("{container}: {}", line.trim());
            Ok(())
        }
        None => {
            eprintln!("{container}: exited 0 after the DNS answered {fqdn} with {ip}");
            Ok(())
        }
    }
}

/// The tutorial's order, step by step: while neither service exists, only init-myservice runs
/// (saying on stderr what it asked); once myservice exists it exits 0 and init-mydb waits; once
/// mydb exists too, the app starts. Names are looked up through the search list of a
/// cluster-shaped resolv.conf (`myservice` answered as myservice.default.svc.cluster.local).
fn wait_for_services(pod: &Pod) -> Result<(), String> {
    let dns = PodDns::start(pod)?;
    let not_started = |what: &str, containers: &[&str]| -> Result<(), String> {
        for c in containers {
            let st = state(pod, c);
            if st != "created" {
                return Err(format!("{c} is {st} while {what}"));
            }
        }
        Ok(())
    };
    let log = waits_for(pod, "init-myservice", "myservice.default.svc.cluster.local")?;
    not_started(
        "myservice does not exist",
        &["init-mydb", "myapp-container"],
    )?;
    eprintln!("init-myservice waiting; init-mydb and the app not started");
    dns.add("myservice.default.svc.cluster.local", "10.96.0.11")?;
    answered(
        pod,
        &dns,
        "init-myservice",
        log,
        "myservice.default.svc.cluster.local",
        "10.96.0.11",
    )?;
    let log = waits_for(pod, "init-mydb", "mydb.default.svc.cluster.local")?;
    not_started("mydb does not exist", &["myapp-container"])?;
    eprintln!("init-myservice done; init-mydb waiting; the app not started");
    dns.add("mydb.default.svc.cluster.local", "10.96.0.12")?;
    answered(
        pod,
        &dns,
        "init-mydb",
        log,
        "mydb.default.svc.cluster.local",
        "10.96.0.12",
    )
}

fn check_init_wait_for(pod: &Pod) -> Result<(), String> {
    eventually("the app runs", Duration::from_secs(30), || {
        let (out, _) = pod.logs("myapp-container")?;
        if out.contains("The app is running!") {
            Ok(())
        } else {
            Err(format!("app output so far: {out}"))
        }
    })
}

fn check_sidecar_git_sync(pod: &Pod) -> Result<(), String> {
    eventually("the synced page is served", Duration::from_secs(60), || {
        page_contains(pod, "web", "podmates e2e site, version 1")
    })?;
    eventually("git-sync is ready", Duration::from_secs(30), || {
        pod.http_get("web", "http://127.0.0.1:9103/readyz")
    })?;
    // A new commit on the branch reaches the page without a restart.
    pod.exec(
        "git-host",
        &[
            "sh",
            "-ec",
            "cd /srv/git/work && echo '<h1>podmates e2e site, version 2</h1>' > index.html && \
             git -c user.name=e2e -c user.email=e2e@example.invalid commit -qam v2 && \
             git push -q origin HEAD:main",
        ],
    )?;
    eventually("the new commit is served", Duration::from_secs(30), || {
        page_contains(pod, "web", "podmates e2e site, version 2")
    })?;
    // git-sync is a native sidecar: nginx starts once the first sync made /readyz pass, so no
    // request ever met an empty directory.
    let (access, _) = pod.logs("web")?;
    if access.contains("\" 404 ") || !access.contains("\"GET / HTTP/1.1\" 200") {
        return Err(format!("nginx answered before the first sync: {access}"));
    }
    let metrics = pod.http_get("web", "http://127.0.0.1:9103/metrics")?;
    if !metrics.contains("git_sync_count_total") {
        return Err(format!(
            "git-sync metrics lack git_sync_count_total: {metrics}"
        ));
    }
    Ok(())
}

fn check_shared_network(pod: &Pod) -> Result<(), String> {
    // The infra container holds the pod's network namespace; every container joins it.
    let infra = sh::output(podman().args([
        "pod",
        "inspect",
        "--format",
        "{{.InfraContainerID}}",
        &pod.name,
    ]))?;
    let infra = infra.trim();
    if infra.is_empty() {
        return Err("the pod has no infra container".to_owned());
    }
    for c in ["web", "second-web", "visitor"] {
        let mode = sh::output(podman().args([
            "inspect",
            "--format",
            "{{.HostConfig.NetworkMode}}",
            &format!("{}-{c}", pod.name),
        ]))?;
        if mode.trim() != format!("container:{infra}") {
            return Err(format!(
                "{c} is not in the infra container's network: {mode}"
            ));
        }
    }
    eventually(
        "the visitor reaches web on 127.0.0.1",
        Duration::from_secs(30),
        || {
            let (out, _) = pod.logs("visitor")?;
            if out.contains("from visitor: served by the web container") {
                Ok(())
            } else {
                Err(format!("visitor output: {out}"))
            }
        },
    )?;
    // The second server on the pod's port fails as on one machine, with the README's message.
    eventually(
        "second-web cannot bind 8080",
        Duration::from_secs(30),
        || {
            let name = format!("{}-second-web", pod.name);
            let state = sh::output(podman().args([
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                &name,
            ]))?;
            let (out, err) = pod.logs("second-web")?;
            if state.trim() == "exited 1"
                && format!("{out}{err}").contains("httpd: bind: Address already in use")
            {
                Ok(())
            } else {
                Err(format!("second-web is `{}`: {out}{err}", state.trim()))
            }
        },
    )
}

fn check_shared_volume(pod: &Pod) -> Result<(), String> {
    // The content container writes the page; the web container serves it over the pod's loopback.
    let first = eventually("the page is served", Duration::from_secs(20), || {
        let page = pod.http_get("content", "http://127.0.0.1:8080/")?;
        if page.contains("written by the content container at") {
            Ok(page)
        } else {
            Err(format!("unexpected page: {page}"))
        }
    })?;
    eventually("the page changes", Duration::from_secs(20), || {
        let page = pod.http_get("content", "http://127.0.0.1:8080/")?;
        if page != first {
            Ok(())
        } else {
            Err("same page".to_owned())
        }
    })?;
    let (out, _) = pod.logs("web")?;
    if !out.contains("\"GET / HTTP/1.1\" 200") {
        return Err(format!("web access log lacks the requests: {out}"));
    }
    Ok(())
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    podman::ensure()?;
    let have = images::existing();
    let selected: Vec<&Example> = if args.is_empty() {
        EXAMPLES.iter().collect()
    } else {
        args.iter()
            .map(|a| {
                EXAMPLES
                    .iter()
                    .find(|e| e.dir == a.as_str())
                    .ok_or_else(|| format!("no example `{a}`"))
            })
            .collect::<Result<_, _>>()?
    };
    let mut needed: Vec<&str> = selected
        .iter()
        .flat_map(|e| e.needs.iter().copied())
        .collect();
    needed.sort_unstable();
    needed.dedup();
    if let Some(missing) = needed.iter().find(|n| !have.contains(n)) {
        return Err(format!(
            "example needs binary `{missing}`, which does not exist"
        ));
    }
    if !needed.is_empty() {
        images::build(&needed)?;
    }
    standins::ensure()?;
    let mut failed = Vec::new();
    for ex in selected {
        eprintln!("\n---- e2e: {} ----", ex.dir);
        let start = Instant::now();
        match play_and_check(ex) {
            Ok(()) => eprintln!(
                "---- e2e: {} ok ({:.1}s)",
                ex.dir,
                start.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("---- e2e: {} FAILED: {e}", ex.dir);
                failed.push(ex.dir);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("examples failed: {}", failed.join(", ")))
    }
}

fn play_and_check(ex: &Example) -> Result<(), String> {
    let pod = Pod {
        name: ex.pod.to_owned(),
    };
    let (rendered, volumes, play) = start_play(ex.dir)?;
    let played = match ex.during_play {
        Some(during) => during(&pod).and_then(|()| finish_play(play)),
        None => finish_play(play),
    };
    let res = played
        .and_then(|()| (ex.check)(&pod))
        .and_then(|()| check_probes(&rendered.with_extension("k8s.yaml")));
    if res.is_err() {
        dump_logs(&pod);
    }
    down(&rendered, &volumes);
    res
}

/// How long `podman kube play` may take once nothing holds its init containers up.
const PLAY_TIMEOUT: Duration = Duration::from_secs(120);

/// A `podman kube play` running.
struct Play(std::process::Child);

impl Drop for Play {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) for `podman kube play` to exit; its output on failure.
fn finish_play(mut play: Play) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match play.0.try_wait().map_err(|e| e.to_string())? {
            Some(status) => {
                let mut err = String::new();
                if let Some(mut e) = play.0.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("podman kube play: {status}: {}", err.trim()))
                };
            }
            None if start.elapsed() > PLAY_TIMEOUT => {
                return Err(format!(
                    "podman kube play still running after {PLAY_TIMEOUT:?}"
                ));
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Renders and plays an example; returns the rendered file and the volumes to remove with it.
pub(crate) fn up(dir: &str) -> Result<(PathBuf, Vec<String>), String> {
    let (rendered, volumes, play) = start_play(dir)?;
    if let Err(e) = finish_play(play) {
        down(&rendered, &volumes);
        return Err(e);
    }
    Ok((rendered, volumes))
}

/// Renders an example and starts playing it: the rendered file, the volumes to remove with it
/// and the running `podman kube play`.
fn start_play(dir: &str) -> Result<(PathBuf, Vec<String>, Play), String> {
    let rendered = render(dir)?;
    let yaml = std::fs::read_to_string(&rendered).map_err(|e| e.to_string())?;
    let empty_dirs = empty_dir_names(&yaml);
    // podman keeps a ConfigMap's data in a volume named after the ConfigMap; a stale one would
    // shadow the manifest's data on the next run.
    let mut volumes = empty_dirs.clone();
    volumes.extend(config_map_names(&yaml));
    // A previous run that was killed may have left the pod behind.
    down(&rendered, &volumes);
    prepare_volumes(&empty_dirs)?;
    // stdout is a few lines of IDs; stderr is read once it has exited (see finish_play).
    let play = podman()
        .args(["kube", "play", "--network", "none"])
        .arg(&rendered)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("podman kube play: {e}"));
    match play {
        Ok(child) => Ok((rendered, volumes, Play(child))),
        Err(e) => {
            down(&rendered, &volumes);
            Err(e)
        }
    }
}

/// Stops and removes what [`up`] started: the pods, then their emptyDir and ConfigMap volumes
/// (a volume still mounted by a pod cannot be removed).
pub(crate) fn down(rendered: &Path, volumes: &[String]) {
    let quiet = |args: &[&str]| {
        let _ = podman()
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    let rendered_arg = rendered.to_string_lossy();
    quiet(&["kube", "play", "--down", &rendered_arg]);
    if let Ok(yaml) = std::fs::read_to_string(rendered) {
        for pod in pod_names(&yaml) {
            quiet(&["pod", "rm", "-f", "-t", "0", &pod]);
        }
    }
    for v in volumes {
        quiet(&["volume", "rm", "-f", v]);
    }
}

/// Names of the ConfigMaps defined in rendered YAML.
fn config_map_names(yaml: &str) -> Vec<String> {
    names_of_kind(yaml, "ConfigMap")
}

/// The pods the YAML creates (`podman kube play --down` leaves a pod behind when its play failed
/// half-way, so [`down`] also removes them by name). podman names a Deployment's pod `<name>-pod-0`.
fn pod_names(yaml: &str) -> Vec<String> {
    names_of_kind(yaml, "Pod")
        .into_iter()
        .chain(
            names_of_kind(yaml, "Deployment")
                .into_iter()
                .map(|d| format!("{d}-pod-0")),
        )
        .collect()
}

/// Every probe of an example's manifests (as a cluster gets them), checked from inside its pod
/// until it passes. podman 4.3 turns an `httpGet` probe into a `curl` command that the distroless
/// images cannot run (and a named port into port 0), so podman's health status proves nothing:
/// here each endpoint is fetched with busybox wget from a container of the pod that has it, and
/// each `exec` probe run in its container, so a probe on a wrong port or path fails the example.
fn check_probes(k8s: &Path) -> Result<(), String> {
    let list = sh::output(&mut manifests::script(&["probes", &k8s.to_string_lossy()])?)?;
    for line in list.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [kind, name, container, probe, how, rest @ ..] = f.as_slice() else {
            return Err(format!("unexpected probe line `{line}`"));
        };
        // podman names a Deployment's pod `<name>-pod-0`.
        let pod = Pod {
            name: if *kind == "Pod" {
                (*name).to_owned()
            } else {
                format!("{name}-pod-0")
            },
        };
        let what = format!("{name}/{container} {probe}");
        let timeout = Duration::from_secs(60);
        let shown = match (*how, rest) {
            ("http", [client, port, path]) => {
                if *port == "None" {
                    return Err(format!(
                        "{what}: names a port the container does not declare"
                    ));
                }
                if *client == "-" {
                    return Err(format!(
                        "{what}: no container of the pod has busybox to probe from"
                    ));
                }
                let url = format!("http://127.0.0.1:{port}{path}");
                eventually(&what, timeout, || {
                    pod.exec(
                        client,
                        &[
                            "timeout",
                            "10",
                            "busybox",
                            "wget",
                            "-q",
                            "-O",
                            "/dev/null",
                            &url,
                        ],
                    )
                })?;
                format!("GET {url} from {client}")
            }
            ("exec", [c, command]) => {
                let argv: Vec<&str> = command.split('\x1f').collect();
                eventually(&what, timeout, || pod.exec(c, &argv))?;
                format!("exec {}", argv.join(" "))
            }
            _ => {
                return Err(format!(
                    "{what}: probe type `{how}` is not checked by the e2e"
                ));
            }
        };
        eprintln!("probe ok: {what}: {shown}");
    }
    Ok(())
}

/// Renders an example to one YAML file: its overlay in `k8s-examples/e2e-overlays/` if it has one,
/// else its kustomization, else its manifests concatenated. `<dir>.k8s.yaml` keeps it as a
/// cluster would get it; `<dir>.yaml` is the form podman 4.3 plays (see `podman-form` in
/// manifests.py: no container ports, native sidecars as ordinary containers).
fn render(dir: &str) -> Result<PathBuf, String> {
    let src = sh::root().join("k8s-examples").join(dir);
    let out_dir = sh::root().join("target/e2e");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let out = out_dir.join(format!("{dir}.yaml"));
    let overlay = sh::root().join("k8s-examples/e2e-overlays").join(dir);
    let yaml = if overlay.join("kustomization.yaml").exists() {
        kustomize(&overlay)?
    } else if src.join("kustomization.yaml").exists() {
        kustomize(&src)?
    } else {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
            .map_err(|e| format!("{}: {e}", src.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        let mut all = String::new();
        for f in files {
            all.push_str("---\n");
            all.push_str(&std::fs::read_to_string(&f).map_err(|e| e.to_string())?);
        }
        all
    };
    let k8s = out.with_extension("k8s.yaml");
    std::fs::write(&k8s, yaml).map_err(|e| e.to_string())?;
    let moved = sh::output(&mut manifests::script(&[
        "podman-form",
        &k8s.to_string_lossy(),
        &out.to_string_lossy(),
    ])?)?;
    if !moved.trim().is_empty() {
        eprintln!(
            "native sidecars played as ordinary containers: {}",
            moved.trim()
        );
    }
    Ok(out)
}

pub(crate) fn kustomize(dir: &Path) -> Result<String, String> {
    if !sh::have("kubectl") {
        // Build machines of this project carry kubectl; elsewhere Debian's client is the fallback.
        crate::system::ensure_packages(&[crate::system::Package {
            name: "kubernetes-client",
            provides: "/usr/bin/kubectl",
        }])
        .map_err(|e| format!("`kubectl kustomize` is needed for the e2e overlays: {e}"))?;
    }
    sh::output(Command::new("kubectl").arg("kustomize").arg(dir))
}

/// Names of the objects of `kind` defined in rendered YAML.
fn names_of_kind(yaml: &str, kind: &str) -> Vec<String> {
    let kind_line = format!("kind: {kind}");
    yaml.split("\n---")
        .filter(|doc| doc.lines().any(|l| l.trim_end() == kind_line))
        .filter_map(|doc| {
            let meta = doc.split("\nmetadata:\n").nth(1)?;
            meta.lines()
                .take_while(|l| l.starts_with(' '))
                .find_map(|l| l.strip_prefix("  name: "))
                .map(|n| n.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// Names of the emptyDir volumes in rendered YAML (kustomize sorts keys, so the `name:` may come
/// before or after the volume type).
fn empty_dir_names(yaml: &str) -> Vec<String> {
    // Column of a line's key, past its indentation and any "- " list marker.
    let key_col = |l: &str| l.len() - l.trim_start_matches([' ', '-']).len();
    let starts_item = |l: &str| l.trim_start().starts_with("- ");
    let key = |l: &str| l.trim_start_matches([' ', '-']).trim_end().to_owned();
    let lines: Vec<&str> = yaml.lines().collect();
    let mut names = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !key(line).starts_with("emptyDir:") {
            continue;
        }
        let col = key_col(line);
        // The list item holding this key: back to its "- " line, forward to the next item.
        let start = (0..=i)
            .rev()
            .find(|&j| key_col(lines[j]) == col && starts_item(lines[j]))
            .unwrap_or(i);
        let end = (i + 1..lines.len())
            .find(|&j| {
                key_col(lines[j]) < col || (key_col(lines[j]) == col && starts_item(lines[j]))
            })
            .unwrap_or(lines.len());
        let name = lines[start..end]
            .iter()
            .filter(|l| key_col(l) == col)
            .find_map(|l| {
                key(l)
                    .strip_prefix("name:")
                    .map(|n| n.trim().trim_matches('"').to_owned())
            });
        if let Some(n) = name {
            names.push(n);
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Kubernetes creates each emptyDir empty and world-writable; podman 4 maps emptyDir to a named
/// volume and, on first mount, copies the image's directory into it and takes its owner and mode
/// (root, 0755). A volume created with explicit ownership options is left alone, so creating it
/// first with the Kubernetes mode gives the non-root containers the same semantics as on a node.
fn prepare_volumes(names: &[String]) -> Result<(), String> {
    for n in names {
        sh::output(podman().args(["volume", "create", "--opt", "o=uid=0,gid=0", n]))?;
        let mount =
            sh::output(podman().args(["volume", "inspect", "--format", "{{.Mountpoint}}", n]))?;
        let mount = mount.trim();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(mount, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| format!("chmod {mount}: {e}"))?;
    }
    Ok(())
}

fn dump_logs(pod: &Pod) {
    let Ok(list) = sh::output(podman().args([
        "ps",
        "-a",
        "--filter",
        &format!("pod={}", pod.name),
        "--format",
        "{{.Names}} {{.Status}}",
    ])) else {
        return;
    };
    eprintln!("containers of pod {}:\n{list}", pod.name);
    for line in list.lines() {
        let name = line.split(' ').next().unwrap_or_default();
        if name.ends_with("-infra") {
            continue;
        }
        if let Ok(out) = podman().args(["logs", "--tail", "30", name]).output() {
            eprintln!(
                "--- logs of {name} ---\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{EXAMPLES, empty_dir_names};

    /// Every folder of k8s-examples/ (but the overlays) is played by the e2e, and every overlay
    /// belongs to an example.
    #[test]
    fn every_example_folder_is_played() {
        let root = crate::sh::root().join("k8s-examples");
        let mut dirs: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|d| d != "e2e-overlays")
            .collect();
        dirs.sort();
        let mut played: Vec<String> = EXAMPLES.iter().map(|e| e.dir.to_owned()).collect();
        played.sort();
        assert_eq!(dirs, played);
        for overlay in std::fs::read_dir(root.join("e2e-overlays")).unwrap() {
            let name = overlay.unwrap().file_name().to_string_lossy().into_owned();
            assert!(played.contains(&name), "overlay {name} has no example");
        }
    }

    #[test]
    fn empty_dirs_in_both_key_orders() {
        // As written by hand (name first) and as kustomize sorts keys (name last).
        let yaml = "      volumes:
        - name: html
          emptyDir:
            sizeLimit: 16Mi
        - name: config
          configMap:
            name: cm
      - emptyDir: {}
        name: web-config-neighbour
      - configMap:
          name: cm2
        name: web-config
      - emptyDir: {}
        name: git-remote
";
        assert_eq!(
            empty_dir_names(yaml),
            ["git-remote", "html", "web-config-neighbour"]
        );
    }
}
