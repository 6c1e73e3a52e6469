//! redis-ambassador: a Redis sharding proxy that reads twemproxy's nutcracker.yml unchanged and
//! places every key on the same server as twemproxy, for the ambassador container of a pod.
//!
//! - [`config`]: nutcracker.yml, validated, errors naming the key and line.
//! - [`hash`], [`dist`]: twemproxy's hash functions and ketama/modula/random, bit for bit.
//! - [`resp`]: request and reply framing for the hot path.
//! - [`command`]: which commands are forwarded, split, answered locally or refused.
//! - [`pool`], [`backend`]: servers, pipelined backend connections, ejection.
//! - [`client`]: a client connection: route, batch, merge, reply in order.
//! - [`stats`]: nutcracker's stats JSON counters and the Prometheus metrics.

pub mod backend;
pub mod client;
pub mod command;
pub mod config;
pub mod dist;
pub mod hash;
pub mod info;
pub mod pool;
pub mod pubsub;
pub mod resp;
pub mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use podmates_runtime::Context;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::client::{ClientCtx, Limits};
use crate::config::{Listen, PoolConfig};
use crate::pool::Pool;
use crate::stats::{Metrics, ReloadLabels, get, geti};

/// Everything `run` needs, built from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// The nutcracker.yml path (re-read on SIGHUP).
    pub conf_file: PathBuf,
    /// The pools parsed from it at start.
    pub pools: Vec<PoolConfig>,
    /// Where the nutcracker stats JSON is served; None disables it.
    pub stats_addr: Option<String>,
    /// Per-client limits.
    pub limits: Limits,
}

/// Errors that stop the proxy; each keeps its cause as its `source`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pool's listener could not be bound.
    #[error("pool `{pool}`: listen: cannot bind {listen}: {source}")]
    Listen {
        /// The pool.
        pool: String,
        /// Its `listen` address.
        listen: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The nutcracker stats server could not be bound.
    #[error("--stats-port/--stats-addr: cannot bind {addr}: {source}")]
    Stats {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The proxy's thread or its runtime could not be started.
    #[error("cannot start the proxy {what}: {source}")]
    Start {
        /// `thread` or `runtime`.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The proxy thread ended before it reported its listeners bound.
    #[error("the proxy thread stopped while starting")]
    Stopped,
}

/// A pool as the listeners and the stats server see it: swapped whole on reload.
type PoolHandle = Arc<ArcSwap<Pool>>;

/// Runs the proxy until shutdown.
///
/// The proxy itself runs on one dedicated thread with a single-threaded tokio runtime, the way
/// twemproxy runs on one event loop: a request then crosses no thread boundary between the client
/// task, the backend connection and back, which is what bounds latency at pipeline depth 1 on a
/// small (two-core) pod. The admin server and signal handling stay on the shared runtime.
pub async fn run(config: Config, ctx: Context) -> Result<(), Error> {
    let metrics = Metrics::default();
    ctx.admin.with_registry(|r| metrics.register(r));
    let token = ctx.shutdown.token();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), Error>>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let t = token.clone();
    std::thread::Builder::new()
        .name("proxy".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(serve(config, metrics, t, ready_tx)),
                Err(e) => {
                    let _ = ready_tx.send(Err(Error::Start {
                        what: "runtime",
                        source: e,
                    }));
                }
            }
            let _ = done_tx.send(());
        })
        .map_err(|source| Error::Start {
            what: "thread",
            source,
        })?;
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(Error::Stopped),
    }
    ctx.admin.readiness().set(true);
    token.cancelled().await;
    ctx.admin.readiness().set(false);
    tracing::info!("draining client connections");
    // The proxy thread finishes the requests in flight, then closes its clients.
    let _ = done_rx.await;
    Ok(())
}

/// Binds every listener, then serves until `token` is cancelled and the clients are drained.
async fn serve(
    config: Config,
    metrics: Metrics,
    token: CancellationToken,
    ready: tokio::sync::oneshot::Sender<Result<(), Error>>,
) {
    match start_pools(&config, &metrics, &token).await {
        Ok(clients) => {
            let _ = ready.send(Ok(()));
            token.cancelled().await;
            clients.close();
            clients.wait().await;
        }
        Err(e) => {
            let _ = ready.send(Err(e));
        }
    }
}

