//! The git work, in-process with libgit2 (through the `git2` crate): open or re-create the
//! repository under the root, ask the remote what the ref points at, fetch it shallowly when it is
//! new, check it out into its own worktree and publish it.
//!
//! Everything here is blocking; the sync loop runs it on a blocking thread and stops it through an
//! [`Abort`] checked from libgit2's progress callbacks.
//!
//! Layout under the root (upstream's contract):
//! ```text
//! <root>/.git/                       the repository (remote "origin", never checked out itself)
//! <root>/.git/worktrees/<sha>/       per-worktree git state (HEAD, index)
//! <root>/.worktrees/<sha>/           one checkout per synced commit; its .git file is relative
//! <root>/<link> -> .worktrees/<sha>  relative symlink
//! ```
//! A worktree is checked out under a temporary name and renamed to `<sha>` only when complete, so
//! a `.worktrees/<sha>` that exists is always whole, even after a crash.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, Direction, FetchOptions, Oid,
    ProxyOptions, RemoteCallbacks, Repository, RepositoryInitOptions,
};

use crate::config::{Auth, GitGc, Materialize, Submodules, is_full_sha};
use crate::known_hosts::{KnownHosts, ssh_host_port};
use crate::publish;
use crate::redact::{Redactor, strip_userinfo};
use crate::tree_check::{self, CheckError, UnsafeTree};

/// The local ref that keeps the fetched commit.
const TARGET_REF: &str = "refs/gitsync/target";
/// In copy mode, the commit last published (there is no symlink to read it from).
const COPY_STATE_FILE: &str = "gitsync-published";
/// The `--depth` of the last fetch, so that a restart with another one fetches again.
const DEPTH_FILE: &str = "gitsync-depth";

/// Why a sync failed. Messages may quote libgit2, which can quote URLs: callers redact them.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// libgit2 failed.
    #[error("{context}: {message}")]
    Git {
        /// What was being done.
        context: &'static str,
        /// libgit2's message.
        message: String,
        /// libgit2's error class, to tell a damaged repository from a network problem.
        class: git2::ErrorClass,
    },
    /// A file system operation failed.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The remote has no such branch or tag.
    // The second half is git's own wording, which upstream's users' alerts grep for.
    #[error("ref `{0}` was not found in the remote repository: couldn't find remote ref {0}")]
    RefNotFound(String),
    /// The remote advertises no refs at all: a repository created but not pushed to yet.
    #[error("the remote repository is empty (it has no branches or tags yet); retrying")]
    EmptyRemote,
    /// The server refused the credentials, or none were given.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Shutdown or the sync timeout stopped the sync.
    #[error("sync aborted: {0}")]
    Aborted(&'static str),
    /// The commit has an entry git refuses to check out (a path outside the worktree, `.git`,
    /// two entries of one name): nothing of it was written.
    #[error("refusing commit {sha}: {tree}")]
    UnsafeTree {
        /// The refused commit.
        sha: String,
        /// The first offending entry.
        tree: UnsafeTree,
    },
    /// A submodule's URL or path is one git-sync will not use.
    #[error("refusing submodule `{name}`: {reason}")]
    UnsafeSubmodule {
        /// The submodule's name in `.gitmodules`.
        name: String,
        /// Why.
        reason: String,
    },
}

impl SyncError {
    fn git(context: &'static str) -> impl FnOnce(git2::Error) -> SyncError {
        move |e| SyncError::Git {
            context,
            message: e.message().to_owned(),
            class: e.class(),
        }
    }

    fn io(context: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SyncError {
        let path = path.to_path_buf();
        move |source| SyncError::Io {
            context,
            path,
            source,
        }
    }

    /// Whether the error hints at a damaged repository rather than the network or the remote.
    pub fn suggests_corruption(&self) -> bool {
        matches!(
            self,
            SyncError::Git {
                class: git2::ErrorClass::Odb
                    | git2::ErrorClass::Object
                    | git2::ErrorClass::Zlib
                    | git2::ErrorClass::Repository
                    | git2::ErrorClass::Index
                    | git2::ErrorClass::Reference,
                ..
            }
        )
    }
}

/// Stops a running sync: shutdown sets the flag, the sync timeout sets the deadline.
#[derive(Clone, Debug)]
pub struct Abort {
    flag: Arc<AtomicBool>,
    deadline: Instant,
}

impl Abort {
    /// An abort that fires when `flag` is set or at `deadline`.
    pub fn new(flag: Arc<AtomicBool>, deadline: Instant) -> Self {
        Self { flag, deadline }
    }

    /// Why to stop now, if so.
    pub fn reason(&self) -> Option<&'static str> {
        if self.flag.load(Ordering::Relaxed) {
            Some("shutting down")
        } else if Instant::now() >= self.deadline {
            Some("--sync-timeout expired")
        } else {
            None
        }
    }

    fn check(&self) -> Result<(), SyncError> {
        match self.reason() {
            Some(r) => Err(SyncError::Aborted(r)),
            None => Ok(()),
        }
    }
}

/// What the syncer needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Repository URL, possibly with credentials.
    pub repo: String,
    /// Branch, tag, HEAD or full SHA.
    pub git_ref: String,
    /// Fetch depth, 0 for all history.
    pub depth: u32,
    /// Absolute root.
    pub root: PathBuf,
    /// Absolute link path.
    pub link: PathBuf,
    /// Credentials.
    pub auth: Auth,
    /// Submodule handling.
    pub submodules: Submodules,
    /// chmod g+w what is written.
    pub group_write: bool,
    /// Symlink or copy.
    pub materialize: Materialize,
    /// `--git-gc`.
    pub git_gc: GitGc,
}

/// The result of one successful sync.
#[derive(Debug, Clone)]
pub struct Synced {
    /// The published commit.
    pub sha: String,
    /// Whether this sync published: a new commit, or the same one again after its worktree was
    /// repaired (`false`: nothing to do).
    pub changed: bool,
    /// The published tree (the worktree, or the copied directory).
    pub path: PathBuf,
    /// How long the fetch took, when there was one.
    pub fetch: Option<Duration>,
}

/// Does the syncing; one per process.
#[derive(Debug)]
pub struct Syncer {
    s: Settings,
    redactor: Redactor,
    origin_url: String,
    /// The credentials `--askpass-url` gave for the next sync.
    askpass: std::sync::Mutex<Option<crate::askpass::UserPass>>,
}

