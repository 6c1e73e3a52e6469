//! Backend connections: each one a task that pipelines batches of requests to one Redis server.
//!
//! A client hands a whole batch (every request of one read that maps to this server) to a
//! connection; the writer coalesces the batches that are waiting into one write, and a reader
//! task matches replies to batches in FIFO order, so one TCP connection carries the pipelines of
//! many clients at once (twemproxy's `server_connections`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Addr, PoolConfig, ServerConfig};
use crate::resp;
use crate::stats::ServerStats;

/// Why a batch got no replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// Could not connect (or authenticate) to the server.
    Connect(String),
    /// The connection broke before the replies arrived.
    Lost,
    /// No reply within the pool's `timeout`.
    Timeout,
    /// Every server of the pool is ejected.
    NoServer,
}

impl BackendError {
    /// The `-ERR` text sent to the client.
    pub fn message(&self, server: &str) -> String {
        match self {
            Self::Connect(e) => format!("ERR server {server} unavailable: {e}"),
            Self::Lost => format!("ERR connection to server {server} lost"),
            Self::Timeout => format!("ERR timeout waiting for server {server}"),
            Self::NoServer => "ERR no live server in the pool".to_owned(),
        }
    }
}

/// The replies to one batch: all of them in one buffer, `ends[i]` is where reply `i` ends.
#[derive(Debug)]
pub struct BatchReply {
    /// The reply bytes.
    pub data: Bytes,
    /// End offset of each reply.
    pub ends: Vec<u32>,
}

impl BatchReply {
    /// Reply `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }
}

/// Where a batch's result goes.
pub type ReplyTx = oneshot::Sender<Result<BatchReply, BackendError>>;

/// Requests for one server, already encoded.
pub struct Batch {
    /// The requests, back to back.
    pub data: Bytes,
    /// How many requests (and so replies).
    pub count: u32,
    /// Where the replies go.
    pub reply: ReplyTx,
}

/// What the connections of one server share: its address, counters and failure state.
pub struct ServerShared {
    /// The configuration entry.
    pub cfg: ServerConfig,
    /// nutcracker counters.
    pub stats: ServerStats,
    /// Consecutive failures (reset by a successful connect).
    failures: AtomicU32,
    /// Milliseconds since the pool epoch until which the server is ejected; 0 = live.
    pub ejected_until: AtomicU64,
    /// Pool settings the connections need.
    pool: Arc<PoolShared>,
    /// Gauge of open connections.
    conn_gauge: Gauge,
    /// Gauge of in-flight requests.
    pub queue_gauge: Gauge,
    /// Gauge of open connections owned by one client.
    pub own_gauge: Gauge,
    /// 1 while ejected.
    ejected_gauge: Gauge,
    /// Ejection counter.
    ejections: prometheus_client::metrics::counter::Counter,
}

/// Pool-wide state shared with the servers.
pub struct PoolShared {
    /// The pool's configuration.
    pub cfg: PoolConfig,
    /// Start of the pool's clock.
    pub epoch: Instant,
    /// Set when an ejection needs a ring rebuild.
    pub dirty: AtomicBool,
    /// nutcracker pool counters.
    pub stats: crate::stats::PoolStats,
}

impl PoolShared {
    /// Milliseconds since the pool epoch.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

impl ServerShared {
    /// A server's shared state.
    pub fn new(
        cfg: ServerConfig,
        pool: Arc<PoolShared>,
        m: &crate::stats::PoolMetrics,
        idx: usize,
    ) -> Self {
        let labels = m.server_labels(idx);
        let f = m.families();
        Self {
            cfg,
            stats: ServerStats::default(),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            conn_gauge: f.server_connections.get_or_create(&labels).clone(),
            queue_gauge: f.queue_depth.get_or_create(&labels).clone(),
            own_gauge: f.own_connections.get_or_create(&labels).clone(),
            ejected_gauge: f.ejected.get_or_create(&labels).clone(),
            ejections: f.ejections.get_or_create(&labels).clone(),
            pool,
        }
    }

