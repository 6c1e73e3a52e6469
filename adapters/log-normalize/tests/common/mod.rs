//! Shared test helpers: a real nginx on loopback, and running the log-normalize binary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use podmates_testkit::free_port;
use podmates_testkit::nginx::Options;

/// The custom `log_format` the tests configure and pass to `--nginx-log-format`.
pub(crate) const CUSTOM_FORMAT: &str = r#"$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent rt=$request_time host=$host ua="$http_user_agent""#;

/// A private nginx on 127.0.0.1 (and ::1 when the host has IPv6), writing access logs in
/// `combined`, `main` and [`CUSTOM_FORMAT`] plus an error log into its directory. Stopped on drop.
pub(crate) struct Nginx {
    nginx: podmates_testkit::nginx::Nginx,
    pub(crate) port: u16,
    pub(crate) port6: Option<u16>,
    /// The cleartext HTTP/2 listener.
    pub(crate) port_h2: u16,
}

impl Nginx {
    pub(crate) fn start() -> Self {
        let h2 = free_port();
        // Only when the host has IPv6 loopback.
        let port6 = TcpListener::bind("[::1]:0").is_ok().then(free_port);
        let listen6 = port6
            .map(|p| format!("listen [::1]:{p};"))
            .unwrap_or_default();
        let options = Options {
            error_log: "info",
            worker_connections: 64,
            ..Options::default()
        };
        let nginx = podmates_testkit::nginx::Nginx::start_with(options, |d, port| {
            std::fs::create_dir_all(d.join("html")).unwrap();
            std::fs::write(d.join("html/index.html"), "hello\n").unwrap();
            std::fs::write(d.join("htpasswd"), "").unwrap();
            format!(
                r#"    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
    log_format custom '{CUSTOM_FORMAT}';
    access_log {d}/combined.log combined;
    access_log {d}/main.log main;
    access_log {d}/custom.log custom;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{h2} http2;
        {listen6}
        server_name localhost;
        root {d}/html;
        location /private {{ auth_basic "x"; auth_basic_user_file {d}/htpasswd; }}
    }}"#,
                d = d.display(),
            )
        });
        Self {
            port: nginx.port(),
            nginx,
            port6,
            port_h2: h2,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.nginx.path(name)
    }

    /// Sends raw bytes, reads the answer until the server closes (bounded by a timeout).
    pub(crate) fn raw(addr: &str, bytes: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// One HTTP/1.x request with `Connection: close`.
    pub(crate) fn get(&self, request_line: &str, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut req = format!("{request_line}\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        Self::raw(&format!("127.0.0.1:{}", self.port), req.as_bytes())
    }

    /// One HTTP/2 request over cleartext with prior knowledge (`h2c`): the connection preface, an
    /// empty SETTINGS frame and a HEADERS frame for `GET /` (HPACK static-table entries and one
    /// literal), then GOAWAY.
    pub(crate) fn get_h2(&self) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port_h2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut msg = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        msg.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS, empty
        let mut block = vec![0x82, 0x86, 0x84]; // :method GET, :scheme http, :path /
        block.push(0x41); // :authority, literal with indexing
        block.push(9);
        block.extend_from_slice(b"localhost");
        block.push(0x40 | 58); // user-agent (static index 58), literal with indexing
        block.push(7);
        block.extend_from_slice(b"h2-test");
        let len = block.len();
        msg.extend_from_slice(&[0, 0, len as u8, 1, 0x05, 0, 0, 0, 1]); // HEADERS, END_STREAM|END_HEADERS, stream 1
        msg.extend_from_slice(&block);
        s.write_all(&msg).unwrap();
        // Read until the response's DATA arrives or the timeout hits, then say goodbye.
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut got = 0;
        while Instant::now() < deadline && got < 100 {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        let _ = s.write_all(&[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    /// Sends the requests behind the fixtures: plain, query, 404, HEAD, IPv6, a user agent with
    /// quotes, a referrer, an authenticated user, HTTP/1.0, HTTP/0.9 (no protocol), HTTP/2.0,
    /// a TLS handshake sent to the plain port (garbage), X-Forwarded-For.
    pub(crate) fn traffic(&self) {
        self.get("GET / HTTP/1.1", &[("User-Agent", "curl/8.5.0")]);
        self.get(
            "GET /index.html?lang=en&q=a%20b HTTP/1.1",
            &[
                (
                    "User-Agent",
                    "Mozilla/5.0 (X11; Linux x86_64) \"quoted\" agent",
                ),
                ("Referer", "http://example.com/start?x=1"),
                ("X-Forwarded-For", "203.0.113.7, 198.51.100.2"),
            ],
        );
        self.get("GET /missing.png HTTP/1.1", &[("User-Agent", "probe")]);
        self.get("HEAD / HTTP/1.0", &[]);
        self.get(
            "GET /private HTTP/1.1",
            &[("Authorization", "Basic YWxpY2U6c2VjcmV0")],
        );
        self.get("POST /index.html HTTP/1.1", &[("Content-Length", "0")]);
        Self::raw(&format!("127.0.0.1:{}", self.port), b"GET /\r\n");
        Self::raw(
            &format!("127.0.0.1:{}", self.port),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        );
        if let Some(p6) = self.port6 {
            Self::raw(
                &format!("[::1]:{p6}"),
                b"GET /v6 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: six\r\nConnection: close\r\n\r\n",
            );
        }
        self.get_h2();
    }

    /// Stops nginx (flushing its logs) and waits for it.
    pub(crate) fn stop(&mut self) {
        self.nginx.stop();
    }
}

/// Runs log-normalize with `args` on `input` (stdin); returns (stdout, stderr, success).
pub(crate) fn normalize(args: &[&str], input: &[u8]) -> (String, String, bool) {
    let out = podmates_testkit::proc::output(
        Command::new(env!("CARGO_BIN_EXE_log-normalize"))
            .arg("--no-admin-server")
            .args(args),
        input,
        Duration::from_secs(60),
    );
    (
        String::from_utf8(out.stdout).expect("output is UTF-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// Parses JSON lines.
pub(crate) fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The fixtures (and arguments) the schema tests (ECS and OTLP) run through log-normalize.
pub(crate) const SCHEMA_CASES: &[(&str, &[&str])] = &[
    ("nginx/combined.log", &["--format", "nginx-combined"]),
    ("nginx/combined.log", &[]),
    ("nginx/main.log", &["--format", "nginx-main"]),
    ("nginx/custom.log", &["--nginx-log-format", CUSTOM_FORMAT]),
    ("nginx/error.log", &["--format", "nginx-error"]),
    ("tricky/access.log", &["--format", "nginx-combined"]),
    ("tricky/access.log", &[]),
    ("apache/common.log", &["--format", "apache-common"]),
    ("apache/combined.log", &["--format", "apache-combined"]),
    ("apache/error.log", &["--format", "apache-error"]),
    ("syslog/traditional.log", &["--format", "syslog"]),
    ("syslog/file.log", &[]),
    ("syslog/protocol23.log", &[]),
    ("syslog/forward.log", &[]),
    ("app/json.log", &["--format", "json"]),
    ("app/logfmt.log", &["--format", "logfmt"]),
    ("app/cri.log", &["--format", "cri"]),
    ("schema/corpus.log", &[]),
    ("schema/corpus.log", &["--format", "plain"]),
    ("schema/parsing.log", &[]),
    (
        "schema/pattern.log",
        &[
            "--pattern",
            "%{@timestamp}#%{level} %{ms:int} %{cached:bool} %{ratio:float} %{message}",
        ],
    ),
    (
        "schema/pattern.log",
        &["--pattern", "%{@timestamp}#%{message}"],
    ),
];
