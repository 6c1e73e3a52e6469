//! The admin server's endpoints, in process and over a real socket.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Request, Response, StatusCode};
use podmates_runtime::Admin;
use podmates_runtime::admin::text;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

fn get(path: &str) -> Request<Bytes> {
    Request::get(path).body(Bytes::new()).unwrap()
}

async fn body(resp: Response<http_body_util::Full<Bytes>>) -> String {
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(b.to_vec()).unwrap()
}

#[tokio::test]
async fn healthz_is_ok_while_alive() {
    let admin = Admin::new("demo-bin", "1.0.0");
    let resp = admin.handle(get("/healthz")).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_follows_the_flag_and_checks() {
    let admin = Admin::new("demo-bin", "1.0.0");
    let resp = admin.handle(get("/readyz")).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    admin.readiness().set(true);
    assert_eq!(admin.handle(get("/readyz")).await.status(), StatusCode::OK);
    admin.add_ready_check(std::sync::Arc::new(|| Err("last sync too old".to_owned())));
    let resp = admin.handle(get("/readyz")).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(body(resp).await.contains("last sync too old"));
}

#[tokio::test]
async fn metrics_in_prometheus_text_by_default() {
    let admin = Admin::new("demo-bin", "1.2.3");
    let c: Counter = Counter::default();
    admin.with_registry(|r| r.register("demo_lines", "Lines", c.clone()));
    c.inc_by(5);
    let resp = admin.handle(get("/metrics")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = body(resp).await;
    assert!(
        text.contains("demo_bin_build_info{version=\"1.2.3\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE demo_lines_total counter\ndemo_lines_total 5\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"));
}

#[tokio::test]
async fn metrics_in_openmetrics_when_asked() {
    let admin = Admin::new("demo-bin", "1.2.3");
    let req = Request::get("/metrics")
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .body(Bytes::new())
        .unwrap();
    let resp = admin.handle(req).await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = body(resp).await;
    assert!(text.contains("# TYPE demo_bin_build info"), "{text}");
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let admin = Admin::new("demo-bin", "1.0.0");
    assert_eq!(
        admin.handle(get("/nope")).await.status(),
        StatusCode::NOT_FOUND
    );
    let post = Request::post("/metrics").body(Bytes::new()).unwrap();
    assert_eq!(
        admin.handle(post).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn binaries_add_routes() {
    let admin = Admin::new("demo-bin", "1.0.0");
    admin.route(Method::POST, "/sync", |req: Request<Bytes>| async move {
        text(
            StatusCode::ACCEPTED,
            format!("got {} bytes", req.body().len()),
        )
    });
    let req = Request::post("/sync")
        .body(Bytes::from_static(b"abc"))
        .unwrap();
    let resp = admin.handle(req).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(body(resp).await, "got 3 bytes");
}

async fn raw_request(addr: std::net::SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("server answered")
        .unwrap();
    out
}

#[tokio::test]
async fn serves_over_tcp_and_stops_with_the_token() {
    let admin = Admin::new("demo-bin", "1.0.0");
    admin.readiness().set(true);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let server = tokio::spawn(admin.clone().serve(listener, token.clone()));

    let resp = raw_request(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let resp = raw_request(
        addr,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let resp = raw_request(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.contains("demo_bin_build_info"), "{resp}");
    let resp = raw_request(
        addr,
        "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");

    token.cancel();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("server stops after cancellation")
        .unwrap();
    assert!(!admin.readiness().get(), "not ready once shutting down");
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    // A client that never finishes its request head must not hold a connection forever.
    let admin = Admin::new("demo-bin", "1.0.0");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    tokio::spawn(admin.serve(listener, token.clone()));
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let started = std::time::Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf)).await;
    assert!(res.is_ok(), "connection closed by the header-read timeout");
    assert!(started.elapsed() >= Duration::from_secs(4));
    token.cancel();
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let admin = Admin::new("demo-bin", "1.0.0");
    admin.route(Method::POST, "/sync", |_req: Request<Bytes>| async move {
        text(StatusCode::OK, "ok")
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    tokio::spawn(admin.serve(listener, token.clone()));
    let big = "x".repeat(podmates_runtime::admin::MAX_BODY_BYTES + 1);
    let req = format!(
        "POST /sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let resp = raw_request(addr, &req).await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    token.cancel();
}

/// The default admin address (`[::]`, what `:9101` means too) answers on IPv4 and IPv6 loopback:
/// kubelet probes reach the pod IP, which is IPv4, IPv6 or either in a dual-stack cluster.
#[tokio::test]
async fn default_address_answers_on_ipv4_and_ipv6_loopback() {
    let std_listener =
        podmates_runtime::net::bind_tcp("[::]:0".parse().unwrap()).expect("bind [::]:0");
    let listener = TcpListener::from_std(std_listener).unwrap();
    let addr = listener.local_addr().unwrap();
    let admin = Admin::new("demo-bin", "1.0.0");
    let token = CancellationToken::new();
    let server = tokio::spawn(admin.clone().serve(listener, token.clone()));
    let mut hosts = vec!["127.0.0.1".to_owned()];
    // A host without IPv6 gets the IPv4 fallback, which has no IPv6 loopback to ask.
    if addr.is_ipv6() {
        hosts.push("[::1]".to_owned());
    }
    for host in hosts {
        let mut s = TcpStream::connect(format!("{host}:{}", addr.port()))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut resp))
            .await
            .expect("response in time")
            .unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{host}: {resp}");
    }
    token.cancel();
    let _ = server.await;
}

/// Hostile clients: 1,000 slowloris connections (a request head dribbled a byte a second, and
/// reopened when the server closes them) held open for the whole test, while a probe asks for
/// `/healthz` every 200 ms: each answer must come within 1 s, as a kubelet probe's timeout needs.
/// 15 s by default; `PODMATES_SLOWLORIS_SECS=60` for the full minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_within_a_second_under_1000_slowloris_connections() {
    let secs: u64 = std::env::var("PODMATES_SLOWLORIS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin = Admin::new("demo-bin", "1.0.0");
    let token = CancellationToken::new();
    let server = tokio::spawn(admin.clone().serve(listener, token.clone()));

    let stop = CancellationToken::new();
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..1000 {
        let stop = stop.clone();
        let held = held.clone();
        attackers.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                let Ok(mut s) = TcpStream::connect(addr).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut ok = s
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .is_ok();
                while ok && !stop.is_cancelled() {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stop.cancelled() => break,
                    }
                    ok = s.write_all(b"X").await.is_ok();
                }
                held.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    // The flood is in place before the first probe.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while held.load(std::sync::atomic::Ordering::Relaxed) < 1000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the attackers did not connect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut probes = 0;
    let mut slowest = Duration::ZERO;
    while tokio::time::Instant::now() < end {
        let started = tokio::time::Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(1), async {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await?;
            let mut resp = String::new();
            s.read_to_string(&mut resp).await?;
            Ok::<_, std::io::Error>(resp)
        })
        .await;
        let took = started.elapsed();
        slowest = slowest.max(took);
        let resp = answer
            .unwrap_or_else(|_| panic!("probe {probes}: no answer within 1 s"))
            .unwrap_or_else(|e| panic!("probe {probes}: {e}"));
        assert!(resp.starts_with("HTTP/1.1 200"), "probe {probes}: {resp}");
        probes += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    for a in attackers {
        let _ = a.await;
    }
    token.cancel();
    let _ = server.await;
    assert!(
        probes >= secs * 3,
        "only {probes} probes in {secs} s (slowest {slowest:?})"
    );
    eprintln!("{probes} probes answered under the flood, slowest {slowest:?}");
}