async fn start_pools(
    config: &Config,
    metrics: &Metrics,
    token: &CancellationToken,
) -> Result<tokio_util::task::TaskTracker, Error> {
    let started = Instant::now();
    let clients = tokio_util::task::TaskTracker::new();
    let total_connections = Arc::new(AtomicU64::new(0));
    let mut handles: Vec<(String, Listen, PoolHandle)> = Vec::new();
    let mut acceptors = Vec::new();
    let next_id = Arc::new(AtomicU64::new(1));
    for pc in &config.pools {
        let name = pc.name.clone();
        let listen = pc.listen.clone();
        let handle: PoolHandle = Arc::new(ArcSwap::new(Pool::start(pc.clone(), metrics)));
        let listener = bind(pc).await.map_err(|source| Error::Listen {
            pool: name.clone(),
            listen: listen.to_string(),
            source,
        })?;
        tracing::info!(pool = %name, listen = %listen, servers = pc.servers.len(), "pool listening");
        let cc = metrics
            .client_connections
            .get_or_create(&stats::PoolLabels { pool: name.clone() })
            .clone();
        let acc = Acceptor {
            handle: handle.clone(),
            limits: config.limits,
            token: token.clone(),
            tracker: clients.clone(),
            next_id: next_id.clone(),
            total: total_connections.clone(),
            gauge: cc,
        };
        acceptors.push((acc, listener));
        handles.push((name, listen, handle));
    }
    let handles = Arc::new(handles);
    if let Some(addr) = &config.stats_addr {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Stats {
                addr: addr.clone(),
                source,
            })?;
        tracing::info!(addr = %addr, "nutcracker stats listening");
        tokio::spawn(stats_server(
            l,
            handles.clone(),
            started,
            total_connections.clone(),
            token.clone(),
        ));
    }
    for (acc, listener) in acceptors {
        tokio::spawn(acc.run(listener));
    }
    // Installed here, before readiness is reported, not inside the task: until the task first ran,
    // a SIGHUP would meet the default disposition and terminate the proxy.
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(hup) => {
            tokio::spawn(reload_on_sighup(
                hup,
                config.conf_file.clone(),
                handles.clone(),
                metrics.clone(),
                token.clone(),
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot install the SIGHUP handler; hot reload disabled")
        }
    }
    log_level_signals();
    Ok(clients)
}

/// nutcracker's signals: SIGTTIN raises the log level one step, SIGTTOU lowers it; SIGUSR1 and
/// SIGUSR2 are ignored (nutcracker reopens its log file on USR1 and this proxy logs to stderr;
/// USR2 has no meaning in nutcracker 0.5.0). Without a handler these would stop (TTIN/TTOU) or
/// kill (USR1/USR2) the process. Installed before readiness, like SIGHUP's.
fn log_level_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    use tracing::level_filters::LevelFilter;
    const LEVELS: [LevelFilter; 5] = [
        LevelFilter::ERROR,
        LevelFilter::WARN,
        LevelFilter::INFO,
        LevelFilter::DEBUG,
        LevelFilter::TRACE,
    ];
    for (kind, step) in [
        (SignalKind::from_raw(21), 1i32),  // SIGTTIN
        (SignalKind::from_raw(22), -1i32), // SIGTTOU
        (SignalKind::user_defined1(), 0),
        (SignalKind::user_defined2(), 0),
    ] {
        let Ok(mut sig) = signal(kind) else {
            tracing::warn!(
                signal = kind.as_raw_value(),
                "cannot install a signal handler"
            );
            continue;
        };
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                if step == 0 {
                    tracing::info!(signal = kind.as_raw_value(), "signal ignored");
                    continue;
                }
                let now = podmates_runtime::telemetry::default_level().unwrap_or(LevelFilter::INFO);
                let i = LEVELS.iter().position(|l| *l == now).unwrap_or(2) as i32;
                let next = LEVELS[(i + step).clamp(0, 4) as usize];
                if podmates_runtime::telemetry::set_default_level(next) {
                    // Logged at error so that it shows at every level.
                    tracing::error!(level = %next, "log level changed by signal");
                }
            }
        });
    }
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, PathBuf),
}

