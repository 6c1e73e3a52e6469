//! One application workload through the proxy over two real redis-server shards, run by each
//! client library on its default settings (RESP3 where the client's default is `HELLO 3`) and
//! again on protocol 2: SET/GET, pipelines of 1000, MGET/MSET across shards, hashes, lists, sets,
//! sorted sets, EXPIRE/TTL, EVAL, a transaction and WATCH, a refused transaction over two
//! servers, pub/sub on separate connections, BLPOP woken by LPUSH, SCAN over every key, and a
//! reconnect after the proxy restarts.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{Proc, free_ports, ours, redis, write};

/// Runs `program args` against a proxy over two shards; restarts the proxy when the program
/// prints RESTART, then expects `ok` as its last line.
fn run_workload(what: &str, mut program: Command) {
    let dir = tempfile::tempdir().unwrap();
    let shards: [Proc; 2] = [redis(), redis()];
    let listen = free_ports(1)[0];
    let text = format!(
        "p:\n  listen: 127.0.0.1:{listen}\n  redis: true\n  hash_tag: \"{{}}\"\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{}:1\n",
        shards[0].port, shards[1].port
    );
    let conf = write(dir.path(), "n.yml", &text);
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
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/workload/app.py"));
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
    c.arg(format!("{}/tests/workload/{script}", env!("CARGO_MANIFEST_DIR")));
    c.arg(proto);
    c
}

#[test]
fn ioredis_default_settings() {
    run_workload("ioredis (default: HELLO 3, INFO ready check)", node("ioredis.js", "default"));
}

#[test]
fn ioredis_protocol_2() {
    run_workload("ioredis (protocol: 2)", node("ioredis.js", "2"));
}

#[test]
fn node_redis_default_settings() {
    run_workload("node-redis (default: HELLO 3)", node("node-redis.js", "default"));
}

#[test]
fn node_redis_resp_2() {
    run_workload("node-redis (RESP: 2)", node("node-redis.js", "2"));
}
