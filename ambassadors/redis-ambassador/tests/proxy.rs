//! The proxy against real redis-server shards: pipelining, split commands, local commands,
//! errors that keep the connection, malformed input, limits, AUTH and redis_db, timeouts,
//! ejection and recovery, reload, stats, metrics and the drain on SIGTERM.

use std::time::{Duration, Instant};

use crate::common::{
    Client, Ours, Redis, cmd, eventually, eventually_ok, free_ports, http_get, keys_on, ours,
    port_of, read_stats, redis, redis_on, write,
};
use redis_ambassador::config;

fn pool_text(name: &str, listen: u16, extra: &str, servers: &[u16]) -> String {
    let mut t =
        format!("{name}:\n  listen: 127.0.0.1:{listen}\n  redis: true\n{extra}  servers:\n");
    for (i, p) in servers.iter().enumerate() {
        t.push_str(&format!("   - 127.0.0.1:{p}:1 shard{i}\n"));
    }
    t
}

/// A proxy with one pool `name` (`extra`: its settings) over `n` fresh redis-servers, started
/// with `args`; `dir` holds its configuration, whose text is `text`.
struct Proxied {
    dir: tempfile::TempDir,
    shards: Vec<Redis>,
    ports: Vec<u16>,
    listen: u16,
    text: String,
    p: Ours,
}

fn proxied(n: usize, name: &str, extra: &str, args: &[&str]) -> Proxied {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<Redis> = (0..n).map(|_| redis()).collect();
    let ports: Vec<u16> = shards.iter().map(|s| s.port).collect();
    let listen = free_ports(1)[0];
    let text = pool_text(name, listen, extra, &ports);
    let conf = write(dir.path(), "n.yml", &text);
    let p = ours(&conf, listen, args);
    Proxied {
        dir,
        shards,
        ports,
        listen,
        text,
        p,
    }
}

