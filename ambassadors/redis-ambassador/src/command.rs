//! Which commands the proxy forwards, splits, answers itself or refuses, and where their keys are.

/// How a command is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One key at argument 1; forwarded to its server.
    Single,
    /// Every argument from 1 is a key; split across servers and the integer replies summed
    /// (DEL, UNLINK, TOUCH, EXISTS).
    SplitSum,
    /// MGET: split, the array replies merged back in request order.
    SplitMget,
    /// MSET: key/value pairs split; `+OK` when every part succeeded.
    SplitMset,
    /// Several keys that must live on one server: arguments `1..1+n` (`None`: all arguments).
    SameServer(Option<usize>),
    /// Keys counted by a numkeys argument at this index, keys following it; `dest` says whether
    /// argument 1 is a destination key as well (ZUNIONSTORE).
    NumKeys {
        /// Index of the numkeys argument.
        at: usize,
        /// Argument 1 is a key too.
        dest: bool,
    },
    /// MSETNX: key/value pairs that must live on one server.
    PairsSameServer,
    /// Answered by the proxy itself.
    Local,
    /// One key at this argument index (OBJECT ENCODING key, XINFO STREAM key).
    KeyAt(usize),
    /// Every argument but the first and the last is a key, all on one server (BLPOP k1 k2 0).
    AllButLast,
    /// XREAD/XREADGROUP: the keys are the first half of what follows STREAMS.
    Streams,
    /// Sent to every server and the replies merged.
    Fan(Fan),
    /// SCAN: one server at a time, the server encoded in the cursor.
    Scan,
    /// PUBLISH, PUBSUB: classic pub/sub lives on one server of the pool.
    Publish,
    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: the connection becomes a relay to one server.
    Subscribe,
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH.
    Tx,
}

/// How the replies of a command sent to every server are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fan {
    /// INFO: one server's text, with the client count, role and loading of the proxy and the
    /// keyspace summed.
    Info,
    /// DBSIZE: integers summed.
    Sum,
    /// KEYS: arrays concatenated.
    Concat,
    /// FLUSHDB, FLUSHALL (only with `allow_flush`): `+OK` when every server said so.
    Ok,
    /// SCRIPT LOAD, SCRIPT FLUSH, SCRIPT EXISTS: a script loaded on every server can be run with
    /// EVALSHA whichever server its keys are on. LOAD and FLUSH answer the servers' reply when
    /// they all agree; EXISTS says 1 for a script only where every server has it.
    Script,
}

/// A known command: its canonical (upper-case) name and how it is handled.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    /// Upper-case name, also the `command` label of the metrics.
    pub name: &'static str,
    /// Handling.
    pub kind: Kind,
    /// Minimum number of arguments including the name.
    pub min_args: usize,
    /// May block: sent on a connection of the client's own, without the pool's timeout.
    pub block: bool,
}

const fn c(name: &'static str, kind: Kind, min_args: usize) -> Command {
    Command {
        name,
        kind,
        min_args,
        block: false,
    }
}

const fn b(name: &'static str, kind: Kind, min_args: usize) -> Command {
    Command {
        name,
        kind,
        min_args,
        block: true,
    }
}

use Kind::{
    AllButLast, KeyAt, Local, NumKeys, PairsSameServer, Publish, SameServer, Scan, Single,
    SplitMget, SplitMset, SplitSum, Streams, Subscribe, Tx,
};

