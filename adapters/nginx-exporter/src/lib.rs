//! nginx-exporter: nginx's stub_status page as Prometheus metrics, a drop-in for
//! nginx-prometheus-exporter (same flags, env vars, metric names, types and help), plus what it
//! lacks: several targets each with its own client (unix sockets, TLS, auth never mixed), a tolerant
//! parser, `/probe?target=`, and status codes and latency from the access log.
//!
//! - [`stub_status`]: the page parser.
//! - [`render`]: the nginx families in the Go exporter's exact text format.
//! - [`target`]: one scrape target and its HTTP client.
//! - [`tls`]: TLS toward nginx.
//! - [`access_log`]: the access-log mode's metrics.
//!
//! The metrics live on `--web.listen-address` at `--web.telemetry-path`, served by the runtime's
//! admin server (which also answers `/healthz` and `/readyz` there): a pod keeps the one port
//! (9113) its scrape annotations already name.

pub mod access_log;
pub mod render;
pub mod stub_status;
pub mod target;
pub mod tls;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use podmates_runtime::Context;
use podmates_runtime::admin::text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::stub_status::StubStatus;
use crate::target::{ClientSettings, ScrapeError, Target};

/// The content type the Go exporter answers with.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything `run` needs, validated.
#[derive(Debug)]
pub struct Config {
    /// `--nginx.scrape-uri`, at least one.
    pub scrape_uris: Vec<String>,
    /// Listeners bound from `--web.listen-address` (bound before start so a busy port is a usage
    /// error naming the flag).
    pub listeners: Vec<std::net::TcpListener>,
    /// `--web.telemetry-path`.
    pub telemetry_path: String,
    /// `--web.nginx-metrics-only`: leave out the exporter's own metrics.
    pub nginx_metrics_only: bool,
    /// Client settings shared by all targets (each still gets its own client).
    pub client: ClientSettings,
    /// `--prometheus.const-label`, in the order given.
    pub const_labels: Vec<(String, String)>,
    /// `--access-log` and its format.
    pub access_log: Option<access_log::AccessLogConfig>,
    /// `--probe.allowed-target`: what `/probe?target=` may scrape. `None` (the default): only the
    /// configured scrape URIs; `Some` list of URI prefixes, `*` meaning any.
    pub probe_allowed: Option<Vec<String>>,
}

/// Whether `/probe` may scrape `uri`. By default only the configured targets: `/probe` makes the
/// exporter fetch a URL of the caller's choosing, with the configured basic auth, bearer token and
/// client certificate attached, so an open one would let anyone who reaches the port make it
/// request (and send those credentials to) any host it can reach.
pub fn probe_allowed(uri: &str, scrape_uris: &[String], allowed: Option<&[String]>) -> bool {
    match allowed {
        None => scrape_uris.iter().any(|u| u == uri),
        Some(prefixes) => prefixes.iter().any(|p| {
            p == "*"
                || uri.strip_prefix(p.as_str()).is_some_and(|rest| {
                    // On a boundary: `http://10.0.0.1` does not allow `http://10.0.0.1.evil/`
                    // nor another port.
                    rest.is_empty() || p.ends_with(['/', ':']) || rest.starts_with(['/', '?'])
                })
        }),
    }
}

#[cfg(test)]
mod probe_tests {
    use super::probe_allowed;

    #[test]
    fn only_configured_targets_by_default_and_prefixes_on_a_boundary() {
        let cfg = vec!["http://127.0.0.1:8080/stub_status".to_owned()];
        assert!(probe_allowed(&cfg[0], &cfg, None));
        assert!(!probe_allowed(
            "http://169.254.169.254/latest/meta-data",
            &cfg,
            None
        ));
        assert!(!probe_allowed("http://127.0.0.1:8080/other", &cfg, None));
        let allow = vec!["http://10.0.0.1".to_owned(), "unix:".to_owned()];
        assert!(probe_allowed(
            "http://10.0.0.1/stub_status",
            &cfg,
            Some(&allow)
        ));
        assert!(probe_allowed(
            "unix:/run/nginx.sock:/stub_status",
            &cfg,
            Some(&allow)
        ));
        assert!(!probe_allowed(
            "http://10.0.0.1.evil.example/",
            &cfg,
            Some(&allow)
        ));
        assert!(!probe_allowed("http://10.0.0.1:9999/", &cfg, Some(&allow)));
        assert!(probe_allowed(
            "http://anything/",
            &cfg,
            Some(&["*".to_owned()])
        ));
    }
}

/// Why `/probe` did not scrape.
#[derive(Debug)]
pub enum ProbeRefused {
    /// No target, or one that is not a scrape URI (400).
    BadRequest(String),
    /// A target outside `--probe.allowed-target` (403).
    NotAllowed(String),
}

