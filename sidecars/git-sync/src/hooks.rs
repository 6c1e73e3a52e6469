//! Hooks run after a new commit is published: a program (`--exechook-command`) and an HTTP call
//! (`--webhook-url`). As upstream: asynchronous to the sync loop, retried after a backoff until
//! they succeed (at least once), and only for the latest commit — a newer one replaces a commit
//! whose hook is still failing. With `--one-time` each hook runs once and its result decides the
//! exit code.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{ExecHook, WebHook};
use crate::metrics::Metrics;
use crate::redact::Redactor;

/// A commit to run hooks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The commit.
    pub sha: String,
    /// Its published tree (the exec hook's working directory).
    pub path: PathBuf,
}

/// What a hook does.
#[derive(Debug, Clone)]
pub enum Hook {
    /// Runs a program.
    Exec(ExecHook),
    /// Calls a URL.
    Web(WebHook),
}

impl Hook {
    fn name(&self) -> &'static str {
        match self {
            Hook::Exec(_) => "exechook",
            Hook::Web(_) => "webhook",
        }
    }

    fn backoff(&self) -> Duration {
        match self {
            Hook::Exec(h) => h.backoff,
            Hook::Web(h) => h.backoff,
        }
    }

    async fn run(&self, job: &Job, redactor: &Redactor) -> Result<(), String> {
        match self {
            Hook::Exec(h) => run_exec(h, job, redactor).await,
            Hook::Web(h) => run_web(h, job).await,
        }
    }
}

/// A running hook: send it commits, wait for its results.
#[derive(Debug)]
pub struct Runner {
    name: &'static str,
    jobs: watch::Sender<Option<Job>>,
    results: watch::Receiver<Option<(String, bool)>>,
}

impl Runner {
    /// Starts the hook's task on `tracker`; it stops when `token` is cancelled.
    pub fn spawn(
        hook: Hook,
        one_time: bool,
        metrics: Metrics,
        redactor: Redactor,
        token: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (jobs, mut rx) = watch::channel(None::<Job>);
        let (res_tx, results) = watch::channel(None);
        let name = hook.name();
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    () = token.cancelled() => return,
                }
                let Some(job) = rx.borrow_and_update().clone() else {
                    continue;
                };
                loop {
                    let res = tokio::select! {
                        r = hook.run(&job, &redactor) => r,
                        () = token.cancelled() => return,
                    };
                    metrics.hook(hook.name(), res.is_ok());
                    match res {
                        Ok(()) => {
                            tracing::info!(hook = hook.name(), sha = %job.sha, "hook succeeded");
                            let _ = res_tx.send(Some((job.sha.clone(), true)));
                            break;
                        }
                        Err(e) => {
                            let e = redactor.redact(&e);
                            tracing::warn!(hook = hook.name(), sha = %job.sha, error = %e, "hook failed");
                            if one_time {
                                let _ = res_tx.send(Some((job.sha.clone(), false)));
                                break;
                            }
                        }
                    }
                    tokio::select! {
                        () = tokio::time::sleep(hook.backoff()) => {},
                        () = token.cancelled() => return,
                    }
                    // A newer commit replaces this one: its hook runs instead.
                    if rx.has_changed().unwrap_or(false) {
                        break;
                    }
                }
            }
        });
        Self {
            name,
            jobs,
            results,
        }
    }

    /// Asks for the hook to run for `job` (replacing any pending commit).
    pub fn send(&self, job: Job) {
        self.jobs.send_replace(Some(job));
    }

    /// Waits until the hook has finished for `sha`; `true` when it succeeded.
    pub async fn wait_for(&mut self, sha: &str) -> bool {
        loop {
            if let Some((s, ok)) = self.results.borrow_and_update().clone()
                && s == sha
            {
                return ok;
            }
            if self.results.changed().await.is_err() {
                return false;
            }
        }
    }

    /// The hook's name, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

async fn run_exec(h: &ExecHook, job: &Job, redactor: &Redactor) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(&h.command);
    cmd.current_dir(&job.path)
        .env("GITSYNC_HASH", &job.sha)
        .env("GIT_SYNC_HASH", &job.sha)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let child = cmd.output();
    let out = match tokio::time::timeout(h.timeout, child).await {
        Err(_) => return Err(format!("timed out after {:?}", h.timeout)),
        Ok(Err(e)) => return Err(format!("cannot run {}: {e}", h.command.display())),
        Ok(Ok(o)) => o,
    };
    let stdout = redactor.redact(String::from_utf8_lossy(&out.stdout).trim());
    let stderr = redactor.redact(String::from_utf8_lossy(&out.stderr).trim());
    if out.status.success() {
        tracing::debug!(%stdout, %stderr, "exechook output");
        Ok(())
    } else {
        Err(format!(
            "{} exited with {}: stdout: {stdout:?} stderr: {stderr:?}",
            h.command.display(),
            out.status
        ))
    }
}

/// Why one HTTP call (a webhook, `--askpass-url`, the GitHub API) failed; the cause, where there
/// is one, is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// An https:// URL on a host without CA certificates.
    #[error("no CA certificates found for an https:// URL")]
    NoRoots,
    /// The TLS client could not be set up (not expected with ring).
    #[error("TLS setup: {0}")]
    TlsSetup(#[source] rustls::Error),
    /// The request cannot be built from the URL.
    #[error("bad URL: {0}")]
    BadUrl(#[source] hyper::http::Error),
    /// Connecting or the exchange failed.
    #[error("request failed: {0}")]
    Send(#[source] hyper_util::client::legacy::Error),
    /// The answer could not be read, or was too long.
    #[error("reading the answer failed: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// TLS toward https:// webhooks: the system's roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` honoured),
/// as Go's net/http in upstream's image uses them.
fn tls_config() -> Result<rustls::ClientConfig, HttpError> {
    let (roots, added) = podmates_tls::system_roots();
    if added == 0 {
        return Err(HttpError::NoRoots);
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(podmates_tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(HttpError::TlsSetup)?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// An HTTP/1 client for `url`: TLS toward https:// with the system roots.
pub(crate) type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// A client for one call to `url` (webhooks, `--askpass-url`).
pub(crate) fn http_client(url: &str) -> Result<HttpClient, HttpError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new();
    let connector = if url.starts_with("https://") {
        connector.with_tls_config(tls_config()?)
    } else {
        // Plain http:// never reads the roots.
        connector.with_tls_config(
            rustls::ClientConfig::builder_with_provider(podmates_tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(HttpError::TlsSetup)?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    };
    Ok(Client::builder(TokioExecutor::new())
        .build::<_, Empty<Bytes>>(connector.https_or_http().enable_http1().build()))
}

async fn run_web(h: &WebHook, job: &Job) -> Result<(), String> {
    let client = http_client(&h.url).map_err(|e| e.to_string())?;
    let req = Request::builder()
        .method(h.method.as_str())
        .uri(&h.url)
        .header("Gitsync-Hash", &job.sha)
        .body(Empty::new())
        .map_err(|e| format!("bad webhook request: {e}"))?;
    if h.success_status == 0 {
        // Fire and forget, as upstream: the call is made, its outcome not awaited.
        tokio::spawn(async move {
            let _ = client.request(req).await;
        });
        return Ok(());
    }
    let resp = tokio::time::timeout(h.timeout, client.request(req))
        .await
        .map_err(|_| format!("no answer within {:?}", h.timeout))?
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status().as_u16();
    if status == h.success_status {
        Ok(())
    } else {
        Err(format!(
            "got status {status}, want {} (--webhook-success-status)",
            h.success_status
        ))
    }
}