#[test]
fn pipelining_split_commands_and_local_commands() {
    let Proxied {
        dir: _dir,
        shards: _shards,
        ports,
        listen,
        text,
        p,
    } = proxied(2, "alpha", "  hash_tag: \"{}\"\n", &[]);
    let pool = &config::parse(&text).unwrap()[0];
    let mut c = Client::connect(listen);

    // A deep pipeline: 2000 SETs and GETs in one write, replies in order.
    let cmds: Vec<Vec<u8>> = (0..2000)
        .flat_map(|i| {
            let k = format!("k{i}");
            let v = format!("v{i}");
            [
                cmd(&[b"SET", k.as_bytes(), v.as_bytes()]),
                cmd(&[b"GET", k.as_bytes()]),
            ]
        })
        .collect();
    let replies = c.pipeline(&cmds);
    for i in 0..2000 {
        assert_eq!(replies[2 * i], b"+OK\r\n");
        let v = format!("v{i}");
        assert_eq!(
            replies[2 * i + 1],
            format!("${}\r\n{v}\r\n", v.len()).into_bytes()
        );
    }
    // Each key is on the server the ring says, and only there.
    let mut direct: Vec<Client> = ports.iter().map(|p| Client::connect(*p)).collect();
    for i in (0..2000).step_by(97) {
        let k = format!("k{i}");
        let s = crate::common::server_of(pool, k.as_bytes());
        assert_eq!(direct[s].q(&format!("EXISTS {k}")), ":1\r\n");
        assert_eq!(direct[1 - s].q(&format!("EXISTS {k}")), ":0\r\n");
    }

    // Split commands across both shards, merged in request order.
    let a = keys_on(pool, 0, "a", 3);
    let b = keys_on(pool, 1, "b", 3);
    let mix = [&a[0], &b[0], &a[1], &b[1], &a[2], &b[2]];
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    let vals: Vec<String> = mix.iter().map(|k| format!("val-{k}")).collect();
    for (k, v) in mix.iter().zip(&vals) {
        mset.push(k.as_bytes());
        mset.push(v.as_bytes());
    }
    assert_eq!(c.call(&mset), b"+OK\r\n");
    let want_a2 = format!("val-{}", a[2]);
    assert_eq!(
        direct[0].q(&format!("GET {}", a[2])),
        format!("${}\r\n{want_a2}\r\n", want_a2.len())
    );
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(mix.iter().map(|k| k.as_bytes()));
    mget.insert(3, b"missing-key");
    let r = c.call(&mget);
    let mut want = b"*7\r\n".to_vec();
    for (i, k) in mix.iter().enumerate() {
        if i == 2 {
            want.extend_from_slice(b"$-1\r\n");
        }
        let v = format!("val-{k}");
        want.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
    }
    assert_eq!(String::from_utf8_lossy(&r), String::from_utf8_lossy(&want));
    let keys = format!("{} {} {} nope", a[0], b[0], b[1]);
    assert_eq!(c.q(&format!("EXISTS {keys}")), ":3\r\n");
    assert_eq!(c.q(&format!("TOUCH {keys}")), ":3\r\n");
    assert_eq!(c.q(&format!("UNLINK {} {}", a[0], b[0])), ":2\r\n");
    assert_eq!(
        c.q(&format!("DEL {} {} {} {}", a[1], b[1], a[0], b[2])),
        ":3\r\n"
    );
    assert_eq!(c.q(&format!("EXISTS {} {}", a[2], b[2])), ":1\r\n");

    // Multi-key commands on one server are forwarded; across servers they are refused clearly.
    assert_eq!(c.q("SADD {u1}:x 1 2 3"), ":3\r\n");
    assert_eq!(c.q("SADD {u1}:y 2 3 4"), ":3\r\n");
    assert_eq!(c.q("SINTERSTORE {u1}:z {u1}:x {u1}:y"), ":2\r\n");
    let x = &a[2];
    let y = &b[2];
    let e = c.q(&format!("RENAME {x} {y}"));
    assert!(e.starts_with("-CROSSSHARD") && e.contains("RENAME"), "{e}");

    // Local commands.
    assert_eq!(c.q("PING"), "+PONG\r\n");
    assert_eq!(c.q("PING hi"), "$2\r\nhi\r\n");
    assert_eq!(c.q("ECHO hello"), "$5\r\nhello\r\n");
    assert_eq!(c.q("SELECT 0"), "+OK\r\n");
    assert!(c.q("SELECT 1").starts_with("-ERR"));
    assert_eq!(c.q("CLIENT SETNAME app"), "+OK\r\n");
    assert_eq!(c.q("CLIENT GETNAME"), "$3\r\napp\r\n");
    assert_eq!(c.q("CLIENT SETINFO lib-name redis-py"), "+OK\r\n");
    assert!(c.q("COMMAND COUNT").starts_with(':'));
    let h = c.q("HELLO 2");
    assert!(h.starts_with("*14\r\n") && h.contains("proto\r\n:2"), "{h}");
    assert!(c.q("HELLO").starts_with("*14\r\n"));
    assert!(c.q("HELLO 4").starts_with("-NOPROTO"));
    // HELLO 3: a map, and from then on the servers' own RESP3 replies.
    let h = c.q("HELLO 3");
    assert!(h.starts_with("%7\r\n") && h.contains("proto\r\n:3"), "{h}");
    assert_eq!(c.q("HSET {u1}:h f v"), ":1\r\n");
    assert_eq!(c.q("HGETALL {u1}:h"), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(c.q("GET {u1}:none"), "_\r\n");
    assert_eq!(c.q("CLIENT GETNAME"), "$3\r\napp\r\n");
    assert!(c.q("INFO server").starts_with('='));
    assert!(c.q("HELLO 2").starts_with("*14\r\n"));
    assert_eq!(c.q("GET {u1}:none"), "$-1\r\n");

    // Unknown and unsupported commands: an error naming the command, the connection stays.
    let e = c.q("MIGRATE h 1 k 0 10");
    assert!(e.starts_with("-ERR") && e.contains("'MIGRATE'"), "{e}");
    let e = c.q("FLUSHALL");
    assert!(e.starts_with("-ERR") && e.contains("allow_flush"), "{e}");
    let e = c.q("FOOBAR 1 2");
    assert!(e.contains("'FOOBAR'"), "{e}");
    assert!(
        c.q("GET")
            .starts_with("-ERR wrong number of arguments for 'get'")
    );
    assert_eq!(c.q("GET k7"), "$2\r\nv7\r\n");

    // Inline commands (telnet-style) work too.
    c.send(b"SET inl 42\r\nGET inl\r\n");
    assert_eq!(c.read(), b"+OK\r\n");
    assert_eq!(c.read(), b"$2\r\n42\r\n");

    // nutcracker stats JSON and Prometheus metrics.
    let st = read_stats(p.stats_port);
    assert_eq!(st["service"], "nutcracker");
    for f in [
        "source",
        "version",
        "uptime",
        "timestamp",
        "total_connections",
        "curr_connections",
    ] {
        assert!(st.get(f).is_some(), "stats field {f}");
    }
    let alpha = &st["alpha"];
    for f in [
        "client_eof",
        "client_err",
        "client_connections",
        "server_ejects",
        "forward_error",
        "fragments",
    ] {
        assert!(alpha.get(f).is_some(), "pool field {f}");
    }
    assert!(alpha["fragments"].as_u64().unwrap() >= 10);
    let s0 = &alpha["shard0"];
    for f in [
        "server_eof",
        "server_err",
        "server_timedout",
        "server_connections",
        "server_ejected_at",
        "requests",
        "request_bytes",
        "responses",
        "response_bytes",
        "in_queue",
        "in_queue_bytes",
        "out_queue",
        "out_queue_bytes",
    ] {
        assert!(s0.get(f).is_some(), "server field {f}");
    }
    let total = s0["requests"].as_u64().unwrap() + alpha["shard1"]["requests"].as_u64().unwrap();
    assert!(total >= 4000, "{total}");
    let m = http_get(p.admin_port, "/metrics");
    for name in [
        "redis_ambassador_requests_total{pool=\"alpha\",server=\"shard0\",command=\"GET\"}",
        "redis_ambassador_errors_total",
        "redis_ambassador_request_duration_seconds_bucket",
        "redis_ambassador_client_connections{pool=\"alpha\"} 1",
        "redis_ambassador_server_connections",
        "redis_ambassador_server_queue_depth",
    ] {
        assert!(m.contains(name), "metric {name} missing:\n{m}");
    }
}

#[test]
fn malformed_input_and_limits_close_only_that_client() {
    let dir = tempfile::tempdir().unwrap();
    let shard = redis();
    let listen = free_ports(1)[0];
    let conf = write(
        dir.path(),
        "n.yml",
        &pool_text("p", listen, "", &[shard.port]),
    );
    let _p = ours(
        &conf,
        listen,
        &["--max-request-bytes", "4096", "--max-pipeline", "8"],
    );
    let mut good = Client::connect(listen);
    assert_eq!(good.q("SET a 1"), "+OK\r\n");

    let mut bad = Client::connect(listen);
    bad.send(b"*2\r\n$3\r\nGET\r\n:1\r\n");
    let r = String::from_utf8_lossy(&bad.read()).into_owned();
    assert!(r.starts_with("-ERR Protocol error"), "{r}");
    assert!(bad.try_read().is_none(), "the connection must be closed");

    let mut big = Client::connect(listen);
    let v = vec![b'x'; 10_000];
    big.send(&cmd(&[b"SET", b"big", &v]));
    let r = String::from_utf8_lossy(&big.read()).into_owned();
    assert!(
        r.starts_with("-ERR Protocol error") && r.contains("maximum request size"),
        "{r}"
    );
    assert!(big.try_read().is_none());

    // A pipeline deeper than --max-pipeline is served in rounds, all replies in order.
    let cmds: Vec<Vec<u8>> = (0..100)
        .map(|i| cmd(&[b"ECHO", format!("{i}").as_bytes()]))
        .collect();
    let replies = good.pipeline(&cmds);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(
            r,
            &format!("${}\r\n{i}\r\n", format!("{i}").len()).into_bytes()
        );
    }
    assert_eq!(good.q("GET a"), "$1\r\n1\r\n");
}