    /// Counts a failure; ejects the server after `server_failure_limit` in a row when
    /// `auto_eject_hosts` is on.
    pub fn record_failure(&self) {
        let cfg = &self.pool.cfg;
        if cfg.auto_eject_hosts && self.ejected_until.load(Relaxed) > self.pool.now_ms() {
            // Already out of the ring: failures of requests queued before the ejection do not
            // extend it.
            return;
        }
        let n = self.failures.fetch_add(1, Relaxed) + 1;
        if cfg.auto_eject_hosts && n >= cfg.server_failure_limit {
            self.failures.store(0, Relaxed);
            let until = self.pool.now_ms() + cfg.server_retry_timeout.as_millis() as u64;
            self.ejected_until.store(until, Relaxed);
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            self.stats.server_ejected_at.store(unix, Relaxed);
            self.pool.stats.server_ejects.fetch_add(1, Relaxed);
            self.ejections.inc();
            self.ejected_gauge.set(1);
            self.pool.dirty.store(true, Relaxed);
            tracing::warn!(
                pool = %cfg.name,
                server = %self.cfg.label,
                retry_in = ?cfg.server_retry_timeout,
                "ejecting server after {n} consecutive failures"
            );
        }
    }

    /// Clears the failure count (a connection was established).
    pub fn record_success(&self) {
        self.failures.store(0, Relaxed);
        self.ejected_gauge.set(0);
    }
}

/// How a backend connection is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnKind {
    /// The connection speaks RESP3 (`HELLO 3` in its handshake) and serves RESP3 clients.
    pub resp3: bool,
    /// The connection belongs to one client (blocking commands, WATCH): it stops as soon as that
    /// client drops its sender, even with a request still waiting (a `BLPOP k 0`).
    pub dedicated: bool,
}

/// Starts the connection task; returns the sender clients use.
pub fn spawn_connection(
    srv: Arc<ServerShared>,
    queue: usize,
    kind: ConnKind,
) -> mpsc::Sender<Batch> {
    let (tx, rx) = mpsc::channel(queue);
    tokio::spawn(connection_task(srv, rx, kind));
    tx
}

async fn connection_task(srv: Arc<ServerShared>, mut rx: mpsc::Receiver<Batch>, kind: ConnKind) {
    // RESP3 and dedicated connections are opened when first needed.
    let mut connect_now = srv.pool.cfg.preconnect && kind == ConnKind::default();
    loop {
        let mut first = None;
        if !connect_now {
            match rx.recv().await {
                Some(b) => first = Some(b),
                None => return,
            }
        }
        connect_now = false;
        let result = match &srv.cfg.addr {
            Addr::Tcp(host, port) => match connect_tcp(&srv, host, *port, kind.resp3).await {
                Ok(s) => Ok(run(&srv, s, &mut rx, first.take(), kind.dedicated).await),
                Err(e) => Err(e),
            },
            Addr::Unix(path) => match connect_unix(&srv, path, kind.resp3).await {
                Ok(s) => Ok(run(&srv, s, &mut rx, first.take(), kind.dedicated).await),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(pool = %srv.pool.cfg.name, server = %srv.cfg.label, error = %e, "cannot connect to server");
                srv.stats.server_err.fetch_add(1, Relaxed);
                srv.record_failure();
                let err = BackendError::Connect(e);
                if let Some(b) = first.take() {
                    let _ = b.reply.send(Err(err.clone()));
                }
                // Fail what queued up meanwhile instead of making it wait for the next attempt.
                while let Ok(b) = rx.try_recv() {
                    let _ = b.reply.send(Err(err.clone()));
                }
            }
        }
    }
}

fn connect_timeout(srv: &ServerShared) -> Duration {
    srv.pool.cfg.timeout.unwrap_or(Duration::from_secs(10))
}

/// Opens a connection to a server and runs the pool's handshake on it (for pub/sub relays).
pub async fn connect_stream(srv: &ServerShared, resp3: bool) -> Result<Stream, String> {
    match &srv.cfg.addr {
        Addr::Tcp(host, port) => connect_tcp(srv, host, *port, resp3).await.map(Stream::Tcp),
        Addr::Unix(path) => connect_unix(srv, path, resp3).await.map(Stream::Unix),
    }
}

