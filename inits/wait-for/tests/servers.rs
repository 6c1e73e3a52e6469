//! wait-for against the real servers it waits for in pods: nginx (status, body, headers, TLS with
//! a CA made by openssl), redis-server with and without a password, PostgreSQL (SCRAM logins)
//! and MariaDB, each started by the test on a loopback port in a temporary directory.

use std::time::Duration;

use crate::common::{
    Finished, WaitFor, mariadb, nginx, pg_init, pg_sql, pg_start, pg_start_with, redis, run,
};

/// Runs wait-for with `args` to its end (at most 15 s) and checks its exit code.
fn exits(code: i32, args: &[&str]) -> Finished {
    let f = run(args, 15);
    assert_eq!(f.code, Some(code), "{args:?}: {}", f.stderr);
    f
}

fn last_error(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn nginx_status_body_header_and_method() {
    let (n, _) = nginx();
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", n.port());
    // 2xx by default.
    let f = exits(0, &["-t", "10s", &url("/healthz")]);
    assert!(f.stderr.contains("status 200 OK"), "{}", f.stderr);
    // A 503 is not ready, and the message says so.
    let f = exits(1, &["-t", "500ms", &url("/starting")]);
    assert!(
        last_error(&f.stderr).contains("status 503 Service Unavailable"),
        "{}",
        f.stderr
    );
    // 404 unless it is expected; redirects count by their own status.
    exits(1, &["-t", "500ms", &url("/nope")]);
    exits(0, &["-t", "5s", "--expect-status", "404", &url("/nope")]);
    exits(
        0,
        &["-t", "5s", "--expect-status-code", "301", &url("/moved")],
    );
    // Body regex (wait4x's flag, and its alias) and substring.
    exits(
        0,
        &[
            "-t",
            "5s",
            "--expect-body-regex",
            r#""status":\s*"UP""#,
            &url("/healthz"),
        ],
    );
    let f = exits(
        1,
        &[
            "-t",
            "500ms",
            "--expect-body",
            r#""status":"DOWN""#,
            &url("/healthz"),
        ],
    );
    assert!(
        last_error(&f.stderr).contains("does not match"),
        "{}",
        f.stderr
    );
    exits(
        0,
        &[
            "-t",
            "5s",
            "--expect-body-contains",
            "\"checks\":3",
            &url("/healthz"),
        ],
    );
    // Response header present and matching, in both of wait4x's spellings.
    exits(
        0,
        &[
            "-t",
            "5s",
            "--expect-header",
            "X-Health: db=up",
            &url("/healthz"),
        ],
    );
    exits(
        1,
        &[
            "-t",
            "500ms",
            "--expect-header",
            "X-Health=db=down",
            &url("/healthz"),
        ],
    );
    let f = exits(
        1,
        &[
            "-t",
            "500ms",
            "--expect-header",
            "X-Missing",
            &url("/healthz"),
        ],
    );
    assert!(
        last_error(&f.stderr).contains("no `x-missing` header"),
        "{}",
        f.stderr
    );
    // Request header, method, basic auth from the URL.
    exits(
        0,
        &[
            "-t",
            "5s",
            "--request-header",
            "X-Probe: yes",
            &url("/need-header"),
        ],
    );
    exits(0, &["-t", "5s", "--method", "post", &url("/post-only")]);
    let with_auth = format!("http://u:p%40ss@127.0.0.1:{}/echo-auth", n.port());
    let f = exits(0, &["-t", "5s", &with_auth]);
    assert!(
        !f.stderr.contains("p%40ss") && !f.stderr.contains("p@ss"),
        "password in the log: {}",
        f.stderr
    );
}

#[test]
fn nginx_over_tls_with_a_private_ca() {
    let (n, tls_port) = nginx();
    let ca = n.dir().join("ca.crt").display().to_string();
    let url = format!("https://127.0.0.1:{tls_port}/healthz");
    exits(0, &["-t", "10s", "--ca-file", &ca, &url]);
    // The system roots do not know the test CA.
    let f = exits(1, &["-t", "500ms", &url]);
    assert!(
        last_error(&f.stderr).contains("TLS handshake"),
        "{}",
        f.stderr
    );
    // Unless verification is off (wait4x's flag name).
    exits(0, &["-t", "10s", "--insecure-skip-tls-verify", &url]);
    // By name: the certificate names localhost too (SNI and name verification).
    let by_name = format!("https://localhost:{tls_port}/healthz");
    exits(0, &["-t", "10s", "--ca-file", &ca, &by_name]);
    // Plain HTTP to the TLS port is not ready: nginx answers 400.
    let plain = format!("http://127.0.0.1:{tls_port}/healthz");
    let f = exits(1, &["-t", "500ms", &plain]);
    assert!(last_error(&f.stderr).contains("status 400"), "{}", f.stderr);
}

#[test]
fn http_server_that_starts_later() {
    let port = crate::common::free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let mut w = WaitFor::spawn(&[
        "--interval",
        "100ms",
        "-t",
        "30s",
        "--expect-status",
        "404",
        &url,
    ]);
    w.wait_log("Connection refused", 10);
    // An HTTP server on that port that answers anything with 404 Not Found.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let f = w.finish(15);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    server.join().unwrap();
}

#[test]
fn redis_with_and_without_a_password() {
    let open = redis(None);
    let f = exits(
        0,
        &["-t", "10s", &format!("redis://127.0.0.1:{}", open.port)],
    );
    assert!(f.stderr.contains("answered PONG"), "{}", f.stderr);
    exits(
        0,
        &["-t", "10s", &format!("redis://127.0.0.1:{}/3", open.port)],
    );

    let locked = redis(Some("s3cret"));
    let f = exits(
        1,
        &["-t", "500ms", &format!("redis://127.0.0.1:{}", locked.port)],
    );
    assert!(last_error(&f.stderr).contains("NOAUTH"), "{}", f.stderr);
    exits(
        0,
        &[
            "-t",
            "10s",
            &format!("redis://:s3cret@127.0.0.1:{}", locked.port),
        ],
    );
    // The ACL form, with the default user.
    exits(
        0,
        &[
            "-t",
            "10s",
            &format!("redis://default:s3cret@127.0.0.1:{}/1", locked.port),
        ],
    );
    let f = exits(
        1,
        &[
            "-t",
            "500ms",
            &format!("redis://:wrong@127.0.0.1:{}", locked.port),
        ],
    );
    let last = last_error(&f.stderr);
    assert!(last.contains("AUTH failed"), "{last}");
    assert!(!last.contains("wrong"), "password in the log: {last}");
    // wait4x's redis command line.
    exits(
        0,
        &[
            "redis",
            &format!("redis://:s3cret@127.0.0.1:{}", locked.port),
        ],
    );
}

#[test]
fn postgres_started_while_waiting_then_real_logins() {
    let pg = pg_init("pg-pass");
    let port = pg.port;
    let good = format!("postgres://postgres:pg-pass@127.0.0.1:{port}/postgres?sslmode=disable");
    let mut w = WaitFor::spawn(&["--interval", "200ms", "-t", "90s", &good]);
    w.wait_log("Connection refused", 10);
    let server = pg_start(pg);
    let f = w.finish(90);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    // The md5 and cleartext password methods, with accounts made for them.
    pg_sql(
        &server,
        "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5-pass'; CREATE ROLE plainuser LOGIN PASSWORD 'plain-pass';",
    );
    for (user, pw, method) in [
        ("md5user", "md5-pass", "md5"),
        ("plainuser", "plain-pass", "password"),
    ] {
        let url = format!("postgres://{user}:{pw}@127.0.0.1:{port}/postgres");
        let f = run(&["-t", "10s", &url], 15);
        assert_eq!(f.code, Some(0), "{user}: {}", f.stderr);
        assert!(
            f.stderr.contains(&format!("as `{user}` ({method})")),
            "{user}: {}",
            f.stderr
        );
        let url = format!("postgres://{user}:wrong@127.0.0.1:{port}/postgres");
        let f = run(&["-t", "500ms", &url], 15);
        assert_eq!(f.code, Some(1), "{user}: {}", f.stderr);
        assert!(
            last_error(&f.stderr).contains("password authentication failed"),
            "{user}: {}",
            f.stderr
        );
    }
    assert!(
        f.stderr.contains(
            "logged in to database `postgres` as `postgres` (SCRAM-SHA-256), SELECT 1 answered"
        ),
        "{}",
        f.stderr
    );

    // Without a password: the startup handshake, read as pg_isready reads it.
    let f = run(
        &["-t", "10s", &format!("postgresql://127.0.0.1:{port}")],
        15,
    );
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(
        f.stderr
            .contains("accepting connections (asked for SCRAM authentication"),
        "{}",
        f.stderr
    );
    // A wrong password is not ready, with the server's own message.
    let f = exits(
        1,
        &[
            "-t",
            "1s",
            &format!("postgres://postgres:nope@127.0.0.1:{port}/postgres"),
        ],
    );
    let last = last_error(&f.stderr);
    assert!(
        last.contains("password authentication failed for user \"postgres\" (28P01)"),
        "{last}"
    );
    // A database that does not exist, with the right password.
    let f = exits(
        1,
        &[
            "-t",
            "1s",
            &format!("postgres://postgres:pg-pass@127.0.0.1:{port}/nodb"),
        ],
    );
    assert!(
        last_error(&f.stderr).contains("database \"nodb\" does not exist"),
        "{}",
        f.stderr
    );
    // wait4x's postgresql command line.
    exits(0, &["postgresql", &good]);
    // sslmode=require against a server without TLS.
    let f = exits(
        1,
        &[
            "-t",
            "1s",
            &format!("postgres://postgres:pg-pass@127.0.0.1:{port}/postgres?sslmode=require"),
        ],
    );
    assert!(
        last_error(&f.stderr).contains("does not accept TLS"),
        "{}",
        f.stderr
    );
}

#[test]
fn postgres_over_tls() {
    let pg = pg_init("tls-pass");
    let port = pg.port;
    let server = pg_start_with(pg, true);
    let ca = server.dir.path().join("ca.crt").display().to_string();
    let url = |mode: &str, host: &str| {
        format!("postgres://postgres:tls-pass@{host}:{port}/postgres?sslmode={mode}")
    };
    // Unverified TLS, as libpq's require.
    let f = run(&["-t", "60s", &url("require", "127.0.0.1")], 70);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(f.stderr.contains("SELECT 1 answered"), "{}", f.stderr);
    // Verified against the test CA, by address and by name.
    let f = run(
        &[
            "-t",
            "10s",
            "--ca-file",
            &ca,
            &url("verify-full", "127.0.0.1"),
        ],
        15,
    );
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    exits(
        0,
        &[
            "-t",
            "10s",
            "--ca-file",
            &ca,
            &url("verify-ca", "localhost"),
        ],
    );
    // The system roots do not know the test CA.
    let f = exits(1, &["-t", "1s", &url("verify-full", "127.0.0.1")]);
    assert!(
        last_error(&f.stderr).contains("TLS handshake"),
        "{}",
        f.stderr
    );
}

#[test]
fn mariadb_handshake_and_login() {
    let db = mariadb("app-pass");
    let port = db.port;
    let f = exits(0, &["-t", "10s", &format!("mysql://127.0.0.1:{port}")]);
    assert!(f.stderr.contains("handshake from"), "{}", f.stderr);
    assert!(f.stderr.contains("MariaDB"), "{}", f.stderr);
    let f = exits(
        0,
        &[
            "-t",
            "10s",
            &format!("mysql://app:app-pass@127.0.0.1:{port}/app"),
        ],
    );
    assert!(
        f.stderr.contains("as `app`, SELECT 1 answered"),
        "{}",
        f.stderr
    );
    let f = exits(
        1,
        &[
            "-t",
            "1s",
            &format!("mysql://app:wrong@127.0.0.1:{port}/app"),
        ],
    );
    let last = last_error(&f.stderr);
    assert!(
        last.contains("error 1045: Access denied for user 'app'@'127.0.0.1'"),
        "{last}"
    );
    // wait4x's DSN form.
    let f = exits(
        0,
        &["mysql", &format!("app:app-pass@tcp(127.0.0.1:{port})/app")],
    );
    assert!(f.elapsed < Duration::from_secs(10));
}
