//! The `git-sync` command line: kubernetes/git-sync v4's flags and `GITSYNC_*` variables, the
//! legacy `GIT_SYNC_*` names and v3 flags, and podmates' common flags, turned into a checked
//! [`Config`] (`into_config`, which does no I/O but resolving a relative `--root`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use git_sync::config::{
    Auth, Config, ExecHook, GitGc, Materialize, Submodules, WebHook, default_link_name,
    parse_signal,
};
use podmates_runtime::args::{parse_duration, parse_go_bool};
use podmates_runtime::{RuntimeArgs, UsageError};

pub(crate) const NAME: &str = "git-sync";

/// Keeps a git checkout in a shared volume in step with a remote branch, tag or commit.
///
/// A drop-in for kubernetes/git-sync v4 that runs git in-process (no git or ssh binary needed).
#[derive(Debug, Parser)]
// A flag given twice takes its last value, as Go's flag packages do (upstream's own e2e harness
// passes --touch-file twice).
#[command(name = NAME, version, about, long_about = None, args_override_self = true)]
pub(crate) struct Cli {
    /// The repository to sync: https://, http://, git://, ssh://, user@host:path, file:// or a path.
    #[arg(long, env = "GITSYNC_REPO", value_name = "URL")]
    pub(crate) repo: Option<String>,

    /// The branch, tag, HEAD or full commit SHA to sync.
    #[arg(long = "ref", env = "GITSYNC_REF", default_value = "HEAD")]
    pub(crate) git_ref: String,

    /// Shallow-fetch depth; 0 fetches full history.
    #[arg(long, env = "GITSYNC_DEPTH", default_value_t = 1)]
    pub(crate) depth: u32,

    /// The root directory: holds .git, .worktrees and (by default) the link.
    #[arg(long, env = "GITSYNC_ROOT", value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,

    /// The published symlink (or directory with --materialize copy), relative to --root unless
    /// absolute. Default: the last path segment of --repo.
    #[arg(long, env = "GITSYNC_LINK", value_name = "PATH")]
    pub(crate) link: Option<PathBuf>,

    /// Time between syncs, e.g. 10s, 1m30s.
    #[arg(long, env = "GITSYNC_PERIOD", default_value = "10s", value_parser = parse_duration)]
    pub(crate) period: Duration,

    /// Time limit of one sync.
    #[arg(long, env = "GITSYNC_SYNC_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub(crate) sync_timeout: Duration,

    /// Consecutive failed syncs before exiting with 1; 0 exits on the first, negative never exits.
    #[arg(
        long,
        env = "GITSYNC_MAX_FAILURES",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub(crate) max_failures: i64,

    /// Sync once (and run hooks), then exit: 0 on success, 1 on failure.
    #[arg(long, env = "GITSYNC_ONE_TIME", num_args = 0..=1, default_value = "false", default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) one_time: bool,

    /// User name for http(s) authentication.
    #[arg(long, env = "GITSYNC_USERNAME")]
    pub(crate) username: Option<String>,

    /// Password or token for http(s) authentication. Prefer GITSYNC_PASSWORD or --password-file:
    /// command lines are visible to other processes.
    #[arg(long, env = "GITSYNC_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,

    /// File holding the password or token; re-read before every sync.
    #[arg(long, env = "GITSYNC_PASSWORD_FILE", value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,

    /// A credential for the URLs it is a prefix of, as JSON: `{"url": ..., "username": ...,
    /// "password": ...}` or with `"password-file"` instead; repeatable, or a JSON list.
    #[arg(long, env = "GITSYNC_CREDENTIAL", value_name = "JSON")]
    pub(crate) credential: Vec<String>,

    /// A URL asked for credentials before each sync; it answers `username=<user>` and
    /// `password=<password>` lines.
    #[arg(long, env = "GITSYNC_ASKPASS_URL", value_name = "URL")]
    pub(crate) askpass_url: Option<String>,

