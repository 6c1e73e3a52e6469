//! The same commands sent through the proxy and straight to a redis-server get the same reply,
//! byte for byte, in RESP2 and in RESP3 (after `HELLO 3` on both): the proxy forwards the
//! server's own encoding for each protocol instead of converting.

use crate::common::{Client, free_ports, ours, redis, write};

const SCRIPT: &[&str] = &[
    "SET s 1",
    "GET s",
    "GET missing",
    "INCRBYFLOAT s 1.5",
    "GETEX s PERSIST",
    "SETRANGE s 0 abc",
    "GETRANGE s 0 1",
    "STRLEN s",
    "MSET {a}1 x {a}2 y",
    "MGET {a}1 {a}2 nothing",
    "EXISTS {a}1 {a}2",
    "HSET h f1 v1 f2 v2",
    "HGETALL h",
    "HMGET h f1 nope",
    "HINCRBYFLOAT h n 2.5",
    "RPUSH l a b c",
    "LRANGE l 0 -1",
    "LPOS l b",
    "LMPOP 1 l LEFT COUNT 2",
    "SADD st a b c",
    "SMISMEMBER st a z",
    "SINTERCARD 1 st",
    "ZADD z 1 one 2.5 two",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZSCORE z two",
    "ZMSCORE z one nope",
    "ZRANGESTORE {z}dst z 0 -1",
    "ZRANGESTORE zz z 0 -1",
    "ZPOPMIN z",
    "ZRANDMEMBER z 1 WITHSCORES",
    "ZMPOP 1 z MIN",
    "PFADD hll a b",
    "PFCOUNT hll",
    "GEOADD g 13.36 38.11 palermo",
    "GEOPOS g palermo nope",
    "XADD x 1-1 f v",
    "XRANGE x - +",
    "XLEN x",
    "EXPIRE s 100",
    "EXPIRETIME missing",
    "OBJECT ENCODING l",
    "TYPE h",
    "EVAL return{1,'a',{err='x'}} 0",
    "EVAL return{double='1.5'} 0",
    "EVAL return{map={a=1}} 0",
    "EVAL return{1,2} 1 k",
    "COPY h {h}copy",
    "LCS s s",
    "SORT l",
    "BITCOUNT s",
    "TTL s",
    "DEL s h l st z hll g x",
];

fn run_all(c: &mut Client) -> Vec<String> {
    SCRIPT.iter().map(|line| c.q(line)).collect()
}

#[test]
fn replies_equal_redis_servers_own_in_both_protocols() {
    let dir = tempfile::tempdir().unwrap();
    for resp3 in [false, true] {
        let (through, direct) = (redis(), redis());
        let listen = free_ports(1)[0];
        let text = format!(
            "p:\n  listen: 127.0.0.1:{listen}\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1\n",
            through.port
        );
        let conf = write(dir.path(), &format!("n{resp3}.yml"), &text);
        let p = ours(&conf, listen, &[]);
        let mut a = Client::connect(p.port);
        let mut b = Client::connect(direct.port);
        if resp3 {
            assert!(a.q("HELLO 3").starts_with('%'));
            assert!(b.q("HELLO 3").starts_with('%'));
        }
        let (ra, rb) = (run_all(&mut a), run_all(&mut b));
        for ((line, x), y) in SCRIPT.iter().zip(&ra).zip(&rb) {
            assert_eq!(x, y, "{line} (resp3: {resp3})");
        }
    }
}
