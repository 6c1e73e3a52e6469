//! The admin HTTP server every binary runs on its own port: `/metrics`, `/healthz`, `/readyz`, and
//! whatever routes the binary adds (git-sync's `POST /sync`, the nginx exporter's `/probe`).
//!
//! Routes are plain async functions from a request with a collected body to a response, so they can
//! be tested with [`Admin::handle`] without a socket.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::exposition;

/// Boxed future returned by a route handler.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A route handler: a request with its body collected (at most [`MAX_BODY_BYTES`]).
pub type Handler = Arc<dyn Fn(Request<Bytes>) -> BoxFuture<Response<Full<Bytes>>> + Send + Sync>;

/// Admin requests are small; a larger body is refused so a misbehaving client cannot make the
/// process buffer it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A client must send its request head within this time (slowloris protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A handler must answer within this time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Open admin connections at most. A new connection beyond it closes the oldest open one, rather
/// than waiting in the accept queue: otherwise a flood of slow or idle connections (slowloris)
/// would hold every slot and a kubelet probe would wait behind them until it timed out, and the
/// pod would be restarted for it. A probe sends its request at once, so it is never the oldest.
const MAX_CONNECTIONS: usize = 512;

/// The open connections, oldest first, each with the token that closes it.
#[derive(Default)]
struct Open {
    next_id: u64,
    conns: std::collections::VecDeque<(u64, CancellationToken)>,
}

impl Open {
    /// Registers a new connection; returns its id and token, and closes the oldest connection
    /// when there are more than `MAX_CONNECTIONS`.
    fn add(&mut self) -> (u64, CancellationToken) {
        let id = self.next_id;
        self.next_id += 1;
        let token = CancellationToken::new();
        self.conns.push_back((id, token.clone()));
        while self.conns.len() > MAX_CONNECTIONS {
            if let Some((_, oldest)) = self.conns.pop_front() {
                oldest.cancel();
            }
        }
        (id, token)
    }

    fn remove(&mut self, id: u64) {
        if let Some(i) = self.conns.iter().position(|(c, _)| *c == id) {
            self.conns.remove(i);
        }
    }
}

/// Ready flag behind `/readyz`. Starts not ready; the binary flips it when it can do its job.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Sets readiness; a change is logged (at info), so that the log tells when the binary
    /// started or stopped taking work, and a supervisor without the admin server can wait for it.
    pub fn set(&self, ready: bool) {
        if self.0.swap(ready, Ordering::AcqRel) != ready {
            if ready {
                tracing::info!("ready");
            } else {
                tracing::info!("not ready");
            }
        }
    }

    /// Current readiness.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A check run on every `/readyz` request in addition to the flag, e.g. git-sync's staleness.
/// Returns `Err(reason)` when not ready.
pub type ReadyCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

struct Inner {
    registry: RwLock<Registry>,
    ready: Readiness,
    ready_checks: RwLock<Vec<ReadyCheck>>,
    routes: RwLock<HashMap<(Method, String), Handler>>,
}

/// The admin server's state: registry, readiness and extra routes. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("ready", &self.inner.ready.get())
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// A new admin state with `<binary>_build_info{version="..."} 1` registered (dashes in the
    /// binary name become underscores to make a valid metric name).
    pub fn new(binary: &str, version: &str) -> Self {
        let mut registry = Registry::default();
        let prefix = binary.replace('-', "_");
        registry.register(
            format!("{prefix}_build"),
            "Build information of this binary",
            Info::new(vec![("version", version.to_owned())]),
        );
        Self {
            inner: Arc::new(Inner {
                registry: RwLock::new(registry),
                ready: Readiness::default(),
                ready_checks: RwLock::new(Vec::new()),
                routes: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Registers metrics: `admin.with_registry(|r| r.register("x", "help", metric.clone()))`.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        let mut reg = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        f(&mut reg)
    }

    /// The readiness flag behind `/readyz`.
    pub fn readiness(&self) -> Readiness {
        self.inner.ready.clone()
    }

    /// Adds a check `/readyz` runs on each request besides the flag.
    pub fn add_ready_check(&self, check: ReadyCheck) {
        self.inner
            .ready_checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(check);
    }

    /// Adds (or replaces, including the built-in ones) the handler for `method path`.
    pub fn route<F, Fut>(&self, method: Method, path: &str, handler: F)
    where
        F: Fn(Request<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let h: Handler = Arc::new(move |req| Box::pin(handler(req)));
        self.inner
            .routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((method, path.to_owned()), h);
    }

    /// The metrics in the format `accept` asks for, with its content type.
    pub fn render_metrics(&self, accept: Option<&str>) -> (String, &'static str) {
        let om = {
            let reg = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner());
            exposition::encode_openmetrics(&reg)
        };
        if exposition::wants_openmetrics(accept) {
            (om, exposition::OPENMETRICS_CONTENT_TYPE)
        } else {
            (
                exposition::openmetrics_to_prometheus(&om),
                exposition::PROMETHEUS_CONTENT_TYPE,
            )
        }
    }

    /// Answers one request. Used by the server and directly by tests.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Full<Bytes>> {
        let key = (req.method().clone(), req.uri().path().to_owned());
        let custom = self
            .inner
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(h) = custom {
            return h(req).await;
        }
        let is_get = matches!(*req.method(), Method::GET | Method::HEAD);
        match (is_get, req.uri().path()) {
            (true, "/metrics") => {
                let accept = req
                    .headers()
                    .get(hyper::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let (body, ct) = self.render_metrics(accept);
                let mut resp = Response::new(Full::new(Bytes::from(body)));
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
                resp
            }
            (true, "/healthz") => text(StatusCode::OK, "ok\n"),
            (true, "/readyz") => match self.check_ready() {
                Ok(()) => text(StatusCode::OK, "ready\n"),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            },
            (false, "/metrics" | "/healthz" | "/readyz") => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    fn check_ready(&self) -> Result<(), String> {
        if !self.inner.ready.get() {
            return Err("starting".to_owned());
        }
        let checks = self
            .inner
            .ready_checks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        checks.iter().try_for_each(|c| c())
    }

    /// Serves until `token` is cancelled, then gives open connections one second to finish.
    pub async fn serve(self, listener: TcpListener, token: CancellationToken) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let open = Arc::new(std::sync::Mutex::new(Open::default()));
        loop {
            let (stream, peer) = tokio::select! {
                _ = token.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(s) => s,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let admin = self.clone();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.serve_one(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            let conn = graceful.watch(conn);
            let (id, evicted) = open.lock().unwrap_or_else(|e| e.into_inner()).add();
            let open = open.clone();
            tokio::spawn(async move {
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "admin connection error");
                    },
                    // Dropping the connection closes the socket.
                    () = evicted.cancelled() => {
                        tracing::debug!(%peer, "admin connection closed: too many open");
                    }
                }
                open.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            });
        }
        // Not ready any more: we are going away.
        self.inner.ready.set(false);
        if tokio::time::timeout(Duration::from_secs(1), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::debug!("admin connections still open after shutdown; dropping them");
        }
    }

    async fn serve_one(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
        };
        let head = parts.method == Method::HEAD;
        let req = Request::from_parts(parts, body);
        let mut resp = match tokio::time::timeout(REQUEST_TIMEOUT, self.handle(req)).await {
            Ok(r) => r,
            Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n"),
        };
        if head {
            *resp.body_mut() = Full::new(Bytes::new());
        }
        resp
    }
}

/// A `text/plain` response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
