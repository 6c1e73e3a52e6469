//! Real git servers on loopback for the integration tests: `git daemon` (git://), `git
//! http-backend` behind a small CGI-forwarding HTTP server with basic auth (smart HTTP), and
//! OpenSSH's `sshd` (ssh://), plus the upstream repository they serve and the git-sync process.
//! Every child process is killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_git-sync");

/// Runs git with a fixed identity; panics with its stderr on failure; returns stdout.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    require("/usr/bin/git");
    let out = podmates_testkit::proc::run_ok(
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir),
    );
    out.trim().to_owned()
}

pub(crate) use podmates_testkit::{Proc, free_port, require, wait_port, wait_until};

/// The upstream: a bare repository `<dir>/srv/repo.git` and a clone `<dir>/work` to push from.
pub(crate) struct Upstream {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) bare: PathBuf,
    pub(crate) work: PathBuf,
    n: u32,
}

impl Upstream {
    /// A repository with one commit on `main` (file `VERSION` = 1).
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let srv = dir.path().join("srv");
        std::fs::create_dir_all(&srv).unwrap();
        let bare = srv.join("repo.git");
        git(&srv, &["init", "-q", "--bare", "-b", "main", "repo.git"]);
        // Let clients fetch commits that are not branch tips (what GitHub allows).
        git(
            &bare,
            &["config", "uploadpack.allowReachableSHA1InWant", "true"],
        );
        git(&bare, &["config", "http.receivepack", "false"]);
        let work = dir.path().join("work");
        git(dir.path(), &["clone", "-q", bare.to_str().unwrap(), "work"]);
        git(&work, &["checkout", "-q", "-b", "main"]);
        // Files that never change, one executable, and a symlink.
        std::fs::write(work.join("static.txt"), "same in every commit\n").unwrap();
        std::fs::write(work.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(
            work.join("run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("static.txt", work.join("alias.txt")).unwrap();
        let mut up = Self {
            dir,
            bare,
            work,
            n: 0,
        };
        up.commit();
        up
    }

    /// Commits a new `VERSION` (and `COPY` with the same content) and pushes; returns the SHA.
    pub(crate) fn commit(&mut self) -> String {
        self.n += 1;
        let v = self.n.to_string();
        std::fs::write(self.work.join("VERSION"), &v).unwrap();
        std::fs::write(self.work.join("COPY"), &v).unwrap();
        std::fs::create_dir_all(self.work.join("sub")).unwrap();
        std::fs::write(self.work.join("sub/file.txt"), format!("sub {v}\n")).unwrap();
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", &format!("commit {v}")]);
        git(&self.work, &["push", "-q", "origin", "main"]);
        self.head()
    }

    /// The SHA of `main`.
    pub(crate) fn head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Rewrites history: resets to the first commit, commits anew and force-pushes.
    pub(crate) fn force_push(&mut self) -> String {
        let first = git(&self.work, &["rev-list", "--max-parents=0", "HEAD"]);
        git(&self.work, &["reset", "-q", "--hard", &first]);
        self.n += 100;
        std::fs::write(self.work.join("VERSION"), self.n.to_string()).unwrap();
        std::fs::write(self.work.join("COPY"), self.n.to_string()).unwrap();
        git(&self.work, &["commit", "-q", "-am", "rewritten"]);
        git(&self.work, &["push", "-q", "-f", "origin", "main"]);
        self.head()
    }

    pub(crate) fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    pub(crate) fn srv(&self) -> PathBuf {
        self.dir.path().join("srv")
    }
}

/// `git daemon` serving `base` on `port`.
pub(crate) fn git_daemon(base: &Path, port: u16) -> podmates_git_http_server::GitDaemon {
    require("/usr/bin/git");
    podmates_git_http_server::GitDaemon::start(base, port).expect("start git daemon")
}

/// Smart HTTP with basic auth: the shared server of `crates/git-http-server`. `throttle` slows
/// responses down (bytes per 10 ms) so a sync can be caught in flight.
pub(crate) struct HttpGit(podmates_git_http_server::HttpGit);

impl HttpGit {
    pub(crate) fn start(root: &Path, user: &str, password: &str, throttle: Option<usize>) -> Self {
        require("/usr/bin/git");
        let options = podmates_git_http_server::Options {
            basic_auth: Some((user.to_owned(), password.to_owned())),
            throttle,
        };
        Self(podmates_git_http_server::HttpGit::start(root, options).unwrap())
    }

    pub(crate) fn url(&self, user_info: &str) -> String {
        self.0.url(user_info, "repo.git")
    }
}

impl std::ops::Deref for HttpGit {
    type Target = podmates_git_http_server::HttpGit;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// git-sync running in the background, with its stderr captured.
pub(crate) struct GitSync {
    pub(crate) proc: Proc,
}

impl GitSync {
    pub(crate) fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let proc = Proc::spawn(
            "git-sync",
            Command::new(BIN)
                .args(args)
                .envs(envs.iter().copied())
                .env_remove("RUST_LOG")
                .stdout(Stdio::null()),
        );
        Self { proc }
    }

    pub(crate) fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// Waits for the exit code, at most `limit`.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<i32> {
        self.proc.wait(limit).code()
    }

    pub(crate) fn signal(&self, sig: &str) {
        self.proc.signal(sig);
    }
}

/// Runs git-sync to completion (for `--one-time`); returns (exit code, stderr).
pub(crate) fn run_once(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let mut gs = GitSync::spawn(args, envs);
    let code = gs.wait(Duration::from_secs(60)).unwrap_or(-1);
    (code, gs.stderr())
}

/// The SHA the published link points at (its basename), if any.
pub(crate) fn published(link: &Path) -> Option<String> {
    std::fs::read_link(link)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// A plain HTTP request on loopback; returns (status, body), or (0, "") when nothing answers.
pub(crate) fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    podmates_testkit::http::request(("127.0.0.1", port), method, path, headers, b"")
        .map_or((0, String::new()), |r| (r.status, r.text()))
}

/// sshd on a free port accepting one user key; returns the server, the key path, the
/// known_hosts path and the port.
pub(crate) struct Sshd {
    /// Held: sshd runs, and its keys exist, as long as the value does.
    _proc: Proc,
    pub(crate) port: u16,
    pub(crate) key: PathBuf,
    pub(crate) known_hosts: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sshd {
    pub(crate) fn start() -> Self {
        require("/usr/sbin/sshd");
        require("/usr/bin/ssh-keygen");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let keygen = |path: &Path| {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .status()
                .unwrap()
                .success();
            assert!(ok, "ssh-keygen failed");
        };
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut f = host_pub.split_whitespace();
        let (kind, key) = (f.next().unwrap(), f.next().unwrap());
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nPidFile {pid}\n",
                hk = d.join("host_key").display(),
                ak = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        // sshd insists on its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let proc = Proc::adopt("sshd", child);
        wait_port(port, "sshd");
        Self {
            _proc: proc,
            port,
            key: d.join("user_key"),
            known_hosts: d.join("known_hosts"),
            _dir: dir,
        }
    }

    /// The login user: the tests run sshd as themselves, so they log in as themselves.
    pub(crate) fn user() -> String {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".to_owned())
    }
}
