//! Helpers for the integration tests: a real nginx on loopback with a generated configuration, the
//! exporter binary (ours or Debian's Go one), plain HTTP requests and a text-format reader.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NGINX: &str = "/usr/sbin/nginx";
pub const GO_EXPORTER: &str = "/usr/bin/prometheus-nginx-exporter";
pub const OURS: &str = env!("CARGO_BIN_EXE_nginx-exporter");

pub use podmates_testkit::{Proc, free_port, require};

/// Polls `f` until it returns `Some`, at most `secs` seconds (the harness's `eventually`).
pub fn eventually<T>(secs: u64, what: &str, f: impl FnMut() -> Option<T>) -> T {
    podmates_testkit::eventually(Duration::from_secs(secs), what, f)
}

/// The stub_status bodies the bad-body tests serve, with what the parser must make of them.
pub const TENGINE_BODY: &str = "Active connections: 3 \\nserver accepts handled requests request_time\\n 10 11 20 555\\nReading: 0 Writing: 1 Waiting: 2 \\n";
pub const SPACES_BODY: &str = "Active connections:   7\\r\\n\\r\\nserver accepts handled requests\\r\\n\\t100  100 250\\r\\nReading: 1   Writing: 2 Waiting: 4";

/// A real nginx with stub_status and the test locations, on its own ports and unix socket.
pub struct Nginx {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Writes the configuration (and TLS files when `tls`) and starts nginx.
    pub fn start(tls: bool) -> Self {
        Self::start_with(tls, "")
    }

