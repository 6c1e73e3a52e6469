//! One client connection: read what the client sent, route every request of that read, send each
//! server its part as one batch, wait for the replies and write them back in request order.
//!
//! Processing a read as a unit ("round") bounds the per-client pipeline (at most
//! `max_pipeline` requests are in flight) and lets a pipeline of 16 GETs cost one channel send,
//! one write and one wake-up per server instead of sixteen.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::backend::{BackendError, Batch, BatchReply};
use crate::command::{self, COMMANDS, Kind};
use crate::dist::Ring;
use crate::pool::Pool;
use crate::resp::{self, ProtoError};

/// Initial read buffer of a client.
const IDLE_BUF: usize = 1024;

/// Where a batch's result arrives.
type ReplyRx = oneshot::Receiver<Result<BatchReply, BackendError>>;

/// Per-client limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request accepted, in bytes.
    pub max_request_bytes: usize,
    /// Most requests of one client in flight at once.
    pub max_pipeline: usize,
}

/// What a client task needs.
pub struct ClientCtx {
    /// The pool, swapped on reload.
    pub pool: Arc<ArcSwap<Pool>>,
    /// Limits.
    pub limits: Limits,
    /// Cancelled on SIGTERM: finish the current round, then close.
    pub shutdown: CancellationToken,
    /// Connection id (spreads clients over server connections, CLIENT ID).
    pub id: u64,
}

enum Plan {
    /// A reply produced by the proxy: a range of `Round::local`.
    Local(Range<usize>),
    /// Forwarded whole: reply `idx` of server `server`'s batch.
    Fwd {
        server: usize,
        idx: usize,
        cmd: usize,
    },
    /// Split across servers: `parts` is a range of `Round::parts`; for MGET, `keys` is a range of
    /// `Round::keymap` giving (part, element) for each key in request order.
    Split {
        kind: Kind,
        cmd: usize,
        parts: Range<usize>,
        keys: Range<usize>,
    },
}

#[derive(Default)]
struct BatchBuf {
    data: BytesMut,
    count: usize,
}

#[derive(Default)]
struct Round {
    plans: Vec<Plan>,
    batches: Vec<BatchBuf>,
    local: BytesMut,
    /// (server, index in that server's batch)
    parts: Vec<(usize, usize)>,
    /// (part index, element index)
    keymap: Vec<(usize, usize)>,
    /// Per server: the batch result.
    results: Vec<Option<Result<BatchReply, BackendError>>>,
    /// Scratch: server of each key of the current command.
    key_servers: Vec<usize>,
    /// Scratch: (server, reply receiver, request bytes) of the batches sent.
    waits: Vec<(usize, ReplyRx, usize)>,
}

impl Round {
    fn reset(&mut self, nservers: usize) {
        self.plans.clear();
        self.local.clear();
        self.parts.clear();
        self.keymap.clear();
        self.results.clear();
        if self.batches.len() != nservers {
            self.batches.clear();
            self.batches.resize_with(nservers, BatchBuf::default);
        }
        for b in &mut self.batches {
            b.data.clear();
            b.count = 0;
        }
    }

    fn local_reply(&mut self, f: impl FnOnce(&mut BytesMut)) {
        let start = self.local.len();
        f(&mut self.local);
        self.plans.push(Plan::Local(start..self.local.len()));
    }

    fn local_error(&mut self, msg: &str) {
        self.local_reply(|o| resp::put_error(o, msg));
    }

    /// Queues a request for `server`; returns its index in the batch.
    fn queue(&mut self, server: usize, f: impl FnOnce(&mut BytesMut)) -> usize {
        let b = &mut self.batches[server];
        f(&mut b.data);
        b.count += 1;
        b.count - 1
    }
}

/// Per-connection state.
struct Client {
    id: u64,
    authed: bool,
    name: Option<Vec<u8>>,
    rng: u32,
    close: bool,
}