impl Syncer {
    /// A syncer for `settings`; `redactor` learns the secrets it reads.
    pub fn new(settings: Settings, redactor: Redactor) -> Self {
        // libgit2 re-hashes every object it reads (with collision-detecting SHA-1) unless told
        // not to; git does not on checkout. Objects were hashed when their pack was indexed, and a
        // damaged store is caught by the start-up check, so the second pass over every blob of
        // each checkout only costs time.
        git2::opts::strict_hash_verification(false);
        if let Some(p) = &settings.auth.password {
            redactor.add(p);
        }
        let origin_url = strip_userinfo(&settings.repo);
        // libgit2 resolves a relative submodule URL (`../lib.git`) against `file:///srv/app.git`
        // to `file://srv/lib.git`, losing a slash; against the plain path it gets it right.
        let origin_url = match origin_url.strip_prefix("file://") {
            Some(path) if path.starts_with('/') => path.to_owned(),
            _ => origin_url,
        };
        Self {
            s: settings,
            redactor,
            origin_url,
            askpass: std::sync::Mutex::new(None),
        }
    }

    fn worktrees_dir(&self) -> PathBuf {
        self.s.root.join(".worktrees")
    }

    fn git_dir(&self) -> PathBuf {
        self.s.root.join(".git")
    }

    /// Whether the repository URL is served by libgit2's local transport (no shallow fetches).
    fn is_local(&self) -> bool {
        let r = &self.s.repo;
        r.starts_with("file://") || r.starts_with('/') || r.starts_with("./")
    }

