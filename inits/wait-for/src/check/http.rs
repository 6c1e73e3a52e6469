//! `http://` and `https://`: one request on a fresh connection; the status (2xx unless told
//! otherwise), body and headers must meet the expectations. Redirects are not followed: a 3xx
//! counts by its own status.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{AUTHORIZATION, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use super::tcp;

/// The most of a body read to match it: a health page, bounded memory.
const MAX_BODY: usize = 1024 * 1024;

/// Which statuses count as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<(u16, u16)>);

impl Default for StatusSet {
    fn default() -> Self {
        Self(vec![(200, 299)])
    }
}

/// An `--expect-status` list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// `Nxx` with N not 1 to 5.
    #[error("`{0}`: a class is 1xx to 5xx")]
    Class(String),
    /// `a-b` with a above b.
    #[error("`{0}`: empty range")]
    EmptyRange(String),
    /// Not a number from 100 to 599.
    #[error("`{0}` is not an HTTP status (100 to 599)")]
    NotAStatus(String),
    /// Nothing in the list.
    #[error("no status given")]
    Empty,
}

impl StatusSet {
    /// Parses `200`, `200,204`, `2xx,301`, `200-399`.
    pub fn parse(s: &str) -> Result<Self, StatusError> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let range =
                if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                    let c: u16 = class
                        .parse()
                        .ok()
                        .filter(|c| (1..=5).contains(c))
                        .ok_or_else(|| StatusError::Class(part.to_owned()))?;
                    (c * 100, c * 100 + 99)
                } else if let Some((a, b)) = part.split_once('-') {
                    (code(a)?, code(b)?)
                } else {
                    let c = code(part)?;
                    (c, c)
                };
            if range.0 > range.1 {
                return Err(StatusError::EmptyRange(part.to_owned()));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err(StatusError::Empty);
        }
        Ok(Self(ranges))
    }

    fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&status))
    }
}

fn code(s: &str) -> Result<u16, StatusError> {
    s.trim()
        .parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| StatusError::NotAStatus(s.to_owned()))
}

/// An expected response header: present, and matching a pattern when one is given.
#[derive(Debug, Clone)]
pub struct HeaderExpectation {
    /// The header's name.
    pub name: HeaderName,
    /// A regex its value must match.
    pub value: Option<regex_lite::Regex>,
}

/// HTTP request settings and expectations (the same for every http target).
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// Request method (GET).
    pub method: Method,
    /// Statuses that count as ready.
    pub status: StatusSet,
    /// A string the body must contain.
    pub body_contains: Option<String>,
    /// A regex the body must match.
    pub body_regex: Option<regex_lite::Regex>,
    /// Response headers that must be there.
    pub headers: Vec<HeaderExpectation>,
    /// Headers sent with the request.
    pub request_headers: Vec<(HeaderName, HeaderValue)>,
}

/// One attempt.
pub async fn check(
    host: &str,
    port: u16,
    path: &str,
    basic_auth: Option<&(String, String)>,
    tls: Option<Arc<rustls::ClientConfig>>,
    settings: &HttpSettings,
) -> Result<String, String> {
    let (stream, addr) = tcp::connect(host, port).await?;
    let mut req = Request::builder()
        .method(settings.method.clone())
        .uri(path)
        .header(USER_AGENT, concat!("wait-for/", env!("CARGO_PKG_VERSION")));
    let default_port = if tls.is_some() { 443 } else { 80 };
    let host_header = match (host.contains(':'), port == default_port) {
        (true, true) => format!("[{host}]"),
        (true, false) => format!("[{host}]:{port}"),
        (false, true) => host.to_owned(),
        (false, false) => format!("{host}:{port}"),
    };
    req = req.header(HOST, host_header);
    if let Some((u, p)) = basic_auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header(AUTHORIZATION, format!("Basic {token}"));
    }
    for (k, v) in &settings.request_headers {
        req = req.header(k, v);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("building the request: {e}"))?;
    let resp = match tls {
        Some(config) => {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| format!("{addr}: TLS handshake: {e}"))?;
            send(TokioIo::new(tls), req).await
        }
        None => send(TokioIo::new(stream), req).await,
    }
    .map_err(|e| format!("{addr}: {e}"))?;
    let (resp, _conn) = resp;
    let status = resp.status();
    if !settings.status.contains(status.as_u16()) {
        return Err(format!("{addr}: status {status}"));
    }
    for h in &settings.headers {
        let Some(v) = resp.headers().get(&h.name) else {
            return Err(format!(
                "{addr}: status {status}, but no `{}` header",
                h.name
            ));
        };
        if let Some(re) = &h.value {
            let v = String::from_utf8_lossy(v.as_bytes());
            if !re.is_match(&v) {
                return Err(format!(
                    "{addr}: header `{}: {v}` does not match `{}`",
                    h.name,
                    re.as_str()
                ));
            }
        }
    }
    if settings.body_contains.is_none() && settings.body_regex.is_none() {
        return Ok(format!("{addr}: status {status}"));
    }
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("{addr}: reading the body: {e}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    if let Some(needle) = &settings.body_contains
        && !text.contains(needle.as_str())
    {
        return Err(format!(
            "{addr}: status {status}, but the body ({} bytes) does not contain `{needle}`",
            body.len()
        ));
    }
    if let Some(re) = &settings.body_regex
        && !re.is_match(&text)
    {
        return Err(format!(
            "{addr}: status {status}, but the body ({} bytes) does not match `{}`",
            body.len(),
            re.as_str()
        ));
    }
    Ok(format!("{addr}: status {status}, body matches"))
}

/// Aborts the connection task when the attempt ends, however it ends (done, failed, or dropped
/// at the per-attempt timeout): a server that never closes must not keep a task per attempt.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send<I>(
    io: I,
    req: Request<Empty<Bytes>>,
) -> Result<(hyper::Response<hyper::body::Incoming>, AbortOnDrop), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let guard = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    Ok((resp, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets() {
        let s = StatusSet::parse("200,3xx, 404-410").unwrap();
        assert!(s.contains(200) && s.contains(302) && s.contains(405));
        assert!(!s.contains(201) && !s.contains(500));
        assert!(StatusSet::default().contains(204));
        assert!(!StatusSet::default().contains(301));
        assert!(
            StatusSet::parse("6xx")
                .unwrap_err()
                .to_string()
                .contains("6xx")
        );
        assert!(
            StatusSet::parse("abc")
                .unwrap_err()
                .to_string()
                .contains("abc")
        );
        assert!(
            StatusSet::parse("300-200")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(StatusSet::parse("").is_err());
    }
}
