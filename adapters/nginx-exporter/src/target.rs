//! One scrape target: its URI (`http://`, `https://` or `unix:<socket>:<path>`), its own HTTP
//! client with a pool of kept-alive connections, and the headers sent to it.
//!
//! Each target has a client of its own, so a unix socket, a TLS connection or an `Authorization`
//! header meant for one target is never used for another (the Go exporter shares one transport,
//! whose dialer the last unix target overwrites).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{AUTHORIZATION, HOST, HeaderMap, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::UnixStream;

use crate::stub_status::{self, StubStatus};

/// A stub_status page is a few hundred bytes; anything much larger is not one.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Idle pooled connections are dropped before nginx's default `keepalive_timeout` (75s) would close
/// them, so a scrape never races nginx closing the connection it picked.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Where a target is, parsed from `--nginx.scrape-uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `http://` or `https://`; `uri` has the userinfo removed.
    Tcp {
        /// The request URI.
        uri: Uri,
        /// Whether the scheme is https.
        tls: bool,
        /// `user:password@` from the URI, sent as basic auth.
        userinfo: Option<String>,
    },
    /// `unix:<socket path>:<request path>`.
    Unix {
        /// The socket to connect to.
        socket: PathBuf,
        /// The request path, `/` when left out.
        path: String,
    },
}

/// A scrape URI that cannot be used; the message says why (no error lies behind it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadUri(pub String);

impl Location {
    /// Parses `http://host:port/path`, `https://...` or `unix:/path/to/socket:/request/path`.
    pub fn parse(s: &str) -> Result<Self, BadUri> {
        if let Some(rest) = s.strip_prefix("unix:") {
            let (socket, path) = match rest.split_once(':') {
                Some((sock, p)) => (sock, p),
                None => (rest, ""),
            };
            if socket.is_empty() {
                return Err(BadUri(format!(
                    "`{s}`: no socket path (use unix:/path/to/socket:/stub_status)"
                )));
            }
            let path = if path.is_empty() {
                "/".to_owned()
            } else if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            // Checked here so a bad path is a config error, not a failing scrape.
            format!("http://localhost{path}")
                .parse::<Uri>()
                .map_err(|e| BadUri(format!("`{s}`: bad request path ({e})")))?;
            return Ok(Self::Unix {
                socket: PathBuf::from(socket),
                path,
            });
        }
        let uri: Uri = s
            .parse()
            .map_err(|e| BadUri(format!("`{s}` is not a URI ({e})")))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(BadUri(format!(
                    "`{s}`: the scheme must be http://, https:// or unix:"
                )));
            }
        };
        let Some(authority) = uri.authority() else {
            return Err(BadUri(format!("`{s}`: no host")));
        };
        let (userinfo, hostport) = match authority.as_str().rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, authority.as_str()),
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let scheme = if tls { "https" } else { "http" };
        let clean: Uri = format!("{scheme}://{hostport}{path}")
            .parse()
            .map_err(|e| BadUri(format!("`{s}`: {e}")))?;
        Ok(Self::Tcp {
            uri: clean,
            tls,
            userinfo,
        })
    }
}

/// Headers and TLS settings that apply to every target (from the command line).
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Per-scrape timeout (`--nginx.timeout`).
    pub timeout: Duration,
    /// TLS for https targets, built on first use: an exporter without https targets never runs
    /// the TLS setup, which keeps its code out of memory.
    pub tls: Arc<std::sync::OnceLock<Arc<rustls::ClientConfig>>>,
    /// The settings `tls` is built from.
    pub tls_settings: crate::tls::TlsSettings,
    /// `Host` header sent instead of the URI's host (`--nginx.host-header`).
    pub host_header: Option<HeaderValue>,
    /// `Authorization` sent to targets without userinfo in their URI (basic or bearer).
    pub authorization: Option<HeaderValue>,
}

/// Why one scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No answer within `--nginx.timeout`.
    #[error("no answer within {0:?} (--nginx.timeout)")]
    Timeout(Duration),
    /// Connecting or the HTTP exchange failed (the whole chain of causes, as hyper nests them).
    #[error("request failed: {0}")]
    Http(String),
    /// nginx answered with another status than 200.
    #[error("expected a 200 response, got {0}")]
    Status(StatusCode),
    /// The body could not be read or was too large.
    #[error("reading the body failed: {0}")]
    Body(String),
    /// The body is not a stub_status page.
    #[error(transparent)]
    Parse(#[from] stub_status::ParseError),
}

impl ScrapeError {
    /// A short label value for the error counter.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Http(_) => "connect",
            Self::Status(_) => "status",
            Self::Body(_) => "body",
            Self::Parse(_) => "parse",
        }
    }
}

/// One target's client: its own connection pool and headers.
pub struct Target {
    /// The URI as given on the command line (the `addr` label).
    pub addr: String,
    transport: Transport,
    uri: Uri,
    headers: HeaderMap,
    timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

enum Transport {
    Http(Client<HttpConnector, Empty<Bytes>>),
    Https(Client<HttpsConnector<HttpConnector>, Empty<Bytes>>),
    Unix(Client<UnixConnector, Empty<Bytes>>),
}

fn client_builder() -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(POOL_IDLE).pool_timer(TokioTimer::new());
    b
}

fn basic(userinfo: &str) -> Option<HeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(userinfo);
    HeaderValue::from_str(&format!("Basic {encoded}")).ok()
}

