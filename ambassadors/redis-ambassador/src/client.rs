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
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::backend::{BackendError, Batch, BatchReply};
use crate::command::{self, COMMANDS, Command, Fan, Kind};
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
    /// Sent to every server: `parts` is a range of `Round::parts`.
    Fan {
        fan: Fan,
        cmd: usize,
        parts: Range<usize>,
    },
    /// SCAN on server `server` (index `server` of `n`): the cursor is re-encoded.
    Scan { server: usize, idx: usize, n: usize },
    /// Forwarded on the client's own connection to `server` (blocking commands, WATCH, EXEC
    /// under WATCH).
    Ded {
        server: usize,
        idx: usize,
        cmd: usize,
    },
}

/// A transaction being queued by the proxy: MULTI ... EXEC travel to one server as one batch.
#[derive(Default)]
struct Tx {
    /// The queued commands, encoded.
    data: BytesMut,
    count: usize,
    /// Server of the keys seen so far.
    server: Option<usize>,
    /// Keys on more than one server.
    cross: bool,
    /// A command was refused while queueing: EXEC answers EXECABORT, as Redis does.
    error: bool,
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
    /// Scratch: the key ranges of the current command.
    keys: Vec<(usize, usize)>,
    /// Per server: requests for the client's own connection.
    ded: Vec<BatchBuf>,
    /// The results of `ded`.
    ded_results: Vec<Option<Result<BatchReply, BackendError>>>,
    /// A request in `ded` may block: no pool timeout, and the round ends after it.
    blocking: bool,
    /// End the round after this request (blocking command, subscribe).
    stop: bool,
}