/// A URI for a message: its userinfo (a password) left out.
fn redact_uri(uri: &str) -> String {
    match (uri.find("://"), uri.find('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &uri[..s + 3], &uri[at + 1..]),
        _ => uri.to_owned(),
    }
}

/// Errors that stop the exporter; each keeps its cause as its `source`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scrape URI is not usable.
    #[error("--nginx.scrape-uri {0}")]
    BadUri(#[source] target::BadUri),
    /// A listener could not be handed to the async runtime.
    #[error("--web.listen-address: {0}")]
    Listen(#[source] std::io::Error),
    /// The access log could not be followed.
    #[error("--access-log: {0}")]
    AccessLog(#[source] podmates_follow::Error),
}

/// Last outcome of a target, so that errors are logged once per change, not once per scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    Unknown,
    Up,
    Down(String),
}

struct Scraped {
    target: Target,
    /// The label block of this target's series.
    labels: String,
    health: Mutex<Health>,
}

type ErrorLabels = Vec<(&'static str, String)>;

/// The exporter's state shared by the HTTP handlers.
pub struct Exporter {
    targets: Vec<Scraped>,
    /// The configured scrape URIs, which `/probe` may always scrape.
    scrape_uris: Vec<String>,
    /// `--probe.allowed-target`.
    probe_allowed: Option<Vec<String>>,
    client: ClientSettings,
    /// Label block for `/probe` answers: const labels only.
    probe_labels: String,
    nginx_metrics_only: bool,
    errors: Family<ErrorLabels, Counter>,
    access: Option<Arc<access_log::AccessMetrics>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Builds one client per target. Opens no connection: nginx may not be up yet.
    pub fn new(config: &Config) -> Result<Self, Error> {
        let several = config.scrape_uris.len() > 1;
        let targets = config
            .scrape_uris
            .iter()
            .map(|uri| {
                let target = Target::new(uri, &config.client).map_err(Error::BadUri)?;
                let labels =
                    render::label_block(&config.const_labels, several.then_some(uri.as_str()));
                Ok(Scraped {
                    target,
                    labels,
                    health: Mutex::new(Health::Unknown),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let access = config
            .access_log
            .as_ref()
            .map(|a| Arc::new(access_log::AccessMetrics::new(a, &config.const_labels)));
        Ok(Self {
            targets,
            scrape_uris: config.scrape_uris.clone(),
            probe_allowed: config.probe_allowed.clone(),
            client: config.client.clone(),
            probe_labels: render::label_block(&config.const_labels, None),
            nginx_metrics_only: config.nginx_metrics_only,
            errors: Family::default(),
            access,
        })
    }

    /// Scrapes every target (concurrently) and records the outcomes.
    async fn scrape_all(&self) -> Vec<Option<StubStatus>> {
        let futs: Vec<_> = self.targets.iter().map(|t| t.target.scrape()).collect();
        let results = join_all(futs).await;
        self.targets
            .iter()
            .zip(results)
            .map(|(t, r)| self.record(t, r))
            .collect()
    }

    fn record(&self, t: &Scraped, r: Result<StubStatus, ScrapeError>) -> Option<StubStatus> {
        let new = match &r {
            Ok(_) => Health::Up,
            Err(e) => {
                self.errors
                    .get_or_create(&vec![
                        ("addr", t.target.addr.clone()),
                        ("kind", e.kind().to_owned()),
                    ])
                    .inc();
                Health::Down(e.to_string())
            }
        };
        let mut h = t.health.lock().unwrap_or_else(|e| e.into_inner());
        if *h != new {
            match (&*h, &new) {
                (_, Health::Down(e)) => {
                    tracing::warn!(target_uri = %t.target.addr, error = %e, "scrape failed; nginx_up is 0 until it succeeds");
                }
                (Health::Down(_), Health::Up) => {
                    tracing::info!(target_uri = %t.target.addr, "scrape succeeded again");
                }
                _ => tracing::debug!(target_uri = %t.target.addr, "first scrape succeeded"),
            }
            *h = new;
        }
        r.ok()
    }

    /// The body of `/metrics`: nginx families, then (unless `--web.nginx-metrics-only`) the access
    /// log's and the exporter's own metrics.
    pub async fn render(&self, admin: &podmates_runtime::Admin) -> String {
        let results = self.scrape_all().await;
        let pairs: Vec<(&str, Option<StubStatus>)> = self
            .targets
            .iter()
            .zip(results)
            .map(|(t, r)| (t.labels.as_str(), r))
            .collect();
        let mut out = String::with_capacity(2048);
        render::write_nginx(&mut out, &pairs);
        if let Some(a) = &self.access {
            a.render(&mut out);
        }
        if !self.nginx_metrics_only {
            out.push_str(&admin.render_metrics(None).0);
        }
        out
    }

    /// The body of `/probe?target=<uri>`: the nginx families of that one target, scraped with a
    /// client made for this request.
    pub async fn probe(&self, query: Option<&str>) -> Result<String, ProbeRefused> {
        let Some(uri) = query.and_then(|q| query_param(q, "target")) else {
            return Err(ProbeRefused::BadRequest(
                "missing the `target` query parameter".to_owned(),
            ));
        };
        // An unusable URI is a bad request whatever the allow list says.
        let target =
            Target::new(&uri, &self.client).map_err(|e| ProbeRefused::BadRequest(e.to_string()))?;
        if !probe_allowed(&uri, &self.scrape_uris, self.probe_allowed.as_deref()) {
            return Err(ProbeRefused::NotAllowed(format!(
                "target `{}` is not allowed: by default /probe scrapes only the --nginx.scrape-uri \
                 targets; widen it with --probe.allowed-target",
                redact_uri(&uri)
            )));
        }
        let result = match target.scrape().await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(target_uri = %uri, error = %e, "probe failed");
                None
            }
        };
        let mut out = String::with_capacity(1024);
        render::write_nginx(&mut out, &[(self.probe_labels.as_str(), result)]);
        Ok(out)
    }
}

/// Polls the futures together and returns their outputs in order (a tiny `join_all`: one target is
/// the common case, and a dependency for this would weigh more than these lines).
async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// The decoded value of `name` in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k).as_deref() == Some(name)).then(|| percent_decode(v))?
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn metrics_response(body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
    resp
}

/// Serves the exporter until shutdown: routes on the admin server, one server per listener, and the
/// access-log follower when asked for.
pub async fn run(exporter: Exporter, config: Config, ctx: Context) -> Result<(), Error> {
    let exporter = Arc::new(exporter);
    let admin = ctx.admin.clone();
    if !exporter.nginx_metrics_only {
        let errors = exporter.errors.clone();
        admin.with_registry(|r| {
            r.register(
                "nginx_exporter_scrape_errors",
                "Failed scrapes of nginx's stub_status, by target and kind of failure",
                errors,
            );
        });
    }
    for method in [Method::GET, Method::HEAD] {
        let (e, a) = (exporter.clone(), admin.clone());
        admin.route(method.clone(), &config.telemetry_path, move |_req| {
            let (e, a) = (e.clone(), a.clone());
            async move { metrics_response(e.render(&a).await) }
        });
        let e = exporter.clone();
        admin.route(method.clone(), "/probe", move |req: Request<Bytes>| {
            let e = e.clone();
            async move {
                match e.probe(req.uri().query()).await {
                    Ok(body) => metrics_response(body),
                    Err(ProbeRefused::BadRequest(why)) => {
                        text(StatusCode::BAD_REQUEST, format!("{why}\n"))
                    }
                    Err(ProbeRefused::NotAllowed(why)) => {
                        text(StatusCode::FORBIDDEN, format!("{why}\n"))
                    }
                }
            }
        });
        if config.telemetry_path != "/metrics" {
            // The admin server's built-in /metrics would otherwise answer with only the exporter's
            // own metrics, which a scraper still pointed at the old path would take for nginx's.
            admin.route(method.clone(), "/metrics", |_req| async {
                text(StatusCode::NOT_FOUND, "not found\n")
            });
        }
        if config.telemetry_path != "/" {
            let landing = format!(
                "nginx-exporter {}\nmetrics: {}\nprobe: /probe?target=<scrape uri>\n",
                env!("CARGO_PKG_VERSION"),
                config.telemetry_path
            );
            admin.route(method, "/", move |_req| {
                let body = landing.clone();
                async move { text(StatusCode::OK, body) }
            });
        }
    }
    if let (Some(cfg), Some(metrics)) = (&config.access_log, &exporter.access) {
        access_log::spawn(cfg.clone(), metrics.clone(), &ctx.shutdown).map_err(Error::AccessLog)?;
    }
    for l in config.listeners {
        let addr = l.local_addr().map_err(Error::Listen)?;
        let l = tokio::net::TcpListener::from_std(l).map_err(Error::Listen)?;
        tracing::info!(%addr, path = %config.telemetry_path, "serving metrics");
        ctx.shutdown
            .tracker()
            .spawn(admin.clone().serve(l, ctx.shutdown.token()));
    }
    // Ready once serving: readiness must not follow nginx's health, or a pod whose nginx is briefly
    // unhealthy would also lose its exporter's endpoint, and with it the metrics saying why.
    admin.readiness().set(true);
    ctx.shutdown.cancelled().await;
    Ok(())
}

/// How long a scrape may take by default (`--nginx.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_param("module=x&target=http%3A%2F%2F127.0.0.1%3A1%2Fs", "target").as_deref(),
            Some("http://127.0.0.1:1/s")
        );
        assert_eq!(
            query_param("target=unix:/a:/b", "target").as_deref(),
            Some("unix:/a:/b")
        );
        assert_eq!(query_param("x=1", "target"), None);
        assert_eq!(query_param("target=%zz", "target"), None);
    }

    #[tokio::test]
    async fn join_all_keeps_order() {
        let out = join_all(vec![
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                1
            }) as Pin<Box<dyn Future<Output = i32>>>,
            Box::pin(async { 2 }),
        ])
        .await;
        assert_eq!(out, [1, 2]);
    }
}
