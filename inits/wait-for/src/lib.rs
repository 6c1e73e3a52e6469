//! wait-for: an init container that exits 0 once a pod's dependencies answer.
//!
//! - [`target`]: the URL-like arguments (`dns://myservice`, `tcp://db:5432`, `https://...`,
//!   `file:///...`, `redis://`, `postgres://`, `mysql://`), parsed without I/O.
//! - [`check`]: one attempt at each kind of target, returning what was found or what failed.
//! - [`Backoff`]: the delay between attempts (constant or exponential, with jitter).
//! - [`run`]: one waiting task per target, all of them (or, with `--any`, the first) ready before
//!   `--timeout`, each attempt logged on stderr; SIGTERM ends the wait through the runtime.

pub mod check;
pub mod cli;
pub mod target;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use podmates_runtime::Context;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;

pub use target::Target;

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay (`--interval`).
    pub interval: Duration,
    /// Growth per attempt: 1 keeps the interval constant (`--backoff-policy linear`).
    pub coefficient: f64,
    /// The longest delay (`--max-interval`).
    pub max_interval: Duration,
    /// Fraction of each delay added or taken away at random (`--jitter`), so that the replicas
    /// of a Deployment do not knock in step.
    pub jitter: f64,
}

impl Backoff {
    /// The delay after attempt `attempt` (1-based), before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let grown = self.interval.as_secs_f64()
            * self
                .coefficient
                .powi(attempt.saturating_sub(1).min(64) as i32);
        let capped = if self.coefficient > 1.0 {
            grown.min(
                self.max_interval
                    .as_secs_f64()
                    .max(self.interval.as_secs_f64()),
            )
        } else {
            grown
        };
        Duration::from_secs_f64(capped.min(86_400.0))
    }

    /// The delay after attempt `attempt`, with jitter from `random` (uniform in 0..1).
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let base = self.base_delay(attempt).as_secs_f64();
        let factor = 1.0 + self.jitter * (2.0 * random - 1.0);
        Duration::from_secs_f64((base * factor).max(0.0))
    }
}

/// wait-for's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to wait for.
    pub targets: Vec<Target>,
    /// Ready as soon as one target is (`--any`), instead of all of them.
    pub any: bool,
    /// Give up after this long (`--timeout`); `None` waits for ever.
    pub timeout: Option<Duration>,
    /// The longest one attempt may take (`--attempt-timeout`).
    pub attempt_timeout: Duration,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// Wait until the targets are *not* ready (`--invert-check`, as wait4x).
    pub invert: bool,
    /// What the checks share (HTTP expectations, TLS, DNS settings).
    pub env: check::Env,
}

/// Why the wait ended without every target ready.
#[derive(Debug)]
pub enum Error {
    /// `--timeout` passed; each target not ready with its last error.
    TimedOut {
        /// The timeout.
        after: Duration,
        /// Targets not ready, with the last error of each.
        pending: Vec<(String, String)>,
    },
    /// SIGTERM or SIGINT arrived first.
    Interrupted {
        /// Targets not ready, with the last error of each.
        pending: Vec<(String, String)>,
    },
}

fn list(pending: &[(String, String)]) -> String {
    pending
        .iter()
        .map(|(t, e)| format!("{t} (last error: {e})"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TimedOut { after, pending } => {
                write!(f, "timed out after {after:?}; not ready: {}", list(pending))
            }
            Self::Interrupted { pending } => {
                write!(f, "stopped by a signal; not ready: {}", list(pending))
            }
        }
    }
}

impl std::error::Error for Error {}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    target: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
}

#[derive(Clone, Default)]
struct Metrics {
    attempts: Family<AttemptLabels, Counter>,
    ready: Family<TargetLabels, Gauge>,
}

/// A small xorshift generator for jitter: no need for a cryptographic one, and seeded per
/// process so that the replicas of a Deployment draw differently.
struct Jitter(u64);

