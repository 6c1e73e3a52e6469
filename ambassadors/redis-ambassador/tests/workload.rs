//! One application workload through the proxy over two real redis-server shards, run by each
//! client library on its default settings (RESP3 where the client's default is `HELLO 3`) and
//! again on protocol 2: SET/GET, pipelines of 1000, MGET/MSET across shards, hashes, lists, sets,
//! sorted sets, EXPIRE/TTL, EVAL, a transaction and WATCH, a refused transaction over two
//! servers, pub/sub on separate connections, BLPOP woken by LPUSH, SCAN over every key, and a
//! reconnect after the proxy restarts.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::common::{Redis, free_ports, ours, redis, write};

/// Two redis-servers, and a pool over them (hash tag `{}`) written into `dir`: the servers, the
/// pool's port and its configuration file.
fn two_shards(dir: &std::path::Path) -> ([Redis; 2], u16, std::path::PathBuf) {
    let shards = [redis(), redis()];
    let listen = free_ports(1)[0];
    let text = format!(
        "p:\n  listen: 127.0.0.1:{listen}\n  redis: true\n  hash_tag: \"{{}}\"\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{}:1\n",
        shards[0].port, shards[1].port
    );
    let conf = write(dir, "n.yml", &text);
    (shards, listen, conf)
}

/// Runs `program args` against a proxy over two shards; restarts the proxy when the program
/// prints RESTART, then expects `ok` as its last line.
fn run_workload(what: &str, mut program: Command) {
    let dir = tempfile::tempdir().unwrap();
    let (_shards, listen, conf) = two_shards(dir.path());
    let mut proxy = Some(ours(&conf, listen, &[]));
    let mut child = program
        .arg(listen.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if line.trim() == "RESTART" {
            drop(proxy.take());
            proxy = Some(ours(&conf, listen, &[]));
            let _ = stdin.write_all(b"go\n");
            let _ = stdin.flush();
        }
        lines.push(line);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && lines.last().map(|l| l.trim()) == Some("ok"),
        "{what} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        lines.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn python(proto: &str) -> Command {
    let mut c = Command::new(podmates_testkit::clients::python());
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/workload/app.py"
    ));
    c.arg(proto);
    c
}

#[test]
fn redis_py_default_settings() {
    run_workload("redis-py (default: HELLO 3)", python("default"));
}

#[test]
fn redis_py_protocol_2() {
    run_workload("redis-py (protocol=2)", python("2"));
}

fn node(script: &str, proto: &str) -> Command {
    let mut c = Command::new("node");
    c.env("NODE_PATH", podmates_testkit::clients::node_modules());
    c.arg(format!(
        "{}/tests/workload/{script}",
        env!("CARGO_MANIFEST_DIR")
    ));
    c.arg(proto);
    c
}

#[test]
fn ioredis_default_settings() {
    run_workload(
        "ioredis (default: HELLO 3, INFO ready check)",
        node("ioredis.js", "default"),
    );
}

#[test]
fn ioredis_protocol_2() {
    run_workload("ioredis (protocol: 2)", node("ioredis.js", "2"));
}

#[test]
fn node_redis_default_settings() {
    run_workload(
        "node-redis (default: HELLO 3)",
        node("node-redis.js", "default"),
    );
}

#[test]
fn node_redis_resp_2() {
    run_workload("node-redis (RESP: 2)", node("node-redis.js", "2"));
}