async fn bind(pc: &PoolConfig) -> std::io::Result<Listener> {
    match &pc.listen {
        Listen::Tcp(addr) => {
            let mut last = None;
            for a in tokio::net::lookup_host(addr.as_str()).await? {
                let sock = if a.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                sock.set_reuseaddr(true)?;
                if pc.reuseport {
                    sock.set_reuseport(true)?;
                }
                if let Err(e) = sock.bind(a) {
                    last = Some(e);
                    continue;
                }
                return Ok(Listener::Tcp(sock.listen(pc.backlog)?));
            }
            Err(last.unwrap_or_else(|| std::io::Error::other("address resolved to nothing")))
        }
        Listen::Unix(path, mode) => {
            // A socket file left by a previous run would make bind fail.
            let _ = std::fs::remove_file(path);
            let l = tokio::net::UnixListener::bind(path)?;
            if let Some(m) = mode {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(*m))?;
            }
            Ok(Listener::Unix(l, path.clone()))
        }
    }
}

struct Acceptor {
    handle: PoolHandle,
    limits: Limits,
    token: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
    next_id: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    gauge: prometheus_client::metrics::gauge::Gauge,
}

impl Acceptor {
    async fn run(self, listener: Listener) {
        loop {
            let accepted = tokio::select! {
                _ = self.token.cancelled() => break,
                a = async {
                    match &listener {
                        Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                            let _ = s.set_nodelay(true);
                            Conn::Tcp(s)
                        }),
                        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
                    }
                } => a,
            };
            let conn = match accepted {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let pool = self.handle.load();
            let limit = pool.shared.cfg.client_connections;
            let stats = &pool.shared.stats;
            if limit > 0 && stats.client_connections.load(Relaxed) >= i64::from(limit) {
                // twemproxy closes connections over client_connections at once.
                tracing::debug!(pool = %pool.shared.cfg.name, "client_connections reached; closing a new connection");
                drop(conn);
                continue;
            }
            stats.client_connections.fetch_add(1, Relaxed);
            drop(pool);
            self.total.fetch_add(1, Relaxed);
            self.gauge.inc();
            let ctx = ClientCtx {
                pool: self.handle.clone(),
                limits: self.limits,
                shutdown: self.token.clone(),
                id: self.next_id.fetch_add(1, Relaxed),
            };
            let handle = self.handle.clone();
            let gauge = self.gauge.clone();
            self.tracker.spawn(async move {
                match conn {
                    Conn::Tcp(s) => client::serve(s, ctx).await,
                    Conn::Unix(s) => client::serve(s, ctx).await,
                }
                handle
                    .load()
                    .shared
                    .stats
                    .client_connections
                    .fetch_sub(1, Relaxed);
                gauge.dec();
            });
        }
        if let Listener::Unix(_, path) = &listener {
            let _ = std::fs::remove_file(path);
        }
    }
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