/// A connected backend socket.
pub enum Stream {
    /// TCP.
    Tcp(tokio::net::TcpStream),
    /// Unix socket.
    Unix(tokio::net::UnixStream),
}

async fn connect_tcp(
    srv: &ServerShared,
    host: &str,
    port: u16,
    resp3: bool,
) -> Result<tokio::net::TcpStream, String> {
    // Resolved on every connect: pods behind a headless Service change IP when they restart.
    let addrs = tokio::time::timeout(connect_timeout(srv), tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| "name resolution timed out".to_owned())?
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} resolved to no address");
    for addr in addrs {
        let sock = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(|e| e.to_string())?;
        if srv.pool.cfg.tcpkeepalive {
            sock.set_keepalive(true).map_err(|e| e.to_string())?;
        }
        match tokio::time::timeout(connect_timeout(srv), sock.connect(addr)).await {
            Ok(Ok(mut s)) => {
                let _ = s.set_nodelay(true);
                handshake(srv, &mut s, resp3).await?;
                return Ok(s);
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: connect timed out"),
        }
    }
    Err(last)
}

async fn connect_unix(
    srv: &ServerShared,
    path: &std::path::Path,
    resp3: bool,
) -> Result<tokio::net::UnixStream, String> {
    let mut s = tokio::time::timeout(connect_timeout(srv), tokio::net::UnixStream::connect(path))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("{}: {e}", path.display()))?;
    handshake(srv, &mut s, resp3).await?;
    Ok(s)
}