    /// Like [`start`](Self::start), with extra `http {}` directives (e.g. a `log_format`);
    /// `{dir}` in them is replaced by nginx's directory.
    pub fn start_with(tls: bool, http_extra: &str) -> Self {
        require(NGINX);
        let dir = tempfile::tempdir().expect("tempdir");
        // nginx's workers run as nobody when started by root: they must read the htpasswd file.
        set_mode(dir.path(), 0o755);
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join("htpasswd"), "scraper:{PLAIN}hunter2\n").unwrap();
        set_mode(&dir.path().join("htpasswd"), 0o644);
        let port = free_port();
        let tls_port = free_port();
        let tls_server = if tls {
            podmates_testkit::certs::make(dir.path());
            format!(
                r#"
  server {{
    listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {d}/server.crt;
    ssl_certificate_key {d}/server.key;
    ssl_client_certificate {d}/ca.crt;
    ssl_verify_client optional;
    location = /stub_status {{ stub_status; }}
    location = /mtls {{ if ($ssl_client_verify != SUCCESS) {{ return 403; }} stub_status; }}
  }}"#
            )
        } else {
            String::new()
        };
        // `{dir}` in the extra directives is nginx's directory (for log files).
        let http_extra = http_extra.replace("{dir}", &d);
        // A test that logs requests brings its own access_log directive.
        let access_off = if http_extra.contains("access_log") {
            ""
        } else {
            "access_log off;"
        };
        let conf = format!(
            r#"daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  default_type text/plain;
  {access_off}
  {http_extra}
  server {{
    listen 127.0.0.1:{port};
    listen unix:{d}/nginx.sock;
    location = /stub_status {{ stub_status; access_log off; }}
    location = /tengine {{ return 200 "{TENGINE_BODY}"; }}
    location = /spaces {{ return 200 "{SPACES_BODY}"; }}
    location = /garbage {{ return 200 "<html>hello</html>"; }}
    location = /truncated {{ return 200 "Active connections: 1 \nserver accepts handled requests\n 5 5 \n"; }}
    location = /status500 {{ return 500; }}
    location = /basic {{ auth_basic "status"; auth_basic_user_file {d}/htpasswd; stub_status; }}
    location = /bearer {{ if ($http_authorization != "Bearer s3cret") {{ return 401; }} stub_status; }}
    location = /missing {{ return 404; }}
    location = /err {{ return 503; }}
    location = /up {{ proxy_pass http://127.0.0.1:{port}/; }}
    location / {{ return 200 "hello\n"; }}
  }}
  server {{
    listen 127.0.0.1:{port};
    server_name status.example;
    location = /vhost {{ stub_status; }}
  }}{tls_server}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut n = Self {
            dir,
            port,
            tls_port,
            child: None,
        };
        n.resume();
        n
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn socket(&self) -> PathBuf {
        self.path("nginx.sock")
    }

    /// Starts (again) and waits until stub_status answers.
    pub fn resume(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.path("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok((200, _)) = get(addr, "/stub_status") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.path("error.log")).unwrap_or_default();
        panic!("nginx did not come up on {addr}: {log}");
    }

    /// Stops nginx gracefully (`nginx -s quit`: the master waits for its workers, so the port is
    /// free again and no worker is left behind, which a SIGKILL of the master would do).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new(NGINX)
                .arg("-p")
                .arg(self.dir.path())
                .arg("-c")
                .arg(self.path("nginx.conf"))
                .args(["-s", "quit"])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A running exporter (ours or the Go one), killed on drop; its stderr goes to a file.
pub struct Exporter {
    proc: Proc,
    pub addr: SocketAddr,
}

impl Exporter {
    /// Starts `program` with `args` and `env`, listening on `addr` (already in `args`), and waits
    /// for `probe_path` to answer 200.
    pub fn spawn(
        program: &str,
        args: &[String],
        env: &[(&str, String)],
        addr: SocketAddr,
        probe_path: &str,
    ) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_remove("SCRAPE_URI")
            .env_remove("LISTEN_ADDRESS")
            .env_remove("CONST_LABELS")
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let mut e = Self {
            proc: Proc::spawn(program, &mut cmd),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if matches!(get(addr, probe_path), Ok((200, _))) {
                break;
            }
            if let Some(status) = e.proc.try_status() {
                panic!("{program} exited with {status}: {}", e.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "{program} did not answer on {addr}: {}",
                e.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        e
    }

    /// Our exporter with the given flags plus `--web.listen-address` on a free port.
    pub fn ours(args: &[&str]) -> Self {
        Self::ours_env(args, &[])
    }

    pub fn ours_env(args: &[&str], env: &[(&str, String)]) -> Self {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut a: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        a.push(format!("--web.listen-address=127.0.0.1:{port}"));
        Self::spawn(OURS, &a, env, addr, "/readyz")
    }

    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// Resident memory, in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }

    /// GET `path`, expecting 200; returns the body.
    pub fn get_ok(&self, path: &str) -> String {
        let (status, body) = get(self.addr, path).expect("request the exporter");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub fn metrics(&self) -> Metrics {
        Metrics::parse(&self.get_ok("/metrics"))
    }
}

/// One HTTP/1.1 GET with `Connection: close`; returns (status, body), de-chunked (the Go
/// exporter chunks).
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    podmates_testkit::http::request(addr, "GET", path, &[], b"").map(|r| (r.status, r.text()))
}

/// A parsed text exposition: samples by `name{labels}`, and HELP and TYPE by family.
#[derive(Debug, Default)]
pub struct Metrics {
    pub samples: BTreeMap<String, f64>,
    pub help: BTreeMap<String, String>,
    pub types: BTreeMap<String, String>,
}

impl Metrics {
    pub fn parse(text: &str) -> Self {
        let mut m = Self::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                m.help.insert(name.to_owned(), help.to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, t) = rest.split_once(' ').unwrap_or((rest, ""));
                m.types.insert(name.to_owned(), t.to_owned());
            } else if !line.is_empty() && !line.starts_with('#') {
                let (series, value) = line.rsplit_once(' ').expect("sample line");
                let v: f64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("value in {line:?}"));
                m.samples.insert(series.to_owned(), v);
            }
        }
        m
    }

    /// The value of `series` (`name` or `name{labels}` as written), panicking with the exposition
    /// when absent.
    pub fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in {:#?}", self.samples))
    }

    /// Sample names (without labels) present.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.samples
            .keys()
            .map(|k| k.split('{').next().unwrap_or(k).to_owned())
            .collect()
    }
}

/// Runs `cmd` to completion within `secs` seconds (killing it and failing otherwise); returns its
/// exit code, stdout and stderr.
pub fn run_bounded(cmd: &mut Command, secs: u64) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {secs}s: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code(),
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default(),
    )
}
