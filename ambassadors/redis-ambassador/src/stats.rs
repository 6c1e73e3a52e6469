//! Counters behind nutcracker's stats JSON and the Prometheus metrics.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::command::COMMANDS;

/// nutcracker's per-server counters (same names in the JSON).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections the server closed.
    pub server_eof: AtomicU64,
    /// Connection errors (connect failures, resets, protocol errors).
    pub server_err: AtomicU64,
    /// Requests that timed out.
    pub server_timedout: AtomicU64,
    /// Open connections.
    pub server_connections: AtomicI64,
    /// When the server was last ejected (unix seconds).
    pub server_ejected_at: AtomicU64,
    /// Requests forwarded.
    pub requests: AtomicU64,
    /// Bytes forwarded.
    pub request_bytes: AtomicU64,
    /// Replies received.
    pub responses: AtomicU64,
    /// Reply bytes received.
    pub response_bytes: AtomicU64,
    /// Requests sent and waiting for their reply.
    pub in_queue: AtomicI64,
    /// Bytes of those requests.
    pub in_queue_bytes: AtomicI64,
}

/// nutcracker's per-pool counters.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Clients that closed their connection.
    pub client_eof: AtomicU64,
    /// Clients closed on an error (protocol error, I/O error).
    pub client_err: AtomicU64,
    /// Open client connections.
    pub client_connections: AtomicI64,
    /// Server ejections.
    pub server_ejects: AtomicU64,
    /// Requests answered with an error because no server could take them.
    pub forward_error: AtomicU64,
    /// Sub-requests created by splitting multi-key commands.
    pub fragments: AtomicU64,
}

/// Labels of per-server metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    /// Pool name.
    pub pool: String,
    /// Server name (ring label).
    pub server: String,
}

/// Labels of per-command metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    /// Pool name.
    pub pool: String,
    /// Server name, or `proxy` for commands answered locally.
    pub server: String,
    /// Upper-case command name.
    pub command: String,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// Pool name.
    pub pool: String,
    /// Upper-case command name.
    pub command: String,
}

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Pool name.
    pub pool: String,
    /// Server name, or `proxy`.
    pub server: String,
    /// Upper-case command name, or `-` when the request was not understood.
    pub command: String,
    /// `redis` (an error reply from the server), `backend` (connection, timeout, no live server),
    /// `client` (unsupported command, bad arguments, cross-shard keys, protocol error).
    pub kind: String,
}

/// Labels of the pool-level gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// Pool name.
    pub pool: String,
}

/// Labels of the reload counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `error`.
    pub result: String,
}

fn latency_histogram() -> Histogram {
    // 25µs .. ~0.8s.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 16))
}

/// The Prometheus metric families, registered once per process and shared by every pool
/// generation so that a reload does not reset them.
#[derive(Clone)]
pub struct Metrics {
    /// `redis_ambassador_requests_total`
    pub requests: Family<CommandLabels, Counter>,
    /// `redis_ambassador_errors_total`
    pub errors: Family<ErrorLabels, Counter>,
    /// `redis_ambassador_request_duration_seconds`
    pub latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    /// `redis_ambassador_ejections_total`
    pub ejections: Family<ServerLabels, Counter>,
    /// `redis_ambassador_client_connections`
    pub client_connections: Family<PoolLabels, Gauge>,
    /// `redis_ambassador_server_connections`
    pub server_connections: Family<ServerLabels, Gauge>,
    /// `redis_ambassador_server_queue_depth`
    pub queue_depth: Family<ServerLabels, Gauge>,
    /// `redis_ambassador_own_connections`
    pub own_connections: Family<ServerLabels, Gauge>,
    /// `redis_ambassador_server_ejected`
    pub ejected: Family<ServerLabels, Gauge>,
    /// `redis_ambassador_config_reloads_total`
    pub reloads: Family<ReloadLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            ejections: Family::default(),
            client_connections: Family::default(),
            server_connections: Family::default(),
            queue_depth: Family::default(),
            own_connections: Family::default(),
            ejected: Family::default(),
            reloads: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers every family (prometheus-client appends `_total` to counters).
    pub fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("redis_ambassador");
        r.register(
            "requests",
            "Requests by pool, server and command",
            self.requests.clone(),
        );
        r.register(
            "errors",
            "Error replies by pool, server, command and kind",
            self.errors.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from reading a request to having its reply, by pool and command",
            self.latency.clone(),
        );
        r.register(
            "ejections",
            "Servers ejected from the ring after server_failure_limit failures",
            self.ejections.clone(),
        );
        r.register(
            "client_connections",
            "Open client connections",
            self.client_connections.clone(),
        );
        r.register(
            "server_connections",
            "Open backend connections",
            self.server_connections.clone(),
        );
        r.register(
            "own_connections",
            "Backend connections owned by one client (blocking commands, WATCH, pub/sub), open",
            self.own_connections.clone(),
        );
        r.register(
            "server_queue_depth",
            "Requests sent to a server and waiting for its reply",
            self.queue_depth.clone(),
        );
        r.register(
            "server_ejected",
            "1 while a server is ejected from the ring",
            self.ejected.clone(),
        );
        r.register(
            "config_reloads",
            "SIGHUP configuration reloads by result",
            self.reloads.clone(),
        );
    }
}