    /// Makes the root usable and returns the commit currently published, if it is intact.
    ///
    /// Leftover temporaries from a crash are removed. A root that is not ours (no repository, a
    /// repository of a parent directory, a damaged object store, a link to a missing worktree) is
    /// emptied and initialised again, as upstream does, so nothing half-synced is ever served.
    pub fn prepare(&self) -> Result<Option<String>, SyncError> {
        let root = &self.s.root;
        std::fs::create_dir_all(root).map_err(SyncError::io("cannot create --root", root))?;
        let removed = publish::clean_temporaries(&self.s.link).map_err(SyncError::io(
            "cannot remove stale temporary links in",
            root,
        ))?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed temporary links left by an interrupted run"
            );
        }
        let empty = std::fs::read_dir(root)
            .map_err(SyncError::io("cannot read --root", root))?
            .next()
            .is_none();
        let mut current = None;
        if !empty {
            match self.check_existing() {
                Ok(c) => current = c,
                Err(why) => {
                    tracing::warn!(root = %root.display(), reason = %why, "root is not a usable git-sync root; emptying it and cloning again");
                    self.wipe_root()?;
                }
            }
        }
        let repo = self.open_or_init()?;
        // Only leftovers here: the worktrees of earlier commits are the sync loop's to retire,
        // after --stale-worktree-timeout counted from when they were replaced (their mtime).
        let (_, trash) = self.clean_worktrees(&repo, current.as_deref(), &|_| true, true)?;
        for t in trash {
            publish::remove_any(&t).map_err(SyncError::io("cannot remove", &t))?;
        }
        Ok(current)
    }

    /// Checks an existing root; returns the intact published commit, or why the root is unusable.
    fn check_existing(&self) -> Result<Option<String>, String> {
        let repo = Repository::open(self.git_dir()).map_err(|e| e.message().to_owned())?;
        let same = |a: &Path, b: &Path| {
            a.canonicalize()
                .ok()
                .is_some_and(|a| Some(a) == b.canonicalize().ok())
        };
        // Our repository is bare and lives in <root>/.git (see open_or_init); anything else, such
        // as upstream git-sync's non-bare root, is re-cloned.
        if !repo.is_bare() || !same(repo.path(), &self.git_dir()) {
            return Err("<root>/.git is not a bare repository made by this git-sync".to_owned());
        }
        let Some(sha) = self.published_sha() else {
            return Ok(None);
        };
        let oid = Oid::from_str(&sha).map_err(|e| e.message().to_owned())?;
        if self.s.materialize == Materialize::Symlink && !self.worktrees_dir().join(&sha).is_dir() {
            return Err(format!("the link points at a missing worktree {sha}"));
        }
        check_commit_complete(&repo, oid).map_err(|e| format!("commit {sha}: {e}"))?;
        Ok(Some(sha))
    }

    /// The commit the link publishes, read back from disk.
    pub fn published_sha(&self) -> Option<String> {
        let sha = match self.s.materialize {
            Materialize::Symlink => std::fs::read_link(&self.s.link)
                .ok()?
                .file_name()?
                .to_string_lossy()
                .into_owned(),
            Materialize::Copy => {
                if !self.s.link.is_dir() {
                    return None;
                }
                std::fs::read_to_string(self.git_dir().join(COPY_STATE_FILE))
                    .ok()?
                    .trim()
                    .to_owned()
            }
        };
        is_full_sha(&sha).then_some(sha)
    }

    fn wipe_root(&self) -> Result<(), SyncError> {
        // The root is often a volume mount point, which cannot be removed itself: empty it.
        let root = &self.s.root;
        for entry in std::fs::read_dir(root).map_err(SyncError::io("cannot read --root", root))? {
            let entry = entry.map_err(SyncError::io("cannot read --root", root))?;
            publish::remove_any(&entry.path())
                .map_err(SyncError::io("cannot empty --root", &entry.path()))?;
        }
        Ok(())
    }

    fn open_or_init(&self) -> Result<Repository, SyncError> {
        let repo = match Repository::open(self.git_dir()) {
            Ok(r) => r,
            Err(_) => {
                // Bare, in a directory this process creates: libgit2 refuses a repository whose
                // directory belongs to another user (CVE-2022-24765's ownership check), and the
                // root is often a volume owned by root or by the fsGroup (an emptyDir is root's,
                // mode 0777). Only directories created here are checked, and they are ours. The
                // worktrees do not need the main repository to have a work tree.
                let mut opts = RepositoryInitOptions::new();
                opts.initial_head("git-sync").no_reinit(false).bare(true);
                Repository::init_opts(self.git_dir(), &opts)
                    .map_err(SyncError::git("cannot initialise the repository"))?
            }
        };
        // "origin" is what users and relative submodule URLs expect; it is written without
        // credentials, which are only ever held in memory.
        let current = repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(str::to_owned));
        match current {
            Some(u) if u == self.origin_url => {}
            Some(_) => repo
                .remote_set_url("origin", &self.origin_url)
                .map_err(SyncError::git("cannot set the origin remote"))?,
            None => {
                repo.remote("origin", &self.origin_url)
                    .map_err(SyncError::git("cannot add the origin remote"))?;
            }
        }
        Ok(repo)
    }

    /// One sync: resolve the ref remotely, fetch if needed, check out and publish.
    pub fn sync(&self, current: Option<&str>, abort: &Abort) -> Result<Synced, SyncError> {
        let repo = self.open_or_init()?;
        let password = self.password()?;
        let known_hosts = self.known_hosts()?;
        let attempts = Attempts::default();
        let mut remote = repo
            .remote_anonymous(&self.s.repo)
            .map_err(SyncError::git("bad --repo"))?;

        abort.check()?;
        let heads: Vec<(String, Oid)> = {
            let cb = self.callbacks(password.as_deref(), known_hosts.as_ref(), abort, &attempts);
            let conn = remote
                .connect_auth(Direction::Fetch, Some(cb), Some(proxy()))
                .map_err(|e| self.net_error("cannot reach the repository", e, &attempts, abort))?;
            conn.list()
                .map_err(SyncError::git("cannot list the remote's refs"))?
                .iter()
                .map(|h| (h.name().to_owned(), h.oid()))
                .collect()
        };
        let (remote_ref, listed) = resolve(&heads, &self.s.git_ref)?;

        if let Some(cur) = current
            && cur == listed.to_string()
            && self.is_published_intact(cur)
        {
            // The commit is published; only a --depth other than the one it was fetched with
            // (a restart with new flags) asks for a fetch, which deepens or unshallows the
            // history and publishes nothing new.
            let mut fetch = None;
            if self.fetched_depth().is_some_and(|d| d != self.s.depth) {
                let started = Instant::now();
                let src = remote_ref.clone().unwrap_or_else(|| listed.to_string());
                self.fetch(
                    &repo,
                    &mut remote,
                    &src,
                    password.as_deref(),
                    known_hosts.as_ref(),
                    abort,
                )?;
                fetch = Some(started.elapsed());
                tracing::info!(
                    depth = self.s.depth,
                    "history fetched again for the new --depth"
                );
            }
            return Ok(Synced {
                sha: cur.to_owned(),
                changed: false,
                path: self.published_path(cur),
                fetch,
            });
        }

        // Past this point the sync publishes: a new commit, one the ref moved back to, or a
        // worktree that went missing or astray. Upstream fetches in every such case (and its
        // git_fetch_count_total counts it), even when the commit is already here; so does this,
        // which is a negotiation with nothing to download when it is.
        let mut fetch_time = None;
        let oid = 'fetch: {
            {
                let started = Instant::now();
                let src = remote_ref.clone().unwrap_or_else(|| listed.to_string());
                if let Err(e) = self.fetch(
                    &repo,
                    &mut remote,
                    &src,
                    password.as_deref(),
                    known_hosts.as_ref(),
                    abort,
                ) {
                    if let Ok(c) = repo.find_commit(listed)
                        && !matches!(e, SyncError::Aborted(_))
                    {
                        // Nothing was missing (a server that refuses to send an unadvertised
                        // SHA, say): the commit is here, use it.
                        tracing::warn!(error = %e, "fetch failed; the commit is already here");
                        break 'fetch c.id();
                    }
                    return Err(e);
                }
                fetch_time = Some(started.elapsed());
                tracing::debug!(seconds = started.elapsed().as_secs_f64(), "fetched");
                let fetched = repo
                    .find_reference(TARGET_REF)
                    .and_then(|r| r.peel_to_commit())
                    .map_err(SyncError::git("the fetched ref is not a commit"))?;
                fetched.id()
            }
        };
        abort.check()?;
        let sha = oid.to_string();
        // Before anything of the commit is written: its tree objects come from the server.
        let tree_id = repo
            .find_commit(oid)
            .map_err(SyncError::git("cannot read the commit"))?
            .tree_id();
        tree_check::check_tree(&repo, tree_id).map_err(|e| match e {
            CheckError::Git(g) => SyncError::git("cannot read the commit's tree")(g),
            CheckError::Unsafe(tree) => SyncError::UnsafeTree {
                sha: sha.clone(),
                tree,
            },
        })?;
        let path = match self.s.materialize {
            Materialize::Symlink => {
                let wt = self.ensure_worktree(oid, current, abort)?;
                publish::publish_symlink(&self.s.link, &wt)
                    .map_err(SyncError::io("cannot publish the link", &self.s.link))?;
                wt
            }
            Materialize::Copy => {
                self.publish_copy(&repo, oid)?;
                self.s.link.clone()
            }
        };
        if fetch_time.is_some() && self.gc_due() {
            // A failed compaction leaves the repository as it was: the sync stands.
            match self.gc(&repo) {
                Ok((objects, removed)) => {
                    tracing::debug!(objects, removed_files = removed, "repository compacted");
                }
                Err(e) => tracing::warn!(error = %e, "cannot compact the repository"),
            }
        }
        Ok(Synced {
            sha,
            // A republished commit (a worktree repaired) counts as a change, as upstream counts
            // it: a success, and the hooks run again.
            changed: true,
            path,
            fetch: fetch_time,
        })
    }

    fn published_path(&self, sha: &str) -> PathBuf {
        match self.s.materialize {
            Materialize::Symlink => self.worktrees_dir().join(sha),
            Materialize::Copy => self.s.link.clone(),
        }
    }

    fn is_published_intact(&self, sha: &str) -> bool {
        self.published_sha().as_deref() == Some(sha)
            && (self.s.materialize == Materialize::Copy || self.worktree_intact(sha))
    }

    /// Whether `.worktrees/<sha>` exists with its git state and is still at `sha`: a commit made
    /// inside the published worktree moves its HEAD, and then it no longer shows the synced
    /// commit (upstream repairs that too: `sync_recover_wrong_worktree_hash`).
    fn worktree_intact(&self, sha: &str) -> bool {
        let admin = self.git_dir().join("worktrees").join(sha);
        self.worktrees_dir().join(sha).is_dir()
            && std::fs::read_to_string(admin.join("HEAD")).is_ok_and(|h| h.trim() == sha)
    }

    /// Maps a libgit2 network error to a clear one, preferring what the callbacks learnt.
    fn net_error(
        &self,
        context: &'static str,
        e: git2::Error,
        attempts: &Attempts,
        abort: &Abort,
    ) -> SyncError {
        if let Some(r) = abort.reason() {
            return SyncError::Aborted(r);
        }
        if let Some(why) = attempts.auth_failure.take() {
            return SyncError::Auth(why);
        }
        if e.class() == git2::ErrorClass::Http && e.message().contains("401") {
            return SyncError::Auth(
                "the server refused the credentials (check --username and the password)".to_owned(),
            );
        }
        SyncError::Git {
            context,
            message: self.redactor.redact(e.message()),
            class: e.class(),
        }
    }

    /// Uses these credentials (from `--askpass-url`) from the next sync on.
    pub fn set_askpass(&self, up: Option<crate::askpass::UserPass>) {
        *self.askpass.lock().unwrap_or_else(|e| e.into_inner()) = up;
    }

    fn askpassed(&self) -> Option<crate::askpass::UserPass> {
        self.askpass
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn password(&self) -> Result<Option<String>, SyncError> {
        if let Some(up) = self.askpassed() {
            return Ok(Some(up.password));
        }
        if let Some(f) = &self.s.auth.password_file {
            let p = podmates_runtime::args::read_secret(f)
                .map_err(|e| SyncError::io("cannot read --password-file", f)(e.source))?;
            self.redactor.add(&p);
            return Ok(Some(p));
        }
        Ok(self.s.auth.password.clone())
    }

    fn known_hosts(&self) -> Result<Option<KnownHosts>, SyncError> {
        if !self.s.auth.ssh_known_hosts || ssh_host_port(&self.s.repo).is_none() {
            return Ok(None);
        }
        let f = &self.s.auth.ssh_known_hosts_file;
        let text = std::fs::read_to_string(f)
            .map_err(SyncError::io("cannot read --ssh-known-hosts-file", f))?;
        Ok(Some(KnownHosts::parse(&text)))
    }

    fn callbacks<'a>(
        &'a self,
        password: Option<&'a str>,
        known_hosts: Option<&'a KnownHosts>,
        abort: &'a Abort,
        attempts: &'a Attempts,
    ) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        let auth = &self.s.auth;
        let asked_user = self.askpassed().map(|up| up.username);
        cb.credentials(move |url, user_from_url, allowed| {
            if allowed.contains(CredentialType::SSH_KEY) {
                let n = attempts.ssh_keys.get();
                attempts.ssh_keys.set(n + 1);
                let user = user_from_url.unwrap_or("git");
                return match auth.ssh_key_files.get(n) {
                    Some(key) => Cred::ssh_key(user, None, key, None),
                    None => {
                        let why = if auth.ssh_key_files.is_empty() {
                            "the ssh server wants a key: set --ssh-key-file".to_owned()
                        } else {
                            "the ssh server refused every key in --ssh-key-file".to_owned()
                        };
                        attempts.auth_failure.set(Some(why.clone()));
                        Err(git2::Error::from_str(&why))
                    }
                };
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user_from_url.or(auth.username.as_deref()).unwrap_or("git"));
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                let n = attempts.userpass.get();
                attempts.userpass.set(n + 1);
                if let Some(c) = crate::config::credential_for(&auth.credentials, url) {
                    if n > 0 {
                        let why = format!("the server refused the --credential for {}", c.url);
                        attempts.auth_failure.set(Some(why.clone()));
                        return Err(git2::Error::from_str(&why));
                    }
                    let password = match (&c.password, &c.password_file) {
                        (Some(p), _) => p.clone(),
                        (None, Some(f)) => podmates_runtime::args::read_secret(f).map_err(|e| {
                            git2::Error::from_str(&format!("--credential password-file {e}"))
                        })?,
                        (None, None) => String::new(),
                    };
                    return Cred::userpass_plaintext(&c.username, &password);
                }
                let user = asked_user.as_deref().or(auth.username.as_deref());
                let why = match (user.or(user_from_url), password) {
                    _ if n > 0 => "the server refused the credentials (check --username and the password)",
                    (Some(u), Some(p)) => return Cred::userpass_plaintext(u, p),
                    // A token alone: most forges accept any user name with it.
                    (None, Some(p)) => return Cred::userpass_plaintext("git", p),
                    (_, None) => "the server wants credentials: set --username and --password-file or GITSYNC_PASSWORD",
                };
                attempts.auth_failure.set(Some(why.to_owned()));
                return Err(git2::Error::from_str(why));
            }
            Err(git2::Error::from_str("no supported authentication method"))
        });
        let repo_url = self.s.repo.clone();
        cb.certificate_check(move |cert, host| {
            let Some(hk) = cert.as_hostkey() else {
                // TLS: let libgit2 verify the certificate chain as usual.
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let Some(kh) = known_hosts else {
                return Ok(CertificateCheckStatus::CertificateOk);
            };
            let port = ssh_host_port(&repo_url).map_or(22, |(_, p)| p);
            let key = hk
                .hostkey()
                .ok_or_else(|| git2::Error::from_str("the ssh server sent no host key"))?;
            kh.check(host, port, key).map_err(|e| {
                attempts.auth_failure.set(Some(format!(
                    "{e} (--ssh-known-hosts-file; --ssh-known-hosts=false turns the check off)"
                )));
                git2::Error::from_str(&e.to_string())
            })?;
            Ok(CertificateCheckStatus::CertificateOk)
        });
        cb.transfer_progress(move |_| abort.reason().is_none());
        cb.sideband_progress(move |_| abort.reason().is_none());
        cb
    }

    /// `.worktrees/<sha>`, checked out completely; created under a temporary name and renamed.
    fn ensure_worktree(
        &self,
        oid: Oid,
        current: Option<&str>,
        abort: &Abort,
    ) -> Result<PathBuf, SyncError> {
        let sha = oid.to_string();
        let wts = self.worktrees_dir();
        let final_dir = wts.join(&sha);
        let admin = self.git_dir().join("worktrees").join(&sha);
        if self.worktree_intact(&sha) {
            return Ok(final_dir);
        }
        if final_dir.exists() {
            tracing::warn!(
                sha,
                "the worktree is not at its commit any more: checking it out again"
            );
        }
        std::fs::create_dir_all(&wts).map_err(SyncError::io("cannot create", &wts))?;
        let _ = publish::remove_any(&final_dir);
        let _ = publish::remove_any(&admin);
        std::fs::create_dir_all(&admin).map_err(SyncError::io("cannot create", &admin))?;
        let write = |name: &str, content: String| {
            let p = admin.join(name);
            std::fs::write(&p, content).map_err(SyncError::io("cannot write", &p))
        };
        let tmp = wts.join(format!(".tmp-{sha}-{}", std::process::id()));
        write("HEAD", format!("{sha}\n"))?;
        write("commondir", "../..\n".to_owned())?;
        // libgit2 takes the work tree's location from this file: the temporary directory while
        // checking out, the final one once renamed.
        write("gitdir", format!("{}\n", tmp.join(".git").display()))?;

        let _ = publish::remove_any(&tmp);
        std::fs::create_dir_all(&tmp).map_err(SyncError::io("cannot create", &tmp))?;
        // Relative, so the volume can be mounted at another path in another container. The
        // temporary directory sits at the same depth as the final one, so the path holds for both.
        let dotgit = tmp.join(".git");
        std::fs::write(&dotgit, format!("gitdir: ../../.git/worktrees/{sha}\n"))
            .map_err(SyncError::io("cannot write", &dotgit))?;
        let started = Instant::now();
        let result = (|| {
            let wrepo =
                Repository::open(&tmp).map_err(SyncError::git("cannot open the new worktree"))?;
            let commit = wrepo
                .find_commit(oid)
                .map_err(SyncError::git("cannot read the commit"))?;
            let tree = commit
                .tree()
                .map_err(SyncError::git("cannot read the commit's tree"))?;
            let baseline = current.and_then(|c| {
                let dir = wts.join(c);
                let tree = Oid::from_str(c)
                    .and_then(|o| wrepo.find_commit(o))
                    .and_then(|c| c.tree())
                    .ok()?;
                dir.is_dir().then_some((tree, dir))
            });
            let fast = write_tree(
                &wrepo,
                &tree,
                &tmp,
                baseline.as_ref().map(|(t, d)| (t, d.as_path())),
                abort,
            )?;
            if !fast {
                // .gitattributes may ask for filters (eol, ident): libgit2's checkout applies them.
                reset_dir(&tmp, &sha)?;
                let mut co = CheckoutBuilder::new();
                co.force().recreate_missing(true);
                wrepo
                    .checkout_tree(commit.as_object(), Some(&mut co))
                    .map_err(SyncError::git("checkout failed"))?;
            }
            abort.check()?;
            if self.s.submodules != Submodules::Off {
                self.update_submodules(&wrepo, self.s.submodules == Submodules::Recursive, abort)?;
            }
            if self.s.group_write {
                publish::make_group_writable(&tmp).map_err(SyncError::io("cannot chmod", &tmp))?;
                publish::make_group_writable(&admin)
                    .map_err(SyncError::io("cannot chmod", &admin))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = publish::remove_any(&tmp);
            let _ = publish::remove_any(&admin);
            return Err(e);
        }
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), "checked out");
        std::fs::rename(&tmp, &final_dir).map_err(SyncError::io("cannot rename", &tmp))?;
        write("gitdir", format!("{}\n", final_dir.join(".git").display()))?;
        // Submodules record their work tree (relative, at the same depth) in their config: point
        // it at the final name too.
        let tmp_name = tmp
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fix_submodule_worktrees(&admin.join("modules"), &tmp_name, &sha)?;
        publish::fsync_dir(&wts).map_err(SyncError::io("cannot fsync", &wts))?;
        Ok(final_dir)
    }

    fn update_submodules(
        &self,
        repo: &Repository,
        recursive: bool,
        abort: &Abort,
    ) -> Result<(), SyncError> {
        let subs = repo
            .submodules()
            .map_err(SyncError::git("cannot list submodules"))?;
        let password = self.password()?;
        let known_hosts = self.known_hosts()?;
        for mut sub in subs {
            abort.check()?;
            let attempts = Attempts::default();
            let mut fo = FetchOptions::new();
            fo.remote_callbacks(self.callbacks(
                password.as_deref(),
                known_hosts.as_ref(),
                abort,
                &attempts,
            ))
            .proxy_options(proxy());
            check_submodule(&sub, self.is_local())?;
            let mut opts = git2::SubmoduleUpdateOptions::new();
            opts.fetch(fo);
            sub.update(true, Some(&mut opts))
                .map_err(SyncError::git("submodule update failed"))?;
            if recursive {
                let srepo = sub
                    .open()
                    .map_err(SyncError::git("cannot open a submodule"))?;
                self.update_submodules(&srepo, true, abort)?;
            }
        }
        Ok(())
    }

    fn publish_copy(&self, repo: &Repository, oid: Oid) -> Result<(), SyncError> {
        let link = &self.s.link;
        if let Some(dir) = link.parent() {
            std::fs::create_dir_all(dir).map_err(SyncError::io("cannot create", dir))?;
        }
        let staged = publish::temp_sibling(link);
        std::fs::create_dir_all(&staged).map_err(SyncError::io("cannot create", &staged))?;
        let result = (|| {
            let commit = repo
                .find_commit(oid)
                .map_err(SyncError::git("cannot read the commit"))?;
            let mut co = CheckoutBuilder::new();
            co.force()
                .recreate_missing(true)
                .target_dir(&staged)
                .update_index(false);
            repo.checkout_tree(commit.as_object(), Some(&mut co))
                .map_err(SyncError::git("checkout failed"))?;
            if self.s.group_write {
                publish::make_group_writable(&staged)
                    .map_err(SyncError::io("cannot chmod", &staged))?;
            }
            publish::publish_dir(link, &staged)
                .map_err(SyncError::io("cannot publish the directory", link))
        })();
        if let Err(e) = result {
            let _ = publish::remove_any(&staged);
            return Err(e);
        }
        let state = self.git_dir().join(COPY_STATE_FILE);
        std::fs::write(&state, format!("{oid}\n")).map_err(SyncError::io("cannot write", &state))
    }

    /// Fetches `src` into the target ref with the configured depth (0: the whole history, which
    /// unshallows a shallow repository) and records the depth.
    fn fetch(
        &self,
        repo: &Repository,
        remote: &mut git2::Remote<'_>,
        src: &str,
        password: Option<&str>,
        known_hosts: Option<&KnownHosts>,
        abort: &Abort,
    ) -> Result<(), SyncError> {
        abort.check()?;
        // The fetch is a new connection that authenticates afresh.
        let attempts = Attempts::default();
        let refspec = format!("+{src}:{TARGET_REF}");
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(self.callbacks(password, known_hosts, abort, &attempts))
            .proxy_options(proxy())
            .download_tags(AutotagOption::None)
            .update_fetchhead(false);
        if !self.is_local() {
            if self.s.depth > 0 {
                fo.depth(i32::try_from(self.s.depth).unwrap_or(i32::MAX));
            } else if repo.is_shallow() {
                // libgit2's GIT_FETCH_DEPTH_UNSHALLOW.
                fo.depth(i32::MAX);
            }
        }
        remote
            .fetch(&[refspec.as_str()], Some(&mut fo), None)
            .map_err(|e| self.net_error("fetch failed", e, &attempts, abort))?;
        if !self.is_local() {
            let f = self.git_dir().join(DEPTH_FILE);
            std::fs::write(&f, format!("{}\n", self.s.depth))
                .map_err(SyncError::io("cannot write", &f))?;
        }
        Ok(())
    }

    /// The `--depth` the repository was last fetched with, when known.
    fn fetched_depth(&self) -> Option<u32> {
        std::fs::read_to_string(self.git_dir().join(DEPTH_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether `--git-gc` asks for a compaction now (called after a fetch).
    fn gc_due(&self) -> bool {
        if self.s.git_gc == GitGc::Off {
            return false;
        }
        let objects = self.git_dir().join("objects");
        let count = |dir: &Path, keep: &dyn Fn(&str) -> bool| {
            std::fs::read_dir(dir).map_or(0, |rd| {
                rd.flatten()
                    .filter(|e| keep(&e.file_name().to_string_lossy()))
                    .count()
            })
        };
        let packs = count(&objects.join("pack"), &|n| n.ends_with(".pack"));
        let loose_dirs = count(&objects, &|n| {
            n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit())
        });
        match self.s.git_gc {
            // One pack and nothing loose: the first fetch's pack, nothing to compact.
            GitGc::Always | GitGc::Aggressive => packs > 1 || loose_dirs > 0,
            // git's gc.autoPackLimit is 50; each fetch here adds one pack, so compact sooner.
            _ => packs > 8 || loose_dirs > 64,
        }
    }

    /// Compacts the repository in-process, as `git gc --prune=now` would: one new pack holding
    /// every object reachable from the commits still in use (the fetched target, every worktree's
    /// commit, the copy-mode commit), then every other pack and loose object removed. Returns the
    /// objects packed and the files removed.
    pub fn gc(&self, repo: &Repository) -> Result<(usize, usize), SyncError> {
        let objects = self.git_dir().join("objects");
        let pack_dir = objects.join("pack");
        let mut tips: Vec<Oid> = Vec::new();
        if let Ok(Some(o)) = repo.find_reference(TARGET_REF).map(|r| r.target()) {
            tips.push(o);
        }
        let in_use = std::fs::read_dir(self.worktrees_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .chain(self.published_sha());
        for name in in_use {
            if is_full_sha(&name)
                && let Ok(o) = Oid::from_str(&name)
                && repo.find_commit(o).is_ok()
            {
                tips.push(o);
            }
        }
        if tips.is_empty() {
            return Ok((0, 0));
        }
        let mut walk = repo
            .revwalk()
            .map_err(SyncError::git("gc: cannot walk the history"))?;
        for t in &tips {
            walk.push(*t)
                .map_err(SyncError::git("gc: cannot walk the history"))?;
        }
        let mut pb = repo
            .packbuilder()
            .map_err(SyncError::git("gc: cannot build a pack"))?;
        pb.set_threads(1);
        pb.insert_walk(&mut walk)
            .map_err(SyncError::git("gc: cannot collect the objects in use"))?;
        let packed = pb.object_count();
        pb.write(&pack_dir, 0)
            .map_err(SyncError::git("gc: cannot write the pack"))?;
        let Some(name) = pb.name().ok().flatten().map(|n| format!("pack-{n}.")) else {
            return Ok((packed, 0));
        };
        // Only now that the new pack and its index are on disk: everything else goes.
        let mut removed = 0;
        for e in std::fs::read_dir(&pack_dir)
            .map_err(SyncError::io("cannot read", &pack_dir))?
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("pack-") && !n.starts_with(&name) && !n.ends_with(".keep") {
                publish::remove_any(&e.path())
                    .map_err(SyncError::io("cannot remove", &e.path()))?;
                removed += 1;
            }
        }
        for e in std::fs::read_dir(&objects)
            .map_err(SyncError::io("cannot read", &objects))?
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()) {
                publish::remove_any(&e.path())
                    .map_err(SyncError::io("cannot remove", &e.path()))?;
                removed += 1;
            }
        }
        Ok((packed, removed))
    }

    /// Retires worktrees other than `current` (and those `keep` accepts): each is renamed to a
    /// `.trash-` name, which is instant and frees its SHA's name at once, and its git state is
    /// removed. Also removes git state left without a worktree and, `at_start`, every temporary
    /// and trash directory. Returns the retired SHAs and the trash directories,
    /// which the caller deletes off the sync loop (a large tree takes a while).
    pub fn clean_worktrees(
        &self,
        repo: &Repository,
        current: Option<&str>,
        keep: &dyn Fn(&str) -> bool,
        at_start: bool,
    ) -> Result<(Vec<String>, Vec<PathBuf>), SyncError> {
        let wts = self.worktrees_dir();
        let mut removed = Vec::new();
        let mut trash = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&wts) {
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if Some(name.as_str()) == current {
                    continue;
                }
                if name.starts_with('.') {
                    // `.tmp-` (a checkout in progress) and `.trash-`: only leftovers at start.
                    if at_start {
                        publish::remove_any(&entry.path())
                            .map_err(SyncError::io("cannot remove", &entry.path()))?;
                    }
                    continue;
                }
                if keep(&name) {
                    continue;
                }
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let to = wts.join(format!(".trash-{name}-{}-{nanos}", std::process::id()));
                std::fs::rename(entry.path(), &to)
                    .map_err(SyncError::io("cannot retire", &entry.path()))?;
                trash.push(to);
                removed.push(name);
            }
        }
        let admin = repo.path().join("worktrees");
        if let Ok(rd) = std::fs::read_dir(&admin) {
            for entry in rd.flatten() {
                let name = entry.file_name();
                if !wts.join(&name).is_dir() {
                    publish::remove_any(&entry.path())
                        .map_err(SyncError::io("cannot remove", &entry.path()))?;
                }
            }
        }
        Ok((removed, trash))
    }

    /// Opens the repository for housekeeping.
    pub fn open(&self) -> Result<Repository, SyncError> {
        Repository::open(self.git_dir()).map_err(SyncError::git("cannot open the repository"))
    }
}