impl Round {
    fn reset(&mut self, nservers: usize) {
        self.plans.clear();
        self.local.clear();
        self.parts.clear();
        self.keymap.clear();
        self.results.clear();
        self.ded_results.clear();
        self.blocking = false;
        self.stop = false;
        if self.batches.len() != nservers {
            self.batches.clear();
            self.batches.resize_with(nservers, BatchBuf::default);
            self.ded.clear();
            self.ded.resize_with(nservers, BatchBuf::default);
        }
        for b in self.batches.iter_mut().chain(self.ded.iter_mut()) {
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

    /// Queues a request for the client's own connection to `server`.
    fn queue_ded(&mut self, server: usize, f: impl FnOnce(&mut BytesMut)) -> usize {
        let b = &mut self.ded[server];
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
    /// The client said `HELLO 3`: its requests use RESP3 backend connections.
    resp3: bool,
    /// Inside MULTI.
    tx: Option<Tx>,
    /// WATCH sent on the client's own connection to this server.
    watch: Option<usize>,
    /// The client's own backend connections, per server of `ded_pool`.
    ded: Vec<Option<mpsc::Sender<Batch>>>,
    ded_pool: Option<Arc<Pool>>,
    /// SUBSCRIBE and co: the server to relay to and the request to start with.
    subscribe: Option<(usize, BytesMut)>,
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
    // The place in a request that is still arriving, which stays at the start of the unconsumed
    // bytes until it is complete.
    let mut resume = resp::Resume::default();
    let mut round = Round::default();
    let first = ctx.pool.load_full();
    let mut client = Client {
        id: ctx.id,
        authed: first.shared.cfg.redis_auth.is_none(),
        name: None,
        rng: (ctx.id as u32).wrapping_mul(2_654_435_761) | 1,
        close: false,
        resp3: false,
        tx: None,
        watch: None,
        ded: Vec::new(),
        ded_pool: None,
        subscribe: None,
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
            match resp::parse_request_resuming(
                &buf[consumed..],
                &mut args,
                ctx.limits.max_request_bytes,
                &mut resume,
            ) {
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
                    if client.close || round.stop {
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
        if round.blocking {
            // While a blocking command waits, a client that goes away must free its connection.
            let exec = execute(&mut round, &mut client, &pool, ctx.id, started, &mut out);
            tokio::pin!(exec);
            let mut gone = false;
            loop {
                if buf.capacity() - buf.len() < IDLE_BUF / 2 {
                    buf.reserve(IDLE_BUF);
                }
                tokio::select! {
                    () = &mut exec => break,
                    r = stream.read_buf(&mut buf) => {
                        if !matches!(r, Ok(n) if n > 0) {
                            gone = true;
                            break;
                        }
                    }
                    _ = ctx.shutdown.cancelled() => {
                        gone = true;
                        break;
                    }
                }
            }
            if gone {
                pool.shared.stats.client_eof.fetch_add(1, Relaxed);
                break;
            }
        } else {
            execute(&mut round, &mut client, &pool, ctx.id, started, &mut out).await;
        }
        buf.advance(consumed);
        let protocol_error = proto_err.is_some();
        if let Some(e) = proto_err {
            resp::put_error(&mut out, &format!("ERR Protocol error: {e}"));
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
            // A QUIT ends the client in order: nutcracker counts it as `client_eof` (a protocol
            // error was counted as `client_err` above).
            if !protocol_error {
                pool.shared.stats.client_eof.fetch_add(1, Relaxed);
            }
            break;
        }
        if let Some((server, first)) = client.subscribe.take() {
            match crate::pubsub::relay(
                &mut stream,
                &mut buf,
                &pool,
                server,
                first,
                client.resp3,
                &ctx,
            )
            .await
            {
                crate::pubsub::End::Normal => {
                    need_read = buf.is_empty();
                    continue;
                }
                crate::pubsub::End::Close => break,
            }
        }
        if round.stop && !buf.is_empty() {
            // The rest of the read waits for the next round, after the blocking reply.
            need_read = false;
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
        if let Some(tx) = &mut client.tx {
            tx.error = true;
        }
        round.local_error(&format!(
            "ERR unknown or unsupported command '{}' (not available through the redis-ambassador proxy)",
            name.chars().take(64).collect::<String>()
        ));
        return;
    };
    if args.len() < cmd.min_args {
        pool.metrics.error(None, cmd.name, "client");
        if let Some(tx) = &mut client.tx {
            tx.error = true;
        }
        arity_error(round, cmd.name);
        return;
    }
    if !client.authed && !matches!(cmd.name, "AUTH" | "HELLO" | "QUIT") {
        pool.metrics.error(None, cmd.name, "client");
        round.local_error("NOAUTH Authentication required.");
        return;
    }
    let inline = req.first() != Some(&b'*');
    let put = |o: &mut BytesMut| {
        if inline {
            encode(o, &req[s0..e0], req, args[1..].iter().copied());
        } else {
            o.extend_from_slice(req);
        }
    };
    let no_server = |round: &mut Round| {
        pool.shared.stats.forward_error.fetch_add(1, Relaxed);
        pool.metrics.error(None, cmd.name, "backend");
        round.local_error(&BackendError::NoServer.message(""));
    };
    if cmd.kind == Kind::Tx {
        pool.metrics.request(None, cmd_idx, 1);
        transaction(round, client, pool, ring, cmd, req, args);
        return;
    }
    if client.tx.is_some() {
        // Queued: every key on one server, checked again at EXEC.
        let tx_server = match cmd.kind {
            Kind::Local if matches!(cmd.name, "PING" | "ECHO") => Ok(None),
            Kind::Local | Kind::Fan(_) | Kind::Scan | Kind::Subscribe => Err(format!(
                "ERR '{}' cannot be queued in a transaction through the proxy",
                cmd.name
            )),
            Kind::Publish => Ok(pool.server_for(ring, b"", 0)),
            _ => match key_ranges(cmd, req, args, &mut round.keys) {
                Err(e) => Err(e),
                Ok(()) => {
                    let mut t: Option<usize> = None;
                    if round.keys.is_empty() {
                        t = pool.server_for(ring, b"", 0);
                    }
                    let mut cross = false;
                    for k in &round.keys {
                        match pool.server_for(ring, &req[k.0..k.1], client.random()) {
                            None => {
                                no_server(round);
                                return;
                            }
                            Some(s) if t.is_some_and(|t| t != s) => cross = true,
                            Some(s) => t = Some(s),
                        }
                    }
                    if let (true, Some(tx)) = (cross, &mut client.tx) {
                        tx.cross = true;
                    }
                    Ok(t)
                }
            },
        };
        let Some(tx) = &mut client.tx else { return };
        match tx_server {
            Err(e) => {
                tx.error = true;
                pool.metrics.error(None, cmd.name, "client");
                round.local_error(&e);
            }
            Ok(s) => {
                if let Some(s) = s {
                    match tx.server {
                        Some(t) if t != s => tx.cross = true,
                        _ => tx.server = Some(s),
                    }
                }
                put(&mut tx.data);
                tx.count += 1;
                round.local_reply(|o| o.extend_from_slice(b"+QUEUED\r\n"));
            }
        }
        return;
    }
    let forward = |round: &mut Round, server: usize| {
        let idx = round.queue(server, put);
        round.plans.push(Plan::Fwd {
            server,
            idx,
            cmd: cmd_idx,
        });
    };
    match cmd.kind {
        Kind::Local => {
            pool.metrics.request(None, cmd_idx, 1);
            local(round, client, pool, cmd.name, req, args);
            return;
        }
        Kind::Single if !cmd.block => {
            // The hot path: no key list.
            match pool.server_for(ring, &req[args[1].0..args[1].1], client.random()) {
                Some(s) => forward(round, s),
                None => no_server(round),
            }
            return;
        }
        Kind::Fan(fan) => {
            if fan == Fan::Ok && !pool.shared.cfg.allow_flush {
                pool.metrics.error(None, cmd.name, "client");
                round.local_error(&format!(
                    "ERR {} is refused by the proxy: set `allow_flush: true` in pool '{}' to send it to every server",
                    cmd.name, pool.shared.cfg.name
                ));
                return;
            }
            if fan == Fan::Script {
                let sub = &req[args[1].0..args[1].1];
                let known = [&b"LOAD"[..], b"EXISTS", b"FLUSH"];
                if !known.iter().any(|k| sub.eq_ignore_ascii_case(k)) {
                    // SCRIPT KILL/DEBUG/HELP make no sense for every server of a pool at once.
                    pool.metrics.error(None, cmd.name, "client");
                    round.local_error(&format!(
                        "ERR SCRIPT {} is not supported by the proxy (only SCRIPT LOAD, EXISTS and FLUSH, sent to every server)",
                        String::from_utf8_lossy(sub).to_uppercase()
                    ));
                    return;
                }
            }
            let start = round.parts.len();
            for s in 0..pool.servers.len() {
                let idx = round.queue(s, put);
                round.parts.push((s, idx));
            }
            round.plans.push(Plan::Fan {
                fan,
                cmd: cmd_idx,
                parts: start..round.parts.len(),
            });
            return;
        }
        Kind::Scan => {
            scan(round, pool, req, args);
            return;
        }
        Kind::Publish => {
            match pool.server_for(ring, b"", 0) {
                Some(s) => forward(round, s),
                None => no_server(round),
            }
            return;
        }
        Kind::Subscribe => {
            let server = if cmd.name == "SSUBSCRIBE" {
                let mut t = None;
                for a in &args[1..] {
                    let s = pool.server_for(ring, &req[a.0..a.1], 0);
                    if t.is_some() && s != t {
                        pool.metrics.error(None, cmd.name, "client");
                        round.local_error("CROSSSLOT Keys in request don't hash to the same slot: the channels of one SSUBSCRIBE must live on one server");
                        return;
                    }
                    t = s;
                }
                t
            } else {
                pool.server_for(ring, b"", 0)
            };
            match server {
                Some(s) => {
                    pool.metrics.request(Some(s), cmd_idx, 1);
                    let mut data = BytesMut::new();
                    put(&mut data);
                    client.subscribe = Some((s, data));
                    round.stop = true;
                }
                None => no_server(round),
            }
            return;
        }
        _ => {}
    }
    if let Err(e) = key_ranges(cmd, req, args, &mut round.keys) {
        pool.metrics.error(None, cmd.name, "client");
        round.local_error(&e);
        return;
    }
    round.key_servers.clear();
    if round.keys.is_empty() {
        match pool.server_for(ring, b"", 0) {
            Some(s) => round.key_servers.push(s),
            None => {
                no_server(round);
                return;
            }
        }
    }
    for i in 0..round.keys.len() {
        let k = round.keys[i];
        match pool.server_for(ring, &req[k.0..k.1], client.random()) {
            Some(s) => round.key_servers.push(s),
            None => {
                no_server(round);
                return;
            }
        }
    }
    let first = round.key_servers[0];
    if round.key_servers.iter().any(|&s| s != first) {
        if matches!(cmd.kind, Kind::SplitSum | Kind::SplitMget | Kind::SplitMset) {
            let step = if cmd.kind == Kind::SplitMset { 2 } else { 1 };
            split(round, pool, cmd_idx, req, args, step);
        } else {
            pool.metrics.error(None, cmd.name, "client");
            round.local_error(&format!(
                "CROSSSHARD Keys in '{}' map to different servers; put them on one server with a hash tag such as {{user42}}",
                cmd.name
            ));
        }
        return;
    }
    let blocks = cmd.block
        || (cmd.kind == Kind::Streams
            && args[1..]
                .iter()
                .any(|a| req[a.0..a.1].eq_ignore_ascii_case(b"BLOCK")));
    if blocks {
        let idx = round.queue_ded(first, put);
        round.plans.push(Plan::Ded {
            server: first,
            idx,
            cmd: cmd_idx,
        });
        round.blocking = true;
        round.stop = true;
    } else {
        forward(round, first);
    }
}

/// The key ranges of a key-routed command, into `out`; an error text for a request whose keys
/// cannot be found.
fn key_ranges(
    cmd: &Command,
    req: &[u8],
    args: &[(usize, usize)],
    out: &mut Vec<(usize, usize)>,
) -> Result<(), String> {
    out.clear();
    let arity = || {
        format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.name.to_ascii_lowercase()
        )
    };
    match cmd.kind {
        Kind::Single => out.push(args[1]),
        Kind::KeyAt(i) => out.push(*args.get(i).ok_or_else(arity)?),
        Kind::SplitSum => out.extend_from_slice(&args[1..]),
        Kind::SplitMset | Kind::PairsSameServer => {
            if !(args.len() - 1).is_multiple_of(2) {
                return Err(arity());
            }
            out.extend(args[1..].iter().step_by(2).copied());
        }
        Kind::SplitMget => out.extend_from_slice(&args[1..]),
        Kind::SameServer(Some(n)) => out.extend(args[1..].iter().take(n).copied()),
        Kind::SameServer(None) => out.extend_from_slice(&args[1..]),
        Kind::AllButLast => out.extend_from_slice(&args[1..args.len() - 1]),
        Kind::NumKeys { at, dest } => {
            let n = std::str::from_utf8(&req[args[at].0..args[at].1])
                .ok()
                .and_then(|s| s.parse::<usize>().ok());
            let Some(n) = n.filter(|&n| at + 1 + n <= args.len()) else {
                return Err("ERR numkeys is not a valid number of keys for this command".into());
            };
            if dest {
                out.push(args[1]);
            }
            out.extend_from_slice(&args[at + 1..at + 1 + n]);
        }
        Kind::Streams => {
            let pos = args
                .iter()
                .position(|a| req[a.0..a.1].eq_ignore_ascii_case(b"STREAMS"))
                .ok_or_else(|| "ERR syntax error".to_owned())?;
            let rest = &args[pos + 1..];
            if rest.is_empty() || !rest.len().is_multiple_of(2) {
                return Err("ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.".into());
            }
            out.extend_from_slice(&rest[..rest.len() / 2]);
        }
        _ => {}
    }
    if out.is_empty() && !(cmd.name.starts_with("EVAL") || cmd.name.starts_with("FCALL")) {
        return Err(format!(
            "ERR '{}' without keys cannot be routed to a server",
            cmd.name
        ));
    }
    // A script without keys (numkeys 0) leaves the list empty: the caller runs it on the server
    // of the empty key, the pool's pub/sub server.
    Ok(())
}

/// SCAN: the cursor the client sees is `server cursor * n + server index`, so one cursor walks
/// every server of the pool in turn.
fn scan(round: &mut Round, pool: &Pool, req: &[u8], args: &[(usize, usize)]) {
    let n = pool.servers.len();
    let Some(c) = std::str::from_utf8(&req[args[1].0..args[1].1])
        .ok()
        .and_then(|s| s.parse::<u128>().ok())
    else {
        round.local_error("ERR invalid cursor");
        return;
    };
    let server = (c % n as u128) as usize;
    let Ok(inner) = u64::try_from(c / n as u128) else {
        round.local_error("ERR invalid cursor");
        return;
    };
    let mut ib = itoa::Buffer::new();
    let inner = ib.format(inner).as_bytes().to_vec();
    let idx = round.queue(server, |o| {
        resp::put_array_header(o, args.len());
        resp::put_bulk(o, b"SCAN");
        resp::put_bulk(o, &inner);
        for a in &args[2..] {
            resp::put_bulk(o, &req[a.0..a.1]);
        }
    });
    round.plans.push(Plan::Scan { server, idx, n });
}

/// The client's own connection to `server`, opened when first needed.
fn ded_conn<'a>(
    client: &'a mut Client,
    pool: &Arc<Pool>,
    server: usize,
) -> &'a mpsc::Sender<Batch> {
    if !client
        .ded_pool
        .as_ref()
        .is_some_and(|p| Arc::ptr_eq(p, pool))
    {
        // A reload replaced the pool: its servers may have changed.
        if client.ded_pool.replace(pool.clone()).is_some() {
            client.watch = None;
        }
        client.ded.clear();
    }
    if client.ded.len() != pool.servers.len() {
        client.ded.resize_with(pool.servers.len(), || None);
    }
    client.ded[server].get_or_insert_with(|| pool.servers[server].dedicated(client.resp3))
}

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH.
fn transaction(
    round: &mut Round,
    client: &mut Client,
    pool: &Pool,
    ring: &Ring,
    cmd: &Command,
    req: &[u8],
    args: &[(usize, usize)],
) {
    let ok = |round: &mut Round| round.local_reply(|o| o.extend_from_slice(b"+OK\r\n"));
    match cmd.name {
        "MULTI" => {
            if client.tx.is_some() {
                round.local_error("ERR MULTI calls can not be nested");
            } else {
                client.tx = Some(Tx::default());
                ok(round);
            }
        }
        "DISCARD" => {
            if client.tx.take().is_none() {
                round.local_error("ERR DISCARD without MULTI");
                return;
            }
            if let Some(w) = client.watch.take() {
                round.queue_ded(w, |o| encode(o, b"UNWATCH", req, std::iter::empty()));
            }
            ok(round);
        }
        "UNWATCH" => {
            if let Some(w) = client.watch.take() {
                let idx = round.queue_ded(w, |o| encode(o, b"UNWATCH", req, std::iter::empty()));
                let cmd = COMMANDS
                    .iter()
                    .position(|c| c.name == "UNWATCH")
                    .unwrap_or(0);
                round.plans.push(Plan::Ded {
                    server: w,
                    idx,
                    cmd,
                });
            } else {
                ok(round);
            }
        }
        "WATCH" => {
            if client.tx.is_some() {
                round.local_error("ERR WATCH inside MULTI is not allowed");
                return;
            }
            let mut t = client.watch;
            for a in &args[1..] {
                let s = pool.server_for(ring, &req[a.0..a.1], client.random());
                if s.is_none() || (t.is_some() && s != t) {
                    round.local_error("CROSSSHARD Keys in 'WATCH' map to different servers (or to none); watch keys of one server, with a hash tag such as {user42}");
                    return;
                }
                t = s;
            }
            let Some(s) = t else { return };
            client.watch = Some(s);
            let cmd = COMMANDS.iter().position(|c| c.name == "WATCH").unwrap_or(0);
            let idx = round.queue_ded(s, |o| o.extend_from_slice(&reencode(req, args)));
            round.plans.push(Plan::Ded {
                server: s,
                idx,
                cmd,
            });
        }
        _ => {
            // EXEC
            let Some(tx) = client.tx.take() else {
                round.local_error("ERR EXEC without MULTI");
                return;
            };
            let watch = client.watch.take();
            let refuse = if tx.error {
                Some("EXECABORT Transaction discarded because of previous errors.")
            } else if tx.cross || (watch.is_some() && tx.server.is_some() && tx.server != watch) {
                Some(
                    "CROSSSHARD Transaction discarded: its keys map to different servers, so nothing of it was run; keep the keys of a transaction on one server with a hash tag such as {user42}",
                )
            } else {
                None
            };
            if let Some(msg) = refuse {
                if let Some(w) = watch {
                    round.queue_ded(w, |o| encode(o, b"UNWATCH", req, std::iter::empty()));
                }
                pool.metrics.error(None, "EXEC", "client");
                round.local_error(msg);
                return;
            }
            let server = watch
                .or(tx.server)
                .or_else(|| pool.server_for(ring, b"", 0));
            let Some(server) = server else {
                round.local_error(&BackendError::NoServer.message(""));
                return;
            };
            let put = |o: &mut BytesMut| {
                encode(o, b"MULTI", req, std::iter::empty());
                o.extend_from_slice(&tx.data);
                encode(o, b"EXEC", req, std::iter::empty());
            };
            let exec = COMMANDS.iter().position(|c| c.name == "EXEC").unwrap_or(0);
            // MULTI, the commands and EXEC are one batch: written in one piece on a connection,
            // nothing of another client comes between them.
            if watch.is_some() {
                let first = round.queue_ded(server, put);
                round.ded[server].count += tx.count + 1;
                round.plans.push(Plan::Ded {
                    server,
                    idx: first + tx.count + 1,
                    cmd: exec,
                });
            } else {
                let first = round.queue(server, put);
                round.batches[server].count += tx.count + 1;
                round.plans.push(Plan::Fwd {
                    server,
                    idx: first + tx.count + 1,
                    cmd: exec,
                });
            }
        }
    }
}

/// A request as a RESP multibulk (inline requests are re-encoded).
fn reencode(req: &[u8], args: &[(usize, usize)]) -> Vec<u8> {
    if req.first() == Some(&b'*') {
        return req.to_vec();
    }
    let mut o = BytesMut::new();
    let (s0, e0) = args[0];
    encode(&mut o, &req[s0..e0], req, args[1..].iter().copied());
    o.to_vec()
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
            let user = (args.len() == 3).then(|| arg(1));
            let reply = auth(client, cfg, user, arg(args.len() - 1));
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
        "HELLO" => hello(round, client, cfg, req, args),
        "CLIENT" => match upper(1).as_str() {
            "SETNAME" if args.len() == 3 => {
                client.name = Some(arg(2).to_vec());
                round.local_reply(|o| o.extend_from_slice(b"+OK\r\n"));
            }
            "SETINFO" if args.len() == 4 => {
                round.local_reply(|o| o.extend_from_slice(b"+OK\r\n"))
            }
            // Per-connection switches of the server that mean nothing for the proxy's shared
            // connections; accepted as redis-server does.
            "NO-EVICT" | "NO-TOUCH" | "REPLY" if args.len() == 3 => {
                round.local_reply(|o| o.extend_from_slice(b"+OK\r\n"))
            }
            "GETNAME" => {
                let n = client.name.clone();
                let r3 = client.resp3;
                round.local_reply(|o| match n {
                    Some(n) => resp::put_bulk(o, &n),
                    None => put_null(o, r3),
                });
            }
            "INFO" => {
                let text = format!(
                    "id={} addr=? laddr=? fd=0 name={} db={} resp={} lib-name= lib-ver=\n",
                    client.id,
                    String::from_utf8_lossy(client.name.as_deref().unwrap_or_default()),
                    cfg.redis_db,
                    if client.resp3 { 3 } else { 2 }
                );
                let r3 = client.resp3;
                round.local_reply(|o| put_text(o, text.as_bytes(), r3));
            }
            "ID" => {
                let id = client.id as i64;
                round.local_reply(|o| resp::put_int(o, id));
            }
            other => round.local_error(&format!(
                "ERR unknown subcommand '{other}'. Try CLIENT HELP. (the proxy supports SETNAME, SETINFO, GETNAME, ID, INFO, NO-EVICT, NO-TOUCH)"
            )),
        },
        "COMMAND" => {
            let sub = if args.len() > 1 { upper(1) } else { String::new() };
            match sub.as_str() {
                "COUNT" => round.local_reply(|o| resp::put_int(o, COMMANDS.len() as i64)),
                "INFO" => {
                    let n = args.len() - 2;
                    let r3 = client.resp3;
                    round.local_reply(|o| {
                        resp::put_array_header(o, n);
                        for _ in 0..n {
                            o.extend_from_slice(if r3 { b"_\r\n" } else { b"*-1\r\n" });
                        }
                    });
                }
                _ => round.local_reply(|o| o.extend_from_slice(b"*0\r\n")),
            }
        }
        _ => arity_error(round, name),
    }
}

/// A null in the client's protocol.
fn put_null(o: &mut BytesMut, resp3: bool) {
    o.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" });
}

/// A text reply as redis-server sends INFO: a bulk string, a verbatim string in RESP3.
fn put_text(o: &mut BytesMut, text: &[u8], resp3: bool) {
    if resp3 {
        let mut b = itoa::Buffer::new();
        o.extend_from_slice(b"=");
        o.extend_from_slice(b.format(text.len() + 4).as_bytes());
        o.extend_from_slice(b"\r\ntxt:");
        o.extend_from_slice(text);
        o.extend_from_slice(b"\r\n");
    } else {
        resp::put_bulk(o, text);
    }
}

/// AUTH [user] password: the user `default` has the pool's `redis_auth`, other users those of
/// `redis_users`; any other name is refused.
fn auth(
    client: &mut Client,
    cfg: &crate::config::PoolConfig,
    user: Option<&[u8]>,
    pw: &[u8],
) -> &'static [u8] {
    let want = match user {
        None | Some(b"default") => cfg.redis_auth.as_deref(),
        Some(u) => cfg
            .redis_users
            .iter()
            .find(|(n, _)| n.as_bytes() == u)
            .map(|(_, p)| p.as_str()),
    };
    match want {
        None if user.is_none() && cfg.redis_users.is_empty() => b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
        Some(w) if w.as_bytes() == pw => {
            client.authed = true;
            b"+OK\r\n"
        }
        _ => b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    }
}

/// HELLO [2|3] [AUTH user pass] [SETNAME name]: answered as Redis 7 does. `HELLO 3` switches the
/// client to RESP3: its requests then go over backend connections that said `HELLO 3` too, so
/// every reply is the server's own RESP3 encoding.
fn hello(
    round: &mut Round,
    client: &mut Client,
    cfg: &crate::config::PoolConfig,
    req: &[u8],
    args: &[(usize, usize)],
) {
    let arg = |i: usize| &req[args[i].0..args[i].1];
    let mut resp3 = client.resp3;
    if args.len() > 1 {
        match arg(1) {
            b"2" => resp3 = false,
            b"3" => resp3 = true,
            v => {
                let v = String::from_utf8_lossy(v).into_owned();
                round.local_error(&format!("NOPROTO unsupported protocol version {v}"));
                return;
            }
        }
    }
    let mut i = 2;
    let mut name = None;
    while i < args.len() {
        let opt = String::from_utf8_lossy(arg(i)).to_ascii_uppercase();
        match opt.as_str() {
            "AUTH" if i + 2 < args.len() => {
                let r = auth(client, cfg, Some(arg(i + 1)), arg(i + 2));
                if r[0] == b'-' {
                    round.local_reply(|o| o.extend_from_slice(r));
                    return;
                }
                i += 3;
            }
            "SETNAME" if i + 1 < args.len() => {
                name = Some(arg(i + 1).to_vec());
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
    if name.is_some() {
        client.name = name;
    }
    client.resp3 = resp3;
    let id = client.id as i64;
    round.local_reply(|o| {
        if resp3 {
            o.extend_from_slice(b"%7\r\n");
        } else {
            resp::put_array_header(o, 14);
        }
        for (k, v) in [("server", "redis"), ("version", REDIS_VERSION)] {
            resp::put_bulk(o, k.as_bytes());
            resp::put_bulk(o, v.as_bytes());
        }
        resp::put_bulk(o, b"proto");
        resp::put_int(o, if resp3 { 3 } else { 2 });
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

/// The Redis version the proxy presents in HELLO (INFO shows the servers' own).
const REDIS_VERSION: &str = "7.2.0";

/// Sends the batches, waits for the replies and writes every reply in request order to `out`.
async fn execute(
    round: &mut Round,
    client: &mut Client,
    pool: &Arc<Pool>,
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
        if srv.conn(client_id, client.resp3).send(batch).await.is_err() {
            round.results[s] = Some(Err(BackendError::Lost));
        }
        waits.push((s, rx, bytes));
    }
    // The client's own connections: sent after the shared batches, awaited without the pool's
    // timeout when a blocking command is among them.
    let mut ded_waits = Vec::new();
    round.ded_results.resize_with(pool.servers.len(), || None);
    for s in 0..round.ded.len() {
        if round.ded[s].count == 0 {
            continue;
        }
        let (tx, rx) = oneshot::channel();
        let b = &mut round.ded[s];
        let batch = Batch {
            data: b.data.split().freeze(),
            count: b.count as u32,
            reply: tx,
        };
        pool.servers[s]
            .shared
            .stats
            .requests
            .fetch_add(b.count as u64, Relaxed);
        if ded_conn(client, pool, s).send(batch).await.is_err() {
            round.ded_results[s] = Some(Err(BackendError::Lost));
        }
        ded_waits.push((s, rx));
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
    for (s, rx) in ded_waits {
        let r = match deadline.filter(|_| !round.blocking) {
            Some(d) => match tokio::time::timeout_at(d, rx).await {
                Ok(r) => r.unwrap_or(Err(BackendError::Lost)),
                Err(_) => Err(BackendError::Timeout),
            },
            None => rx.await.unwrap_or(Err(BackendError::Lost)),
        };
        if r.is_err() {
            // A broken own connection is opened afresh next time (a WATCH on it is gone).
            if let Some(c) = client.ded.get_mut(s) {
                *c = None;
            }
        }
        if round.ded_results[s].is_none() {
            round.ded_results[s] = Some(r);
        }
    }
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
            Plan::Ded { server, idx, cmd } => {
                m.request(Some(*server), *cmd, 1);
                m.latency(*cmd, secs);
                match reply(&round.ded_results, *server, *idx) {
                    Ok(r) => out.extend_from_slice(r),
                    Err(e) => {
                        m.error(Some(*server), COMMANDS[*cmd].name, "backend");
                        resp::put_error(out, &e.message(&pool.servers[*server].shared.cfg.label));
                    }
                }
            }
            Plan::Fan { fan, cmd, parts } => {
                m.latency(*cmd, secs);
                fan_merge(round, pool, client.resp3, *fan, parts.clone(), out);
            }
            Plan::Scan { server, idx, n } => {
                if let Some((c, _)) = command::lookup(b"SCAN") {
                    m.latency(c, secs);
                }
                match reply(&round.results, *server, *idx) {
                    Ok(r) => scan_reply(r, *server, *n, out),
                    Err(e) => {
                        resp::put_error(out, &e.message(&pool.servers[*server].shared.cfg.label));
                    }
                }
            }
        }
    }
}

/// Re-encodes a server's SCAN reply: its cursor combined with the server's index, or the next
/// server's start when this server is done.
fn scan_reply(r: &[u8], server: usize, n: usize, out: &mut BytesMut) {
    let parsed = resp::array_elements(r)
        .filter(|e| e.len() == 2)
        .and_then(|e| {
            let c = &r[e[0].0..e[0].1];
            let c = resp::bulk_value(c)?;
            let c: u128 = std::str::from_utf8(c).ok()?.parse().ok()?;
            Some((c, e[1]))
        });
    let Some((c, keys)) = parsed else {
        out.extend_from_slice(r);
        return;
    };
    let next = if c == 0 {
        if server + 1 < n {
            (server + 1) as u128
        } else {
            0
        }
    } else {
        c * n as u128 + server as u128
    };
    resp::put_array_header(out, 2);
    resp::put_bulk(out, next.to_string().as_bytes());
    out.extend_from_slice(&r[keys.0..keys.1]);
}

/// Merges the replies of a command sent to every server.
fn fan_merge(
    round: &Round,
    pool: &Pool,
    resp3: bool,
    fan: Fan,
    parts: Range<usize>,
    out: &mut BytesMut,
) {
    let mut replies: Vec<&[u8]> = Vec::new();
    let mut first_err = None;
    for &(s, idx) in &round.parts[parts] {
        match reply(&round.results, s, idx) {
            Ok(r) if r.first() == Some(&b'-') => {
                first_err.get_or_insert_with(|| r.to_vec());
            }
            Ok(r) => replies.push(r),
            Err(e) => {
                first_err.get_or_insert_with(|| {
                    let mut o = BytesMut::new();
                    resp::put_error(&mut o, &e.message(&pool.servers[s].shared.cfg.label));
                    o.to_vec()
                });
            }
        }
    }
    // INFO answers from the servers that answered (a client's ready check must not hang on
    // one shard being down); the others need every server.
    if let Some(e) = &first_err
        && (fan != Fan::Info || replies.is_empty())
    {
        out.extend_from_slice(e);
        return;
    }
    match fan {
        Fan::Sum => {
            let total: i64 = replies
                .iter()
                .filter_map(|r| resp::parse_int_reply(r))
                .sum();
            resp::put_int(out, total);
        }
        Fan::Ok => out.extend_from_slice(
            b"+OK
",
        ),
        Fan::Script => script_merge(&replies, out),
        Fan::Concat => {
            let mut elems = Vec::new();
            for r in &replies {
                if let Some(e) = resp::array_elements(r) {
                    elems.extend(e.into_iter().map(|(a, b)| &r[a..b]));
                }
            }
            resp::put_array_header(out, elems.len());
            for e in elems {
                out.extend_from_slice(e);
            }
        }
        Fan::Info => {
            let texts: Vec<String> = replies
                .iter()
                .filter_map(|r| resp::bulk_value(r))
                .map(|t| {
                    let t = t.strip_prefix(b"txt:").unwrap_or(t);
                    String::from_utf8_lossy(t).into_owned()
                })
                .collect();
            let clients = pool.shared.stats.client_connections.load(Relaxed);
            let text = crate::info::merge(&texts, clients);
            put_text(out, text.as_bytes(), resp3);
        }
    }
}

/// SCRIPT EXISTS (arrays of 0/1): 1 where every server said 1. SCRIPT LOAD and FLUSH: the
/// servers' reply when all are the same bytes (the SHA1 is of the script's text), else an error.
fn script_merge(replies: &[&[u8]], out: &mut BytesMut) {
    let Some(first) = replies.first() else {
        resp::put_error(out, "ERR no server in the pool");
        return;
    };
    if replies.iter().all(|r| r == first) {
        out.extend_from_slice(first);
        return;
    }
    let arrays: Option<Vec<Vec<i64>>> = replies
        .iter()
        .map(|r| {
            resp::array_elements(r)?
                .into_iter()
                .map(|(a, b)| resp::parse_int_reply(&r[a..b]))
                .collect()
        })
        .collect();
    match arrays {
        Some(a) if a.iter().all(|x| x.len() == a[0].len()) => {
            resp::put_array_header(out, a[0].len());
            for i in 0..a[0].len() {
                resp::put_int(out, i64::from(a.iter().all(|x| x[i] == 1)));
            }
        }
        _ => resp::put_error(out, "ERR the servers of the pool gave different replies"),
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