/// nutcracker's stats port: every connection gets one JSON object, then the connection closes.
async fn stats_server(
    l: tokio::net::TcpListener,
    pools: Arc<Vec<(String, Listen, PoolHandle)>>,
    started: Instant,
    total: Arc<AtomicU64>,
    token: CancellationToken,
) {
    loop {
        let (mut s, _) = tokio::select! {
            _ = token.cancelled() => return,
            a = l.accept() => match a {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let body = stats_json(&pools, started, &total);
        tokio::spawn(async move {
            let _ = s.write_all(body.as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}

/// Renders the stats JSON with nutcracker's field names and order.
pub fn stats_json(
    pools: &[(String, Listen, PoolHandle)],
    started: Instant,
    total: &AtomicU64,
) -> String {
    use std::fmt::Write;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let curr: i64 = pools
        .iter()
        .map(|(_, _, h)| geti(&h.load().shared.stats.client_connections))
        .sum();
    let mut o = String::with_capacity(1024);
    let _ = write!(
        o,
        "{{\"service\":\"nutcracker\", \"source\":{}, \"version\":\"0.5.0\", \"uptime\":{}, \"timestamp\":{}, \"total_connections\":{}, \"curr_connections\":{}",
        serde_json::Value::String(host.trim().to_owned()),
        started.elapsed().as_secs(),
        now,
        total.load(Relaxed),
        curr
    );
    for (name, _, h) in pools {
        let p = h.load();
        let s = &p.shared.stats;
        let _ = write!(
            o,
            ", {}: {{\"client_eof\":{}, \"client_err\":{}, \"client_connections\":{}, \"server_ejects\":{}, \"forward_error\":{}, \"fragments\":{}",
            serde_json::Value::String(name.clone()),
            get(&s.client_eof),
            get(&s.client_err),
            geti(&s.client_connections),
            get(&s.server_ejects),
            get(&s.forward_error),
            get(&s.fragments)
        );
        for srv in &p.servers {
            let st = &srv.shared.stats;
            let _ = write!(
                o,
                ", {}: {{\"server_eof\":{}, \"server_err\":{}, \"server_timedout\":{}, \"server_connections\":{}, \"server_ejected_at\":{}, \"requests\":{}, \"request_bytes\":{}, \"responses\":{}, \"response_bytes\":{}, \"in_queue\":{}, \"in_queue_bytes\":{}, \"out_queue\":0, \"out_queue_bytes\":0}}",
                serde_json::Value::String(srv.shared.cfg.label.clone()),
                get(&st.server_eof),
                get(&st.server_err),
                get(&st.server_timedout),
                geti(&st.server_connections),
                get(&st.server_ejected_at),
                get(&st.requests),
                get(&st.request_bytes),
                get(&st.responses),
                get(&st.response_bytes),
                geti(&st.in_queue),
                geti(&st.in_queue_bytes),
            );
        }
        o.push('}');
    }
    o.push_str("}\n");
    o
}

/// SIGHUP: re-read the file, validate it, and swap each pool whose listener is unchanged. Clients
/// keep their connections and use the new pool from their next request on; an invalid file keeps
/// the running configuration.
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    path: PathBuf,
    pools: Arc<Vec<(String, Listen, PoolHandle)>>,
    metrics: Metrics,
    token: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            s = hup.recv() => if s.is_none() { return },
        }
        match reload(&path, &pools, &metrics) {
            Ok(n) => {
                metrics
                    .reloads
                    .get_or_create(&ReloadLabels {
                        result: "ok".to_owned(),
                    })
                    .inc();
                tracing::info!(file = %path.display(), pools = n, "configuration reloaded");
            }
            Err(e) => {
                metrics
                    .reloads
                    .get_or_create(&ReloadLabels {
                        result: "error".to_owned(),
                    })
                    .inc();
                tracing::error!(file = %path.display(), error = %e, "reload rejected; keeping the running configuration");
            }
        }
    }
}

/// Why a SIGHUP reload was rejected (the running configuration stays).
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    /// The file is not a valid configuration.
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    /// A pool is gone.
    #[error("pool `{0}` was removed; adding or removing pools needs a restart")]
    Removed(String),
    /// A pool's `listen` changed.
    #[error("pool `{pool}`: listen changed from {old} to {new}; that needs a restart")]
    ListenChanged {
        /// The pool.
        pool: String,
        /// The running address.
        old: Listen,
        /// The address in the file.
        new: Listen,
    },
    /// A pool was added.
    #[error("pools were added; adding or removing pools needs a restart")]
    Added,
}

fn reload(
    path: &std::path::Path,
    pools: &[(String, Listen, PoolHandle)],
    metrics: &Metrics,
) -> Result<usize, ReloadError> {
    let new = config::load(path)?;
    let by_name: HashMap<&str, &PoolConfig> = new.iter().map(|p| (p.name.as_str(), p)).collect();
    // Validate everything before swapping anything, so a reload is all or nothing.
    for (name, listen, _) in pools {
        let Some(p) = by_name.get(name.as_str()) else {
            return Err(ReloadError::Removed(name.clone()));
        };
        if &p.listen != listen {
            return Err(ReloadError::ListenChanged {
                pool: name.clone(),
                old: listen.clone(),
                new: p.listen.clone(),
            });
        }
    }
    if new.len() != pools.len() {
        return Err(ReloadError::Added);
    }
    for (name, _, handle) in pools {
        let cfg = (*by_name[name.as_str()]).clone();
        if handle.load().shared.cfg == cfg {
            continue;
        }
        handle.store(Pool::start(cfg, metrics));
    }
    Ok(new.len())
}