/// How much of the pack files libgit2 keeps mapped at once, and in windows of what size.
const PACK_MAPPED_LIMIT: usize = 8 << 20;
const PACK_WINDOW_SIZE: usize = 1 << 20;

/// Sets libgit2's process-wide options. Call it once from `main`, before the runtime starts
/// threads.
///
/// - Pack mappings: libgit2's 64-bit defaults (1 GiB windows, 8 GiB in all) map a whole pack
///   and keep it mapped, so a first sync's resident memory grows with the repository: 45 MB for
///   a 31 MB pack. With 1 MiB windows and 8 MiB in all it stays near 22 MB, and the sync is no
///   slower (`cargo xtask bench git-sync`).
/// - Socket timeouts: `--sync-timeout` is otherwise checked only from libgit2's progress
///   callbacks, which a server that accepts the connection and then sends nothing never calls.
///   With the connect and read timeouts set to it, such a sync fails after `--sync-timeout`.
pub fn configure_libgit2(sync_timeout: Duration) {
    let ms = i32::try_from(sync_timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: these libgit2 options are global and unsynchronised, hence `unsafe` in git2: they
    // must not race with another libgit2 call. `main` calls this before any other thread exists
    // and before any other libgit2 call, so nothing can race with it.
    #[allow(unsafe_code)]
    let set = unsafe {
        git2::opts::set_mwindow_size(PACK_WINDOW_SIZE)
            .and_then(|()| git2::opts::set_mwindow_mapped_limit(PACK_MAPPED_LIMIT))
            .and_then(|()| git2::opts::set_server_connect_timeout_in_milliseconds(ms))
            .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(ms))
    };
    if let Err(e) = set {
        // Not fatal: libgit2 keeps its defaults, which use more memory and wait longer.
        eprintln!("git-sync: cannot set libgit2's options: {e}");
    }
}