#[test]
fn auth_and_db_are_handled_like_twemproxy() {
    let dir = tempfile::tempdir().unwrap();
    let shard = redis_on(0, &["--requirepass", "s3cret"]);
    let listen = free_ports(1)[0];
    let extra = "  redis_auth: s3cret\n  redis_db: 3\n  redis_users:\n    app: apppw\n";
    let conf = write(
        dir.path(),
        "n.yml",
        &pool_text("p", listen, extra, &[shard.port]),
    );
    let _p = ours(&conf, listen, &[]);
    let mut c = Client::connect(listen);
    assert!(c.q("GET x").starts_with("-NOAUTH"));
    assert!(c.q("AUTH wrong").starts_with("-WRONGPASS"));
    assert!(c.q("GET x").starts_with("-NOAUTH"));
    assert_eq!(c.q("AUTH s3cret"), "+OK\r\n");
    assert_eq!(c.q("SET x 1"), "+OK\r\n");
    assert_eq!(c.q("SELECT 3"), "+OK\r\n");
    // The key is in db 3 of the backend: the proxy authenticated and selected it.
    let mut d = Client::connect(shard.port);
    assert_eq!(d.q("AUTH s3cret"), "+OK\r\n");
    assert_eq!(d.q("EXISTS x"), ":0\r\n");
    assert_eq!(d.q("SELECT 3"), "+OK\r\n");
    assert_eq!(d.q("EXISTS x"), ":1\r\n");
    // HELLO with AUTH authenticates a new client in one step.
    let mut h = Client::connect(listen);
    assert!(h.q("HELLO 2 AUTH default s3cret").starts_with("*14"));
    assert_eq!(h.q("GET x"), "$1\r\n1\r\n");
    // ACL users: only the configured ones, each with its own password; HELLO 3 AUTH too.
    let mut u = Client::connect(listen);
    assert!(u.q("AUTH anyone s3cret").starts_with("-WRONGPASS"));
    assert!(u.q("AUTH app s3cret").starts_with("-WRONGPASS"));
    assert!(u.q("GET x").starts_with("-NOAUTH"));
    assert_eq!(u.q("AUTH app apppw"), "+OK\r\n");
    assert_eq!(u.q("GET x"), "$1\r\n1\r\n");
    let mut v = Client::connect(listen);
    assert!(v.q("HELLO 3 AUTH nobody s3cret").starts_with("-WRONGPASS"));
    let hello = v.q("HELLO 3 AUTH app apppw SETNAME web");
    assert!(hello.starts_with("%7\r\n"), "{hello}");
    assert_eq!(v.q("CLIENT GETNAME"), "$3\r\nweb\r\n");
    assert_eq!(v.q("GET x"), "$1\r\n1\r\n");
}

