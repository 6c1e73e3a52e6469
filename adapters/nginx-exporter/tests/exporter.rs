//! The exporter binary against a real nginx: every flag, nginx down and back, bad stub_status
//! bodies, several targets including a unix socket, auth, TLS and `/probe`.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Exporter, Metrics, Nginx, OURS, free_port, get, run_bounded};

const NGINX_FAMILIES: [&str; 8] = [
    "nginx_connections_accepted",
    "nginx_connections_active",
    "nginx_connections_handled",
    "nginx_connections_reading",
    "nginx_connections_waiting",
    "nginx_connections_writing",
    "nginx_http_requests_total",
    "nginx_up",
];

fn addr_label(uri: &str) -> String {
    format!("{{addr=\"{uri}\"}}")
}

#[test]
fn single_dash_flags_const_labels_telemetry_path_and_json_logs() {
    let nginx = Nginx::start(false);
    let port = free_port();
    let args: Vec<String> = [
        format!("-nginx.scrape-uri={}", nginx.url("/stub_status")),
        format!("-web.listen-address=127.0.0.1:{port}"),
        "-web.telemetry-path=/custom".to_owned(),
        "-prometheus.const-labels=zone=eu,team=web".to_owned(),
        "-nginx.timeout".to_owned(),
        "2s".to_owned(),
        "-log.level=debug".to_owned(),
        "-log.format=json".to_owned(),
    ]
    .into();
    let e = Exporter::spawn(OURS, &args, &[], ([127, 0, 0, 1], port).into(), "/healthz");
    let m = Metrics::parse(&e.get_ok("/custom"));
    assert_eq!(m.get("nginx_up{team=\"web\",zone=\"eu\"}"), 1.0);
    assert!(m.get("nginx_http_requests_total{team=\"web\",zone=\"eu\"}") >= 1.0);
    for fam in NGINX_FAMILIES {
        assert!(m.types.contains_key(fam), "{fam} missing");
    }
    assert_eq!(
        get(e.addr, "/metrics").unwrap().0,
        404,
        "the default path moved"
    );
    let log = e.stderr();
    let first = log.lines().next().expect("a log line");
    assert!(first.starts_with('{'), "JSON logs expected: {log}");
    // --log.level=debug lets the first successful scrape's debug line through.
    assert!(log.contains("first scrape succeeded"), "{log}");
}

#[test]
fn double_dash_flags_and_env_vars() {
    let nginx = Nginx::start(false);
    // Environment only.
    let port = free_port();
    let e = Exporter::spawn(
        OURS,
        &[],
        &[
            ("SCRAPE_URI", nginx.url("/stub_status")),
            ("LISTEN_ADDRESS", format!("127.0.0.1:{port}")),
            ("TELEMETRY_PATH", "/m".to_owned()),
            ("CONST_LABELS", "a=1,b=2".to_owned()),
            ("TIMEOUT", "3s".to_owned()),
            ("NGINX_METRICS_ONLY", "true".to_owned()),
        ],
        ([127, 0, 0, 1], port).into(),
        "/healthz",
    );
    let body = e.get_ok("/m");
    let m = Metrics::parse(&body);
    assert_eq!(m.get("nginx_up{a=\"1\",b=\"2\"}"), 1.0);
    assert!(
        !body.contains("nginx_exporter_"),
        "NGINX_METRICS_ONLY leaves out the exporter's own metrics: {body}"
    );
    drop(e);

    // Repeated double-dash const labels and a second listen address; the exporter's own metrics
    // are there by default.
    let second = free_port();
    let e = Exporter::ours(&[
        "--nginx.scrape-uri",
        &nginx.url("/stub_status"),
        "--prometheus.const-label=a=x",
        "--prometheus.const-label",
        "b=y",
        "--log.level=warn",
        "--web.listen-address",
        &format!("127.0.0.1:{second}"),
    ]);
    let m = e.metrics();
    assert_eq!(m.get("nginx_up{a=\"x\",b=\"y\"}"), 1.0);
    let (status, body) = get(([127, 0, 0, 1], second).into(), "/metrics").unwrap();
    assert_eq!(status, 200);
    assert_eq!(Metrics::parse(&body).get("nginx_up{a=\"x\",b=\"y\"}"), 1.0);
    assert_eq!(m.get("nginx_exporter_build_info{version=\"0.1.0\"}"), 1.0);
    assert!(
        !e.stderr().contains("INFO"),
        "--log.level=warn: {}",
        e.stderr()
    );
    assert_eq!(e.get_ok("/healthz"), "ok\n");
    assert_eq!(e.get_ok("/readyz"), "ready\n");
}