/// Replaces `from` by `to` in the `core.worktree` of every submodule config below `dir`.
fn fix_submodule_worktrees(dir: &Path, from: &str, to: &str) -> Result<(), SyncError> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in rd.flatten() {
        let path = entry.path();
        if path.is_dir() {
            fix_submodule_worktrees(&path, from, to)?;
        } else if entry.file_name() == "config" {
            let text =
                std::fs::read_to_string(&path).map_err(SyncError::io("cannot read", &path))?;
            if text.contains(from) {
                std::fs::write(&path, text.replace(from, to))
                    .map_err(SyncError::io("cannot write", &path))?;
            }
        }
    }
    Ok(())
}

/// Refuses a submodule whose path leaves the worktree or names `.git`, or whose URL asks for a
/// transport git-sync will not run: a transport helper (`ext::sh -c ...` runs a command, which git
/// itself refuses by default), an option (`-u...`, CVE-2018-17456), or a local path when the
/// superproject is remote (a hostile `.gitmodules` would check out another repository of this
/// machine, a secret one, into the published tree). Local submodules of a local superproject are
/// allowed: whoever configured a local `--repo` chose local transports.
fn check_submodule(sub: &git2::Submodule<'_>, local_superproject: bool) -> Result<(), SyncError> {
    use std::os::unix::ffi::OsStrExt;
    let refuse = |reason: String| SyncError::UnsafeSubmodule {
        name: String::from_utf8_lossy(sub.name_bytes()).into_owned(),
        reason,
    };
    for c in sub.path().components() {
        let std::path::Component::Normal(n) = c else {
            return Err(refuse(format!(
                "its path `{}` leaves the worktree",
                sub.path().display()
            )));
        };
        tree_check::check_name(n.as_bytes(), 0o160000)
            .map_err(|r| refuse(format!("its path `{}`: {r}", sub.path().display())))?;
    }
    let url = String::from_utf8_lossy(sub.opt_url_bytes().unwrap_or_default());
    if url.starts_with('-') {
        return Err(refuse("its URL starts with `-`".to_owned()));
    }
    if let Some((scheme, _)) = url.split_once("::")
        && !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err(refuse(format!("the transport `{scheme}::` is not allowed")));
    }
    let local = url.starts_with("file:") || url.starts_with('/');
    if local && !local_superproject {
        return Err(refuse(format!(
            "a local URL (`{url}`) in a remote repository is not allowed"
        )));
    }
    Ok(())
}

