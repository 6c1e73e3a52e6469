//! git-sync keeps a checkout of a git repository in a shared volume in step with a branch, tag or
//! commit: as an init container (`--one-time`) or as a sidecar next to a web server or an app.
//! It is a drop-in for kubernetes/git-sync v4 (same flags, on-disk layout, metrics and exit codes)
//! that runs git in-process, so its image needs neither a git nor an ssh binary.
//!
//! - [`config`]: the validated configuration.
//! - [`git`]: fetch, checkout and publish with libgit2.
//! - [`publish`]: atomic, crash-safe symlink and directory swaps.
//! - [`hooks`]: the exec hook and the webhook.
//! - [`metrics`]: upstream's metric names plus staleness and commit information.
//! - [`known_hosts`]: ssh host-key checking without OpenSSH.
//! - [`redact`]: keeps credentials out of every message.
//!
//! [`run`] is the sync loop.

pub mod askpass;
pub mod config;
pub mod git;
pub mod github_app;
pub mod hooks;
pub mod known_hosts;
pub mod metrics;
pub mod publish;
pub mod redact;
pub mod tree_check;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::{Method, StatusCode};
use podmates_runtime::Context;
use podmates_runtime::admin::text;
use tokio::sync::Notify;

pub use config::Config;
use git::{Abort, Settings, SyncError, Syncer};
use hooks::{Hook, Job, Runner};
use metrics::Metrics;
use redact::Redactor;

