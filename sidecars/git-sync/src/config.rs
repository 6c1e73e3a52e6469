//! The validated configuration [`crate::run`] works from. The command line lives in `main.rs`;
//! everything here is already checked and typed.

use std::path::PathBuf;
use std::time::Duration;

/// Everything git-sync needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The repository URL (`https://`, `http://`, `git://`, `ssh://`, scp-like, `file://` or a path).
    /// May carry credentials; never logged as is.
    pub repo: String,
    /// Branch, tag, `HEAD` or a full 40-hex commit SHA.
    pub git_ref: String,
    /// Shallow-fetch depth; 0 fetches full history.
    pub depth: u32,
    /// Absolute root directory: `.git`, `.worktrees` and (by default) the link live here.
    pub root: PathBuf,
    /// Absolute path of the published link (or directory with `--materialize copy`).
    pub link: PathBuf,
    /// Time between syncs.
    pub period: Duration,
    /// Time between syncs until the first success (`--init-period`); `period` when unset.
    pub init_period: Option<Duration>,
    /// Like `max_failures`, until the first success (`--init-max-failures`).
    pub init_max_failures: Option<i64>,
    /// Limit for one sync (fetch and checkout).
    pub sync_timeout: Duration,
    /// Consecutive failures allowed: the process exits when that many have happened in a row;
    /// 0 exits on the first failure, negative retries forever.
    pub max_failures: i64,
    /// Sync once (and run hooks), then exit 0 on success and 1 on failure.
    pub one_time: bool,
    /// Credentials and host-key checking.
    pub auth: Auth,
    /// Submodule handling.
    pub submodules: Submodules,
    /// Touched after each sync that publishes a new commit.
    pub touch_file: Option<PathBuf>,
    /// JSON description of the last error; removed after a success.
    pub error_file: Option<PathBuf>,
    /// Program run in the new worktree after each publish.
    pub exechook: Option<ExecHook>,
    /// HTTP request sent after each publish.
    pub webhook: Option<WebHook>,
    /// A signal (number) that starts a sync at once.
    pub sync_on_signal: Option<i32>,
    /// Serve upstream's `/` (503 until the first sync, then 200) on the admin server.
    pub http_root_route: bool,
    /// How long a replaced worktree is kept for readers still inside it.
    pub stale_worktree_timeout: Duration,
    /// Make everything written group-writable (for consumers running as another user of the group).
    pub group_write: bool,
    /// `/readyz` fails when the last successful sync is older than this.
    pub stale_after: Option<Duration>,
    /// Enables `POST /sync`; requests must carry `Authorization: Bearer <content of this file>`.
    pub sync_token_file: Option<PathBuf>,
    /// How the commit is published.
    pub materialize: Materialize,
    /// `--git-gc`.
    pub git_gc: GitGc,
}

/// Credentials and ssh host-key settings.
#[derive(Clone, Default)]
pub struct Auth {
    /// User name for http(s) basic auth.
    pub username: Option<String>,
    /// Password or token given in the environment.
    pub password: Option<String>,
    /// File holding the password or token; re-read before every sync so rotated secrets apply.
    pub password_file: Option<PathBuf>,
    /// ssh private keys, tried in order.
    pub ssh_key_files: Vec<PathBuf>,
    /// Whether ssh host keys are checked.
    pub ssh_known_hosts: bool,
    /// The known_hosts file used when checking.
    pub ssh_known_hosts_file: PathBuf,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never appears in debug output either.
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "REDACTED"))
            .field("password_file", &self.password_file)
            .field("ssh_key_files", &self.ssh_key_files)
            .field("ssh_known_hosts", &self.ssh_known_hosts)
            .field("ssh_known_hosts_file", &self.ssh_known_hosts_file)
            .finish()
    }
}

/// `--submodules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Submodules {
    /// Initialise and update submodules, and theirs.
    #[default]
    Recursive,
    /// Only the top level's submodules.
    Shallow,
    /// Leave submodules alone.
    Off,
}

/// `--git-gc`: when the repository is compacted (upstream runs `git gc`; here the objects still
/// in use are repacked in-process and the rest removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum GitGc {
    /// When more than 8 packs (one per fetch) or 64 loose-object directories have accumulated
    /// (the default here: a full repack after every fetch would delay the next sync of a large
    /// repository).
    #[default]
    Auto,
    /// After every sync that fetched, unless the repository is one pack already (upstream's
    /// default).
    Always,
    /// As `always` (libgit2 has no separate aggressive delta search).
    Aggressive,
    /// Never: the repository grows with every fetch.
    Off,
}

/// `--materialize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Materialize {
    /// A relative symlink to `.worktrees/<sha>` (upstream's contract).
    #[default]
    Symlink,
    /// A real directory holding the files (no `.git`), swapped atomically.
    Copy,
}

/// `--exechook-*`.
#[derive(Debug, Clone)]
pub struct ExecHook {
    /// The program, run without arguments in the new worktree.
    pub command: PathBuf,
    /// Limit for one run.
    pub timeout: Duration,
    /// Wait before retrying a failed run.
    pub backoff: Duration,
}

/// `--webhook-*`.
#[derive(Debug, Clone)]
pub struct WebHook {
    /// `http://` URL called after each publish.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Status that counts as success; 0 means fire and forget.
    pub success_status: u16,
    /// Limit for one call.
    pub timeout: Duration,
    /// Wait before retrying a failed call.
    pub backoff: Duration,
}

/// The default link name: the last path segment of the repository, as upstream does.
pub fn default_link_name(repo: &str) -> String {
    let trimmed = repo.trim_end_matches('/');
    let last = trimmed.rsplit(['/', ':']).next().unwrap_or(trimmed);
    if last.is_empty() {
        "repo".to_owned()
    } else {
        last.to_owned()
    }
}

/// Whether `s` is a full commit SHA (40 hex digits; abbreviations are refused like upstream does).
pub fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Signal names and numbers accepted by `--sync-on-signal` (Linux numbering).
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) && n != 9 && n != 19 {
            return Ok(n);
        }
        return Err(format!("`{s}` is not a signal that can be caught"));
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "USR1" => 10,
        "USR2" => 12,
        "ALRM" => 14,
        "TERM" => 15,
        "CONT" => 18,
        "WINCH" => 28,
        _ => {
            return Err(format!(
                "unknown signal `{s}` (use e.g. SIGHUP, SIGUSR1 or a number)"
            ));
        }
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_name_is_last_segment() {
        assert_eq!(default_link_name("https://h/org/repo.git"), "repo.git");
        assert_eq!(default_link_name("git@h:org/site/"), "site");
        assert_eq!(default_link_name("git@h:site"), "site");
    }

    #[test]
    fn shas_and_signals() {
        assert!(is_full_sha(&"a".repeat(40)));
        assert!(!is_full_sha("abc123"));
        assert_eq!(parse_signal("SIGHUP"), Ok(1));
        assert_eq!(parse_signal("usr1"), Ok(10));
        assert_eq!(parse_signal("12"), Ok(12));
        assert!(parse_signal("9").is_err());
        assert!(parse_signal("SIGFOO").is_err());
    }
}
