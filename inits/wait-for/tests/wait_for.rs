//! wait-for against TCP ports, files and a DNS server that appear while it waits; timeouts, bad
//! usage, signals and the command lines of the tools it replaces.

use std::net::TcpListener;
use std::time::Duration;

use crate::common::{WaitFor, add_hosts, dnsmasq, free_port, run};

#[test]
fn tcp_port_that_opens_after_two_seconds() {
    let port = free_port();
    let target = format!("tcp://127.0.0.1:{port}");
    let mut w = WaitFor::spawn(&["--timeout", "30s", "--interval", "200ms", &target]);
    w.wait_log("Connection refused", 10);
    // The scenario itself: the server comes up two seconds after wait-for started.
    std::thread::sleep(Duration::from_secs(2));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let f = w.finish(20);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(f.elapsed >= Duration::from_secs(2), "{:?}", f.elapsed);
    assert!(f.stderr.contains("not ready"), "{}", f.stderr);
    assert!(f.stderr.contains(&format!("url={target}")), "{}", f.stderr);
    assert!(f.stderr.contains("connected to 127.0.0.1:"), "{}", f.stderr);
    // About ten attempts in two seconds at 200 ms, not a busy loop.
    let attempts = f.stderr.matches("not ready url=").count();
    assert!(
        (3..=30).contains(&attempts),
        "{attempts} attempts:\n{}",
        f.stderr
    );
    drop(listener);
}

#[test]
fn bare_host_port_and_wait4x_tcp_command_line() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let f = run(&[&addr], 10);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let f = run(&["tcp", &addr, "-t", "5s"], 10);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
}

#[test]
fn timeout_names_what_was_not_ready_and_its_last_error() {
    let port = free_port();
    let dead = format!("tcp://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("present");
    std::fs::write(&present, "x").unwrap();
    let present = format!("file://{}", present.display());
    let f = run(
        &["--timeout", "1s", "--interval", "100ms", &dead, &present],
        15,
    );
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    assert!(f.elapsed < Duration::from_secs(8), "{:?}", f.elapsed);
    let last = f
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_default();
    assert!(last.contains("timed out after 1s"), "{last}");
    assert!(
        last.contains(&format!(
            "not ready: {dead} (last error: connect: 127.0.0.1:{port}: Connection refused"
        )),
        "{last}"
    );
    // The file was ready: it is not in the list.
    assert!(!last.contains(&present), "{last}");
}

#[test]
fn any_is_ready_with_one_target() {
    let dead = format!("tcp://127.0.0.1:{}", free_port());
    let f = run(&["--any", "--timeout", "20s", &dead, "file:///"], 15);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(f.stderr.contains("ready url=file:///"), "{}", f.stderr);
}

#[test]
fn invert_check_waits_until_a_port_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut w = WaitFor::spawn(&[
        "--invert-check",
        "--interval",
        "100ms",
        "--timeout",
        "30s",
        &target,
    ]);
    w.wait_log("still answering", 10);
    drop(listener);
    let f = w.finish(15);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
}

#[test]
fn bad_usage_exits_64_naming_the_setting() {
    for (args, expect) in [
        (vec!["ftp://x"], "unknown scheme `ftp://`"),
        (vec!["tcp://db"], "no port"),
        (vec!["tcp://db:70000"], "port `70000`"),
        (vec!["myservice"], "not a target"),
        (vec!["dns://a..b"], "empty label"),
        (vec!["--timeout", "10x", "tcp://a:1"], "10x"),
        (vec!["--interval", "0", "tcp://a:1"], "--interval"),
        (
            vec!["--expect-status", "6xx", "http://a"],
            "--expect-status",
        ),
        (
            vec!["--expect-body-regex", "(", "http://a"],
            "--expect-body-regex",
        ),
        (vec!["--dns-server", "nope", "dns://a"], "--dns-server"),
        (vec!["--jitter", "2", "tcp://a:1"], "--jitter"),
        (
            vec!["--ca-file", "/nonexistent/ca.pem", "https://a"],
            "--ca-file /nonexistent/ca.pem",
        ),
        (vec!["--no-such-flag", "tcp://a:1"], "--no-such-flag"),
        (
            vec!["postgres://db?sslmode=sometimes"],
            "sslmode `sometimes`",
        ),
        (vec![], "TARGET"),
    ] {
        let f = run(&args, 10);
        assert_eq!(f.code, Some(64), "{args:?}: {}", f.stderr);
        assert!(
            f.stderr.contains(expect),
            "{args:?}: want `{expect}` in {}",
            f.stderr
        );
        assert!(!f.stderr.contains("panicked"), "{args:?}: {}", f.stderr);
    }
}