#[test]
fn timeout_fails_only_the_affected_requests() {
    // Long enough that a request to the live shard, on a new connection, is well inside it even
    // on a loaded machine: then its speed shows it does not wait behind the frozen shard.
    let Proxied {
        dir: _dir,
        shards,
        ports: _,
        listen,
        text,
        p: _p,
    } = proxied(2, "p", "  timeout: 1500\n", &[]);
    let pool = &config::parse(&text).unwrap()[0];
    let slow_key = &keys_on(pool, 0, "s", 1)[0];
    let fast_key = &keys_on(pool, 1, "f", 1)[0];
    let mut c = Client::connect(listen);
    assert_eq!(c.q(&format!("SET {slow_key} 1")), "+OK\r\n");
    assert_eq!(c.q(&format!("SET {fast_key} 2")), "+OK\r\n");
    // Freeze shard 0: its requests time out, shard 1 keeps answering, on the same client too.
    let idx0 = shards
        .iter()
        .position(|s| s.port == port_of(pool, 0))
        .unwrap();
    shards[idx0].proc.signal("STOP");
    let t = Instant::now();
    let r = c.q(&format!("GET {slow_key}"));
    let took = t.elapsed();
    assert!(r.starts_with("-ERR timeout"), "{r}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let mut other = Client::connect(listen);
    let t = Instant::now();
    assert_eq!(other.q(&format!("GET {fast_key}")), "$1\r\n2\r\n");
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(c.q(&format!("GET {fast_key}")), "$1\r\n2\r\n");
    shards[idx0].proc.signal("CONT");
    // The late reply is discarded and the connection stays in step.
    eventually("shard 0 answers again", 5, || {
        c.q(&format!("GET {slow_key}")) == "$1\r\n1\r\n"
    });
}

#[test]
fn ejection_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let a = redis();
    let b_port = free_ports(1)[0];
    let b = redis_on(b_port, &[]);
    let listen = free_ports(1)[0];
    let extra = "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 1000\n  timeout: 500\n";
    let text = pool_text("p", listen, extra, &[a.port, b_port]);
    let pool = &config::parse(&text).unwrap()[0];
    let conf = write(dir.path(), "n.yml", &text);
    let p = ours(&conf, listen, &[]);
    let b_index = (0..2).find(|&i| port_of(pool, i) == b_port).unwrap();
    let k = &keys_on(pool, b_index, "e", 1)[0];
    let mut c = Client::connect(listen);
    assert_eq!(c.q(&format!("SET {k} before")), "+OK\r\n");
    drop(b);
    // The first request after the kill fails; then the server is ejected and the key is served
    // by the remaining shard.
    eventually("ejection", 10, || {
        c.q(&format!("SET {k} during")) == "+OK\r\n"
    });
    let mut direct_a = Client::connect(a.port);
    assert_eq!(direct_a.q(&format!("GET {k}")), "$6\r\nduring\r\n");
    let st = read_stats(p.stats_port);
    assert!(st["p"]["server_ejects"].as_u64().unwrap() >= 1, "{st}");
    let m = http_get(p.admin_port, "/metrics");
    assert!(
        m.contains("redis_ambassador_ejections_total{pool=\"p\""),
        "{m}"
    );
    // Restart the shard on the same port: after server_retry_timeout the key goes back to it.
    let _b2 = redis_on(b_port, &[]);
    eventually("recovery", 10, || {
        c.q(&format!("SET {k} after")) == "+OK\r\n" && {
            let mut d = Client::connect(b_port);
            d.q(&format!("GET {k}")) == "$5\r\nafter\r\n"
        }
    });
}