    /// The GitHub API, for GitHub App authentication.
    #[arg(
        long,
        env = "GITSYNC_GITHUB_BASE_URL",
        default_value = "https://api.github.com/"
    )]
    pub(crate) github_base_url: String,

    /// The GitHub App's private key (PEM); prefer --github-app-private-key-file.
    #[arg(
        long,
        env = "GITSYNC_GITHUB_APP_PRIVATE_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub(crate) github_app_private_key: Option<String>,

    /// File holding the GitHub App's private key (PEM).
    #[arg(long, env = "GITSYNC_GITHUB_APP_PRIVATE_KEY_FILE", value_name = "FILE")]
    pub(crate) github_app_private_key_file: Option<PathBuf>,

    /// The GitHub App's client ID (the JWT's issuer).
    #[arg(long, env = "GITSYNC_GITHUB_APP_CLIENT_ID")]
    pub(crate) github_app_client_id: Option<String>,

    /// The GitHub App's application ID (the JWT's issuer, instead of the client ID).
    #[arg(long, env = "GITSYNC_GITHUB_APP_APPLICATION_ID")]
    pub(crate) github_app_application_id: Option<u64>,

    /// The installation of the GitHub App whose token is used.
    #[arg(long, env = "GITSYNC_GITHUB_APP_INSTALLATION_ID")]
    pub(crate) github_app_installation_id: Option<u64>,

    /// ssh private key; repeat to try several.
    #[arg(
        long,
        env = "GITSYNC_SSH_KEY_FILE",
        value_name = "FILE",
        value_delimiter = ',',
        default_value = "/etc/git-secret/ssh"
    )]
    pub(crate) ssh_key_file: Vec<PathBuf>,

    /// Check the ssh server's host key against --ssh-known-hosts-file.
    #[arg(long, env = "GITSYNC_SSH_KNOWN_HOSTS", num_args = 0..=1, default_value = "true", default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) ssh_known_hosts: bool,

    /// The known_hosts file.
    #[arg(
        long,
        env = "GITSYNC_SSH_KNOWN_HOSTS_FILE",
        value_name = "FILE",
        default_value = "/etc/git-secret/known_hosts"
    )]
    pub(crate) ssh_known_hosts_file: PathBuf,

    /// Submodules: recursive, shallow (top level only) or off.
    #[arg(long, env = "GITSYNC_SUBMODULES", value_enum, default_value_t = Submodules::Recursive)]
    pub(crate) submodules: Submodules,

    /// File touched after each sync that publishes a new commit (relative to --root unless absolute).
    #[arg(long, env = "GITSYNC_TOUCH_FILE", value_name = "PATH")]
    pub(crate) touch_file: Option<PathBuf>,

    /// File holding the last error as JSON, removed after a success (relative to --root unless
    /// absolute).
    #[arg(long, env = "GITSYNC_ERROR_FILE", value_name = "PATH")]
    pub(crate) error_file: Option<PathBuf>,

    /// Program run (without arguments) in the new worktree after each publish; $GITSYNC_HASH is set.
    #[arg(long, env = "GITSYNC_EXECHOOK_COMMAND", value_name = "PROGRAM")]
    pub(crate) exechook_command: Option<PathBuf>,

    /// Time limit of one exec hook run.
    #[arg(long, env = "GITSYNC_EXECHOOK_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub(crate) exechook_timeout: Duration,

    /// Wait before retrying a failed exec hook.
    #[arg(long, env = "GITSYNC_EXECHOOK_BACKOFF", default_value = "3s", value_parser = parse_duration)]
    pub(crate) exechook_backoff: Duration,

    /// http:// or https:// URL called after each publish, with header Gitsync-Hash.
    #[arg(long, env = "GITSYNC_WEBHOOK_URL", value_name = "URL")]
    pub(crate) webhook_url: Option<String>,

    /// Webhook HTTP method.
    #[arg(long, env = "GITSYNC_WEBHOOK_METHOD", default_value = "POST")]
    pub(crate) webhook_method: String,

    /// Webhook status that means success; 0 sends without waiting for an answer.
    #[arg(long, env = "GITSYNC_WEBHOOK_SUCCESS_STATUS", default_value_t = 200)]
    pub(crate) webhook_success_status: u16,

    /// Time limit of one webhook call.
    #[arg(long, env = "GITSYNC_WEBHOOK_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub(crate) webhook_timeout: Duration,

    /// Wait before retrying a failed webhook.
    #[arg(long, env = "GITSYNC_WEBHOOK_BACKOFF", default_value = "3s", value_parser = parse_duration)]
    pub(crate) webhook_backoff: Duration,

    /// Signal that starts a sync at once, e.g. SIGHUP.
    #[arg(long, env = "GITSYNC_SYNC_ON_SIGNAL", value_name = "SIGNAL")]
    pub(crate) sync_on_signal: Option<String>,

    /// Address of the HTTP server (upstream's flag): sets the admin server's address unless
    /// --admin-addr is given, and adds upstream's `/` (503 until the first sync, then 200).
    #[arg(long, env = "GITSYNC_HTTP_BIND", value_name = "ADDR")]
    pub(crate) http_bind: Option<String>,

    /// Accepted for compatibility: /metrics is always served by the admin server.
    #[arg(long, env = "GITSYNC_HTTP_METRICS", num_args = 0..=1, default_value = "true", default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) http_metrics: bool,

    /// How long a replaced worktree is kept for readers still using it.
    #[arg(long, env = "GITSYNC_STALE_WORKTREE_TIMEOUT", default_value = "0s", value_parser = parse_duration)]
    pub(crate) stale_worktree_timeout: Duration,

    /// Make the files written group-writable.
    #[arg(long, env = "GITSYNC_GROUP_WRITE", num_args = 0..=1, default_value = "false", default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) group_write: bool,

    /// Upstream's verbosity (0-10); used when --log-level is not given: 0-1 info, 2-4 debug, 5+ trace.
    #[arg(
        short = 'v',
        long = "verbose",
        env = "GITSYNC_VERBOSE",
        value_name = "LEVEL"
    )]
    pub(crate) verbose: Option<u8>,

    /// /readyz fails when the last successful sync is older than this (e.g. 5m).
    #[arg(long, env = "GITSYNC_STALE_AFTER", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) stale_after: Option<Duration>,

    /// Enables `POST /sync` on the admin server; requests need `Authorization: Bearer <token>`
    /// with the content of this file.
    #[arg(long, env = "GITSYNC_SYNC_TOKEN_FILE", value_name = "FILE")]
    pub(crate) sync_token_file: Option<PathBuf>,

    /// How to publish: symlink (upstream's layout) or copy (a real directory, swapped atomically).
    #[arg(long, env = "GITSYNC_MATERIALIZE", value_enum, default_value_t = Materialize::Symlink)]
    pub(crate) materialize: Materialize,

    /// When to compact the repository: auto (once 8 packs have accumulated), always (after every
    /// fetch), aggressive (as always) or off.
    #[arg(long, env = "GITSYNC_GIT_GC", value_enum, default_value_t = GitGc::Auto)]
    pub(crate) git_gc: GitGc,

    /// Not needed without an ssh binary (accepted for compatibility, ignored).
    #[arg(long, env = "GITSYNC_ADD_USER", hide = true, num_args = 0..=1, default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) add_user: Option<bool>,

    /// Time between syncs until the first success (then --period), e.g. to retry a missing
    /// repository quickly at start.
    #[arg(long, env = "GITSYNC_INIT_PERIOD", value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) init_period: Option<Duration>,

    /// Like --max-failures, until the first success (then --max-failures applies).
    #[arg(long, env = "GITSYNC_INIT_MAX_FAILURES", allow_negative_numbers = true)]
    pub(crate) init_max_failures: Option<i64>,

    /// Prints the full manual (the long help) and exits.
    #[arg(long)]
    pub(crate) man: bool,

    /// Not needed in-process: git runs inside git-sync (accepted for compatibility, ignored).
    #[arg(long, env = "GITSYNC_GIT", hide = true, value_name = "PROGRAM")]
    pub(crate) git: Option<String>,

    /// No Go profiler in a Rust binary (accepted for compatibility, ignored).
    #[arg(long, env = "GITSYNC_HTTP_PPROF", hide = true, num_args = 0..=1, default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) http_pprof: Option<bool>,

    // Upstream's deprecated v3 flags, still in pod specs copied from tutorials
    // (k8s.gcr.io/git-sync:v3.x); mapped as upstream maps them, with a warning.
    /// Deprecated: use --ref.
    #[arg(long, hide = true)]
    pub(crate) branch: Option<String>,
    /// Deprecated: use --ref.
    #[arg(long, hide = true)]
    pub(crate) rev: Option<String>,
    /// Deprecated: use --link.
    #[arg(long, hide = true)]
    pub(crate) dest: Option<PathBuf>,
    /// Deprecated: use --period (seconds, may be fractional).
    #[arg(long, hide = true)]
    pub(crate) wait: Option<f64>,
    /// Deprecated: use --sync-timeout (whole seconds).
    #[arg(long = "timeout", hide = true)]
    pub(crate) timeout_secs: Option<u64>,
    /// Deprecated: use --max-failures.
    #[arg(long, hide = true, allow_negative_numbers = true)]
    pub(crate) max_sync_failures: Option<i64>,
    /// Deprecated: no longer necessary.
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) ssh: Option<bool>,
    /// Deprecated: use --exechook-command.
    #[arg(long, hide = true)]
    pub(crate) sync_hook_command: Option<PathBuf>,
    /// Deprecated and no longer supported (upstream refuses it too): use --group-write.
    #[arg(long, env = "GIT_SYNC_PERMISSIONS", hide = true)]
    pub(crate) change_permissions: Option<String>,
    /// Deprecated: use -v / --verbose.
    #[arg(long = "v", hide = true, value_name = "LEVEL")]
    pub(crate) v_deprecated: Option<u8>,

    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
}