#[test]
fn targets_and_flags_from_the_environment() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dead = free_port();
    // Both targets from WAIT_FOR_TARGETS, --any and --timeout from theirs.
    let targets = format!("tcp://127.0.0.1:{dead} tcp://127.0.0.1:{port}");
    let f = WaitFor::spawn_env(
        &[],
        &[
            ("WAIT_FOR_TARGETS", &targets),
            ("WAIT_FOR_ANY", "true"),
            ("WAIT_FOR_TIMEOUT", "20s"),
        ],
    )
    .finish(15);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let f = WaitFor::spawn_env(
        &[],
        &[
            ("WAIT_FOR_TARGETS", &targets),
            ("WAIT_FOR_TIMEOUT", "500ms"),
        ],
    )
    .finish(15);
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    let f = WaitFor::spawn_env(&["tcp://a:1"], &[("WAIT_FOR_TIMEOUT", "soon")]).finish(15);
    assert_eq!(f.code, Some(64), "{}", f.stderr);
}

#[test]
fn a_file_that_appears_then_gets_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ready");
    let target = format!("file://{}?contains=go", path.display());
    let mut w = WaitFor::spawn(&["--interval", "100ms", "--timeout", "30s", &target]);
    w.wait_log("does not exist", 10);
    std::fs::write(&path, "").unwrap();
    w.wait_log("does not contain `go`", 10);
    std::fs::write(&path, "ready: go\n").unwrap();
    let f = w.finish(10);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(f.stderr.contains("contains `go`"), "{}", f.stderr);
    // ?nonempty
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let f = run(
        &[
            "-t",
            "300ms",
            &format!("file://{}?nonempty", empty.display()),
        ],
        10,
    );
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    assert!(f.stderr.contains("is empty"), "{}", f.stderr);
}

#[test]
fn sigterm_ends_the_wait_promptly() {
    let target = format!("tcp://127.0.0.1:{}", free_port());
    let mut w = WaitFor::spawn(&["--interval", "10s", &target]);
    w.wait_log("not ready", 10);
    let sent = std::time::Instant::now();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &w.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let f = w.finish(10);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    assert!(
        f.stderr.contains("stopped by a signal; not ready"),
        "{}",
        f.stderr
    );
}

#[test]
fn a_command_after_the_double_dash_runs_once_ready() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("echo ran > {}", marker.display());
    let f = run(&["file:///", "--", "/bin/sh", "-c", &script], 10);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    // Not ready: the command is not run.
    std::fs::remove_file(&marker).unwrap();
    let f = run(
        &[
            "-t",
            "200ms",
            "file:///nonexistent",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ],
        10,
    );
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    assert!(!marker.exists());
}

#[test]
fn admin_server_only_when_asked() {
    let target = format!("tcp://127.0.0.1:{}", free_port());
    let mut w = WaitFor::spawn(&["--interval", "100ms", &target]);
    w.wait_log("not ready", 10);
    assert!(
        !w.stderr().contains("admin server listening"),
        "{}",
        w.stderr()
    );
    drop(w);
    let admin = free_port();
    let addr = format!("127.0.0.1:{admin}");
    let mut w = WaitFor::spawn(&["--interval", "100ms", "--admin-addr", &addr, &target]);
    w.wait_log("admin server listening", 10);
    let body = crate::common::eventually(10, "metrics with an attempt", || {
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        use std::io::{Read, Write};
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.contains("wait_for_attempts_total{").then_some(out)
    });
    assert!(
        body.contains(&format!("wait_for_target_ready{{target=\"{target}\"}} 0")),
        "{body}"
    );
    assert!(body.contains("result=\"not_ready\""), "{body}");
}

/// The busybox loop's name, `myservice`, in a pod whose resolv.conf searches
/// `svc.cluster.local` with ndots:5: the name exists only as `myservice.svc.cluster.local`, and
/// appears on the DNS server while wait-for waits.
#[test]
fn dns_name_that_appears_later_through_the_search_list() {
    let dns = dnsmasq(&["_http._tcp.web.svc.cluster.local,web.svc.cluster.local,8080"]);
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 10.255.255.1\nsearch svc.cluster.local\noptions ndots:5\n",
    )
    .unwrap();
    let server = format!("127.0.0.1:{}", dns.port);
    let r = resolv.display().to_string();
    let mut w = WaitFor::spawn(&[
        "--interval",
        "100ms",
        "--timeout",
        "60s",
        "--resolv-conf",
        &r,
        "--dns-server",
        &server,
        "dns://myservice",
    ]);
    w.wait_log("myservice.svc.cluster.local", 10);
    add_hosts(&dns, "myservice", "10.1.2.3 myservice.svc.cluster.local\n");
    let f = w.finish(20);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(
        f.stderr.contains("myservice.svc.cluster.local: 10.1.2.3"),
        "{}",
        f.stderr
    );
    // Before it appeared, both names were tried: the searched one first, then the bare one.
    let first = f.stderr.lines().find(|l| l.contains("not ready")).unwrap();
    let searched = first.find("myservice.svc.cluster.local (").unwrap();
    let bare = first.find("; myservice (").unwrap();
    assert!(searched < bare, "{first}");

    // SRV for _service._proto names, through the same search list; the environment variables.
    let f = WaitFor::spawn_env(
        &["-t", "10s", "dns://_http._tcp.web"],
        &[
            ("WAIT_FOR_RESOLV_CONF", &r),
            ("WAIT_FOR_DNS_SERVER", &server),
        ],
    )
    .finish(15);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(
        f.stderr.contains("SRV 0 0 8080 web.svc.cluster.local"),
        "{}",
        f.stderr
    );

    // An absolute name is not searched; a name that never appears times out naming the names.
    let f = run(
        &[
            "-t",
            "500ms",
            "--resolv-conf",
            &r,
            "--dns-server",
            &server,
            "dns://myservice.",
        ],
        10,
    );
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    let last = f
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains("ERROR"))
        .unwrap();
    assert!(
        last.contains("dns://myservice. (last error: no records: myservice ("),
        "{last}"
    );
    assert!(!last.contains("myservice.svc.cluster.local"), "{last}");

    // RFC 4501 form: the nameserver in the URL.
    let url = format!("dns://{server}/myservice.svc.cluster.local?type=A");
    let f = run(&["-t", "10s", "--resolv-conf", "/nonexistent", &url], 15);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
}