#[test]
fn sighup_reloads_and_keeps_clients() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = redis();
    let s2 = redis();
    let listen = free_ports(1)[0];
    let conf = write(dir.path(), "n.yml", &pool_text("p", listen, "", &[s1.port]));
    let p = ours(&conf, listen, &[]);
    let mut c = Client::connect(listen);
    assert_eq!(c.q("SET r 1"), "+OK\r\n");
    // An invalid file is rejected and the running configuration stays.
    write(
        dir.path(),
        "n.yml",
        "p:\n  listen: 127.0.0.1:1\n  redis: true\n  bogus: 1\n",
    );
    p.proc.signal("HUP");
    eventually("the rejected reload counted", 10, || {
        http_get(p.admin_port, "/metrics")
            .contains("redis_ambassador_config_reloads_total{result=\"error\"} 1")
    });
    assert_eq!(c.q("GET r"), "$1\r\n1\r\n");
    // A valid file moving the pool to another server is applied; the same client connection
    // now reaches the new server, named by host name (resolved when connecting).
    write(
        dir.path(),
        "n.yml",
        &format!(
            "p:\n  listen: 127.0.0.1:{listen}\n  redis: true\n  servers:\n   - localhost:{}:1\n",
            s2.port
        ),
    );
    p.proc.signal("HUP");
    eventually("reload", 5, || c.q("GET r") == "$-1\r\n");
    assert_eq!(c.q("SET r 2"), "+OK\r\n");
    let mut d = Client::connect(s2.port);
    assert_eq!(d.q("GET r"), "$1\r\n2\r\n");
}

#[test]
fn unix_socket_listener_and_sigterm_drain() {
    let dir = tempfile::tempdir().unwrap();
    let shard = redis();
    let sock = dir.path().join("proxy.sock");
    let text = format!(
        "u:\n  listen: {} 0600\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1\n",
        sock.display(),
        shard.port
    );
    let conf = write(dir.path(), "n.yml", &text);
    let port = free_ports(1)[0];
    // A second, TCP pool in the same file.
    let both = format!("{text}{}", pool_text("t", port, "", &[shard.port]));
    write(dir.path(), "n.yml", &both);
    let mut p = ours(&conf, port, &[]);
    use std::io::{Read, Write};
    let mut u = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    u.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nu\r\n$1\r\n9\r\n")
        .unwrap();
    let mut buf = [0u8; 5];
    u.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+OK\r\n");
    let mut c = Client::connect(port);
    assert_eq!(c.q("GET u"), "$1\r\n9\r\n");
    p.proc.signal("TERM");
    // Bounded: fails with its stderr when there is no exit after SIGTERM.
    let st = p.proc.wait(Duration::from_secs(5));
    assert!(st.success(), "{st}");
    assert!(!sock.exists(), "the socket file is removed on exit");
}