/// Every supported command. Anything else gets `-ERR unsupported command '<name>'`.
pub static COMMANDS: &[Command] = &[
    // Strings.
    c("GET", Single, 2),
    c("SET", Single, 3),
    c("SETNX", Single, 3),
    c("SETEX", Single, 4),
    c("PSETEX", Single, 4),
    c("GETSET", Single, 3),
    c("GETDEL", Single, 2),
    c("GETEX", Single, 2),
    c("APPEND", Single, 3),
    c("STRLEN", Single, 2),
    c("INCR", Single, 2),
    c("DECR", Single, 2),
    c("INCRBY", Single, 3),
    c("DECRBY", Single, 3),
    c("INCRBYFLOAT", Single, 3),
    c("GETRANGE", Single, 4),
    c("SUBSTR", Single, 4),
    c("SETRANGE", Single, 4),
    c("GETBIT", Single, 3),
    c("SETBIT", Single, 4),
    c("BITCOUNT", Single, 2),
    c("BITPOS", Single, 3),
    c("BITFIELD", Single, 2),
    c("BITFIELD_RO", Single, 2),
    c("MGET", SplitMget, 2),
    c("MSET", SplitMset, 3),
    c("MSETNX", PairsSameServer, 3),
    // Keys.
    c("DEL", SplitSum, 2),
    c("UNLINK", SplitSum, 2),
    c("TOUCH", SplitSum, 2),
    c("EXISTS", SplitSum, 2),
    c("EXPIRE", Single, 3),
    c("EXPIREAT", Single, 3),
    c("PEXPIRE", Single, 3),
    c("PEXPIREAT", Single, 3),
    c("EXPIRETIME", Single, 2),
    c("PEXPIRETIME", Single, 2),
    c("PERSIST", Single, 2),
    c("TTL", Single, 2),
    c("PTTL", Single, 2),
    c("TYPE", Single, 2),
    c("DUMP", Single, 2),
    c("RESTORE", Single, 4),
    c("SORT", Single, 2),
    c("SORT_RO", Single, 2),
    c("RENAME", SameServer(Some(2)), 3),
    c("RENAMENX", SameServer(Some(2)), 3),
    c("COPY", SameServer(Some(2)), 3),
    // Hashes.
    c("HDEL", Single, 3),
    c("HEXISTS", Single, 3),
    c("HGET", Single, 3),
    c("HGETALL", Single, 2),
    c("HINCRBY", Single, 4),
    c("HINCRBYFLOAT", Single, 4),
    c("HKEYS", Single, 2),
    c("HLEN", Single, 2),
    c("HMGET", Single, 3),
    c("HMSET", Single, 4),
    c("HSET", Single, 4),
    c("HSETNX", Single, 4),
    c("HVALS", Single, 2),
    c("HSCAN", Single, 3),
    c("HSTRLEN", Single, 3),
    c("HRANDFIELD", Single, 2),
    // Lists.
    c("LINDEX", Single, 3),
    c("LINSERT", Single, 5),
    c("LLEN", Single, 2),
    c("LPOP", Single, 2),
    c("LPOS", Single, 3),
    c("LPUSH", Single, 3),
    c("LPUSHX", Single, 3),
    c("LRANGE", Single, 4),
    c("LREM", Single, 4),
    c("LSET", Single, 4),
    c("LTRIM", Single, 4),
    c("RPOP", Single, 2),
    c("RPUSH", Single, 3),
    c("RPUSHX", Single, 3),
    c("RPOPLPUSH", SameServer(Some(2)), 3),
    c("LMOVE", SameServer(Some(2)), 5),
    // Sets.
    c("SADD", Single, 3),
    c("SCARD", Single, 2),
    c("SISMEMBER", Single, 3),
    c("SMISMEMBER", Single, 3),
    c("SMEMBERS", Single, 2),
    c("SPOP", Single, 2),
    c("SRANDMEMBER", Single, 2),
    c("SREM", Single, 3),
    c("SSCAN", Single, 3),
    c("SMOVE", SameServer(Some(2)), 4),
    c("SDIFF", SameServer(None), 2),
    c("SINTER", SameServer(None), 2),
    c("SUNION", SameServer(None), 2),
    c("SDIFFSTORE", SameServer(None), 3),
    c("SINTERSTORE", SameServer(None), 3),
    c("SUNIONSTORE", SameServer(None), 3),
    c("SINTERCARD", NumKeys { at: 1, dest: false }, 3),
    // Sorted sets.
    c("ZADD", Single, 4),
    c("ZCARD", Single, 2),
    c("ZCOUNT", Single, 4),
    c("ZINCRBY", Single, 4),
    c("ZLEXCOUNT", Single, 4),
    c("ZRANGE", Single, 4),
    c("ZRANGEBYLEX", Single, 4),
    c("ZRANGEBYSCORE", Single, 4),
    c("ZRANK", Single, 3),
    c("ZREM", Single, 3),
    c("ZREMRANGEBYLEX", Single, 4),
    c("ZREMRANGEBYRANK", Single, 4),
    c("ZREMRANGEBYSCORE", Single, 4),
    c("ZREVRANGE", Single, 4),
    c("ZREVRANGEBYLEX", Single, 4),
    c("ZREVRANGEBYSCORE", Single, 4),
    c("ZREVRANK", Single, 3),
    c("ZSCORE", Single, 3),
    c("ZMSCORE", Single, 3),
    c("ZSCAN", Single, 3),
    c("ZPOPMIN", Single, 2),
    c("ZPOPMAX", Single, 2),
    c("ZRANDMEMBER", Single, 2),
    c("ZUNIONSTORE", NumKeys { at: 2, dest: true }, 4),
    c("ZINTERSTORE", NumKeys { at: 2, dest: true }, 4),
    c("ZDIFFSTORE", NumKeys { at: 2, dest: true }, 4),
    c("ZUNION", NumKeys { at: 1, dest: false }, 3),
    c("ZINTER", NumKeys { at: 1, dest: false }, 3),
    c("ZDIFF", NumKeys { at: 1, dest: false }, 3),
    // HyperLogLog.
    c("PFADD", Single, 2),
    c("PFCOUNT", SameServer(None), 2),
    c("PFMERGE", SameServer(None), 2),
    // Geo.
    c("GEOADD", Single, 5),
    c("GEODIST", Single, 4),
    c("GEOHASH", Single, 2),
    c("GEOPOS", Single, 2),
    c("GEORADIUS", Single, 6),
    c("GEORADIUSBYMEMBER", Single, 5),
    c("GEORADIUS_RO", Single, 6),
    c("GEORADIUSBYMEMBER_RO", Single, 5),
    c("GEOSEARCH", Single, 2),
    // Streams (non-blocking forms).
    c("XADD", Single, 5),
    c("XLEN", Single, 2),
    c("XRANGE", Single, 4),
    c("XREVRANGE", Single, 4),
    c("XTRIM", Single, 4),
    c("XDEL", Single, 3),
    c("XACK", Single, 4),
    c("XPENDING", Single, 3),
    c("XCLAIM", Single, 6),
    c("XAUTOCLAIM", Single, 6),
    // Scripting: every key must be on one server.
    c("EVAL", NumKeys { at: 2, dest: false }, 3),
    c("EVALSHA", NumKeys { at: 2, dest: false }, 3),
    c("EVAL_RO", NumKeys { at: 2, dest: false }, 3),
    c("EVALSHA_RO", NumKeys { at: 2, dest: false }, 3),
    // Redis 7.x additions.
    c("ZRANGESTORE", SameServer(Some(2)), 5),
    c("LMPOP", NumKeys { at: 1, dest: false }, 4),
    c("ZMPOP", NumKeys { at: 1, dest: false }, 4),
    c("LCS", SameServer(Some(2)), 3),
    c("GEOSEARCHSTORE", SameServer(Some(2)), 3),
    c("OBJECT", KeyAt(2), 3),
    c("MEMORY", KeyAt(2), 3),
    c("XINFO", KeyAt(2), 3),
    c("XGROUP", KeyAt(2), 3),
    c("XSETID", Single, 3),
    c("FCALL", NumKeys { at: 2, dest: false }, 3),
    c("FCALL_RO", NumKeys { at: 2, dest: false }, 3),
    c("SPUBLISH", Single, 3),
    // Blocking: on a connection of the client's own.
    b("BLPOP", AllButLast, 3),
    b("BRPOP", AllButLast, 3),
    b("BRPOPLPUSH", SameServer(Some(2)), 4),
    b("BLMOVE", SameServer(Some(2)), 6),
    b("BLMPOP", NumKeys { at: 2, dest: false }, 5),
    b("BZPOPMIN", AllButLast, 3),
    b("BZPOPMAX", AllButLast, 3),
    b("BZMPOP", NumKeys { at: 2, dest: false }, 5),
    c("XREAD", Streams, 4),
    c("XREADGROUP", Streams, 7),
    // Every server.
    c("INFO", Kind::Fan(Fan::Info), 1),
    c("DBSIZE", Kind::Fan(Fan::Sum), 1),
    c("KEYS", Kind::Fan(Fan::Concat), 2),
    c("FLUSHDB", Kind::Fan(Fan::Ok), 1),
    c("FLUSHALL", Kind::Fan(Fan::Ok), 1),
    c("SCRIPT", Kind::Fan(Fan::Script), 2),
    c("SCAN", Scan, 2),
    // Pub/sub.
    c("PUBLISH", Publish, 3),
    c("PUBSUB", Publish, 2),
    c("SUBSCRIBE", Subscribe, 2),
    c("PSUBSCRIBE", Subscribe, 2),
    c("SSUBSCRIBE", Subscribe, 2),
    // Transactions.
    c("MULTI", Tx, 1),
    c("EXEC", Tx, 1),
    c("DISCARD", Tx, 1),
    c("WATCH", Tx, 2),
    c("UNWATCH", Tx, 1),
    // Answered by the proxy.
    c("PING", Local, 1),
    c("ECHO", Local, 2),
    c("QUIT", Local, 1),
    c("AUTH", Local, 2),
    c("SELECT", Local, 2),
    c("HELLO", Local, 1),
    c("CLIENT", Local, 2),
    c("COMMAND", Local, 1),
];

/// Looks a command up, case-insensitively, without allocating: its index in [`COMMANDS`] and
/// its entry.
pub fn lookup(name: &[u8]) -> Option<(usize, &'static Command)> {
    if name.len() > 24 {
        return None;
    }
    let mut up = [0u8; 24];
    for (d, s) in up.iter_mut().zip(name) {
        *d = s.to_ascii_uppercase();
    }
    let up = &up[..name.len()];
    // A linear scan over ~170 names is a few hundred nanoseconds in the worst case; the hot
    // commands (GET, SET, MGET) are first.
    COMMANDS
        .iter()
        .enumerate()
        .find(|(_, c)| c.name.as_bytes() == up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_unique() {
        assert_eq!(lookup(b"get").unwrap().1.name, "GET");
        assert_eq!(lookup(b"MgEt").unwrap().1.kind, Kind::SplitMget);
        assert!(lookup(b"MIGRATE").is_none());
        assert!(lookup(b"averyveryverylongcommandname").is_none());
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate command in the table");
    }
}