impl Jitter {
    fn new(salt: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self(
            (nanos
                ^ (u64::from(std::process::id()) << 32)
                ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                | 1,
        )
    }

    fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

enum Outcome {
    Ready,
    NotReady(String),
}

async fn wait_one(
    idx: usize,
    target: Arc<Target>,
    config: Arc<Config>,
    deadline: Option<Instant>,
    token: tokio_util::sync::CancellationToken,
    metrics: Metrics,
) -> (usize, Outcome) {
    let mut jitter = Jitter::new(idx as u64 + 1);
    let started = Instant::now();
    let name = target.display.clone();
    let mut last_error = "no attempt finished".to_owned();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let mut budget = config.attempt_timeout;
        let mut cut_short = false;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(1) && attempt > 1 {
                tracing::warn!(url = %name, attempt = attempt - 1, error = %last_error, "not ready; giving up at --timeout");
                return (idx, Outcome::NotReady(last_error));
            }
            cut_short = left < budget;
            budget = budget.min(left.max(Duration::from_millis(1)));
        }
        let result = tokio::select! {
            r = tokio::time::timeout(budget, check::check(&target, &config.env)) => r,
            () = token.cancelled() => return (idx, Outcome::NotReady(last_error)),
        };
        let result = match result {
            Ok(r) => r,
            // The attempt was cut short by --timeout: the error worth reporting is the previous
            // attempt's, when there was one.
            Err(_) if cut_short && attempt > 1 => Err(last_error.clone()),
            Err(_) if cut_short => Err(format!("no answer before --timeout ({budget:?})")),
            Err(_) => Err(format!("no answer within {budget:?} (--attempt-timeout)")),
        };
        let ready = match (&result, config.invert) {
            (Ok(detail), false) => Some(detail.clone()),
            (Err(e), true) => Some(format!("not answering, as --invert-check wants: {e}")),
            (Ok(detail), true) => {
                last_error = format!("still answering: {detail}");
                None
            }
            (Err(e), false) => {
                last_error = e.clone();
                None
            }
        };
        if let Some(detail) = ready {
            metrics
                .attempts
                .get_or_create(&AttemptLabels {
                    target: name.clone(),
                    result: "ready",
                })
                .inc();
            metrics
                .ready
                .get_or_create(&TargetLabels {
                    target: name.clone(),
                })
                .set(1);
            tracing::info!(
                url = %name,
                attempt,
                elapsed = ?started.elapsed(),
                detail = %detail,
                "ready"
            );
            return (idx, Outcome::Ready);
        }
        metrics
            .attempts
            .get_or_create(&AttemptLabels {
                target: name.clone(),
                result: "not_ready",
            })
            .inc();
        let delay = config.backoff.delay(attempt, jitter.next());
        let now = Instant::now();
        let wake = match deadline {
            Some(d) if d <= now => {
                tracing::warn!(url = %name, attempt, error = %last_error, "not ready; giving up at --timeout");
                return (idx, Outcome::NotReady(last_error));
            }
            Some(d) => (now + delay).min(d),
            None => now + delay,
        };
        tracing::info!(
            url = %name,
            attempt,
            error = %last_error,
            retry_in = ?wake.saturating_duration_since(now),
            "not ready"
        );
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = token.cancelled() => return (idx, Outcome::NotReady(last_error)),
        }
    }
}

/// Waits for the targets. `Ok(())` once all of them (or one, with `--any`) are ready.
pub async fn run(config: Config, ctx: Context) -> Result<(), Error> {
    let metrics = Metrics::default();
    ctx.admin.with_registry(|r| {
        let r = r.sub_registry_with_prefix("wait_for");
        r.register(
            "attempts",
            "Attempts per target and result (ready, not_ready)",
            metrics.attempts.clone(),
        );
        r.register(
            "target_ready",
            "1 once the target was found ready",
            metrics.ready.clone(),
        );
    });
    for t in &config.targets {
        metrics
            .ready
            .get_or_create(&TargetLabels {
                target: t.display.clone(),
            })
            .set(0);
    }
    let deadline = config.timeout.map(|t| Instant::now() + t);
    let timeout = config.timeout;
    let any = config.any;
    let targets: Vec<Arc<Target>> = config.targets.iter().cloned().map(Arc::new).collect();
    let config = Arc::new(config);
    // A child token: cancelling the tasks that are no longer needed (--any) is not a shutdown.
    let token = ctx.shutdown.token().child_token();
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        set.spawn(wait_one(
            i,
            t.clone(),
            config.clone(),
            deadline,
            token.clone(),
            metrics.clone(),
        ));
    }
    let mut pending: Vec<Option<String>> =
        vec![Some("no attempt finished".to_owned()); targets.len()];
    let mut ready = 0;
    while let Some(joined) = set.join_next().await {
        let Ok((i, outcome)) = joined else { continue };
        match outcome {
            Outcome::Ready => {
                pending[i] = None;
                ready += 1;
                if any {
                    token.cancel();
                    set.abort_all();
                    break;
                }
            }
            Outcome::NotReady(e) => pending[i] = Some(e),
        }
    }
    if (any && ready > 0) || (!any && ready == targets.len()) {
        tracing::info!(targets = targets.len(), "all ready");
        return Ok(());
    }
    let pending: Vec<(String, String)> = targets
        .iter()
        .zip(pending)
        .filter_map(|(t, e)| e.map(|e| (t.display.clone(), e)))
        .collect();
    if ctx.shutdown.is_cancelled() {
        return Err(Error::Interrupted { pending });
    }
    Err(Error::TimedOut {
        after: timeout.unwrap_or_default(),
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_jitter_stays_in_bounds() {
        let b = Backoff {
            interval: Duration::from_secs(1),
            coefficient: 2.0,
            max_interval: Duration::from_secs(5),
            jitter: 0.0,
        };
        let delays: Vec<u64> = (1..=5).map(|a| b.base_delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        let linear = Backoff {
            coefficient: 1.0,
            ..b
        };
        assert_eq!(linear.base_delay(50), Duration::from_secs(1));
        let j = Backoff {
            jitter: 0.2,
            ..linear
        };
        assert_eq!(j.delay(1, 0.0), Duration::from_millis(800));
        assert_eq!(j.delay(1, 1.0), Duration::from_millis(1200));
        let mut r = Jitter::new(1);
        for _ in 0..1000 {
            let x = r.next();
            assert!((0.0..1.0).contains(&x));
        }
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(5));
    }
}