/// Empties a work tree being built and writes its `.git` file again.
fn reset_dir(dir: &Path, sha: &str) -> Result<(), SyncError> {
    publish::remove_any(dir).map_err(SyncError::io("cannot remove", dir))?;
    std::fs::create_dir_all(dir).map_err(SyncError::io("cannot create", dir))?;
    let dotgit = dir.join(".git");
    std::fs::write(&dotgit, format!("gitdir: ../../.git/worktrees/{sha}\n"))
        .map_err(SyncError::io("cannot write", &dotgit))
}

/// Writes `tree` into the empty work tree `dir` and its index, the way a checkout does, but
/// without re-writing what did not change: a file whose blob and mode are the same as in the
/// published worktree (`baseline`: its tree and directory) is hard-linked from there. Worktrees
/// are read-only snapshots for their consumers, so sharing inodes between them is safe, and a
/// push that changes a few files publishes in the time it takes to write those files.
///
/// Returns `Ok(false)` without finishing when the tree has a `.gitattributes` file (its filters,
/// eol conversion and ident, are left to libgit2's checkout) or a name that is not UTF-8.
///
/// The tree was checked by [`tree_check::check_tree`]; the writer still never follows what stands
/// at a path (directories by `create_dir`, files with `O_EXCL`).
fn write_tree(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    dir: &Path,
    baseline: Option<(&git2::Tree<'_>, &Path)>,
    abort: &Abort,
) -> Result<bool, SyncError> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    // Path → (blob, mode) of the published tree. One walk up front: looking each path up in the
    // tree instead re-parses the large directories (not kept in libgit2's cache) every time.
    let started = Instant::now();
    let mut base: std::collections::HashMap<String, (Oid, i32)> = std::collections::HashMap::new();
    if let Some((btree, _)) = baseline {
        btree
            .walk(git2::TreeWalkMode::PreOrder, |root, e| {
                if e.kind() == Some(git2::ObjectType::Blob)
                    && let Ok(n) = e.name()
                {
                    base.insert(format!("{root}{n}"), (e.id(), e.filemode()));
                }
                git2::TreeWalkResult::Ok
            })
            .map_err(SyncError::git("cannot walk the published tree"))?;
    }
    let mut failure: Option<SyncError> = None;
    let mut filtered = false;
    let mut linked = 0usize;
    let mut written = 0usize;
    let walked = tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        let Ok(name) = entry.name() else {
            // A name that is not UTF-8: libgit2's checkout writes it as bytes.
            filtered = true;
            return git2::TreeWalkResult::Abort;
        };
        let rel = format!("{root}{name}");
        let path = dir.join(&rel);
        let res: Result<(), SyncError> = (|| {
            match entry.kind() {
                Some(git2::ObjectType::Tree) | Some(git2::ObjectType::Commit) => {
                    // Directories, and submodules' mount points. Never `create_dir_all`: the
                    // parent was made by this walk, and nothing may already stand at the path
                    // (a symlink there would be followed). `tree_check` refused such trees
                    // already; this keeps the writer safe on its own.
                    std::fs::create_dir(&path).map_err(SyncError::io("cannot create", &path))
                }
                Some(git2::ObjectType::Blob) => {
                    if name == ".gitattributes" {
                        filtered = true;
                        return Ok(());
                    }
                    let mode = entry.filemode();
                    if let Some((_, bdir)) = baseline
                        && base.get(&rel) == Some(&(entry.id(), mode))
                        && std::fs::hard_link(bdir.join(&rel), &path).is_ok()
                    {
                        linked += 1;
                        return Ok(());
                    }
                    let blob = repo
                        .find_blob(entry.id())
                        .map_err(SyncError::git("cannot read a blob"))?;
                    if mode == 0o120000 {
                        let target = std::ffi::OsStr::from_bytes(blob.content());
                        std::os::unix::fs::symlink(target, &path)
                            .map_err(SyncError::io("cannot create symlink", &path))?;
                    } else {
                        // O_EXCL: fails on anything already at the path, a symlink included,
                        // instead of writing where it points.
                        std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(&path)
                            .and_then(|mut f| std::io::Write::write_all(&mut f, blob.content()))
                            .map_err(SyncError::io("cannot write", &path))?;
                        if mode == 0o100755 {
                            let perm = std::fs::Permissions::from_mode(0o755);
                            std::fs::set_permissions(&path, perm)
                                .map_err(SyncError::io("cannot chmod", &path))?;
                        }
                    }
                    written += 1;
                    Ok(())
                }
                _ => Ok(()),
            }
        })();
        if let Err(e) = res {
            failure = Some(e);
            return git2::TreeWalkResult::Abort;
        }
        if filtered || (written.is_multiple_of(256) && abort.reason().is_some()) {
            return git2::TreeWalkResult::Abort;
        }
        git2::TreeWalkResult::Ok
    });
    if let Some(e) = failure {
        return Err(e);
    }
    abort.check()?;
    if filtered {
        return Ok(false);
    }
    walked.map_err(SyncError::git("cannot walk the tree"))?;

    let wrote = started.elapsed();
    // The index, with the stat data of the files just written, so that `git status` in the
    // worktree is clean without re-reading every file.
    let mut index = repo
        .index()
        .map_err(SyncError::git("cannot open the worktree's index"))?;
    index
        .read_tree(tree)
        .map_err(SyncError::git("cannot build the index"))?;
    let entries: Vec<git2::IndexEntry> = index.iter().collect();
    for mut e in entries {
        let rel = String::from_utf8_lossy(&e.path).into_owned();
        let Ok(m) = std::fs::symlink_metadata(dir.join(&rel)) else {
            continue;
        };
        // The index keeps 32-bit stat fields; git truncates the same way.
        let t = |secs: i64, nanos: i64| git2::IndexTime::new(secs as i32, nanos as u32);
        e.ctime = t(m.ctime(), m.ctime_nsec());
        e.mtime = t(m.mtime(), m.mtime_nsec());
        e.dev = m.dev() as u32;
        e.ino = m.ino() as u32;
        e.uid = m.uid();
        e.gid = m.gid();
        e.file_size = m.size() as u32;
        index
            .add(&e)
            .map_err(SyncError::git("cannot update the index"))?;
    }
    index
        .write()
        .map_err(SyncError::git("cannot write the index"))?;
    tracing::debug!(
        linked,
        written,
        files_seconds = wrote.as_secs_f64(),
        index_seconds = (started.elapsed() - wrote).as_secs_f64(),
        "work tree written"
    );
    Ok(true)
}

