// The application workload through the proxy with ioredis on its default settings (HELLO 3 in
// ioredis 6, then its INFO ready check), or protocol 2 when argv[2] is "2".
const assert = require("assert");
const Redis = require("ioredis");
const [proto, port] = [process.argv[2], Number(process.argv[3])];
const opts = proto === "default" ? {} : { protocol: Number(proto) };
const connect = () => new Redis({ host: "127.0.0.1", port, ...opts });
const line = () => new Promise((res) => process.stdin.once("data", res));

(async () => {
  const r = connect();
  assert.equal(await r.ping(), "PONG");
  assert.equal(await r.set("a", "1"), "OK");
  assert.equal(await r.get("a"), "1");
  let p = r.pipeline();
  for (let i = 0; i < 1000; i++) p.set(`k${i}`, String(i));
  assert.ok((await p.exec()).every(([e, v]) => !e && v === "OK"));
  p = r.pipeline();
  for (let i = 0; i < 1000; i++) p.get(`k${i}`);
  assert.deepEqual((await p.exec()).map(([, v]) => v), [...Array(1000).keys()].map(String));
  const m = {};
  for (let i = 0; i < 20; i++) m[`m${i}`] = String(i);
  await r.mset(m);
  assert.deepEqual(await r.mget(...Object.keys(m), "none"), [...Object.values(m), null]);
  await r.hset("h", { f1: "v1", f2: "v2" });
  assert.deepEqual(await r.hgetall("h"), { f1: "v1", f2: "v2" });
  await r.rpush("l", "x", "y", "z");
  assert.deepEqual(await r.lrange("l", 0, -1), ["x", "y", "z"]);
  await r.sadd("s", "a", "b");
  assert.deepEqual((await r.smembers("s")).sort(), ["a", "b"]);
  await r.zadd("z", 1, "one", 2.5, "two");
  assert.deepEqual(await r.zrange("z", 0, -1, "WITHSCORES"), ["one", "1", "two", "2.5"]);
  assert.equal(await r.expire("a", 100), 1);
  const ttl = await r.ttl("a");
  assert.ok(ttl > 0 && ttl <= 100);
  assert.equal(await r.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", 1, "{t}n", 5), 5);
  assert.ok((await r.info()).includes("loading:0"));
  assert.deepEqual(await r.multi().set("{t}x", "1").incr("{t}x").get("{t}x").exec(), [
    [null, "OK"], [null, 2], [null, "2"],
  ]);
  // A transaction over two servers is refused whole.
  // The 1000 k keys land on both servers (a few similar short names may share one).
  const cross = [...Array(1000).keys()].map((i) => `k${i}`);
  let tx = r.multi().set("{t}x", "10").incr("{t}x");
  for (const k of cross) tx = tx.set(k, "x");
  const refused = await tx.exec().then((v) => JSON.stringify(v), (e) => `rejected: ${e.message}`);
  assert.ok(/CROSSSHARD/.test(refused), refused);
  assert.equal(await r.get("{t}x"), "2");
  assert.deepEqual(await r.mget(...cross), [...Array(1000).keys()].map(String));
  // pub/sub on separate connections.
  const sub = connect();
  const got = new Promise((res) => sub.on("message", (ch, msg) => res([ch, msg])));
  await sub.subscribe("news");
  let n = 0;
  for (let i = 0; i < 100 && n !== 1; i++) n = await r.publish("news", "hello");
  assert.deepEqual(await got, ["news", "hello"]);
  sub.disconnect();
  // BLPOP woken by LPUSH.
  const b = connect();
  const popped = b.blpop("q", 20);
  // Wait until the BLPOP is blocked on its server, so the LPUSH is what wakes it.
  for (let i = 0; ; i++) {
    if (/blocked_clients:[1-9]/.test(String(await r.info("clients")))) break;
    assert.ok(i < 200, "BLPOP never blocked");
    await new Promise((res) => setTimeout(res, 50));
  }
  await r.lpush("q", "job");
  assert.deepEqual(await popped, ["q", "job"]);
  b.disconnect();
  // SCAN over every key, each exactly once.
  const seen = [];
  await new Promise((res, rej) =>
    r.scanStream({ count: 100 }).on("data", (ks) => seen.push(...ks)).on("end", res).on("error", rej));
  assert.equal(new Set(seen).size, seen.length);
  assert.equal(seen.length, await r.dbsize());
  console.log("RESTART");
  await line();
  assert.equal(await r.get("k7"), "7");
  r.disconnect();
  console.log("ok");
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