#[test]
fn usage_errors_exit_64_naming_the_setting() {
    let cases: &[(&[&str], &str)] = &[
        (&["--nginx.scrape-uri=ftp://x/"], "--nginx.scrape-uri"),
        (&["--nginx.scrape-uri=unix::/x"], "--nginx.scrape-uri"),
        (
            &["--prometheus.const-label=1bad=x"],
            "--prometheus.const-label",
        ),
        (&["--nginx.timeout=soon"], "--nginx.timeout"),
        (&["--web.listen-address=nowhere"], "--web.listen-address"),
        (&["--web.telemetry-path=metrics"], "--web.telemetry-path"),
        (
            &[
                "--nginx.ssl-verify",
                "--nginx.ssl-ca-cert=/nonexistent/ca.pem",
            ],
            "--nginx.ssl-ca-cert",
        ),
        (&["--nginx.plus"], "--nginx.plus"),
        (&["--log.level=loud"], "--log.level"),
        (&["--log.format=xml"], "--log.format"),
        (&["--no-such-flag"], "--no-such-flag"),
        (
            &["--nginx.basic-auth-password-file=/x"],
            "--nginx.basic-auth-user",
        ),
        (
            &["--nginx.bearer-token-file=/nonexistent"],
            "--nginx.bearer-token-file",
        ),
        (
            &[
                "--access-log=/tmp/x.log",
                "--access-log-format=$remote_addr",
            ],
            "--access-log-format",
        ),
        (
            &[
                "--access-log=/tmp/x.log",
                "--access-log-format=$status ${request",
            ],
            "--access-log-format",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, err) = run_bounded(
            Command::new(OURS)
                .args(*args)
                .arg("--web.listen-address=127.0.0.1:0")
                .env_remove("SCRAPE_URI"),
            10,
        );
        assert_eq!(code, Some(64), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?} should name {needle}: {err}");
    }
    // A busy port is a usage error too.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (code, _, err) = run_bounded(
        Command::new(OURS).arg(format!(
            "--web.listen-address={}",
            busy.local_addr().unwrap()
        )),
        10,
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--web.listen-address"), "{err}");

    for flag in ["--version", "-version"] {
        let (code, out, _) = run_bounded(Command::new(OURS).arg(flag), 10);
        assert_eq!(code, Some(0), "{flag}");
        assert!(out.contains(env!("CARGO_PKG_VERSION")), "{flag}: {out}");
    }
}

#[test]
fn starts_before_nginx_then_follows_it_down_and_back() {
    let mut nginx = Nginx::start(false);
    nginx.stop();
    let e = Exporter::ours(&["--nginx.scrape-uri", &nginx.url("/stub_status")]);
    assert_eq!(e.get_ok("/readyz"), "ready\n", "ready without nginx");
    for _ in 0..3 {
        let m = e.metrics();
        assert_eq!(m.get("nginx_up"), 0.0);
        assert_eq!(
            m.names()
                .iter()
                .filter(|n| n.starts_with("nginx_") && !n.starts_with("nginx_exporter"))
                .count(),
            1,
            "only nginx_up while down: {m:?}"
        );
    }
    let uri = nginx.url("/stub_status");
    let m = e.metrics();
    assert_eq!(
        m.get(&format!(
            "nginx_exporter_scrape_errors_total{{addr=\"{uri}\",kind=\"connect\"}}"
        )),
        4.0
    );
    nginx.resume();
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
    nginx.stop();
    assert_eq!(e.metrics().get("nginx_up"), 0.0);
    nginx.resume();
    let m = e.metrics();
    assert_eq!(m.get("nginx_up"), 1.0);
    assert!(m.get("nginx_connections_accepted") >= 1.0);
    let log = e.stderr();
    assert_eq!(
        log.matches("scrape failed").count(),
        2,
        "one warning per outage, not per scrape: {log}"
    );
    assert_eq!(log.matches("scrape succeeded again").count(), 2, "{log}");
}

