//! Helpers for the integration tests: a real nginx on loopback with a generated configuration, the
//! exporter binary (ours or Debian's Go one), plain HTTP requests and a text-format reader.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use podmates_testkit::nginx::set_mode;
pub(crate) const GO_EXPORTER: &str = "/usr/bin/prometheus-nginx-exporter";
pub(crate) const OURS: &str = env!("CARGO_BIN_EXE_nginx-exporter");

pub(crate) use podmates_testkit::{Proc, free_port};

/// The stub_status bodies the bad-body tests serve, with what the parser must make of them.
pub(crate) const TENGINE_BODY: &str = "Active connections: 3 \\nserver accepts handled requests request_time\\n 10 11 20 555\\nReading: 0 Writing: 1 Waiting: 2 \\n";
pub(crate) const SPACES_BODY: &str = "Active connections:   7\\r\\n\\r\\nserver accepts handled requests\\r\\n\\t100  100 250\\r\\nReading: 1   Writing: 2 Waiting: 4";

/// A real nginx with stub_status and the test locations, on its own ports and unix socket.
pub(crate) struct Nginx {
    nginx: podmates_testkit::nginx::Nginx,
    pub(crate) port: u16,
    pub(crate) tls_port: u16,
}

impl Nginx {
    /// Writes the configuration (and TLS files when `tls`) and starts nginx.
    pub(crate) fn start(tls: bool) -> Self {
        Self::start_with(tls, "")
    }

    /// Like [`start`](Self::start), with extra `http {}` directives (e.g. a `log_format`);
    /// `{dir}` in them is replaced by nginx's directory.
    pub(crate) fn start_with(tls: bool, http_extra: &str) -> Self {
        let tls_port = free_port();
        // A master and a worker, as in production: a stop must wait for the worker.
        let options = podmates_testkit::nginx::Options {
            master_process: true,
            ..Default::default()
        };
        let nginx = podmates_testkit::nginx::Nginx::start_with(options, |dir, port| {
            let d = dir.display().to_string();
            // nginx's workers run as nobody when started by root: they must read the htpasswd
            // file.
            std::fs::write(dir.join("htpasswd"), "scraper:{PLAIN}hunter2\n").unwrap();
            set_mode(&dir.join("htpasswd"), 0o644);
            let tls_server = if tls {
                podmates_testkit::certs::make(dir);
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
            format!(
                r#"  {access_off}
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
  }}{tls_server}"#
            )
        });
        Self {
            port: nginx.port(),
            nginx,
            tls_port,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.nginx.path(name)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.nginx.url(path)
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.path("nginx.sock")
    }

    /// Starts again after [`stop`](Self::stop).
    pub(crate) fn resume(&mut self) {
        self.nginx.resume();
    }

    /// Stops nginx gracefully (the master waits for its workers, so the port is free again and
    /// no worker is left behind, which a SIGKILL of the master would do).
    pub(crate) fn stop(&mut self) {
        self.nginx.stop();
    }
}

/// A running exporter (ours or the Go one), killed on drop; its stderr goes to a file.
pub(crate) struct Exporter {
    proc: Proc,
    pub(crate) addr: SocketAddr,
}

impl Exporter {
    /// Starts `program` with `args` and `env`, listening on `addr` (already in `args`), and waits
    /// for `probe_path` to answer 200.
    pub(crate) fn spawn(
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
        let what = format!("{program} answering {probe_path} on {addr}");
        podmates_testkit::wait_until(Duration::from_secs(10), &what, || {
            if let Some(status) = e.proc.try_status() {
                panic!("{program} exited with {status}: {}", e.stderr());
            }
            matches!(get(addr, probe_path), Ok((200, _)))
        });
        e
    }

    /// Our exporter with the given flags plus `--web.listen-address` on a free port.
    pub(crate) fn ours(args: &[&str]) -> Self {
        Self::ours_env(args, &[])
    }

    pub(crate) fn ours_env(args: &[&str], env: &[(&str, String)]) -> Self {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut a: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        a.push(format!("--web.listen-address=127.0.0.1:{port}"));
        Self::spawn(OURS, &a, env, addr, "/readyz")
    }

    pub(crate) fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// Resident memory, in KiB, from /proc.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.proc.rss_kib()
    }

    /// GET `path`, expecting 200; returns the body.
    pub(crate) fn get_ok(&self, path: &str) -> String {
        let (status, body) = get(self.addr, path).expect("request the exporter");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub(crate) fn metrics(&self) -> Metrics {
        Metrics::parse(&self.get_ok("/metrics"))
    }
}

/// One HTTP/1.1 GET with `Connection: close`; returns (status, body), de-chunked (the Go
/// exporter chunks).
pub(crate) fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    podmates_testkit::http::request(addr, "GET", path, &[], b"").map(|r| (r.status, r.text()))
}

/// A parsed text exposition: samples by `name{labels}`, and HELP and TYPE by family.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) samples: BTreeMap<String, f64>,
    pub(crate) help: BTreeMap<String, String>,
    pub(crate) types: BTreeMap<String, String>,
}

impl Metrics {
    pub(crate) fn parse(text: &str) -> Self {
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
    pub(crate) fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in {:#?}", self.samples))
    }

    /// Sample names (without labels) present.
    pub(crate) fn names(&self) -> std::collections::BTreeSet<String> {
        self.samples
            .keys()
            .map(|k| k.split('{').next().unwrap_or(k).to_owned())
            .collect()
    }
}

/// Runs `cmd` to completion within `secs` seconds (killing it and failing otherwise); returns its
/// exit code, stdout and stderr.
pub(crate) fn run_bounded(cmd: &mut Command, secs: u64) -> (Option<i32>, String, String) {
    let out = podmates_testkit::proc::output(cmd, b"", Duration::from_secs(secs));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