/// The warnings the deprecated v3 flags given earn, as upstream logs them.
pub(crate) fn deprecations(cli: &Cli) -> Vec<String> {
    let mut notes = Vec::new();
    let mut note = |given: bool, flag: &str, instead: &str| {
        if given {
            notes.push(format!("--{flag} is deprecated: {instead}"));
        }
    };
    note(cli.branch.is_some(), "branch", "use --ref instead");
    note(cli.rev.is_some(), "rev", "use --ref instead");
    note(cli.dest.is_some(), "dest", "use --link instead");
    note(cli.wait.is_some(), "wait", "use --period instead");
    note(
        cli.timeout_secs.is_some(),
        "timeout",
        "use --sync-timeout instead",
    );
    note(
        cli.max_sync_failures.is_some(),
        "max-sync-failures",
        "use --max-failures instead",
    );
    note(cli.ssh.is_some(), "ssh", "it is no longer necessary");
    note(
        cli.sync_hook_command.is_some(),
        "sync-hook-command",
        "use --exechook-command instead",
    );
    note(
        cli.v_deprecated.is_some(),
        "v",
        "use -v or --verbose instead",
    );
    notes
}

/// The `--github-app-*` settings, checked as upstream checks them. The key file is read at each
/// token exchange (as --password-file before each sync), so a rotated key applies.
pub(crate) fn github_app_config(
    cli: &Cli,
) -> Result<Option<git_sync::github_app::GitHubApp>, UsageError> {
    use git_sync::github_app::{GitHubApp, Issuer, KeySource};
    let issuer = match (&cli.github_app_client_id, cli.github_app_application_id) {
        (Some(_), Some(_)) => {
            return Err(UsageError::new(
                "--github-app-application-id and --github-app-client-id",
                "only one may be given",
            ));
        }
        (Some(c), None) => Issuer::ClientId(c.clone()),
        (None, Some(id)) => Issuer::AppId(id),
        (None, None) => {
            if cli.github_app_installation_id.is_some() {
                return Err(UsageError::new(
                    "--github-app-installation-id",
                    "needs --github-app-application-id or --github-app-client-id",
                ));
            }
            return Ok(None);
        }
    };
    let installation_id = cli.github_app_installation_id.ok_or_else(|| {
        UsageError::new(
            "--github-app-installation-id",
            "is required with --github-app-application-id or --github-app-client-id",
        )
    })?;
    let pem = match (
        &cli.github_app_private_key,
        &cli.github_app_private_key_file,
    ) {
        (Some(_), Some(_)) => {
            return Err(UsageError::new(
                "GITSYNC_GITHUB_APP_PRIVATE_KEY and --github-app-private-key-file",
                "only one may be given",
            ));
        }
        (Some(k), None) => KeySource::Inline(k.clone()),
        (None, Some(f)) => KeySource::File(f.clone()),
        (None, None) => {
            return Err(UsageError::new(
                "GITSYNC_GITHUB_APP_PRIVATE_KEY or --github-app-private-key-file",
                "required for GitHub App authentication",
            ));
        }
    };
    if cli.username.is_some() || cli.password.is_some() || cli.password_file.is_some() {
        return Err(UsageError::new(
            "--username, GITSYNC_PASSWORD and --password-file",
            "cannot be used with GitHub App authentication",
        ));
    }
    Ok(Some(GitHubApp {
        base_url: cli.github_base_url.clone(),
        issuer,
        installation_id,
        key: pem,
    }))
}