#[test]
fn tolerant_parser_and_bad_bodies() {
    let nginx = Nginx::start(false);
    let uris: Vec<String> = [
        "/tengine",
        "/spaces",
        "/garbage",
        "/truncated",
        "/status500",
        "/stub_status",
    ]
    .iter()
    .map(|p| nginx.url(p))
    .collect();
    let mut args = Vec::new();
    for u in &uris {
        args.push("--nginx.scrape-uri");
        args.push(u.as_str());
    }
    let e = Exporter::ours(&args);
    let m = e.metrics();
    let up = |u: &str| m.get(&format!("nginx_up{}", addr_label(u)));
    // Tengine's extra column and odd whitespace are read.
    assert_eq!(up(&uris[0]), 1.0);
    assert_eq!(
        m.get(&format!(
            "nginx_connections_handled{}",
            addr_label(&uris[0])
        )),
        11.0
    );
    assert_eq!(
        m.get(&format!(
            "nginx_http_requests_total{}",
            addr_label(&uris[0])
        )),
        20.0
    );
    assert_eq!(
        m.get(&format!(
            "nginx_connections_waiting{}",
            addr_label(&uris[0])
        )),
        2.0
    );
    assert_eq!(up(&uris[1]), 1.0);
    assert_eq!(
        m.get(&format!("nginx_connections_active{}", addr_label(&uris[1]))),
        7.0
    );
    assert_eq!(
        m.get(&format!(
            "nginx_http_requests_total{}",
            addr_label(&uris[1])
        )),
        250.0
    );
    // Garbage, a cut page and a 500 are failures with a reason; the good target is unaffected.
    assert_eq!(up(&uris[2]), 0.0);
    assert_eq!(up(&uris[3]), 0.0);
    assert_eq!(up(&uris[4]), 0.0);
    assert_eq!(up(&uris[5]), 1.0);
    assert!(
        !m.samples
            .contains_key(&format!("nginx_connections_active{}", addr_label(&uris[2])))
    );
    let parse_errors = format!(
        "nginx_exporter_scrape_errors_total{{addr=\"{}\",kind=\"parse\"}}",
        uris[2]
    );
    assert_eq!(m.get(&parse_errors), 1.0);
    let log = e.stderr();
    assert!(
        log.contains(
            "expected \\\"Active connections:\\\" at the start, found \\\"<html>hello</html>\\\""
        ) || log.contains("\"<html>hello</html>\""),
        "{log}"
    );
    assert!(log.contains("the requests number"), "{log}");
    assert!(log.contains("expected a 200 response, got 500"), "{log}");
}

#[test]
fn several_targets_including_a_unix_socket() {
    let nginx = Nginx::start(false);
    let tcp = nginx.url("/stub_status");
    let unix = format!("unix:{}:/stub_status", nginx.socket().display());
    // SCRAPE_URI carries one URI per line, as kingpin reads repeatable flags from the environment.
    let e = Exporter::ours_env(
        &["--prometheus.const-label=app=shop"],
        &[("SCRAPE_URI", format!("{tcp}\n{unix}"))],
    );
    let m = e.metrics();
    for u in [&tcp, &unix] {
        let labels = format!("{{addr=\"{u}\",app=\"shop\"}}");
        assert_eq!(m.get(&format!("nginx_up{labels}")), 1.0, "{u}");
        assert!(m.get(&format!("nginx_http_requests_total{labels}")) >= 1.0);
    }
    // The unix target's connection is kept alive: several scrapes reuse it, so nginx's accepted
    // count grows by far less than one per scrape and target.
    let before = e.metrics().get(&format!(
        "nginx_connections_accepted{{addr=\"{tcp}\",app=\"shop\"}}"
    ));
    for _ in 0..10 {
        e.metrics();
    }
    let after = e.metrics().get(&format!(
        "nginx_connections_accepted{{addr=\"{tcp}\",app=\"shop\"}}"
    ));
    assert!(
        after - before <= 13.0,
        "connections reused: {before} -> {after}"
    );
}