/// AUTH and SELECT on a new connection (twemproxy's redis_auth and redis_db); `HELLO 3` after
/// AUTH on a RESP3 connection, so the server itself encodes every reply for RESP3 clients.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    srv: &ServerShared,
    s: &mut S,
    resp3: bool,
) -> Result<(), String> {
    let cfg = &srv.pool.cfg;
    let mut out = BytesMut::new();
    let mut n = 0;
    if let Some(pw) = &cfg.redis_auth {
        resp::put_array_header(&mut out, 2);
        resp::put_bulk(&mut out, b"AUTH");
        resp::put_bulk(&mut out, pw.as_bytes());
        n += 1;
    }
    if resp3 {
        resp::put_array_header(&mut out, 2);
        resp::put_bulk(&mut out, b"HELLO");
        resp::put_bulk(&mut out, b"3");
        n += 1;
    }
    if cfg.redis_db != 0 {
        resp::put_array_header(&mut out, 2);
        resp::put_bulk(&mut out, b"SELECT");
        resp::put_bulk(&mut out, cfg.redis_db.to_string().as_bytes());
        n += 1;
    }
    if n == 0 {
        return Ok(());
    }
    let io = async {
        s.write_all(&out).await.map_err(|e| e.to_string())?;
        let mut buf = BytesMut::with_capacity(256);
        let mut pos = 0;
        for _ in 0..n {
            loop {
                match resp::scan_reply(&buf[pos..]) {
                    Ok(Some(len)) => {
                        let r = &buf[pos..pos + len];
                        if r.first() == Some(&b'-') {
                            return Err(format!(
                                "handshake refused: {}",
                                String::from_utf8_lossy(&r[1..]).trim()
                            ));
                        }
                        pos += len;
                        break;
                    }
                    Ok(None) => {
                        if s.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                            return Err("closed during handshake".to_owned());
                        }
                    }
                    Err(_) => return Err("bad reply during handshake".to_owned()),
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(connect_timeout(srv), io)
        .await
        .map_err(|_| "handshake timed out".to_owned())?
}

struct Pending {
    count: u32,
    reply: ReplyTx,
}

/// Most bytes coalesced into one write.
const MAX_WRITE: usize = 256 * 1024;

/// Runs one established connection. Returns `true` when the pool is gone (stop), `false` when
/// the connection failed (reconnect on the next batch).
///
/// One task does both directions: it writes batches as they come (coalescing what is queued) and
/// reads replies whenever the socket has some, handing each batch its replies in FIFO order. A
/// single task saves a wake-up and a channel hop per batch compared with a reader/writer pair; a
/// write never waits on reads because Redis reads requests regardless of its pending output.
async fn run<S>(
    srv: &Arc<ServerShared>,
    mut stream: S,
    rx: &mut mpsc::Receiver<Batch>,
    first: Option<Batch>,
    dedicated: bool,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    srv.record_success();
    srv.stats.server_connections.fetch_add(1, Relaxed);
    srv.conn_gauge.inc();
    if dedicated {
        srv.own_gauge.inc();
    }
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut wbuf = BytesMut::new();
    // Replies of the front batch found so far, and where the scan stopped.
    let mut ends: Vec<u32> = Vec::new();
    let mut scanned = 0usize;
    let mut next = first;
    let mut rx_open = true;
    let ok = loop {
        let batch = match next.take() {
            Some(b) => Some(b),
            None => {
                if !rx_open && (pending.is_empty() || dedicated) {
                    break true;
                }
                if rbuf.capacity() - rbuf.len() < 4096 {
                    rbuf.reserve(16 * 1024);
                }
                tokio::select! {
                    biased;
                    r = stream.read_buf(&mut rbuf) => {
                        match r {
                            Ok(0) => {
                                srv.stats.server_eof.fetch_add(1, Relaxed);
                                break false;
                            }
                            Ok(_) => {}
                            Err(_) => {
                                srv.stats.server_err.fetch_add(1, Relaxed);
                                break false;
                            }
                        }
                        if !deliver(&mut rbuf, &mut pending, &mut ends, &mut scanned) {
                            tracing::warn!(server = %srv.cfg.label, "server sent bytes that are not RESP; closing the connection");
                            srv.stats.server_err.fetch_add(1, Relaxed);
                            break false;
                        }
                        None
                    }
                    b = rx.recv(), if rx_open => {
                        if b.is_none() {
                            rx_open = false;
                        }
                        b
                    }
                }
            }
        };
        let Some(b) = batch else { continue };
        // Coalesce what else is waiting into one write: under load many clients' batches share
        // one syscall and one TCP segment.
        let mut single = Some(b.data);
        pending.push_back(Pending {
            count: b.count,
            reply: b.reply,
        });
        let mut total = single.as_ref().map_or(0, Bytes::len);
        while total < MAX_WRITE {
            let Ok(more) = rx.try_recv() else { break };
            if let Some(s) = single.take() {
                wbuf.extend_from_slice(&s);
            }
            total += more.data.len();
            wbuf.extend_from_slice(&more.data);
            pending.push_back(Pending {
                count: more.count,
                reply: more.reply,
            });
        }
        let res = match &single {
            Some(s) => stream.write_all(s).await,
            None => {
                let r = stream.write_all(&wbuf).await;
                wbuf.clear();
                r
            }
        };
        if res.is_err() {
            srv.stats.server_err.fetch_add(1, Relaxed);
            break false;
        }
    };
    // Dropping the pending reply senders fails those requests (the client sees `Lost`).
    drop(pending);
    if !ok {
        srv.record_failure();
    }
    srv.stats.server_connections.fetch_sub(1, Relaxed);
    srv.conn_gauge.dec();
    if dedicated {
        srv.own_gauge.dec();
    }
    ok
}

/// Hands complete replies to the batches waiting for them. `false` if the bytes are not RESP.
fn deliver(
    rbuf: &mut BytesMut,
    pending: &mut VecDeque<Pending>,
    ends: &mut Vec<u32>,
    scanned: &mut usize,
) -> bool {
    while let Some(front) = pending.front() {
        while ends.len() < front.count as usize {
            match resp::scan_reply(&rbuf[*scanned..]) {
                Ok(Some(n)) => {
                    *scanned += n;
                    ends.push(*scanned as u32);
                }
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
        let data = rbuf.split_to(*scanned).freeze();
        *scanned = 0;
        let ends = std::mem::take(ends);
        if let Some(p) = pending.pop_front() {
            let _ = p.reply.send(Ok(BatchReply { data, ends }));
        }
    }
    // Bytes with no batch waiting for them: a server never sends unsolicited replies in RESP2.
    rbuf.is_empty()
}
