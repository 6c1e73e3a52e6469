//! Metrics: upstream git-sync's names (so dashboards keep working) plus what upstream lacks — the
//! time of the last success, the published commit, consecutive failures and fetch durations.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `status` label: `success`, `error` or `noop`, as upstream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// Outcome of the sync.
    pub status: String,
}

/// Labels of the current-commit info metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommitLabels {
    /// The configured ref.
    pub git_ref: String,
    /// The published commit.
    pub sha: String,
}

/// Labels of the hook counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabels {
    /// `exechook` or `webhook`.
    pub hook: String,
    /// `success` or `error`.
    pub status: String,
}

/// All of git-sync's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `git_sync_duration_seconds{status}` (upstream: a summary; a histogram keeps `_sum` and
    /// `_count` and adds buckets).
    pub sync_duration: Family<StatusLabel, Histogram>,
    /// `git_sync_count_total{status}`.
    pub sync_count: Family<StatusLabel, Counter>,
    /// `git_fetch_count_total`.
    pub fetch_count: Counter,
    /// `git_sync_fetch_duration_seconds`.
    pub fetch_duration: Histogram,
    /// `git_sync_last_success_timestamp_seconds`.
    pub last_success: Gauge<f64, AtomicU64>,
    /// `git_sync_consecutive_failures`.
    pub consecutive_failures: Gauge,
    /// `git_sync_current_commit_info{git_ref,sha} 1`.
    pub current_commit: Family<CommitLabels, Gauge>,
    /// `git_sync_hook_count_total{hook,status}`.
    pub hook_count: Family<HookLabels, Counter>,
    /// `git_sync_refused_commits_total`: commits not checked out because a tree entry or
    /// submodule would have written outside the worktree (ours; upstream has no such metric).
    pub refused_commits: Counter,
    /// `git_sync_askpass_calls_total{status}` (upstream: `git_sync_askpass_calls`).
    pub askpass_calls: Family<StatusLabel, Counter>,
    /// `git_sync_refresh_github_app_token_count_total{status}` (upstream:
    /// `git_sync_refresh_github_app_token_count`).
    pub github_app_tokens: Family<StatusLabel, Counter>,
}

fn duration_buckets() -> impl Iterator<Item = f64> {
    [
        0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ]
    .into_iter()
}

impl Metrics {
    /// New metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            sync_duration: Family::new_with_constructor(|| Histogram::new(duration_buckets())),
            sync_count: Family::default(),
            fetch_count: Counter::default(),
            fetch_duration: Histogram::new(duration_buckets()),
            last_success: Gauge::default(),
            consecutive_failures: Gauge::default(),
            current_commit: Family::default(),
            hook_count: Family::default(),
            refused_commits: Counter::default(),
            askpass_calls: Family::default(),
            github_app_tokens: Family::default(),
        };
        registry.register(
            "git_sync_duration_seconds",
            "Time taken by each sync, by status",
            m.sync_duration.clone(),
        );
        registry.register(
            "git_sync_count",
            "Number of syncs, by status (success, error, noop)",
            m.sync_count.clone(),
        );
        registry.register(
            "git_fetch_count",
            "Number of fetches from the remote",
            m.fetch_count.clone(),
        );
        registry.register(
            "git_sync_fetch_duration_seconds",
            "Time taken by fetches from the remote",
            m.fetch_duration.clone(),
        );
        registry.register(
            "git_sync_last_success_timestamp_seconds",
            "Unix time of the last successful sync",
            m.last_success.clone(),
        );
        registry.register(
            "git_sync_consecutive_failures",
            "Failed syncs since the last success",
            m.consecutive_failures.clone(),
        );
        registry.register(
            "git_sync_current_commit_info",
            "The published commit (value 1)",
            m.current_commit.clone(),
        );
        registry.register(
            "git_sync_hook_count",
            "Hook runs, by hook and status",
            m.hook_count.clone(),
        );
        registry.register(
            "git_sync_refused_commits",
            "Commits refused because a path or submodule would leave the worktree",
            m.refused_commits.clone(),
        );
        registry.register(
            "git_sync_askpass_calls",
            "Calls of --askpass-url, by status (success, error)",
            m.askpass_calls.clone(),
        );
        registry.register(
            "git_sync_refresh_github_app_token_count",
            "GitHub App installation tokens asked for, by status (success, error)",
            m.github_app_tokens.clone(),
        );
        m
    }

    /// Records one GitHub App token exchange.
    pub fn github_app_token(&self, ok: bool) {
        self.github_app_tokens
            .get_or_create(&StatusLabel {
                status: if ok { "success" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// Records one call of `--askpass-url`.
    pub fn askpass(&self, ok: bool) {
        self.askpass_calls
            .get_or_create(&StatusLabel {
                status: if ok { "success" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// Records one sync's outcome.
    pub fn sync(&self, status: &str, seconds: f64) {
        let l = StatusLabel {
            status: status.to_owned(),
        };
        self.sync_duration.get_or_create(&l).observe(seconds);
        self.sync_count.get_or_create(&l).inc();
    }

    /// Records the published commit, dropping the previous one's series.
    pub fn publish(&self, git_ref: &str, previous: Option<&str>, sha: &str) {
        if let Some(p) = previous
            && p != sha
        {
            self.current_commit.remove(&CommitLabels {
                git_ref: git_ref.to_owned(),
                sha: p.to_owned(),
            });
        }
        self.current_commit
            .get_or_create(&CommitLabels {
                git_ref: git_ref.to_owned(),
                sha: sha.to_owned(),
            })
            .set(1);
    }

    /// Counts a hook run.
    pub fn hook(&self, hook: &str, ok: bool) {
        self.hook_count
            .get_or_create(&HookLabels {
                hook: hook.to_owned(),
                status: if ok { "success" } else { "error" }.to_owned(),
            })
            .inc();
    }
}