#[test]
fn basic_auth_bearer_token_and_host_header() {
    let nginx = Nginx::start(false);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "hunter2\n").unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();

    // Without credentials nginx says 401: down.
    let e = Exporter::ours(&["--nginx.scrape-uri", &nginx.url("/basic")]);
    assert_eq!(e.metrics().get("nginx_up"), 0.0);
    assert!(e.stderr().contains("401"), "{}", e.stderr());
    drop(e);

    // Credentials in the URI apply to that target only; flags give the rest.
    let in_uri = format!("http://scraper:hunter2@127.0.0.1:{}/basic", nginx.port);
    let e = Exporter::ours(&["--nginx.scrape-uri", &in_uri]);
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
    drop(e);
    let e = Exporter::ours(&[
        "--nginx.scrape-uri",
        &nginx.url("/basic"),
        "--nginx.basic-auth-user=scraper",
        &format!("--nginx.basic-auth-password-file={}", pw.display()),
    ]);
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
    drop(e);

    // A bearer token from a file, also over the unix socket.
    let unix = format!("unix:{}:/bearer", nginx.socket().display());
    let e = Exporter::ours_env(
        &[
            "--nginx.scrape-uri",
            &nginx.url("/bearer"),
            "--nginx.scrape-uri",
            &unix,
        ],
        &[("NGINX_BEARER_TOKEN_FILE", token.display().to_string())],
    );
    let m = e.metrics();
    assert_eq!(
        m.get(&format!("nginx_up{}", addr_label(&nginx.url("/bearer")))),
        1.0
    );
    assert_eq!(m.get(&format!("nginx_up{}", addr_label(&unix))), 1.0);
    drop(e);

    // A virtual host reached through the Host header.
    let e = Exporter::ours(&["--nginx.scrape-uri", &nginx.url("/vhost")]);
    assert_eq!(
        e.metrics().get("nginx_up"),
        0.0,
        "the default server has no /vhost"
    );
    drop(e);
    let e = Exporter::ours(&[
        "--nginx.scrape-uri",
        &nginx.url("/vhost"),
        "--nginx.host-header=status.example",
    ]);
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
}

#[test]
fn tls_verification_ca_and_client_certificates() {
    let nginx = Nginx::start(true);
    let https = format!("https://127.0.0.1:{}/stub_status", nginx.tls_port);
    let mtls = format!("https://127.0.0.1:{}/mtls", nginx.tls_port);
    let ca = format!("--nginx.ssl-ca-cert={}", nginx.path("ca.crt").display());
    let cert = format!(
        "--nginx.ssl-client-cert={}",
        nginx.path("client.crt").display()
    );
    let key = format!(
        "--nginx.ssl-client-key={}",
        nginx.path("client.key").display()
    );

    // Default (like the Go exporter's current default): no verification.
    let e = Exporter::ours(&["--nginx.scrape-uri", &https]);
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
    drop(e);
    // Verification against the system roots fails for the test CA ...
    let e = Exporter::ours(&["--nginx.scrape-uri", &https, "--nginx.ssl-verify"]);
    assert_eq!(e.metrics().get("nginx_up"), 0.0);
    assert!(
        e.stderr().to_lowercase().contains("certificate"),
        "{}",
        e.stderr()
    );
    drop(e);
    // ... and succeeds with --nginx.ssl-ca-cert; the negated form turns it off again.
    let e = Exporter::ours(&["--nginx.scrape-uri", &https, "-nginx.ssl-verify=true", &ca]);
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
    drop(e);
    let e = Exporter::ours_env(
        &["--nginx.scrape-uri", &https, "--no-nginx.ssl-verify"],
        &[("SSL_VERIFY", "true".to_owned())],
    );
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
    drop(e);
    // Mutual TLS: without the client certificate nginx answers 403, with it 200.
    let e = Exporter::ours(&["--nginx.scrape-uri", &mtls, "--nginx.ssl-verify", &ca]);
    assert_eq!(e.metrics().get("nginx_up"), 0.0);
    drop(e);
    let e = Exporter::ours_env(
        &["--nginx.scrape-uri", &mtls],
        &[
            ("SSL_VERIFY", "true".to_owned()),
            ("SSL_CA_CERT", nginx.path("ca.crt").display().to_string()),
            (
                "SSL_CLIENT_CERT",
                nginx.path("client.crt").display().to_string(),
            ),
            (
                "SSL_CLIENT_KEY",
                nginx.path("client.key").display().to_string(),
            ),
        ],
    );
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
    drop(e);
    let e = Exporter::ours(&["--nginx.scrape-uri", &mtls, &cert, &key]);
    assert_eq!(e.metrics().get("nginx_up"), 1.0);
    drop(e);
    // Without https targets TLS is set up on first use, e.g. by /probe.
    let e = Exporter::ours(&[
        "--nginx.scrape-uri",
        &nginx.url("/stub_status"),
        "--probe.allowed-target=https://127.0.0.1:",
    ]);
    let m = Metrics::parse(&e.get_ok(&format!("/probe?target={https}")));
    assert_eq!(m.get("nginx_up"), 1.0);
}