/// `--ref` as upstream derives it from the deprecated `--branch` and `--rev`.
pub(crate) fn effective_ref(cli: &Cli) -> Result<String, UsageError> {
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    match (set(&cli.branch), set(&cli.rev)) {
        (Some(b), None) => Ok(b),
        (Some(b), Some(r)) if r == "HEAD" => Ok(b),
        (None, Some(r)) => Ok(r),
        (Some(_), Some(_)) => Err(UsageError::new(
            "--branch and --rev",
            "--ref cannot be set from both deprecated flags (one or the other is OK)",
        )),
        (None, None) => Ok(cli.git_ref.clone()),
    }
}

/// Flags whose legacy `GIT_SYNC_<NAME>` variable maps to `--<flag>` one to one.
const LEGACY_SAME: &[&str] = &[
    "repo",
    "ref",
    "depth",
    "root",
    "link",
    "period",
    "sync-timeout",
    "max-failures",
    "one-time",
    "username",
    "password",
    "password-file",
    "ssh-key-file",
    "ssh-known-hosts",
    "ssh-known-hosts-file",
    "submodules",
    "touch-file",
    "error-file",
    "exechook-command",
    "exechook-timeout",
    "exechook-backoff",
    "webhook-url",
    "webhook-method",
    "webhook-success-status",
    "webhook-timeout",
    "webhook-backoff",
    "sync-on-signal",
    "http-bind",
    "http-metrics",
    "stale-worktree-timeout",
    "group-write",
    "askpass-url",
];

