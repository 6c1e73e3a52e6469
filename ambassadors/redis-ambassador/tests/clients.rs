//! A real client library through the proxy: Debian's redis-py (python3-redis) connects (it sends
//! CLIENT SETNAME), pipelines, uses split commands, and gets a clean error for an unsupported
//! command on a connection that stays usable.

use crate::common::{free_ports, ours, redis, write};

const SCRIPT: &str = r#"
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), client_name="compat")
assert r.ping() is True
assert r.set("py:a", "1") is True and r.get("py:a") == b"1"
r.mset({"py:x": "1", "py:y": "2", "py:z": "3"})
assert r.mget("py:x", "py:y", "py:none", "py:z") == [b"1", b"2", None, b"3"]
assert r.exists("py:x", "py:y", "py:z") == 3
assert r.delete("py:x", "py:y", "py:z") == 3
p = r.pipeline(transaction=False)
for i in range(200):
    p.incr("py:c%d" % (i % 7))
assert len(p.execute()) == 200
assert sum(int(r.get("py:c%d" % i)) for i in range(7)) == 200
try:
    r.config_get("maxmemory")
    raise SystemExit("CONFIG should fail")
except redis.ResponseError as e:
    assert "CONFIG" in str(e), e
assert r.echo("still usable") == b"still usable"
print("ok")
"#;

#[test]
fn redis_py_works_through_the_proxy() {
    let py = std::path::Path::new("/usr/lib/python3/dist-packages/redis/__init__.py");
    assert!(
        py.exists(),
        "redis-py is missing: install the Debian package `python3-redis` (apt-get install python3-redis)"
    );
    let dir = tempfile::tempdir().unwrap();
    let shards = [redis(), redis()];
    let listen = free_ports(1)[0];
    let text = format!(
        "p:\n  listen: 127.0.0.1:{listen}\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1\n   - 127.0.0.1:{}:1\n",
        shards[0].port, shards[1].port
    );
    let conf = write(dir.path(), "n.yml", &text);
    let _p = ours(&conf, listen, &[]);
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, &listen.to_string()])
        .output()
        .expect("run /usr/bin/python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "redis-py script failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