/// What the credential and host-key callbacks learnt during one sync.
#[derive(Default)]
struct Attempts {
    ssh_keys: Cell<usize>,
    userpass: Cell<u32>,
    auth_failure: Cell<Option<String>>,
}

fn proxy() -> ProxyOptions<'static> {
    // Honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY like git does.
    let mut p = ProxyOptions::new();
    p.auto();
    p
}

/// Finds the remote ref to fetch and the commit it advertises.
fn resolve(heads: &[(String, Oid)], git_ref: &str) -> Result<(Option<String>, Oid), SyncError> {
    if heads.is_empty() {
        return Err(SyncError::EmptyRemote);
    }
    let find = |name: &str| heads.iter().find(|(n, _)| n == name).map(|(_, o)| *o);
    if is_full_sha(git_ref) {
        let oid = Oid::from_str(git_ref).map_err(SyncError::git("bad --ref"))?;
        // Prefer fetching an advertised name: servers speaking protocol v0 refuse other SHAs
        // unless configured to allow them.
        let name = heads
            .iter()
            .find(|(n, o)| *o == oid && !n.ends_with("^{}"))
            .map(|(n, _)| n.clone());
        return Ok((name, oid));
    }
    let candidates: Vec<String> = if git_ref == "HEAD" || git_ref.starts_with("refs/") {
        vec![git_ref.to_owned()]
    } else {
        vec![
            format!("refs/heads/{git_ref}"),
            format!("refs/tags/{git_ref}"),
        ]
    };
    for c in candidates {
        // An annotated tag is advertised twice: the tag object, and `^{}` for the commit.
        if let Some(oid) = find(&format!("{c}^{{}}")).or_else(|| find(&c)) {
            return Ok((Some(c), oid));
        }
    }
    Err(SyncError::RefNotFound(git_ref.to_owned()))
}