#[test]
fn test_conf_and_bad_config_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.yml",
        "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n",
    );
    let bad = write(
        dir.path(),
        "bad.yml",
        "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash: sha1\n  servers:\n   - 127.0.0.1:6379:1\n",
    );
    let bin = env!("CARGO_BIN_EXE_redis-ambassador");
    let out = std::process::Command::new(bin)
        .arg("-t")
        .arg("-c")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = std::process::Command::new(bin)
        .arg("--test-conf")
        .arg("--conf-file")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hash") && err.contains("line 4"), "{err}");
    let out = std::process::Command::new(bin)
        .arg("-c")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    // So does a flag clap rejects.
    let out = std::process::Command::new(bin)
        .args(["-c", "/dev/null", "--stats-port", "many"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--stats-port"));
}

#[test]
fn client_connections_limit_and_preconnect() {
    let dir = tempfile::tempdir().unwrap();
    let shard = redis();
    let listen = free_ports(1)[0];
    let extra = "  client_connections: 1\n  preconnect: true\n  server_connections: 2\n";
    let conf = write(
        dir.path(),
        "n.yml",
        &pool_text("p", listen, extra, &[shard.port]),
    );
    let p = ours(&conf, listen, &[]);
    // preconnect: both server connections are open before any request.
    eventually_ok("2 preconnected server connections", 10, || {
        let stats = read_stats(p.stats_port);
        if stats["p"]["shard0"]["server_connections"] == 2 {
            Ok(())
        } else {
            Err(stats.to_string())
        }
    });
    let mut first = Client::connect(listen);
    assert_eq!(first.q("PING"), "+PONG\r\n");
    // Over client_connections the new connection is closed at once, as twemproxy does.
    let mut second = Client::connect(listen);
    second.send(&cmd(&[b"PING"]));
    assert!(second.try_read().is_none(), "second client must be refused");
    assert_eq!(first.q("PING"), "+PONG\r\n");
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let shard = redis();
    let listen = free_ports(1)[0];
    let conf = write(
        dir.path(),
        "n.yml",
        &pool_text("p", listen, "", &[shard.port]),
    );
    let mut p = ours(&conf, listen, &[]);
    let mut c = Client::connect(listen);
    assert_eq!(c.q("SET d 1"), "+OK\r\n");
    // The backend is frozen while a request is in flight and SIGTERM arrives: the proxy waits for
    // the reply (within the grace period), delivers it, then exits.
    shard.proc.signal("STOP");
    c.send(&cmd(&[b"GET", b"d"]));
    eventually("the GET in flight to the frozen shard", 10, || {
        read_stats(p.stats_port)["p"]["shard0"]["in_queue"] == 1
    });
    p.proc.signal("TERM");
    // New connections are no longer accepted while draining.
    eventually("the listener closed for the drain", 10, || {
        std::net::TcpStream::connect(("127.0.0.1", listen)).is_err()
    });
    shard.proc.signal("CONT");
    assert_eq!(c.read(), b"$1\r\n1\r\n");
    // Bounded: fails with its stderr when there is no exit after the drain.
    let st = p.proc.wait(Duration::from_secs(5));
    assert!(st.success(), "{st}");
}

/// A transaction whose keys live on two servers is refused at EXEC and nothing of it runs: before,
/// the refused MULTI let `SET x 1; INCR x` run one by one and left x = 2.
#[test]
fn refused_transaction_runs_nothing() {
    let Proxied {
        dir: _dir,
        shards: _shards,
        ports: _,
        listen: _,
        text,
        p,
    } = proxied(2, "alpha", "  hash_tag: \"{}\"\n", &[]);
    let pool = &redis_ambassador::config::parse(&text).unwrap()[0];
    let mut c = Client::connect(p.port);
    let (a, b) = (
        keys_on(pool, 0, "ta", 1).remove(0),
        keys_on(pool, 1, "tb", 1).remove(0),
    );
    assert_eq!(c.q(&format!("SET {a} 0")), "+OK\r\n");
    assert_eq!(c.q("MULTI"), "+OK\r\n");
    assert_eq!(c.q(&format!("SET {a} 1")), "+QUEUED\r\n");
    assert_eq!(c.q(&format!("INCR {a}")), "+QUEUED\r\n");
    assert_eq!(c.q(&format!("SET {b} 1")), "+QUEUED\r\n");
    let e = c.q("EXEC");
    assert!(e.starts_with("-CROSSSHARD Transaction discarded"), "{e}");
    assert_eq!(c.q(&format!("GET {a}")), "$1\r\n0\r\n");
    assert_eq!(c.q(&format!("EXISTS {b}")), ":0\r\n");
    // On one server it runs, atomically, with the replies of EXEC.
    assert_eq!(c.q("MULTI"), "+OK\r\n");
    assert_eq!(c.q("SET {t}x 1"), "+QUEUED\r\n");
    assert_eq!(c.q("INCR {t}x"), "+QUEUED\r\n");
    assert_eq!(c.q("EXEC"), "*2\r\n+OK\r\n:2\r\n");
    // A queueing error discards the whole transaction, as in Redis.
    assert_eq!(c.q("MULTI"), "+OK\r\n");
    assert_eq!(c.q("SET {t}x 5"), "+QUEUED\r\n");
    assert!(c.q("NOSUCHCMD").starts_with("-ERR"));
    assert!(c.q("EXEC").starts_with("-EXECABORT"));
    assert_eq!(c.q("GET {t}x"), "$1\r\n2\r\n");
    assert_eq!(c.q("DISCARD"), "-ERR DISCARD without MULTI\r\n");
    // WATCH: a change by another client aborts EXEC (null reply).
    assert_eq!(c.q("WATCH {t}x"), "+OK\r\n");
    let mut other = Client::connect(p.port);
    assert_eq!(other.q("SET {t}x 9"), "+OK\r\n");
    assert_eq!(c.q("MULTI"), "+OK\r\n");
    assert_eq!(c.q("SET {t}x 3"), "+QUEUED\r\n");
    assert_eq!(c.q("EXEC"), "*-1\r\n");
    assert_eq!(c.q("GET {t}x"), "$1\r\n9\r\n");
}

/// SCAN walks every server (each key exactly once), DBSIZE and INFO's keyspace sum the servers,
/// KEYS merges them.
#[test]
fn scan_dbsize_info_keys_over_every_server() {
    let Proxied {
        dir: _dir,
        shards: _shards,
        ports,
        listen: _,
        text: _,
        p,
    } = proxied(2, "alpha", "", &[]);
    let mut c = Client::connect(p.port);
    let cmds: Vec<Vec<u8>> = (0..300)
        .map(|i| cmd(&[b"SET", format!("s{i}").as_bytes(), b"v"]))
        .collect();
    c.pipeline(&cmds);
    let on: Vec<usize> = ports
        .iter()
        .map(|&pt| {
            let r = Client::connect(pt).q("DBSIZE");
            r[1..r.len() - 2].parse().unwrap()
        })
        .collect();
    assert!(on[0] > 0 && on[1] > 0, "{on:?}");
    assert_eq!(c.q("DBSIZE"), ":300\r\n");
    let info = c.q("INFO keyspace");
    assert!(info.contains("db0:keys=300,"), "{info}");
    let info = c.q("INFO");
    assert!(
        info.contains("loading:0") && info.contains("role:master"),
        "{info}"
    );
    assert!(c.q("KEYS s1*").starts_with("*111\r\n"));
    let mut seen = std::collections::HashMap::new();
    let mut cursor = "0".to_owned();
    loop {
        let r = c.call(&[b"SCAN", cursor.as_bytes(), b"COUNT", b"50"]);
        let els = redis_ambassador::resp::array_elements(&r).unwrap();
        let cur = redis_ambassador::resp::bulk_value(&r[els[0].0..els[0].1]).unwrap();
        cursor = String::from_utf8(cur.to_vec()).unwrap();
        let keys = &r[els[1].0..els[1].1];
        for (s, e) in redis_ambassador::resp::array_elements(keys).unwrap() {
            let k = redis_ambassador::resp::bulk_value(&keys[s..e])
                .unwrap()
                .to_vec();
            *seen.entry(k).or_insert(0) += 1;
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
    assert!(seen.values().all(|&n| n == 1));
}

/// nutcracker's process interface: `-d` is accepted (and the proxy stays in the foreground),
/// SIGTTIN/SIGTTOU change the log level instead of stopping the process, SIGUSR1/SIGUSR2 are
/// ignored instead of killing it; `-D` describes the stats fields.
#[test]
fn nutcracker_flags_and_signals() {
    let Proxied {
        dir: _dir,
        shards: _shards,
        p,
        ..
    } = proxied(1, "alpha", "", &["-d"]);
    for sig in ["TTIN", "TTOU", "TTOU", "USR1", "USR2", "TTIN"] {
        p.proc.signal(sig);
        let mut c = Client::connect(p.port);
        assert_eq!(c.q("PING"), "+PONG\r\n", "after SIG{sig}");
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.proc.pid())).unwrap();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        assert!(state != "T" && state != "Z", "state {state} after SIG{sig}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redis-ambassador"))
        .arg("-D")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("server_ejected_at") && text.contains("client_eof"),
        "{text}"
    );
}

