# The application workload through the proxy with redis-py on its default settings (RESP3 with
# HELLO 3 in redis-py 8), or protocol=2 when argv[1] == "2". Prints RESTART and waits for a line
# on stdin while the test restarts the proxy.
import sys, threading, time, redis

proto, port = sys.argv[1], int(sys.argv[2])
kw = {} if proto == "default" else {"protocol": int(proto)}
r = redis.Redis(host="127.0.0.1", port=port, **kw)
assert r.ping() is True
assert r.set("a", "1") is True and r.get("a") == b"1"
p = r.pipeline(transaction=False)
for i in range(1000):
    p.set("k%d" % i, str(i))
assert all(x is True for x in p.execute())
p = r.pipeline(transaction=False)
for i in range(1000):
    p.get("k%d" % i)
assert p.execute() == [str(i).encode() for i in range(1000)]
r.mset({"m%d" % i: str(i) for i in range(20)})
assert r.mget(["m%d" % i for i in range(20)] + ["none"]) == [str(i).encode() for i in range(20)] + [None]
r.hset("h", mapping={"f1": "v1", "f2": "v2"})
assert r.hgetall("h") == {b"f1": b"v1", b"f2": b"v2"}, r.hgetall("h")
r.rpush("l", "x", "y", "z")
assert r.lrange("l", 0, -1) == [b"x", b"y", b"z"]
r.sadd("s", "a", "b")
assert r.smembers("s") == {b"a", b"b"}
r.zadd("z", {"one": 1, "two": 2.5})
assert r.zrange("z", 0, -1, withscores=True) == [(b"one", 1.0), (b"two", 2.5)], r.zrange("z", 0, -1, withscores=True)
assert r.zscore("z", "two") == 2.5
assert r.expire("a", 100) is True and 0 < r.ttl("a") <= 100
assert r.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "{t}n", 5) == 5
info = r.info()
assert info["loading"] == 0 and info["role"] == "master" and "redis_version" in info, info
assert r.info("keyspace")["db0"]["keys"] == r.dbsize()
# A transaction (redis-py's default pipeline) on keys of one server, and WATCH.
p = r.pipeline()
p.set("{t}x", "1").incr("{t}x").get("{t}x")
assert p.execute() == [True, 2, b"2"]
with r.pipeline() as p:
    p.watch("{t}x")
    v = int(p.get("{t}x"))
    p.multi()
    p.set("{t}x", v + 1)
    assert p.execute() == [True]
assert r.get("{t}x") == b"3"
# A transaction over two servers is refused whole: nothing of it runs.
# The 1000 k keys land on both servers (short keys hash close together under twemproxy's
# 32-bit fnv1a_64, so a handful of similar names can all share one server).
cross = ["k%d" % i for i in range(1000)]
p = r.pipeline()
p.set("{t}x", "10").incr("{t}x")
for k in cross:
    p.set(k, "x")
try:
    p.execute()
    raise SystemExit("a transaction over two servers ran")
except redis.ResponseError as e:
    assert "CROSSSHARD" in str(e), e
assert r.get("{t}x") == b"3" and r.mget(cross) == [str(i).encode() for i in range(1000)]
# pub/sub on separate connections; BLPOP woken by LPUSH.
sub = redis.Redis(host="127.0.0.1", port=port, **kw).pubsub()
sub.subscribe("news")
assert sub.get_message(timeout=10)["type"] == "subscribe"
got = None
for _ in range(100):
    if r.publish("news", "hello") == 1:
        break
    time.sleep(0.05)
msg = sub.get_message(timeout=10)
assert msg and msg["data"] == b"hello", msg
sub.close()
res = {}
def waiter():
    res["v"] = redis.Redis(host="127.0.0.1", port=port, **kw).blpop("q", timeout=20)
t = threading.Thread(target=waiter)
t.start()
for _ in range(200):
    if r.info("clients")["blocked_clients"] >= 1:
        break
    time.sleep(0.05)
else:
    raise SystemExit("BLPOP never blocked")
r.lpush("q", "job")
t.join(25)
assert res.get("v") == (b"q", b"job") or res.get("v") == [b"q", b"job"], res
# SCAN over every key: each exactly once.
seen = list(r.scan_iter(count=100))
assert len(seen) == len(set(seen)) == r.dbsize(), (len(seen), len(set(seen)), r.dbsize())
assert len(list(r.scan_iter(match="k1*"))) == 111
print("RESTART", flush=True)
sys.stdin.readline()
for _ in range(50):
    try:
        assert r.get("k7") == b"7"
        break
    except redis.ConnectionError:
        time.sleep(0.2)
else:
    raise SystemExit("no reconnect after the restart")
print("ok")