/// Per-pool cache of metric handles so the hot path does not hash label sets: counters and
/// histograms are `Arc`s inside, so a cached clone updates the registered series.
pub struct PoolMetrics {
    pool: String,
    servers: Vec<String>,
    m: Metrics,
    /// `[server][command]`, the last row for commands answered by the proxy.
    requests: Vec<OnceLock<Counter>>,
    latency: Vec<OnceLock<Histogram>>,
}

impl PoolMetrics {
    /// Handles for one pool.
    pub fn new(m: &Metrics, pool: &str, servers: Vec<String>) -> Self {
        let n = (servers.len() + 1) * COMMANDS.len();
        Self {
            pool: pool.to_owned(),
            m: m.clone(),
            requests: (0..n).map(|_| OnceLock::new()).collect(),
            latency: (0..COMMANDS.len()).map(|_| OnceLock::new()).collect(),
            servers,
        }
    }

    fn server_name(&self, server: Option<usize>) -> &str {
        server.map_or("proxy", |s| self.servers[s].as_str())
    }

    /// Counts one request of command `cmd` (index into COMMANDS) on `server` (None: local).
    pub fn request(&self, server: Option<usize>, cmd: usize, n: u64) {
        let row = server.unwrap_or(self.servers.len());
        let c = self.requests[row * COMMANDS.len() + cmd].get_or_init(|| {
            self.m
                .requests
                .get_or_create(&CommandLabels {
                    pool: self.pool.clone(),
                    server: self.server_name(server).to_owned(),
                    command: COMMANDS[cmd].name.to_owned(),
                })
                .clone()
        });
        c.inc_by(n);
    }

    /// Records a request's latency.
    pub fn latency(&self, cmd: usize, secs: f64) {
        self.latency[cmd]
            .get_or_init(|| {
                self.m
                    .latency
                    .get_or_create(&LatencyLabels {
                        pool: self.pool.clone(),
                        command: COMMANDS[cmd].name.to_owned(),
                    })
                    .clone()
            })
            .observe(secs);
    }

    /// Counts an error (the rare path: labels are built each time).
    pub fn error(&self, server: Option<usize>, command: &str, kind: &str) {
        self.m
            .errors
            .get_or_create(&ErrorLabels {
                pool: self.pool.clone(),
                server: self.server_name(server).to_owned(),
                command: command.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// The per-server gauge and counter handles.
    pub fn server_labels(&self, server: usize) -> ServerLabels {
        ServerLabels {
            pool: self.pool.clone(),
            server: self.servers[server].clone(),
        }
    }

    /// The shared families.
    pub fn families(&self) -> &Metrics {
        &self.m
    }
}

/// Reads an atomic for the JSON.
pub fn get(a: &AtomicU64) -> u64 {
    a.load(Relaxed)
}

/// Reads a signed atomic for the JSON, never below 0.
pub fn geti(a: &AtomicI64) -> i64 {
    a.load(Relaxed).max(0)
}

/// nutcracker's `-D` text: what each stats field means.
pub const DESCRIPTION: &str = r##"pool stats:
  client_eof          "# eof on client connections"
  client_err          "# errors on client connections"
  client_connections  "# active client connections"
  server_ejects       "# times backend server was ejected"
  forward_error       "# times we encountered a forwarding error"
  fragments           "# fragments created from a multi-vector request"

server stats:
  server_eof          "# eof on server connections"
  server_err          "# errors on server connections"
  server_timedout     "# timeouts on server connections"
  server_connections  "# active server connections"
  server_ejected_at   "timestamp when server was ejected in usec since epoch"
  requests            "# requests"
  request_bytes       "total request bytes"
  responses           "# responses"
  response_bytes      "total response bytes"
  in_queue            "# requests in incoming queue"
  in_queue_bytes      "current request bytes in incoming queue"
  out_queue           "# requests in outgoing queue"
  out_queue_bytes     "current request bytes in outgoing queue"
"##;