/// Older (v3) names that changed: (variable, flag).
const LEGACY_RENAMED: &[(&str, &str)] = &[
    ("GIT_SYNC_BRANCH", "ref"),
    ("GIT_SYNC_REV", "ref"),
    ("GIT_SYNC_DEST", "link"),
    ("GIT_SYNC_WAIT", "period"),
    ("GIT_SYNC_TIMEOUT", "sync-timeout"),
    ("GIT_SYNC_MAX_SYNC_FAILURES", "max-failures"),
    ("GIT_SSH_KEY_FILE", "ssh-key-file"),
    ("GIT_KNOWN_HOSTS", "ssh-known-hosts"),
    ("GIT_SSH_KNOWN_HOSTS_FILE", "ssh-known-hosts-file"),
    ("GIT_ASKPASS_URL", "askpass-url"),
];

/// Turns legacy variables into command-line arguments when neither the flag nor its `GITSYNC_*`
/// variable is set. (Setting the new variable instead would need `std::env::set_var`, which is
/// unsafe in a multi-threaded process; the result is the same.) Returns the arguments and a note
/// per legacy name used.
pub(crate) fn legacy_args(
    argv: &[OsString],
    env: impl Fn(&str) -> Option<String>,
) -> (Vec<String>, Vec<String>) {
    let given = |flag: &str| {
        argv.iter().any(|a| {
            let a = a.to_string_lossy();
            a == format!("--{flag}") || a.starts_with(&format!("--{flag}="))
        })
    };
    let new_var = |flag: &str| format!("GITSYNC_{}", flag.to_ascii_uppercase().replace('-', "_"));
    let mut args = Vec::new();
    let mut notes = Vec::new();
    let mut done: Vec<&str> = Vec::new();
    let legacy = LEGACY_SAME
        .iter()
        .map(|f| {
            (
                format!("GIT_SYNC_{}", f.to_ascii_uppercase().replace('-', "_")),
                *f,
            )
        })
        .chain(LEGACY_RENAMED.iter().map(|(v, f)| ((*v).to_owned(), *f)));
    for (var, flag) in legacy {
        if done.contains(&flag) || given(flag) || env(&new_var(flag)).is_some() {
            continue;
        }
        let Some(value) = env(&var) else { continue };
        // v3 gave --rev beside --branch; the revision is the more specific of the two.
        let value = if var == "GIT_SYNC_BRANCH" {
            env("GIT_SYNC_REV").filter(|r| r != "HEAD").unwrap_or(value)
        } else {
            value
        };
        args.push(format!("--{flag}={value}"));
        notes.push(format!(
            "{var} is deprecated; use {} (or --{flag})",
            new_var(flag)
        ));
        done.push(flag);
    }
    (args, notes)
}

impl TryFrom<&Cli> for Config {
    type Error = UsageError;

    fn try_from(cli: &Cli) -> Result<Self, UsageError> {
        into_config(cli)
    }
}

