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
    /// `--github-app-*`: GitHub App installation tokens as the https password.
    pub github_app: Option<crate::github_app::GitHubApp>,
    /// `--askpass-url`: where the credentials are asked for before each sync.
    pub askpass_url: Option<String>,
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
    /// `--credential`: user and password per URL (submodules on other hosts, say).
    pub credentials: Vec<Credential>,
}

/// One `--credential`: used for the URLs it is a prefix of (the longest such wins).
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The URL (or URL prefix) it applies to.
    pub url: String,
    /// The user name.
    pub username: String,
    /// The password or token, given inline.
    #[serde(default)]
    pub password: Option<String>,
    /// Or a file holding it, read when the credential is used.
    #[serde(default, rename = "password-file")]
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "REDACTED"))
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// Parses one `--credential` value as upstream does: a JSON object, or a JSON list of them;
/// checks what upstream checks.
pub fn parse_credentials(s: &str) -> Result<Vec<Credential>, String> {
    let s = s.trim();
    let list: Vec<Credential> = if s.starts_with('[') {
        serde_json::from_str(s)
    } else {
        serde_json::from_str(s).map(|c| vec![c])
    }
    .map_err(|e| format!("not a JSON credential ({{\"url\", \"username\", \"password\" or \"password-file\"}}): {e}"))?;
    for c in &list {
        if c.url.is_empty() {
            return Err("the URL must be specified".to_owned());
        }
        if c.username.is_empty() {
            return Err(format!("{}: the username must be specified", c.url));
        }
        match (&c.password, &c.password_file) {
            (None, None) => {
                return Err(format!(
                    "{}: a password or password-file must be specified",
                    c.url
                ));
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}: only one of password and password-file may be specified",
                    c.url
                ));
            }
            _ => {}
        }
    }
    Ok(list)
}

/// The credential for `url`: the one with the longest URL that `url` starts with.
pub fn credential_for<'a>(creds: &'a [Credential], url: &str) -> Option<&'a Credential> {
    let url = crate::redact::strip_userinfo(url);
    let matches = |prefix: &str| {
        let prefix = prefix.trim_end_matches('/');
        // On a boundary: `http://h:1` is not a prefix of `http://h:10/x`.
        url.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    creds
        .iter()
        .filter(|c| matches(&crate::redact::strip_userinfo(&c.url)))
        .max_by_key(|c| c.url.len())
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
            .field("credentials", &self.credentials)
            .finish()
    }
}

#[cfg(test)]
mod credential_tests {
    use super::*;

    #[test]
    fn credentials_parse_and_match_by_longest_prefix() {
        let one =
            parse_credentials(r#"{"url":"https://h/org","username":"u","password":"p"}"#).unwrap();
        assert_eq!(one.len(), 1);
        let list = parse_credentials(
            r#"[{"url":"https://h","username":"a","password-file":"/f"},
                {"url":"https://h/org/","username":"b","password":"p"}]"#,
        )
        .unwrap();
        assert_eq!(
            credential_for(&list, "https://h/org/repo.git")
                .unwrap()
                .username,
            "b"
        );
        assert_eq!(
            credential_for(&list, "https://h/other.git")
                .unwrap()
                .username,
            "a"
        );
        assert_eq!(
            credential_for(&list, "https://user:pw@h/org/x")
                .unwrap()
                .username,
            "b"
        );
        assert!(credential_for(&list, "https://h2/x").is_none());
        assert!(credential_for(&list, "https://hx/x").is_none());
        for bad in [
            r#"{"url":"","username":"u","password":"p"}"#,
            r#"{"url":"https://h","username":"","password":"p"}"#,
            r#"{"url":"https://h","username":"u"}"#,
            r#"{"url":"https://h","username":"u","password":"p","password-file":"/f"}"#,
            r#"{"url":"https://h","username":"u","pasword":"typo"}"#,
            "not json",
        ] {
            assert!(parse_credentials(bad).is_err(), "{bad}");
        }
        assert!(
            !format!("{list:?}").contains("\"p\""),
            "a password in Debug output"
        );
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

/// A `--sync-on-signal` value that is not a signal git-sync can wait for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// A number that is no signal, or one that cannot be caught (KILL, STOP).
    #[error("`{0}` is not a signal that can be caught")]
    Uncatchable(String),
    /// A name that is none of those accepted.
    #[error("unknown signal `{0}` (use e.g. SIGHUP, SIGUSR1 or a number)")]
    Unknown(String),
}

/// Signal names and numbers accepted by `--sync-on-signal` (Linux numbering).
pub fn parse_signal(s: &str) -> Result<i32, SignalError> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) && n != 9 && n != 19 {
            return Ok(n);
        }
        return Err(SignalError::Uncatchable(s.to_owned()));
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
            return Err(SignalError::Unknown(s.to_owned()));
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