/// The workload with redis-cli, in RESP2 (its default) or RESP3 (`-3`): each step one redis-cli
/// run (stdin lines share one connection), subscribers and BLPOP in a process of their own.
fn redis_cli_workload(resp3: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (_shards, listen, conf) = two_shards(dir.path());
    let mut proxy = ours(&conf, listen, &[]);
    let port = listen.to_string();
    let base = move || {
        let mut c = Command::new("/usr/bin/redis-cli");
        c.args(["-h", "127.0.0.1", "-p", &port]);
        if resp3 {
            c.arg("-3");
        }
        c
    };
    let run = |args: &[&str], stdin: &str| -> String {
        let mut c = base();
        let mut child = c
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run redis-cli (Debian package redis-tools)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run(&["PING"], ""), "PONG\n");
    assert_eq!(run(&["SET", "a", "1"], ""), "OK\n");
    assert_eq!(run(&["GET", "a"], ""), "1\n");
    let pipe: String = (0..1000)
        .map(|i| {
            let (k, v) = (format!("k{i}"), i.to_string());
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
        })
        .collect();
    let out = run(&["--pipe"], &pipe);
    assert!(out.contains("errors: 0, replies: 1000"), "{out}");
    let many: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let mut mget = vec!["MGET"];
    mget.extend(many.iter().map(String::as_str));
    let want: String = (0..1000).map(|i| format!("{i}\n")).collect();
    assert_eq!(run(&mget, ""), want);
    assert_eq!(run(&["MSET", "m1", "x", "m2", "y", "m3", "z"], ""), "OK\n");
    assert_eq!(run(&["MGET", "m1", "m2", "none", "m3"], ""), "x\ny\n\nz\n");
    run(&["HSET", "h", "f1", "v1"], "");
    let h = run(&["HGETALL", "h"], "");
    assert!(h == "f1\nv1\n" || h == "f1 v1\n", "{h}");
    run(&["RPUSH", "l", "x", "y"], "");
    assert_eq!(run(&["LRANGE", "l", "0", "-1"], ""), "x\ny\n");
    run(&["SADD", "s", "a"], "");
    assert_eq!(run(&["SMEMBERS", "s"], ""), "a\n");
    run(&["ZADD", "z", "2.5", "two"], "");
    assert_eq!(run(&["ZSCORE", "z", "two"], ""), "2.5\n");
    assert_eq!(run(&["EXPIRE", "a", "100"], ""), "1\n");
    let ttl: i64 = run(&["TTL", "a"], "").trim().parse().unwrap();
    assert!(ttl > 0 && ttl <= 100);
    assert_eq!(
        run(
            &[
                "EVAL",
                "return redis.call('INCRBY', KEYS[1], 5)",
                "1",
                "{t}n"
            ],
            ""
        ),
        "5\n"
    );
    assert!(run(&["INFO"], "").contains("loading:0"));
    // A transaction on one connection (stdin lines), and one over two servers: refused whole.
    let out = run(&[], "MULTI\nSET {t}x 1\nINCR {t}x\nEXEC\n");
    assert!(out.ends_with("OK\n2\n"), "{out}");
    let mut tx = String::from("MULTI\nSET {t}x 10\nINCR {t}x\n");
    for k in &many {
        tx.push_str(&format!("SET {k} x\n"));
    }
    tx.push_str("EXEC\n");
    let out = run(&[], &tx);
    assert!(out.contains("CROSSSHARD"), "{out}");
    assert_eq!(run(&["GET", "{t}x"], ""), "2\n");
    assert_eq!(run(&mget, ""), want);
    // pub/sub: a subscriber process, a publisher run.
    let mut sub = base()
        .args(["SUBSCRIBE", "news"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The subscriber's output is read as it comes: the message may be printed after PUBLISH
    // has returned.
    let (tx, rx) = std::sync::mpsc::channel();
    let out = sub.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    crate::common::eventually("a subscriber on news", 15, || {
        run(&["PUBLISH", "news", "hello"], "") == "1\n"
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut got = Vec::new();
    while !got.iter().any(|l: &String| l == "hello") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => got.push(l),
            Err(_) => panic!("the subscriber printed no message: {got:?}"),
        }
    }
    let _ = sub.kill();
    let _ = sub.wait();
    // BLPOP woken by LPUSH.
    let blpop = base()
        .args(["BLPOP", "q", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    crate::common::eventually("BLPOP blocked on its server", 15, || {
        run(&["INFO", "clients"], "").contains("blocked_clients:1")
    });
    assert_eq!(run(&["LPUSH", "q", "job"], ""), "1\n");
    let out = blpop.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "q\njob\n");
    // SCAN over every key, each exactly once.
    let keys = run(&["--scan"], "");
    let keys: Vec<&str> = keys.lines().collect();
    let set: std::collections::HashSet<&str> = keys.iter().copied().collect();
    assert_eq!(keys.len(), set.len());
    assert_eq!(run(&["DBSIZE"], "").trim(), keys.len().to_string());
    // A restarted proxy serves the next connection.
    drop(proxy);
    proxy = ours(&conf, listen, &[]);
    assert_eq!(run(&["GET", "k7"], ""), "7\n");
    drop(proxy);
}

#[test]
fn redis_cli_resp2() {
    redis_cli_workload(false);
}

#[test]
fn redis_cli_resp3() {
    redis_cli_workload(true);
}
