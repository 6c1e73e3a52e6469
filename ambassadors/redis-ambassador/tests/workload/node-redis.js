// The application workload through the proxy with node-redis (npm `redis`) on its default
// settings (HELLO 3 in node-redis 6), or RESP 2 when argv[2] is "2".
const assert = require("assert");
const { createClient } = require("redis");
const [proto, port] = [process.argv[2], Number(process.argv[3])];
const opts = proto === "default" ? {} : { RESP: Number(proto) };
const connect = async () => {
  const c = createClient({ url: `redis://127.0.0.1:${port}`, ...opts });
  c.on("error", () => {});
  await c.connect();
  return c;
};
const line = () => new Promise((res) => process.stdin.once("data", res));

(async () => {
  const r = await connect();
  assert.equal(await r.ping(), "PONG");
  assert.equal(await r.set("a", "1"), "OK");
  assert.equal(await r.get("a"), "1");
  const sets = [];
  for (let i = 0; i < 1000; i++) sets.push(r.set(`k${i}`, String(i)));
  assert.ok((await Promise.all(sets)).every((v) => v === "OK"));
  const gets = [];
  for (let i = 0; i < 1000; i++) gets.push(r.get(`k${i}`));
  assert.deepEqual(await Promise.all(gets), [...Array(1000).keys()].map(String));
  const m = {};
  for (let i = 0; i < 20; i++) m[`m${i}`] = String(i);
  await r.mSet(m);
  assert.deepEqual(await r.mGet([...Object.keys(m), "none"]), [...Object.values(m), null]);
  await r.hSet("h", { f1: "v1", f2: "v2" });
  assert.deepEqual({ ...(await r.hGetAll("h")) }, { f1: "v1", f2: "v2" });
  await r.rPush("l", ["x", "y", "z"]);
  assert.deepEqual(await r.lRange("l", 0, -1), ["x", "y", "z"]);
  await r.sAdd("s", ["a", "b"]);
  assert.deepEqual([...(await r.sMembers("s"))].sort(), ["a", "b"]);
  await r.zAdd("z", [{ score: 1, value: "one" }, { score: 2.5, value: "two" }]);
  assert.deepEqual(await r.zRangeWithScores("z", 0, -1), [
    { value: "one", score: 1 }, { value: "two", score: 2.5 },
  ]);
  assert.equal(await r.zScore("z", "two"), 2.5);
  assert.ok(await r.expire("a", 100));
  const ttl = await r.ttl("a");
  assert.ok(ttl > 0 && ttl <= 100);
  assert.equal(await r.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", { keys: ["{t}n"], arguments: ["5"] }), 5);
  assert.ok(String(await r.info()).includes("loading:0"));
  assert.deepEqual(await r.multi().set("{t}x", "1").incr("{t}x").get("{t}x").exec(), ["OK", 2, "2"]);
  // A transaction over two servers is refused whole.
  // The 1000 k keys land on both servers (a few similar short names may share one).
  const cross = [...Array(1000).keys()].map((i) => `k${i}`);
  let tx = r.multi().set("{t}x", "10").incr("{t}x");
  for (const k of cross) tx = tx.set(k, "x");
  await assert.rejects(tx.exec(), /CROSSSHARD/);
  assert.equal(await r.get("{t}x"), "2");
  assert.deepEqual(await r.mGet(cross), [...Array(1000).keys()].map(String));
  // pub/sub on separate connections.
  const sub = await connect();
  const got = new Promise((res) => sub.subscribe("news", (msg, ch) => res([ch, msg])));
  await new Promise((res) => setTimeout(res, 100));
  let n = 0;
  for (let i = 0; i < 100 && n !== 1; i++) n = await r.publish("news", "hello");
  assert.deepEqual(await got, ["news", "hello"]);
  await sub.quit();
  // BLPOP woken by LPUSH.
  const b = await connect();
  const popped = b.blPop("q", 20);
  // Wait until the BLPOP is blocked on its server, so the LPUSH is what wakes it.
  for (let i = 0; ; i++) {
    if (/blocked_clients:[1-9]/.test(String(await r.info("clients")))) break;
    assert.ok(i < 200, "BLPOP never blocked");
    await new Promise((res) => setTimeout(res, 50));
  }
  await r.lPush("q", "job");
  assert.deepEqual({ ...(await popped) }, { key: "q", element: "job" });
  await b.quit();
  // SCAN over every key, each exactly once.
  const seen = [];
  for await (const ks of r.scanIterator({ COUNT: 100 })) seen.push(...(Array.isArray(ks) ? ks : [ks]));
  assert.equal(new Set(seen).size, seen.length);
  assert.equal(seen.length, await r.dbSize());
  console.log("RESTART");
  await line();
  let v;
  for (let i = 0; i < 100; i++) {
    try { v = await r.get("k7"); break; } catch (e) { await new Promise((res) => setTimeout(res, 100)); }
  }
  assert.equal(v, "7");
  await r.quit();
  console.log("ok");
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