pub(crate) fn into_config(cli: &Cli) -> Result<Config, UsageError> {
    let repo = cli
        .repo
        .clone()
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| UsageError::new("--repo (GITSYNC_REPO)", "is required"))?;
    let root = cli
        .root
        .clone()
        .ok_or_else(|| UsageError::new("--root (GITSYNC_ROOT)", "is required"))?;
    let root = if root.is_absolute() {
        root
    } else {
        std::env::current_dir()
            .map_err(|e| UsageError {
                flag: "--root",
                reason: format!("cannot resolve a relative path: {e}"),
                source: Some(e.into()),
            })?
            .join(root)
    };
    let link = cli
        .dest
        .clone()
        .filter(|d| !d.as_os_str().is_empty())
        .or_else(|| cli.link.clone())
        .unwrap_or_else(|| PathBuf::from(default_link_name(&repo)));
    let link_name = link.file_name().map(|n| n.to_string_lossy().into_owned());
    if matches!(link_name.as_deref(), None | Some(".git" | ".worktrees")) {
        return Err(UsageError::new(
            "--link",
            format!("`{}` cannot be used as the link name", link.display()),
        ));
    }
    let link = if link.is_absolute() {
        link
    } else {
        root.join(link)
    };
    let rel = |p: &Option<PathBuf>| {
        p.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                root.join(p)
            }
        })
    };
    let g = &effective_ref(cli)?;
    if g.is_empty() {
        return Err(UsageError::new("--ref", "must not be empty"));
    }
    let period = match cli.wait {
        Some(w) if w != 0.0 => Duration::try_from_secs_f64(w).map_err(|e| UsageError {
            flag: "--wait",
            reason: format!("`{w}` is not a number of seconds ({e})"),
            source: Some(e.into()),
        })?,
        _ => cli.period,
    };
    if period.is_zero() {
        return Err(UsageError::new("--period", "must be more than 0"));
    }
    if cli.init_period.is_some_and(|p| p.is_zero()) {
        return Err(UsageError::new("--init-period", "must be more than 0"));
    }
    let sync_timeout = match cli.timeout_secs {
        Some(t) if t != 0 => Duration::from_secs(t),
        _ => cli.sync_timeout,
    };
    if sync_timeout.is_zero() {
        return Err(UsageError::new("--sync-timeout", "must be more than 0"));
    }
    let max_failures = match cli.max_sync_failures {
        Some(m) if m != 0 => m,
        _ => cli.max_failures,
    };
    if let Some(p) = cli.change_permissions.as_deref().map(str::trim)
        && !p.is_empty()
        && !p.trim_start_matches('0').is_empty()
    {
        return Err(UsageError::new(
            "--change-permissions",
            format!("({p}) no longer supported; use --group-write instead"),
        ));
    }
    if let Some(u) = cli.askpass_url.as_deref().filter(|u| !u.is_empty())
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(UsageError::new(
            "--askpass-url",
            format!("`{u}` is not an http:// or https:// URL"),
        ));
    }
    let github_app = github_app_config(cli)?;
    let mut credentials = Vec::new();
    for c in &cli.credential {
        credentials.extend(
            git_sync::config::parse_credentials(c)
                .map_err(|e| UsageError::caused("--credential", e))?,
        );
    }
    let exechook_command = cli
        .sync_hook_command
        .clone()
        .or_else(|| cli.exechook_command.clone());
    let webhook = match &cli.webhook_url {
        Some(u) if !u.is_empty() => {
            if !u.starts_with("http://") && !u.starts_with("https://") {
                return Err(UsageError::new(
                    "--webhook-url",
                    format!(
                        "only http:// and https:// URLs are supported (got `{}`)",
                        git_sync::redact::redact_url_passwords(u)
                    ),
                ));
            }
            hyper::Uri::try_from(u.as_str()).map_err(|e| UsageError::caused("--webhook-url", e))?;
            hyper::Method::from_bytes(cli.webhook_method.as_bytes())
                .map_err(|e| UsageError::caused("--webhook-method", e))?;
            Some(WebHook {
                url: u.clone(),
                method: cli.webhook_method.clone(),
                success_status: cli.webhook_success_status,
                timeout: cli.webhook_timeout,
                backoff: cli.webhook_backoff,
            })
        }
        _ => None,
    };
    if let Some(f) = &cli.password_file
        && cli.password.is_some()
    {
        return Err(UsageError::new(
            "--password-file and GITSYNC_PASSWORD",
            format!("mutually exclusive (--password-file {})", f.display()),
        ));
    }
    let sync_on_signal = cli
        .sync_on_signal
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_signal)
        .transpose()
        .map_err(|e| UsageError::caused("--sync-on-signal", e))?;
    Ok(Config {
        repo,
        git_ref: g.clone(),
        depth: cli.depth,
        root: root.clone(),
        link,
        period,
        askpass_url: cli.askpass_url.clone().filter(|u| !u.is_empty()),
        github_app,
        init_period: cli.init_period,
        init_max_failures: cli.init_max_failures,
        sync_timeout,
        max_failures,
        one_time: cli.one_time,
        auth: Auth {
            username: cli.username.clone().filter(|u| !u.is_empty()),
            password: cli.password.clone().filter(|p| !p.is_empty()),
            password_file: cli.password_file.clone(),
            ssh_key_files: cli.ssh_key_file.clone(),
            ssh_known_hosts: cli.ssh_known_hosts,
            ssh_known_hosts_file: cli.ssh_known_hosts_file.clone(),
            credentials,
        },
        submodules: cli.submodules,
        touch_file: rel(&cli.touch_file),
        error_file: rel(&cli.error_file),
        exechook: exechook_command
            .filter(|c| !c.as_os_str().is_empty())
            .map(|command| ExecHook {
                command,
                timeout: cli.exechook_timeout,
                backoff: cli.exechook_backoff,
            }),
        webhook,
        sync_on_signal,
        http_root_route: cli.http_bind.is_some(),
        stale_worktree_timeout: cli.stale_worktree_timeout,
        group_write: cli.group_write,
        stale_after: cli.stale_after,
        sync_token_file: cli.sync_token_file.clone(),
        materialize: cli.materialize,
        git_gc: cli.git_gc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    podmates_runtime::test_flags_documented!(Cli, include_str!("../README.md"));

    #[test]
    fn legacy_variables_become_flags() {
        let env = |k: &str| match k {
            "GIT_SYNC_REPO" => Some("https://h/r".to_owned()),
            "GIT_SYNC_BRANCH" => Some("main".to_owned()),
            "GIT_SYNC_REV" => Some("v1".to_owned()),
            "GIT_SYNC_ROOT" => Some("/old".to_owned()),
            "GITSYNC_ROOT" => Some("/new".to_owned()),
            "GIT_SYNC_WAIT" => Some("30".to_owned()),
            "GIT_SYNC_PERIOD" => Some("5s".to_owned()),
            _ => None,
        };
        let argv = [OsString::from("git-sync"), OsString::from("--depth=3")];
        let (args, notes) = legacy_args(&argv, env);
        assert_eq!(
            args,
            ["--repo=https://h/r", "--period=5s", "--ref=v1"],
            "{notes:?}"
        );
        assert!(notes[0].contains("GITSYNC_REPO"));
        let cli = Cli::parse_from(
            ["git-sync", "--root", "/r"]
                .into_iter()
                .map(str::to_owned)
                .chain(args),
        );
        assert_eq!(cli.git_ref, "v1");
        assert_eq!(cli.period, Duration::from_secs(5));
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("git-sync").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn a_flag_given_twice_takes_the_last_value() {
        let cli = parse(&["--repo=r", "--root=/g", "--touch-file=a", "--touch-file=b"]);
        assert_eq!(cli.touch_file, Some(PathBuf::from("b")));
        let cli = parse(&["--period=1s", "--period=2s"]);
        assert_eq!(cli.period, Duration::from_secs(2));
    }

    #[test]
    fn v3_flags_map_as_upstream_maps_them() {
        let cli = parse(&[
            "--repo=https://h/r.git",
            "--root=/g",
            "--branch=release",
            "--dest=site",
            "--wait=2.5",
            "--timeout=30",
            "--max-sync-failures=3",
            "--ssh",
            "--sync-hook-command=/bin/hook",
            "--v=5",
        ]);
        let c = into_config(&cli).unwrap();
        assert_eq!(c.git_ref, "release");
        assert_eq!(c.link, PathBuf::from("/g/site"));
        assert_eq!(c.period, Duration::from_millis(2500));
        assert_eq!(c.sync_timeout, Duration::from_secs(30));
        assert_eq!(c.max_failures, 3);
        assert_eq!(
            c.exechook.map(|h| h.command),
            Some(PathBuf::from("/bin/hook"))
        );
        assert_eq!(cli.v_deprecated, Some(5));
        assert_eq!(deprecations(&cli).len(), 8, "{:?}", deprecations(&cli));

        // --rev alone, and --branch with the default --rev HEAD.
        let rev = parse(&["--repo=r", "--root=/g", "--rev=v1.0"]);
        assert_eq!(into_config(&rev).unwrap().git_ref, "v1.0");
        let head = parse(&["--repo=r", "--root=/g", "--branch=b", "--rev=HEAD"]);
        assert_eq!(into_config(&head).unwrap().git_ref, "b");
        let both = parse(&["--repo=r", "--root=/g", "--branch=b", "--rev=v1"]);
        assert!(
            into_config(&both)
                .unwrap_err()
                .to_string()
                .contains("--branch and --rev")
        );
        // Refused upstream too.
        let chmod = parse(&["--repo=r", "--root=/g", "--change-permissions=0775"]);
        assert!(
            into_config(&chmod)
                .unwrap_err()
                .to_string()
                .contains("--change-permissions")
        );
        let zero = parse(&["--repo=r", "--root=/g", "--change-permissions=0"]);
        assert!(into_config(&zero).is_ok());
    }

    #[test]
    fn credentials_repeat_and_are_checked() {
        let cli = parse(&[
            "--repo=r",
            "--root=/g",
            r#"--credential={"url":"https://a","username":"u","password":"p"}"#,
            r#"--credential=[{"url":"https://b","username":"v","password-file":"/f"}]"#,
            "--ssh-key-file=/k1",
            "--ssh-key-file=/k2",
        ]);
        let c = into_config(&cli).unwrap();
        assert_eq!(c.auth.credentials.len(), 2);
        assert_eq!(c.auth.ssh_key_files.len(), 2);
        let bad = parse(&[
            "--repo=r",
            "--root=/g",
            r#"--credential={"url":"https://a"}"#,
        ]);
        assert!(
            into_config(&bad)
                .unwrap_err()
                .to_string()
                .contains("--credential")
        );
    }

    #[test]
    fn github_app_flags_are_checked_as_upstream_checks_them() {
        let ok = parse(&[
            "--repo=https://github.com/o/r",
            "--root=/g",
            "--github-app-client-id=Iv1.abc",
            "--github-app-installation-id=7",
            "--github-app-private-key-file=/k.pem",
        ]);
        let app = into_config(&ok).unwrap().github_app.unwrap();
        assert_eq!(app.installation_id, 7);
        assert_eq!(app.base_url, "https://api.github.com/");
        for (bad, why) in [
            (
                &["--github-app-client-id=a", "--github-app-application-id=1"][..],
                "only one",
            ),
            (
                &[
                    "--github-app-application-id=1",
                    "--github-app-private-key-file=/k",
                ][..],
                "installation-id",
            ),
            (
                &[
                    "--github-app-application-id=1",
                    "--github-app-installation-id=2",
                ][..],
                "private-key",
            ),
            (&["--github-app-installation-id=2"][..], "needs"),
            (
                &[
                    "--github-app-application-id=1",
                    "--github-app-installation-id=2",
                    "--github-app-private-key-file=/k",
                    "--username=u",
                ][..],
                "cannot be used",
            ),
        ] {
            let cli = parse(&[&["--repo=r", "--root=/g"][..], bad].concat());
            let e = into_config(&cli).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn init_period_and_init_max_failures() {
        let cli = parse(&[
            "--repo=r",
            "--root=/g",
            "--init-period=100ms",
            "--init-max-failures=-1",
            "--git=/usr/bin/git",
            "--http-pprof",
        ]);
        let c = into_config(&cli).unwrap();
        assert_eq!(c.init_period, Some(Duration::from_millis(100)));
        assert_eq!(c.init_max_failures, Some(-1));
        assert_eq!(c.period, Duration::from_secs(10));
    }

    #[test]
    fn go_style_booleans_and_config() {
        let cli = Cli::parse_from([
            "git-sync",
            "--repo=git://h/site.git",
            "--root=/git",
            "--one-time",
            "--ssh-known-hosts=false",
            "--max-failures=-1",
        ]);
        assert!(cli.one_time);
        assert!(!cli.ssh_known_hosts);
        let c = into_config(&cli).unwrap();
        assert_eq!(c.link, PathBuf::from("/git/site.git"));
        assert_eq!(c.max_failures, -1);
        let bad = Cli::parse_from(["git-sync", "--root=/git"]);
        assert!(
            into_config(&bad)
                .unwrap_err()
                .to_string()
                .contains("--repo")
        );
        let hook = Cli::parse_from([
            "git-sync",
            "--repo=r",
            "--root=/g",
            "--webhook-url=ftp://x/",
        ]);
        assert!(
            into_config(&hook)
                .unwrap_err()
                .to_string()
                .contains("--webhook-url")
        );
        let https = Cli::parse_from([
            "git-sync",
            "--repo=r",
            "--root=/g",
            "--webhook-url=https://x/",
        ]);
        assert!(into_config(&https).is_ok());
    }
}
