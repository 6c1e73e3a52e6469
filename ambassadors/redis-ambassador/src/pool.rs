//! One pool at run time: its servers with their connections, and the ring that maps keys to them.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use crate::backend::{Batch, ConnKind, PoolShared, ServerShared, spawn_connection};
use crate::config::PoolConfig;
use crate::dist::{Ring, RingServer, key_hash};
use crate::stats::{Metrics, PoolMetrics};

/// Batches a connection queues before clients wait (backpressure, bounded memory).
const CONN_QUEUE: usize = 1024;

/// A server of a running pool.
pub struct Server {
    /// State shared with its connection tasks.
    pub shared: Arc<ServerShared>,
    /// One sender per connection (`server_connections`), for RESP2 clients.
    conns: Vec<mpsc::Sender<Batch>>,
    /// The same for RESP3 clients: connections that sent `HELLO 3`, opened when first used.
    conns3: Vec<mpsc::Sender<Batch>>,
}

impl Server {
    /// The connection for a client: clients are spread over the connections by id.
    pub fn conn(&self, client_id: u64, resp3: bool) -> &mpsc::Sender<Batch> {
        let c = if resp3 { &self.conns3 } else { &self.conns };
        &c[client_id as usize % c.len()]
    }

    /// A new connection for one client only (blocking commands, WATCH); it closes when the
    /// sender is dropped.
    pub fn dedicated(&self, resp3: bool) -> mpsc::Sender<Batch> {
        spawn_connection(
            self.shared.clone(),
            4,
            ConnKind {
                resp3,
                dedicated: true,
            },
        )
    }
}

/// A running pool. Replaced as a whole on reload; clients pick up the new one on their next read.
pub struct Pool {
    /// Settings and counters shared with the servers.
    pub shared: Arc<PoolShared>,
    /// Servers in configuration order.
    pub servers: Vec<Server>,
    /// The current ring of live servers.
    ring: ArcSwap<Ring>,
    /// Serialises ring rebuilds.
    rebuild: Mutex<()>,
    /// Metric handles.
    pub metrics: PoolMetrics,
}

impl Pool {
    /// Starts a pool's connections (connecting at once with `preconnect`).
    pub fn start(cfg: PoolConfig, metrics: &Metrics) -> Arc<Self> {
        let labels: Vec<String> = cfg.servers.iter().map(|s| s.label.clone()).collect();
        let pm = PoolMetrics::new(metrics, &cfg.name, labels);
        let shared = Arc::new(PoolShared {
            epoch: std::time::Instant::now(),
            dirty: std::sync::atomic::AtomicBool::new(false),
            stats: Default::default(),
            cfg,
        });
        let servers: Vec<Server> = shared
            .cfg
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let ss = Arc::new(ServerShared::new(s.clone(), shared.clone(), &pm, i));
                let n = shared.cfg.server_connections;
                let conns = (0..n)
                    .map(|_| spawn_connection(ss.clone(), CONN_QUEUE, ConnKind::default()))
                    .collect();
                let resp3 = ConnKind {
                    resp3: true,
                    dedicated: false,
                };
                let conns3 = (0..n)
                    .map(|_| spawn_connection(ss.clone(), CONN_QUEUE, resp3))
                    .collect();
                Server {
                    shared: ss,
                    conns,
                    conns3,
                }
            })
            .collect();
        let pool = Self {
            ring: ArcSwap::from_pointee(Ring::build(shared.cfg.distribution, &[])),
            shared,
            servers,
            rebuild: Mutex::new(()),
            metrics: pm,
        };
        pool.rebuild_ring();
        Arc::new(pool)
    }

    /// Rebuilds the ring from the servers that are not ejected (twemproxy's continuum update).
    fn rebuild_ring(&self) {
        let _g = self.rebuild.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.shared.now_ms();
        let eject = self.shared.cfg.auto_eject_hosts;
        let rs: Vec<RingServer<'_>> = self
            .servers
            .iter()
            .map(|s| {
                let until = s.shared.ejected_until.load(Relaxed);
                RingServer {
                    label: &s.shared.cfg.label,
                    weight: s.shared.cfg.weight,
                    live: !eject || until <= now,
                }
            })
            .collect();
        self.ring
            .store(Arc::new(Ring::build(self.shared.cfg.distribution, &rs)));
    }

    /// The ring to use for this read: rebuilt first when a server was ejected or an ejected
    /// server's retry time has come.
    pub fn ring(&self) -> arc_swap::Guard<Arc<Ring>> {
        if self.shared.cfg.auto_eject_hosts {
            let now = self.shared.now_ms();
            let retry_due = self.servers.iter().any(|s| {
                let u = s.shared.ejected_until.load(Relaxed);
                u != 0 && u <= now
            });
            if retry_due {
                for s in &self.servers {
                    let u = s.shared.ejected_until.load(Relaxed);
                    if u != 0 && u <= now {
                        // Back on the ring; a failure will eject it again.
                        let _ = s
                            .shared
                            .ejected_until
                            .compare_exchange(u, 0, Relaxed, Relaxed);
                    }
                }
                self.shared.dirty.store(true, Relaxed);
            }
            if self.shared.dirty.swap(false, Relaxed) {
                self.rebuild_ring();
            }
        }
        self.ring.load()
    }

    /// The server for `key` on `ring`; `rnd` feeds the random distribution.
    pub fn server_for(&self, ring: &Ring, key: &[u8], rnd: u32) -> Option<usize> {
        let cfg = &self.shared.cfg;
        let h = key_hash(cfg.hash, key, cfg.hash_tag, self.servers.len());
        ring.dispatch(h, rnd)
    }
}
