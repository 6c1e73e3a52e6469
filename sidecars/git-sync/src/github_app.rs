//! GitHub App authentication (`--github-app-*`), as upstream does it: a JWT signed with the app's
//! private key (RS256, issuer the client ID or the application ID, ten minutes) is exchanged at
//! `<base>/app/installations/<id>/access_tokens` for an installation token, which is then the
//! password of `x-access-token` for https. Tokens last an hour; a new one is asked for after 50
//! minutes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;

use crate::hooks::HttpError;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

/// How the app is named in the JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// `--github-app-client-id`.
    ClientId(String),
    /// `--github-app-application-id`.
    AppId(u64),
}

/// `--github-app-*` and `--github-base-url`.
#[derive(Clone)]
pub struct GitHubApp {
    /// The API's base URL, `https://api.github.com/` by default.
    pub base_url: String,
    /// The JWT's issuer.
    pub issuer: Issuer,
    /// The installation whose token is asked for.
    pub installation_id: u64,
    /// The app's private key, PEM (PKCS#1 or PKCS#8).
    pub key: KeySource,
}

/// Where the private key is.
#[derive(Clone)]
pub enum KeySource {
    /// `GITSYNC_GITHUB_APP_PRIVATE_KEY`.
    Inline(String),
    /// `--github-app-private-key-file`, read at every token exchange, so a rotated key applies.
    File(std::path::PathBuf),
}

/// Why no installation token could be had; the cause, where there is one, is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum GitHubAppError {
    /// The key file cannot be read.
    #[error("--github-app-private-key-file {}: {source}", path.display())]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key is not PEM.
    #[error("the private key is not PEM: {0}")]
    NotPem(#[source] rustls::pki_types::pem::Error),
    /// The key is PEM, but not of an RSA key.
    #[error("the private key is not an RSA key")]
    NotRsa,
    /// ring refuses the RSA key (ring's errors, without its `std` feature, are not
    /// `std::error::Error`, so the reason is kept as a field).
    #[error("the private key is not a usable RSA key: {0}")]
    BadKey(ring::error::KeyRejected),
    /// Signing failed (ring says no more).
    #[error("cannot sign the JWT")]
    Sign,
    /// No HTTP client for the API's URL.
    #[error("{0}")]
    Client(#[source] crate::hooks::HttpError),
    /// The API's URL cannot make a request.
    #[error("bad --github-base-url: {0}")]
    BaseUrl(#[source] hyper::http::Error),
    /// The call to the API failed.
    #[error("{url}: {source}")]
    Call {
        /// The token endpoint.
        url: String,
        /// Why.
        #[source]
        source: crate::hooks::HttpError,
    },
    /// The API answered with another status than 201.
    #[error("{url}: the installation token endpoint answered {status}: {body}")]
    Status {
        /// The token endpoint.
        url: String,
        /// Its status.
        status: hyper::StatusCode,
        /// The start of its answer.
        body: String,
    },
    /// The answer is not JSON.
    #[error("{url}: the answer is not JSON: {source}")]
    NotJson {
        /// The token endpoint.
        url: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The answer has no token.
    #[error("{0}: the answer has no `token`")]
    NoToken(String),
}

impl KeySource {
    fn pem(&self) -> Result<String, GitHubAppError> {
        match self {
            Self::Inline(k) => Ok(k.clone()),
            Self::File(f) => std::fs::read_to_string(f).map_err(|source| GitHubAppError::KeyFile {
                path: f.clone(),
                source,
            }),
        }
    }
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp")
            .field("base_url", &self.base_url)
            .field("issuer", &self.issuer)
            .field("installation_id", &self.installation_id)
            .field(
                "key",
                &match &self.key {
                    KeySource::Inline(_) => "inline (REDACTED)".to_owned(),
                    KeySource::File(f) => f.display().to_string(),
                },
            )
            .finish()
    }
}

/// The user name git uses with an installation token.
pub const TOKEN_USER: &str = "x-access-token";

/// How long a token is used before a new one is asked for (GitHub's last an hour).
const TOKEN_REUSE: Duration = Duration::from_secs(50 * 60);

/// Loads the RSA key, checking it can sign.
fn key_pair(pem: &str) -> Result<ring::rsa::KeyPair, GitHubAppError> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(GitHubAppError::NotPem)?;
    match &der {
        PrivateKeyDer::Pkcs1(k) => ring::rsa::KeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => ring::rsa::KeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err(GitHubAppError::NotRsa),
    }
    .map_err(GitHubAppError::BadKey)
}

/// The app's JWT at `now` (Unix seconds).
pub fn jwt(app: &GitHubApp, now: u64) -> Result<String, GitHubAppError> {
    let key = key_pair(&app.key.pem()?)?;
    let iss = match &app.issuer {
        Issuer::ClientId(c) => serde_json::Value::from(c.as_str()),
        Issuer::AppId(id) => serde_json::Value::from(id.to_string()),
    };
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({ "iss": iss, "iat": now, "exp": now + 600 });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| GitHubAppError::Sign)?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// Installation tokens, asked for when none is fresh.
#[derive(Debug, Default)]
pub struct Tokens {
    current: Option<(String, Instant)>,
}

impl Tokens {
    /// A token young enough to use, or a new one from the API.
    pub async fn get(
        &mut self,
        app: &GitHubApp,
        timeout: Duration,
    ) -> Result<String, GitHubAppError> {
        if let Some((t, at)) = &self.current
            && at.elapsed() < TOKEN_REUSE
        {
            return Ok(t.clone());
        }
        let token = exchange(app, timeout).await?;
        self.current = Some((token.clone(), Instant::now()));
        Ok(token)
    }
}

/// The JWT exchanged for an installation token.
async fn exchange(app: &GitHubApp, timeout: Duration) -> Result<String, GitHubAppError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let jwt = jwt(app, now)?;
    let url = format!(
        "{}/app/installations/{}/access_tokens",
        app.base_url.trim_end_matches('/'),
        app.installation_id
    );
    let client = crate::hooks::http_client(&url).map_err(GitHubAppError::Client)?;
    let req = Request::post(&url)
        .header("Authorization", format!("Bearer {jwt}"))
        .header("Accept", "application/vnd.github+json")
        .header("User-Agent", "podmates-git-sync")
        .body(Empty::<Bytes>::new())
        .map_err(GitHubAppError::BaseUrl)?;
    let call = |source| GitHubAppError::Call {
        url: url.clone(),
        source,
    };
    let answer = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| call(HttpError::Send(e)))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|e| call(HttpError::Body(e)))?
            .to_bytes();
        if status != hyper::StatusCode::CREATED {
            return Err(GitHubAppError::Status {
                url: url.clone(),
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|source| GitHubAppError::NotJson {
                url: url.clone(),
                source,
            })?;
        v.get("token")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| GitHubAppError::NoToken(url.clone()))
    };
    tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| call(HttpError::Timeout(timeout)))?
}