impl Client {
    fn random(&mut self) -> u32 {
        // xorshift32: the random distribution only needs spread, not quality.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }
}

/// Encodes `args` (byte ranges of `src`) as a RESP multibulk, with `name` as argument 0.
fn encode(
    out: &mut BytesMut,
    name: &[u8],
    src: &[u8],
    args: impl ExactSizeIterator<Item = (usize, usize)>,
) {
    resp::put_array_header(out, args.len() + 1);
    resp::put_bulk(out, name);
    for (s, e) in args {
        resp::put_bulk(out, &src[s..e]);
    }
}

/// Serves one client until it quits, errs, or shutdown.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, ctx: ClientCtx) {
    // Buffers start small and grow with the traffic: a thousand idle clients must not cost a
    // thousand 16 KiB buffers.
    let mut buf = BytesMut::with_capacity(IDLE_BUF);
    let mut out = BytesMut::new();
    let mut args: Vec<(usize, usize)> = Vec::with_capacity(16);
    let mut round = Round::default();
    let first = ctx.pool.load_full();
    let mut client = Client {
        id: ctx.id,
        authed: first.shared.cfg.redis_auth.is_none(),
        name: None,
        rng: (ctx.id as u32).wrapping_mul(2_654_435_761) | 1,
        close: false,
    };
    drop(first);
    let mut need_read = true;
    loop {
        if need_read {
            if buf.capacity() - buf.len() < IDLE_BUF / 2 {
                buf.reserve(buf.len().max(8 * 1024));
            }
            let n = tokio::select! {
                r = stream.read_buf(&mut buf) => r,
                _ = ctx.shutdown.cancelled() => break,
            };
            match n {
                Ok(0) => {
                    let pool = ctx.pool.load();
                    pool.shared.stats.client_eof.fetch_add(1, Relaxed);
                    break;
                }
                Ok(_) => {}
                Err(_) => {
                    let pool = ctx.pool.load();
                    pool.shared.stats.client_err.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
        let pool = ctx.pool.load_full();
        let ring = pool.ring();
        let started = Instant::now();
        round.reset(pool.servers.len());
        let mut consumed = 0;
        let mut proto_err = None;
        need_read = false;
        while round.plans.len() < ctx.limits.max_pipeline {
            match resp::parse_request(&buf[consumed..], &mut args, ctx.limits.max_request_bytes) {
                Ok(None) => {
                    need_read = true;
                    break;
                }
                Ok(Some(n)) => {
                    let req = &buf[consumed..consumed + n];
                    consumed += n;
                    if !args.is_empty() {
                        plan(&mut round, &mut client, &pool, &ring, req, &args);
                    }
                    if client.close {
                        break;
                    }
                }
                Err(e) => {
                    proto_err = Some(e);
                    break;
                }
            }
        }
        drop(ring);
        out.clear();
        execute(&mut round, &pool, ctx.id, started, &mut out).await;
        buf.advance(consumed);
        if let Some(e) = proto_err {
            resp::put_error(&mut out, &format!("ERR Protocol error: {}", e.reason()));
            pool.shared.stats.client_err.fetch_add(1, Relaxed);
            pool.metrics.error(None, "-", "client");
            client.close = true;
            if e == ProtoError::TooLarge {
                tracing::debug!(
                    client = ctx.id,
                    "closing a client whose request is too large"
                );
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            pool.shared.stats.client_err.fetch_add(1, Relaxed);
            break;
        }
        if client.close {
            break;
        }
        if buf.is_empty() {
            need_read = true;
            // Keep an idle client's footprint small: a big buffer from a large request is freed.
            if buf.capacity() > 64 * 1024 {
                buf = BytesMut::with_capacity(IDLE_BUF);
            }
            if out.capacity() > 64 * 1024 {
                out = BytesMut::new();
            }
        }
        if ctx.shutdown.is_cancelled() && need_read {
            break;
        }
    }
    let _ = stream.shutdown().await;
}

fn arity_error(round: &mut Round, name: &str) {
    round.local_error(&format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    ));
}

/// Decides what to do with one request and queues it.
fn plan(
    round: &mut Round,
    client: &mut Client,
    pool: &Pool,
    ring: &Ring,
    req: &[u8],
    args: &[(usize, usize)],
) {
    let (s0, e0) = args[0];
    let Some((cmd_idx, cmd)) = command::lookup(&req[s0..e0]) else {
        let name = String::from_utf8_lossy(&req[s0..e0]).into_owned();
        pool.metrics.error(None, "-", "client");
        round.local_error(&format!(
            "ERR unknown or unsupported command '{}' (not available through the redis-ambassador proxy)",
            name.chars().take(64).collect::<String>()
        ));
        return;
    };
    if args.len() < cmd.min_args {
        pool.metrics.error(None, cmd.name, "client");
        arity_error(round, cmd.name);
        return;
    }
    if !client.authed && !matches!(cmd.name, "AUTH" | "HELLO" | "QUIT") {
        pool.metrics.error(None, cmd.name, "client");
        round.local_error("NOAUTH Authentication required.");
        return;
    }
    let inline = req.first() != Some(&b'*');
    let forward = |round: &mut Round, server: usize| {
        let idx = round.queue(server, |o| {
            if inline {
                encode(o, &req[s0..e0], req, args[1..].iter().copied());
            } else {
                o.extend_from_slice(req);
            }
        });
        round.plans.push(Plan::Fwd {
            server,
            idx,
            cmd: cmd_idx,
        });
    };
    let no_server = |round: &mut Round| {
        pool.shared.stats.forward_error.fetch_add(1, Relaxed);
        pool.metrics.error(None, cmd.name, "backend");
        round.local_error(&BackendError::NoServer.message(""));
    };
    match cmd.kind {
        Kind::Local => {
            pool.metrics.request(None, cmd_idx, 1);
            local(round, client, pool, cmd.name, req, args);
        }
        Kind::Single => match pool.server_for(ring, &req[args[1].0..args[1].1], client.random()) {
            Some(s) => forward(round, s),
            None => no_server(round),
        },
        Kind::SplitSum | Kind::SplitMget | Kind::SplitMset => {
            let step = if cmd.kind == Kind::SplitMset { 2 } else { 1 };
            if !(args.len() - 1).is_multiple_of(step) {
                arity_error(round, cmd.name);
                return;
            }
            round.key_servers.clear();
            for a in args[1..].iter().step_by(step) {
                match pool.server_for(ring, &req[a.0..a.1], client.random()) {
                    Some(s) => round.key_servers.push(s),
                    None => {
                        no_server(round);
                        return;
                    }
                }
            }
            let first = round.key_servers[0];
            if round.key_servers.iter().all(|&s| s == first) {
                forward(round, first);
                return;
            }
            split(round, pool, cmd_idx, req, args, step);
        }
        Kind::SameServer(_) | Kind::NumKeys { .. } | Kind::PairsSameServer => {
            let keys: Vec<(usize, usize)> = match cmd.kind {
                Kind::SameServer(Some(n)) => args[1..].iter().take(n).copied().collect(),
                Kind::SameServer(None) => args[1..].to_vec(),
                Kind::PairsSameServer => {
                    if !(args.len() - 1).is_multiple_of(2) {
                        arity_error(round, cmd.name);
                        return;
                    }
                    args[1..].iter().step_by(2).copied().collect()
                }
                Kind::NumKeys { at, dest } => {
                    let n = std::str::from_utf8(&req[args[at].0..args[at].1])
                        .ok()
                        .and_then(|s| s.parse::<usize>().ok());
                    let Some(n) = n.filter(|&n| at + 1 + n <= args.len()) else {
                        round.local_error(
                            "ERR numkeys is not a valid number of keys for this command",
                        );
                        return;
                    };
                    let mut k: Vec<(usize, usize)> = Vec::with_capacity(n + 1);
                    if dest {
                        k.push(args[1]);
                    }
                    k.extend_from_slice(&args[at + 1..at + 1 + n]);
                    k
                }
                _ => Vec::new(),
            };
            if keys.is_empty() {
                pool.metrics.error(None, cmd.name, "client");
                round.local_error(&format!(
                    "ERR '{}' without keys cannot be routed to a server",
                    cmd.name
                ));
                return;
            }
            let mut target = None;
            for k in &keys {
                let s = pool.server_for(ring, &req[k.0..k.1], client.random());
                match (s, target) {
                    (None, _) => {
                        no_server(round);
                        return;
                    }
                    (Some(s), None) => target = Some(s),
                    (Some(s), Some(t)) if s != t => {
                        pool.metrics.error(None, cmd.name, "client");
                        round.local_error(&format!(
                            "CROSSSHARD Keys in '{}' map to different servers; put them on one server with a hash tag such as {{user42}}",
                            cmd.name
                        ));
                        return;
                    }
                    _ => {}
                }
            }
            if let Some(t) = target {
                forward(round, t);
            }
        }
    }
}

/// Splits a multi-key command by server (the servers of its keys are in `round.key_servers`).
fn split(
    round: &mut Round,
    pool: &Pool,
    cmd_idx: usize,
    req: &[u8],
    args: &[(usize, usize)],
    step: usize,
) {
    let name = COMMANDS[cmd_idx].name.as_bytes();
    let parts_start = round.parts.len();
    let keys_start = round.keymap.len();
    // Servers in order of first appearance; keys keep their request order inside a part.
    let mut servers: Vec<usize> = Vec::new();
    for &s in &round.key_servers {
        if !servers.contains(&s) {
            servers.push(s);
        }
    }
    for &s in &servers {
        let key_servers = &round.key_servers;
        let mine: Vec<(usize, usize)> = args[1..]
            .chunks(step)
            .zip(key_servers.iter())
            .filter(|(_, ks)| **ks == s)
            .flat_map(|(c, _)| c.iter().copied())
            .collect();
        let idx = round.queue(s, |o| encode(o, name, req, mine.into_iter()));
        round.parts.push((s, idx));
    }
    if COMMANDS[cmd_idx].kind == Kind::SplitMget {
        let mut next_elem = vec![0usize; servers.len()];
        for &s in &round.key_servers {
            let p = servers.iter().position(|&x| x == s).unwrap_or(0);
            round.keymap.push((parts_start + p, next_elem[p]));
            next_elem[p] += 1;
        }
    }
    pool.shared
        .stats
        .fragments
        .fetch_add(servers.len() as u64, Relaxed);
    round.plans.push(Plan::Split {
        kind: COMMANDS[cmd_idx].kind,
        cmd: cmd_idx,
        parts: parts_start..round.parts.len(),
        keys: keys_start..round.keymap.len(),
    });
}

/// Commands the proxy answers itself.
fn local(
    round: &mut Round,
    client: &mut Client,
    pool: &Pool,
    name: &str,
    req: &[u8],
    args: &[(usize, usize)],
) {
    let arg = |i: usize| &req[args[i].0..args[i].1];
    let upper = |i: usize| String::from_utf8_lossy(arg(i)).to_ascii_uppercase();
    let cfg = &pool.shared.cfg;
    match name {
        "PING" => match args.len() {
            1 => round.local_reply(|o| o.extend_from_slice(b"+PONG\r\n")),
            2 => round.local_reply(|o| resp::put_bulk(o, arg(1))),
            _ => arity_error(round, name),
        },
        "ECHO" if args.len() == 2 => round.local_reply(|o| resp::put_bulk(o, arg(1))),
        "QUIT" => {
            client.close = true;
            round.local_reply(|o| o.extend_from_slice(b"+OK\r\n"));
        }
        "AUTH" if args.len() <= 3 => {
            let pw = arg(args.len() - 1);
            let reply = auth(client, cfg.redis_auth.as_deref(), pw);
            round.local_reply(|o| o.extend_from_slice(reply));
        }
        "SELECT" if args.len() == 2 => {
            if arg(1) == cfg.redis_db.to_string().as_bytes() {
                round.local_reply(|o| o.extend_from_slice(b"+OK\r\n"));
            } else {
                round.local_error(&format!(
                    "ERR SELECT is not supported through the proxy: pool '{}' uses db {}",
                    cfg.name, cfg.redis_db
                ));
            }
        }
        "HELLO" => hello(round, client, cfg.redis_auth.as_deref(), req, args),
        "CLIENT" => match upper(1).as_str() {
            "SETNAME" if args.len() == 3 => {
                client.name = Some(arg(2).to_vec());
                round.local_reply(|o| o.extend_from_slice(b"+OK\r\n"));
            }
            "SETINFO" if args.len() == 4 => {
                round.local_reply(|o| o.extend_from_slice(b"+OK\r\n"))
            }
            "GETNAME" => {
                let n = client.name.clone();
                round.local_reply(|o| match n {
                    Some(n) => resp::put_bulk(o, &n),
                    None => o.extend_from_slice(b"$-1\r\n"),
                });
            }
            "ID" => {
                let id = client.id as i64;
                round.local_reply(|o| resp::put_int(o, id));
            }
            other => round.local_error(&format!(
                "ERR unsupported CLIENT subcommand '{other}' (the proxy supports SETNAME, SETINFO, GETNAME, ID)"
            )),
        },
        "COMMAND" => {
            let sub = if args.len() > 1 { upper(1) } else { String::new() };
            match sub.as_str() {
                "COUNT" => round.local_reply(|o| resp::put_int(o, COMMANDS.len() as i64)),
                "INFO" => {
                    let n = args.len() - 2;
                    round.local_reply(|o| {
                        resp::put_array_header(o, n);
                        for _ in 0..n {
                            o.extend_from_slice(b"*-1\r\n");
                        }
                    });
                }
                _ => round.local_reply(|o| o.extend_from_slice(b"*0\r\n")),
            }
        }
        _ => arity_error(round, name),
    }
}

fn auth(client: &mut Client, want: Option<&str>, pw: &[u8]) -> &'static [u8] {
    match want {
        None => b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
        Some(w) if w.as_bytes() == pw => {
            client.authed = true;
            b"+OK\r\n"
        }
        Some(_) => {
            client.authed = false;
            b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        }
    }
}

/// HELLO: answers as Redis 7 does for protocol 2, so RESP2 clients (redis-py, go-redis, which
/// falls back when RESP3 is refused) can connect.
fn hello(
    round: &mut Round,
    client: &mut Client,
    want: Option<&str>,
    req: &[u8],
    args: &[(usize, usize)],
) {
    let arg = |i: usize| &req[args[i].0..args[i].1];
    if args.len() > 1 {
        let v = arg(1);
        if v != b"2" {
            let v = String::from_utf8_lossy(v).into_owned();
            round.local_error(&format!(
                "NOPROTO unsupported protocol version {v}: the proxy speaks RESP2"
            ));
            return;
        }
    }
    let mut i = 2;
    while i < args.len() {
        let opt = String::from_utf8_lossy(arg(i)).to_ascii_uppercase();
        match opt.as_str() {
            "AUTH" if i + 2 < args.len() => {
                let r = auth(client, want, arg(i + 2));
                if r[0] == b'-' {
                    round.local_reply(|o| o.extend_from_slice(r));
                    return;
                }
                i += 3;
            }
            "SETNAME" if i + 1 < args.len() => {
                client.name = Some(arg(i + 1).to_vec());
                i += 2;
            }
            _ => {
                round.local_error(&format!("ERR Syntax error in HELLO option '{opt}'"));
                return;
            }
        }
    }
    if !client.authed {
        round.local_error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    let id = client.id as i64;
    round.local_reply(|o| {
        resp::put_array_header(o, 14);
        for (k, v) in [("server", "redis"), ("version", "7.0.0")] {
            resp::put_bulk(o, k.as_bytes());
            resp::put_bulk(o, v.as_bytes());
        }
        resp::put_bulk(o, b"proto");
        resp::put_int(o, 2);
        resp::put_bulk(o, b"id");
        resp::put_int(o, id);
        for (k, v) in [("mode", "standalone"), ("role", "master")] {
            resp::put_bulk(o, k.as_bytes());
            resp::put_bulk(o, v.as_bytes());
        }
        resp::put_bulk(o, b"modules");
        o.extend_from_slice(b"*0\r\n");
    });
}

/// Sends the batches, waits for the replies and writes every reply in request order to `out`.
async fn execute(
    round: &mut Round,
    pool: &Pool,
    client_id: u64,
    started: Instant,
    out: &mut BytesMut,
) {
    let mut waits = std::mem::take(&mut round.waits);
    round.results.resize_with(pool.servers.len(), || None);
    for (s, b) in round.batches.iter_mut().enumerate() {
        if b.count == 0 {
            continue;
        }
        let (tx, rx) = oneshot::channel();
        let data = b.data.split().freeze();
        let bytes = data.len();
        let srv = &pool.servers[s];
        let st = &srv.shared.stats;
        st.requests.fetch_add(b.count as u64, Relaxed);
        st.request_bytes.fetch_add(bytes as u64, Relaxed);
        st.in_queue.fetch_add(b.count as i64, Relaxed);
        st.in_queue_bytes.fetch_add(bytes as i64, Relaxed);
        srv.shared.queue_gauge.inc_by(b.count as i64);
        let batch = Batch {
            data,
            count: b.count as u32,
            reply: tx,
        };
        if srv.conn(client_id).send(batch).await.is_err() {
            round.results[s] = Some(Err(BackendError::Lost));
        }
        waits.push((s, rx, bytes));
    }
    let deadline = pool
        .shared
        .cfg
        .timeout
        .map(|t| tokio::time::Instant::from_std(started) + t);
    for (s, rx, bytes) in waits.drain(..) {
        let count = round.batches[s].count;
        let srv = &pool.servers[s].shared;
        let r = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rx).await {
                Ok(r) => r.unwrap_or(Err(BackendError::Lost)),
                Err(_) => {
                    srv.stats.server_timedout.fetch_add(1, Relaxed);
                    srv.record_failure();
                    Err(BackendError::Timeout)
                }
            },
            None => rx.await.unwrap_or(Err(BackendError::Lost)),
        };
        srv.stats.in_queue.fetch_sub(count as i64, Relaxed);
        srv.stats.in_queue_bytes.fetch_sub(bytes as i64, Relaxed);
        srv.queue_gauge.dec_by(count as i64);
        match &r {
            Ok(rep) => {
                srv.stats.responses.fetch_add(count as u64, Relaxed);
                srv.stats
                    .response_bytes
                    .fetch_add(rep.data.len() as u64, Relaxed);
            }
            Err(_) => {
                pool.shared
                    .stats
                    .forward_error
                    .fetch_add(count as u64, Relaxed);
            }
        }
        if round.results[s].is_none() {
            round.results[s] = Some(r);
        }
    }
    round.waits = waits;
    let secs = started.elapsed().as_secs_f64();
    let m = &pool.metrics;
    for p in &round.plans {
        match p {
            Plan::Local(r) => out.extend_from_slice(&round.local[r.clone()]),
            Plan::Fwd { server, idx, cmd } => {
                m.request(Some(*server), *cmd, 1);
                m.latency(*cmd, secs);
                match reply(&round.results, *server, *idx) {
                    Ok(r) => {
                        if r.first() == Some(&b'-') {
                            m.error(Some(*server), COMMANDS[*cmd].name, "redis");
                        }
                        out.extend_from_slice(r);
                    }
                    Err(e) => {
                        m.error(Some(*server), COMMANDS[*cmd].name, "backend");
                        resp::put_error(out, &e.message(&pool.servers[*server].shared.cfg.label));
                    }
                }
            }
            Plan::Split {
                kind,
                cmd,
                parts,
                keys,
            } => {
                m.latency(*cmd, secs);
                for &(s, _) in &round.parts[parts.clone()] {
                    m.request(Some(s), *cmd, 1);
                }
                merge(round, pool, *kind, *cmd, parts.clone(), keys.clone(), out);
            }
        }
    }
}

fn reply(
    results: &[Option<Result<BatchReply, BackendError>>],
    server: usize,
    idx: usize,
) -> Result<&[u8], BackendError> {
    match &results[server] {
        Some(Ok(r)) => Ok(r.get(idx)),
        Some(Err(e)) => Err(e.clone()),
        None => Err(BackendError::Lost),
    }
}

/// Merges the replies of a split command.
fn merge(
    round: &Round,
    pool: &Pool,
    kind: Kind,
    cmd: usize,
    parts: Range<usize>,
    keys: Range<usize>,
    out: &mut BytesMut,
) {
    let name = COMMANDS[cmd].name;
    let base = parts.start;
    let mut replies: Vec<&[u8]> = Vec::with_capacity(parts.len());
    for &(s, idx) in &round.parts[parts] {
        match reply(&round.results, s, idx) {
            Ok(r) if r.first() == Some(&b'-') => {
                pool.metrics.error(Some(s), name, "redis");
                out.extend_from_slice(r);
                return;
            }
            Ok(r) => replies.push(r),
            Err(e) => {
                pool.metrics.error(Some(s), name, "backend");
                resp::put_error(out, &e.message(&pool.servers[s].shared.cfg.label));
                return;
            }
        }
    }
    match kind {
        Kind::SplitSum => {
            let mut total = 0i64;
            for r in &replies {
                match resp::parse_int_reply(r) {
                    Some(v) => total += v,
                    None => {
                        resp::put_error(
                            out,
                            &format!("ERR unexpected reply to {name} from a server"),
                        );
                        return;
                    }
                }
            }
            resp::put_int(out, total);
        }
        Kind::SplitMset => out.extend_from_slice(b"+OK\r\n"),
        _ => {
            let mut elems = Vec::with_capacity(replies.len());
            for r in &replies {
                match resp::array_elements(r) {
                    Some(e) => elems.push(e),
                    None => {
                        resp::put_error(out, "ERR unexpected reply to MGET from a server");
                        return;
                    }
                }
            }
            let keys = &round.keymap[keys];
            resp::put_array_header(out, keys.len());
            for &(part, elem) in keys {
                let p = part - base;
                match elems.get(p).and_then(|e| e.get(elem)) {
                    Some(&(s, e)) => out.extend_from_slice(&replies[p][s..e]),
                    None => out.extend_from_slice(b"$-1\r\n"),
                }
            }
        }
    }
}