/// Checks that a commit, its tree and every object below it are present: what `git fsck
/// --connectivity-only` would check for the published commit.
fn check_commit_complete(repo: &Repository, oid: Oid) -> Result<(), String> {
    let commit = repo.find_commit(oid).map_err(|e| e.message().to_owned())?;
    let tree = commit.tree().map_err(|e| e.message().to_owned())?;
    let odb = repo.odb().map_err(|e| e.message().to_owned())?;
    let mut missing = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        if entry.kind() == Some(git2::ObjectType::Commit) {
            return git2::TreeWalkResult::Ok; // a submodule: lives in its own repository
        }
        if !odb.exists(entry.id()) {
            missing = Some(entry.id());
            return git2::TreeWalkResult::Abort;
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|e| e.message().to_owned())
    .or_else(|e| if missing.is_some() { Ok(()) } else { Err(e) })?;
    match missing {
        Some(m) => Err(format!("object {m} is missing")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).unwrap()
    }

    #[test]
    fn resolves_branches_tags_and_shas() {
        let heads = vec![
            ("HEAD".to_owned(), oid(1)),
            ("refs/heads/main".to_owned(), oid(1)),
            ("refs/tags/v1".to_owned(), oid(2)),
            ("refs/tags/v1^{}".to_owned(), oid(3)),
            ("refs/tags/light".to_owned(), oid(4)),
        ];
        assert_eq!(resolve(&heads, "HEAD").unwrap().1, oid(1));
        assert_eq!(
            resolve(&heads, "main").unwrap(),
            (Some("refs/heads/main".to_owned()), oid(1))
        );
        assert_eq!(resolve(&heads, "v1").unwrap().1, oid(3));
        assert_eq!(resolve(&heads, "light").unwrap().1, oid(4));
        let sha = oid(1).to_string();
        assert_eq!(resolve(&heads, &sha).unwrap().0.as_deref(), Some("HEAD"));
        let other = oid(9).to_string();
        assert_eq!(resolve(&heads, &other).unwrap(), (None, oid(9)));
        assert!(matches!(
            resolve(&heads, "nope"),
            Err(SyncError::RefNotFound(_))
        ));
    }
}