/// Why git-sync stopped with a failure (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--max-failures` consecutive syncs failed.
    #[error("too many failures ({count} in a row, --max-failures={max}), aborting: {last}")]
    TooManyFailures {
        /// Failures in a row.
        count: u64,
        /// The configured limit.
        max: i64,
        /// The last error, redacted.
        last: String,
    },
    /// A hook failed in `--one-time` mode.
    #[error("{0} failed; exiting with an error (--one-time)")]
    HookFailed(&'static str),
    /// The sync thread died.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Unix time now, in seconds.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Runs git-sync until shutdown, or until one sync is done with `--one-time`.
pub async fn run(config: Config, ctx: Context) -> Result<(), Error> {
    let metrics = ctx.admin.with_registry(Metrics::register);
    let redactor = Redactor::new();
    let syncer = Arc::new(Syncer::new(
        Settings {
            repo: config.repo.clone(),
            git_ref: config.git_ref.clone(),
            depth: config.depth,
            root: config.root.clone(),
            link: config.link.clone(),
            auth: config.auth.clone(),
            submodules: config.submodules,
            group_write: config.group_write,
            materialize: config.materialize,
            git_gc: config.git_gc,
        },
        redactor.clone(),
    ));
    tracing::info!(
        repo = %redact::redact_url_passwords(&config.repo),
        git_ref = %config.git_ref,
        root = %config.root.display(),
        link = %config.link.display(),
        depth = config.depth,
        period = ?config.period,
        "syncing"
    );

    // Milliseconds since the epoch of the last success; 0 before the first.
    let last_success = Arc::new(AtomicU64::new(0));
    let synced_once = Arc::new(AtomicBool::new(false));
    if let Some(stale) = config.stale_after {
        let last = last_success.clone();
        ctx.admin.add_ready_check(Arc::new(move || {
            let ms = last.load(Ordering::Acquire);
            let age = Duration::from_millis(
                u64::try_from(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_millis(),
                )
                .unwrap_or(u64::MAX)
                .saturating_sub(ms),
            );
            if age > stale {
                Err(format!(
                    "last successful sync {:.0}s ago (--stale-after {stale:?})",
                    age.as_secs_f64()
                ))
            } else {
                Ok(())
            }
        }));
    }
    if config.http_root_route {
        // Upstream's --http-bind endpoint: 503 until the first sync, then 200 for good.
        let once = synced_once.clone();
        ctx.admin.route(Method::GET, "/", move |_req| {
            let ok = once.load(Ordering::Acquire);
            async move {
                if ok {
                    text(StatusCode::OK, "ok\n")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not synced yet\n")
                }
            }
        });
    }

    let trigger = Arc::new(Notify::new());
    if let Some(token_file) = config.sync_token_file.clone() {
        let trigger = trigger.clone();
        ctx.admin.route(Method::POST, "/sync", move |req| {
            let allowed = sync_request_allowed(&req, &token_file);
            let trigger = trigger.clone();
            async move {
                match allowed {
                    Ok(()) => {
                        trigger.notify_one();
                        text(StatusCode::ACCEPTED, "sync requested\n")
                    }
                    Err(status) => text(status, "unauthorized\n"),
                }
            }
        });
    }
    if let Some(sig) = config.sync_on_signal {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::from_raw(sig)) {
            Ok(mut s) => {
                let trigger = trigger.clone();
                let token = ctx.shutdown.token();
                ctx.shutdown.spawn(async move {
                    loop {
                        tokio::select! {
                            r = s.recv() => if r.is_none() { return },
                            () = token.cancelled() => return,
                        }
                        tracing::info!(signal = sig, "signal received: syncing now");
                        trigger.notify_one();
                    }
                });
            }
            Err(e) => tracing::error!(signal = sig, error = %e, "cannot handle --sync-on-signal"),
        }
    }

    let mut runners: Vec<Runner> = Vec::new();
    for hook in [
        config.exechook.clone().map(Hook::Exec),
        config.webhook.clone().map(Hook::Web),
    ]
    .into_iter()
    .flatten()
    {
        runners.push(Runner::spawn(
            hook,
            config.one_time,
            metrics.clone(),
            redactor.clone(),
            ctx.shutdown.token(),
            ctx.shutdown.tracker(),
        ));
    }

    let abort_flag = Arc::new(AtomicBool::new(false));
    let mut current: Option<String> = None;
    let mut need_prepare = true;
    let mut fail_count: u64 = 0;
    let mut first_loop = true;
    // Replaced worktrees and when they were replaced, kept for --stale-worktree-timeout.
    let mut retired: HashMap<String, Instant> = HashMap::new();

    let mut app_tokens = github_app::Tokens::default();
    loop {
        let started = Instant::now();
        let abort = Abort::new(abort_flag.clone(), started + config.sync_timeout);
        // --askpass-url: fresh credentials before every sync, as upstream asks for them; with a
        // GitHub App, an installation token (a new one when the last is 50 minutes old).
        let mut askpass_failed = None;
        if let Some(app) = &config.github_app {
            match app_tokens.get(app, config.sync_timeout).await {
                Ok(token) => {
                    redactor.add(&token);
                    syncer.set_askpass(Some(askpass::UserPass {
                        username: github_app::TOKEN_USER.to_owned(),
                        password: token,
                    }));
                    metrics.github_app_token(true);
                }
                Err(e) => {
                    metrics.github_app_token(false);
                    askpass_failed = Some(format!("GitHub App: {e}"));
                }
            }
        }
        if let Some(url) = &config.askpass_url {
            match askpass::fetch(url, config.sync_timeout).await {
                Ok(up) => {
                    redactor.add(&up.password);
                    syncer.set_askpass(Some(up));
                    metrics.askpass(true);
                }
                Err(e) => {
                    metrics.askpass(false);
                    askpass_failed = Some(format!("--askpass-url: {e}"));
                }
            }
        }
        let job = {
            let syncer = syncer.clone();
            let cur = current.clone();
            let prepare = need_prepare;
            tokio::task::spawn_blocking(move || {
                if let Some(e) = askpass_failed {
                    return Err(SyncError::Auth(e));
                }
                let cur = if prepare { syncer.prepare()? } else { cur };
                let res = syncer.sync(cur.as_deref(), &abort);
                res.map(|s| (s, cur))
            })
        };
        tokio::pin!(job);
        let res = tokio::select! {
            r = &mut job => r,
            () = ctx.shutdown.cancelled() => {
                // libgit2 sees the flag in its next progress callback and stops the transfer.
                abort_flag.store(true, Ordering::Relaxed);
                let _ = job.await;
                tracing::info!("sync interrupted by shutdown");
                return Ok(());
            }
        };
        let res = res.map_err(|e| Error::Internal(e.to_string()))?;
        let elapsed = started.elapsed().as_secs_f64();
        match res {
            Ok((synced, prepared_current)) => {
                if need_prepare {
                    current = prepared_current;
                    need_prepare = false;
                }
                if let Some(d) = synced.fetch {
                    metrics.fetch_count.inc();
                    metrics.fetch_duration.observe(d.as_secs_f64());
                }
                metrics.sync(if synced.changed { "success" } else { "noop" }, elapsed);
                metrics.last_success.set(unix_now());
                metrics.consecutive_failures.set(0);
                last_success.store(
                    u64::try_from(
                        SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default()
                            .as_millis(),
                    )
                    .unwrap_or(u64::MAX),
                    Ordering::Release,
                );
                synced_once.store(true, Ordering::Release);
                ctx.admin.readiness().set(true);
                if fail_count > 0 {
                    tracing::info!(failures = fail_count, "sync recovered");
                    fail_count = 0;
                }
                let previous = current.clone();
                if synced.changed {
                    tracing::info!(sha = %synced.sha, seconds = elapsed, "published new commit");
                    metrics.publish(&config.git_ref, previous.as_deref(), &synced.sha);
                    if let Some(p) = previous.filter(|p| *p != synced.sha) {
                        // The directory's mtime records when it was replaced, so that a
                        // restarted git-sync (`--one-time` runs, a container restart) still keeps
                        // it for --stale-worktree-timeout.
                        mark_replaced(&config.root.join(".worktrees").join(&p));
                        retired.insert(p, Instant::now());
                    }
                    current = Some(synced.sha.clone());
                } else {
                    if first_loop {
                        metrics.publish(&config.git_ref, None, &synced.sha);
                    }
                    tracing::debug!(sha = %synced.sha, "no change");
                }
                if first_loop && !config.stale_worktree_timeout.is_zero() {
                    retired.extend(replaced_earlier(
                        &config.root.join(".worktrees"),
                        current.as_deref(),
                        config.stale_worktree_timeout,
                    ));
                }
                if synced.changed || first_loop {
                    clean_old_worktrees(
                        &syncer,
                        &current,
                        &mut retired,
                        config.stale_worktree_timeout,
                    )
                    .await;
                    if let Some(t) = &config.touch_file
                        && let Err(e) = touch(t)
                    {
                        tracing::warn!(path = %t.display(), error = %e, "cannot touch --touch-file");
                    }
                    for r in &runners {
                        r.send(Job {
                            sha: synced.sha.clone(),
                            path: synced.path.clone(),
                        });
                    }
                } else if !retired.is_empty() {
                    clean_old_worktrees(
                        &syncer,
                        &current,
                        &mut retired,
                        config.stale_worktree_timeout,
                    )
                    .await;
                }
                remove_error_file(config.error_file.as_deref());
                first_loop = false;
                if config.one_time {
                    for r in &mut runners {
                        if !r.wait_for(&synced.sha).await {
                            return Err(Error::HookFailed(r.name()));
                        }
                    }
                    tracing::info!(sha = %synced.sha, "exiting after one sync (--one-time)");
                    return Ok(());
                }
                if config::is_full_sha(&config.git_ref) {
                    tracing::info!("--ref is a commit SHA: nothing more to sync");
                    ctx.shutdown.cancelled().await;
                    return Ok(());
                }
            }
            Err(SyncError::Aborted(why)) if abort_flag.load(Ordering::Relaxed) => {
                tracing::info!(why, "sync interrupted");
                return Ok(());
            }
            Err(e) => {
                fail_count += 1;
                let msg = redactor.redact(&e.to_string());
                metrics.sync("error", elapsed);
                metrics
                    .consecutive_failures
                    .set(i64::try_from(fail_count).unwrap_or(i64::MAX));
                if e.suggests_corruption() {
                    need_prepare = true;
                }
                if matches!(
                    e,
                    SyncError::UnsafeTree { .. } | SyncError::UnsafeSubmodule { .. }
                ) {
                    metrics.refused_commits.inc();
                    tracing::error!(error = %msg, "refused a commit that would write outside the worktree");
                }
                write_error_file(config.error_file.as_deref(), &msg, fail_count);
                let max = match config.init_max_failures {
                    // --init-max-failures applies until the first successful sync.
                    Some(m) if !synced_once.load(Ordering::Acquire) => m,
                    _ => config.max_failures,
                };
                if max >= 0 && fail_count >= u64::try_from(max).unwrap_or(0) {
                    return Err(Error::TooManyFailures {
                        count: fail_count,
                        max,
                        last: msg,
                    });
                }
                tracing::error!(error = %msg, failures = fail_count, "sync failed, will retry");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(match config.init_period {
                Some(p) if !synced_once.load(Ordering::Acquire) => p,
                _ => config.period,
            }) => {}
            () = trigger.notified() => tracing::debug!("sync requested"),
            () = ctx.shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Removes replaced worktrees once they are older than the stale timeout.
async fn clean_old_worktrees(
    syncer: &Arc<Syncer>,
    current: &Option<String>,
    retired: &mut HashMap<String, Instant>,
    timeout: Duration,
) {
    retired.retain(|_, at| at.elapsed() < timeout);
    let keep: Vec<String> = retired.keys().cloned().collect();
    let syncer = syncer.clone();
    let current = current.clone();
    let res = tokio::task::spawn_blocking(move || {
        let repo = syncer.open()?;
        let keep_fn = |name: &str| keep.iter().any(|k| k == name);
        syncer.clean_worktrees(&repo, current.as_deref(), &keep_fn, false)
    })
    .await;
    match res {
        Ok(Ok((removed, trash))) => {
            if !removed.is_empty() {
                tracing::debug!(?removed, "retired old worktrees");
            }
            if !trash.is_empty() {
                // Deleting a large tree takes a while; the next sync need not wait for it.
                tokio::task::spawn_blocking(move || {
                    for t in trash {
                        if let Err(e) = publish::remove_any(&t) {
                            tracing::warn!(path = %t.display(), error = %e, "cannot remove an old worktree");
                        }
                    }
                });
            }
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot remove old worktrees"),
        Err(e) => tracing::warn!(error = %e, "worktree cleanup died"),
    }
}

/// Sets a replaced worktree's mtime to now.
fn mark_replaced(dir: &Path) {
    let res = std::fs::File::open(dir).and_then(|f| f.set_modified(SystemTime::now()));
    if let Err(e) = res {
        tracing::debug!(path = %dir.display(), error = %e, "cannot mark a replaced worktree");
    }
}

/// The worktrees a previous run replaced less than `timeout` ago (by their mtime, which
/// [`mark_replaced`] set), with the instant they were replaced.
fn replaced_earlier(
    wts: &Path,
    current: Option<&str>,
    timeout: Duration,
) -> Vec<(String, Instant)> {
    let Ok(rd) = std::fs::read_dir(wts) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if Some(name.as_str()) == current || !config::is_full_sha(&name) {
                return None;
            }
            let age = now
                .duration_since(e.metadata().ok()?.modified().ok()?)
                .unwrap_or_default();
            (age < timeout).then(|| Instant::now().checked_sub(age).map(|at| (name, at)))?
        })
        .collect()
}

/// Checks `Authorization: Bearer <token>` against the token file, read on every request so a
/// rotated Secret applies at once.
fn sync_request_allowed(
    req: &hyper::Request<bytes::Bytes>,
    token_file: &Path,
) -> Result<(), StatusCode> {
    let Ok(expected) = std::fs::read_to_string(token_file) else {
        tracing::warn!(path = %token_file.display(), "cannot read --sync-token-file; refusing POST /sync");
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    };
    let expected = expected.trim();
    if expected.is_empty() {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim();
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(StatusCode::UNAUTHORIZED)
    }
}

/// Compares without an early exit, so response timing does not reveal how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn touch(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.set_modified(SystemTime::now())
}

/// Writes the error file atomically (readers never see half a JSON document).
fn write_error_file(path: Option<&Path>, msg: &str, failures: u64) {
    let Some(path) = path else { return };
    let doc = serde_json::json!({
        "msg": "error syncing repo, will retry",
        "err": msg,
        "failCount": failures,
        "ts": unix_now(),
    });
    let tmp = publish::temp_sibling(path);
    let res = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&tmp, format!("{doc}\n")))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(path = %path.display(), error = %e, "cannot write --error-file");
    }
}

fn remove_error_file(path: Option<&Path>) {
    if let Some(p) = path
        && let Err(e) = std::fs::remove_file(p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %p.display(), error = %e, "cannot remove --error-file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_token_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret\n").unwrap();
        let req = |auth: Option<&str>| {
            let mut b = hyper::Request::builder().method("POST").uri("/sync");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(bytes::Bytes::new()).unwrap()
        };
        assert_eq!(
            sync_request_allowed(&req(Some("Bearer s3cret")), &f),
            Ok(())
        );
        assert_eq!(
            sync_request_allowed(&req(Some("Bearer nope")), &f),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            sync_request_allowed(&req(None), &f),
            Err(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            sync_request_allowed(&req(Some("Bearer s3cret")), &dir.path().join("missing")),
            Err(StatusCode::SERVICE_UNAVAILABLE)
        );
    }

    #[test]
    fn error_file_is_json_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("err.json");
        write_error_file(Some(&f), "boom", 2);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(v["err"], "boom");
        assert_eq!(v["failCount"], 2);
        remove_error_file(Some(&f));
        assert!(!f.exists());
    }
}