#[test]
fn timeout_bounds_a_hanging_target() {
    // A listener nobody accepts on: the connection opens (backlog) and no answer ever comes.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}/stub_status", hang.local_addr().unwrap());
    let e = Exporter::ours(&["--nginx.scrape-uri", &uri, "--nginx.timeout=300ms"]);
    let t = Instant::now();
    let m = e.metrics();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(m.get("nginx_up"), 0.0);
    assert_eq!(
        m.get(&format!(
            "nginx_exporter_scrape_errors_total{{addr=\"{uri}\",kind=\"timeout\"}}"
        )),
        1.0
    );
}

#[test]
fn probe_scrapes_the_named_target() {
    let nginx = Nginx::start(false);
    let e = Exporter::ours(&[
        "--nginx.scrape-uri",
        &nginx.url("/stub_status"),
        "--prometheus.const-label=k=v",
        "--probe.allowed-target=unix:",
        "--probe.allowed-target",
        &nginx.url(""),
    ]);
    let target = format!("unix:{}:/stub_status", nginx.socket().display());
    let enc: String = target
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let m = Metrics::parse(&e.get_ok(&format!("/probe?target={enc}")));
    assert_eq!(m.get("nginx_up{k=\"v\"}"), 1.0);
    assert!(m.get("nginx_connections_active{k=\"v\"}") >= 1.0);
    let m = Metrics::parse(&e.get_ok(&format!("/probe?target={}", nginx.url("/garbage"))));
    assert_eq!(m.get("nginx_up{k=\"v\"}"), 0.0);
    assert_eq!(get(e.addr, "/probe").unwrap().0, 400);
    assert_eq!(get(e.addr, "/probe?target=ftp://x").unwrap().0, 400);
    // The configured target is still served on /metrics.
    assert_eq!(e.metrics().get("nginx_up{k=\"v\"}"), 1.0);
}

/// `/probe` makes the exporter fetch a URL of the caller's choosing with the configured
/// credentials attached: by default it scrapes only the configured targets, and refuses anything
/// else (403) without connecting to it.
#[test]
fn probe_refuses_targets_not_configured_by_default() {
    let nginx = Nginx::start(false);
    let e = Exporter::ours(&["--nginx.scrape-uri", &nginx.url("/stub_status")]);
    // Something else on loopback, which must never be asked.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    other.set_nonblocking(true).unwrap();
    let port = other.local_addr().unwrap().port();
    let (status, body) = get(e.addr, &format!("/probe?target=http://127.0.0.1:{port}/")).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--probe.allowed-target"), "{body}");
    assert!(
        other.accept().is_err(),
        "the exporter connected to a target it refused"
    );
    // The configured target itself is allowed.
    let (status, body) = get(
        e.addr,
        &format!("/probe?target={}", nginx.url("/stub_status")),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("nginx_up 1"), "{body}");
}

/// A hostile or broken target on loopback: answers every connection with `head` and then `body`
/// bytes of `fill`, written in chunks, until the client goes away.
fn hostile_target(head: String, body: u64, fill: u8) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let head = head.clone();
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut s = s;
                let mut req = [0u8; 4096];
                let _ = s.read(&mut req);
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![fill; 64 * 1024];
                let mut left = body;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    if s.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    port
}

/// Hostile targets: a 100 MB body and numbers no counter can hold. The exporter reads at most
/// 64 KiB of a body, says `nginx_up 0` for each, and its memory stays bounded.
#[test]
fn hostile_targets_huge_bodies_and_malformed_numbers() {
    let huge = hostile_target(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 104857600\r\n\r\n"
            .to_owned(),
        100 << 20,
        b'7',
    );
    let numbers = "Active connections: 99999999999999999999999999 \nserver accepts handled requests\n \
                   -5 1e999 0x10 \nReading: NaN Writing: 1 Waiting: 2 \n";
    let malformed = hostile_target(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{numbers}",
            numbers.len()
        ),
        0,
        0,
    );
    let uris = [
        format!("http://127.0.0.1:{huge}/stub_status"),
        format!("http://127.0.0.1:{malformed}/stub_status"),
    ];
    let e = Exporter::ours(&[
        "--nginx.scrape-uri",
        &uris[0],
        "--nginx.scrape-uri",
        &uris[1],
    ]);
    for round in 0..20 {
        let m = e.metrics();
        for u in &uris {
            assert_eq!(
                m.get(&format!("nginx_up{}", addr_label(u))),
                0.0,
                "{u}, round {round}"
            );
        }
    }
    let rss = e.rss_kib();
    eprintln!("RSS after 20 scrapes of a 100 MB body and malformed numbers: {rss} KiB");
    assert!(
        rss < 30 * 1024,
        "RSS {rss} KiB after 20 scrapes of a 100 MB body"
    );
}