impl Target {
    /// Builds the client for `addr`. Creating it opens no connection: nginx may still be down.
    pub fn new(addr: &str, settings: &ClientSettings) -> Result<Self, BadUri> {
        let location = Location::parse(addr)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!(
                "podmates-nginx-exporter/",
                env!("CARGO_PKG_VERSION")
            )),
        );
        if let Some(h) = &settings.host_header {
            headers.insert(HOST, h.clone());
        }
        let (transport, uri) = match location {
            Location::Tcp { uri, tls, userinfo } => {
                // Credentials in the URI belong to this target alone and win over the global ones.
                let auth = match userinfo {
                    Some(u) => Some(basic(&u).ok_or_else(|| {
                        BadUri(format!(
                            "`{addr}`: the userinfo is not a valid header value"
                        ))
                    })?),
                    None => settings.authorization.clone(),
                };
                if let Some(a) = auth {
                    headers.insert(AUTHORIZATION, a);
                }
                let transport = if tls {
                    let config = match settings.tls.get() {
                        Some(c) => c.clone(),
                        None => {
                            let c = crate::tls::client_config(&settings.tls_settings)
                                .map_err(|e| BadUri(format!("`{addr}`: {e}")))?;
                            settings.tls.get_or_init(|| c).clone()
                        }
                    };
                    let https = hyper_rustls::HttpsConnectorBuilder::new()
                        .with_tls_config((*config).clone())
                        .https_only()
                        .enable_http1()
                        .build();
                    Transport::Https(client_builder().build(https))
                } else {
                    let mut http = HttpConnector::new();
                    http.set_nodelay(true);
                    Transport::Http(client_builder().build(http))
                };
                (transport, uri)
            }
            Location::Unix { socket, path } => {
                if let Some(a) = &settings.authorization {
                    headers.insert(AUTHORIZATION, a.clone());
                }
                let uri: Uri = format!("http://localhost{path}")
                    .parse()
                    .map_err(|e| BadUri(format!("`{addr}`: {e}")))?;
                let connector = UnixConnector(Arc::from(socket.as_path()));
                (Transport::Unix(client_builder().build(connector)), uri)
            }
        };
        Ok(Self {
            addr: addr.to_owned(),
            transport,
            uri,
            headers,
            timeout: settings.timeout,
        })
    }

    /// Fetches and parses the stub_status page once.
    pub async fn scrape(&self) -> Result<StubStatus, ScrapeError> {
        match tokio::time::timeout(self.timeout, self.fetch()).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout(self.timeout)),
        }
    }

    async fn fetch(&self) -> Result<StubStatus, ScrapeError> {
        let mut req = Request::new(Empty::<Bytes>::new());
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        let resp = match &self.transport {
            Transport::Http(c) => c.request(req).await,
            Transport::Https(c) => c.request(req).await,
            Transport::Unix(c) => c.request(req).await,
        }
        .map_err(|e| ScrapeError::Http(error_chain(&e)))?;
        if resp.status() != StatusCode::OK {
            return Err(ScrapeError::Status(resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| ScrapeError::Body(e.to_string()))?
            .to_bytes();
        let text = std::str::from_utf8(&body)
            .map_err(|_| ScrapeError::Body("the body is not UTF-8 text".to_owned()))?;
        stub_status::parse(text).map_err(ScrapeError::Parse)
    }
}

/// hyper-util's errors hide the cause (`client error (Connect)`); the chain says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Connects every request of one client to one unix socket, whatever the URI's host.
#[derive(Clone)]
struct UnixConnector(Arc<Path>);

impl tower_service::Service<Uri> for UnixConnector {
    type Response = UnixConn;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<UnixConn>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move {
            let s = UnixStream::connect(&*path).await.map_err(|e| {
                io::Error::new(e.kind(), format!("unix socket {}: {e}", path.display()))
            })?;
            Ok(UnixConn(TokioIo::new(s)))
        })
    }
}

/// A unix stream as hyper's client wants it.
struct UnixConn(TokioIo<UnixStream>);

impl Connection for UnixConn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for UnixConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for UnixConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            Location::parse("http://127.0.0.1:8080/stub_status").unwrap(),
            Location::Tcp {
                uri: "http://127.0.0.1:8080/stub_status".parse().unwrap(),
                tls: false,
                userinfo: None
            }
        );
        assert_eq!(
            Location::parse("https://u:p@nginx.local/s?x=1").unwrap(),
            Location::Tcp {
                uri: "https://nginx.local/s?x=1".parse().unwrap(),
                tls: true,
                userinfo: Some("u:p".to_owned())
            }
        );
        assert_eq!(
            Location::parse("unix:/run/nginx.sock:/stub_status").unwrap(),
            Location::Unix {
                socket: "/run/nginx.sock".into(),
                path: "/stub_status".to_owned()
            }
        );
        assert_eq!(
            Location::parse("unix:/run/nginx.sock").unwrap(),
            Location::Unix {
                socket: "/run/nginx.sock".into(),
                path: "/".to_owned()
            }
        );
    }

    #[test]
    fn rejects_bad_uris_with_reason() {
        assert!(
            Location::parse("ftp://x/")
                .unwrap_err()
                .0
                .contains("scheme")
        );
        assert!(
            Location::parse("unix::/x")
                .unwrap_err()
                .0
                .contains("socket")
        );
        assert!(Location::parse("127.0.0.1:8080").is_err());
    }
}