/// A blocking command has a server connection of its own, and a client that goes away while
/// blocked frees it; a subscribed client's connection too.
#[test]
fn blocked_and_subscribed_clients_free_their_connections() {
    let Proxied {
        dir: _dir,
        shards,
        ports: _,
        listen: _,
        text: _,
        p,
    } = proxied(1, "alpha", "  timeout: 500\n", &[]);
    let shard = &shards[0];
    let mut admin = Client::connect(shard.port);
    let clients = |admin: &mut Client| -> usize {
        let r = admin.q("CLIENT LIST");
        r.lines().filter(|l| l.contains("addr=")).count()
    };
    let mut c = Client::connect(p.port);
    assert_eq!(c.q("SET warm 1"), "+OK\r\n");
    let base = clients(&mut admin);
    // BLPOP outlives the pool timeout (500 ms) and is woken by an LPUSH of another client.
    c.send(&cmd(&[b"BLPOP", b"q", b"0"]));
    eventually("the blocked client's own connection", 10, || {
        clients(&mut admin) == base + 1
    });
    std::thread::sleep(Duration::from_millis(700));
    let mut other = Client::connect(p.port);
    assert_eq!(other.q("LPUSH q job"), ":1\r\n");
    assert_eq!(c.read(), b"*2\r\n$1\r\nq\r\n$3\r\njob\r\n");
    assert_eq!(c.q("GET warm"), "$1\r\n1\r\n");
    // A client that disconnects while blocked frees its connection.
    let mut gone = Client::connect(p.port);
    gone.send(&cmd(&[b"BLPOP", b"never", b"0"]));
    eventually("a second blocked connection", 10, || {
        clients(&mut admin) == base + 2
    });
    let m = http_get(p.admin_port, "/metrics");
    assert!(
        m.lines()
            .any(|l| l.starts_with("redis_ambassador_own_connections{") && l.ends_with(" 2")),
        "{m}"
    );
    drop(gone);
    eventually(
        "the connection of the client that left is closed",
        10,
        || clients(&mut admin) == base + 1,
    );
    // Subscribed: messages arrive on the client's own connection, which closes with it.
    let mut sub = Client::connect(p.port);
    sub.send(&cmd(&[b"SUBSCRIBE", b"ch"]));
    assert_eq!(sub.read(), b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    assert_eq!(other.q("PUBLISH ch hi"), ":1\r\n");
    assert_eq!(
        sub.read(),
        b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
    );
    assert!(sub.q("GET x").starts_with("-ERR Can't execute 'get'"));
    // Unsubscribing from everything makes it an ordinary client again.
    assert_eq!(
        sub.q("UNSUBSCRIBE"),
        "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n"
    );
    assert_eq!(sub.q("GET warm"), "$1\r\n1\r\n");
    let with_sub = clients(&mut admin);
    let mut sub2 = Client::connect(p.port);
    sub2.send(&cmd(&[b"SUBSCRIBE", b"ch"]));
    sub2.read();
    eventually("the subscriber's connection", 10, || {
        clients(&mut admin) == with_sub + 1
    });
    drop(sub2);
    eventually("the subscriber's connection closed", 10, || {
        clients(&mut admin) == with_sub
    });
}