#[test]
fn dns_server_that_does_not_answer_is_an_attempt_error() {
    // A UDP port with nobody on it: refused at once, or no answer within the attempt timeout.
    let port = free_port();
    let server = format!("127.0.0.1:{port}");
    let f = run(
        &[
            "-t",
            "1s",
            "--attempt-timeout",
            "300ms",
            "--resolv-conf",
            "/nonexistent",
            "--dns-server",
            &server,
            "dns://x",
        ],
        10,
    );
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    assert!(f.stderr.contains(&format!("x ({server}: ")), "{}", f.stderr);
}

#[test]
fn dockerize_and_wait_for_it_command_lines_run() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let target = format!("tcp://127.0.0.1:{port}");
    // dockerize -wait ... -timeout ...
    let f = run(
        &["-wait", &target, "-wait", "file:///", "-timeout", "10s"],
        15,
    );
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert_eq!(
        f.stderr.matches("ready url=").count() - f.stderr.matches("not ready url=").count(),
        2,
        "{}",
        f.stderr
    );
    // wait-for-it.sh --host= --port= -t N -s -- command
    let f = run(
        &[
            "--host=127.0.0.1",
            &format!("--port={port}"),
            "-t",
            "10",
            "-s",
            "--",
            "/bin/true",
        ],
        15,
    );
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    // dockerize's default 10 s timeout applies to its form.
    let dead = format!("tcp://127.0.0.1:{}", free_port());
    let f = run(&["-wait", &dead, "-wait-retry-interval", "2s"], 20);
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    assert!(f.stderr.contains("timed out after 10s"), "{}", f.stderr);
}

#[test]
fn json_log_lines_name_the_target_and_the_error() {
    let dead = format!("tcp://127.0.0.1:{}", free_port());
    let f = run(&["--log-format", "json", "-t", "300ms", &dead], 10);
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    let attempt = f
        .stderr
        .lines()
        .find(|l| l.contains("\"message\":\"not ready\""))
        .unwrap_or_else(|| panic!("no attempt line in {}", f.stderr));
    assert!(
        attempt.starts_with('{') && attempt.ends_with('}'),
        "{attempt}"
    );
    assert!(
        attempt.contains(&format!("\"url\":\"{dead}\"")),
        "{attempt}"
    );
    assert!(
        attempt.contains("\"error\":\"connect: 127.0.0.1:"),
        "{attempt}"
    );
    assert!(attempt.contains("\"attempt\":1"), "{attempt}");
    // -q: only the final error.
    let f = run(&["-q", "-t", "300ms", &dead], 10);
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    assert!(f.stderr.contains("timed out after 300ms"), "{}", f.stderr);
}

#[test]
fn an_attempt_that_hangs_is_cut_at_the_attempt_timeout() {
    // The kernel completes the handshake into the backlog; nobody ever answers the request.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/", silent.local_addr().unwrap().port());
    let f = run(
        &[
            "--attempt-timeout",
            "300ms",
            "--interval",
            "100ms",
            "-t",
            "2s",
            &url,
        ],
        10,
    );
    assert_eq!(f.code, Some(1), "{}", f.stderr);
    assert!(
        f.stderr
            .contains("no answer within 300ms (--attempt-timeout)"),
        "{}",
        f.stderr
    );
    // Several attempts fit in the 2 s, each cut at 300 ms.
    let attempts = f.stderr.matches("not ready url=").count();
    assert!(attempts >= 3, "{attempts} attempts: {}", f.stderr);
    drop(silent);
}
