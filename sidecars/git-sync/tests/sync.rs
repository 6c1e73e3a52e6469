//! git-sync against real git servers on loopback: file://, git daemon (git://), git http-backend
//! behind basic auth (smart HTTP) and sshd.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

/// git-sync's arguments for `root` (`--link=site`, no admin server), then `extra`.
fn root_args(root: &Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        format!("--root={}", root.display()),
        "--link=site".to_owned(),
        "--no-admin-server".to_owned(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

/// [`root_args`] syncing `repo`.
fn repo_args(root: &Path, repo: &str, extra: &[&str]) -> Vec<String> {
    let repo = format!("--repo={repo}");
    root_args(root, &[&[repo.as_str()], extra].concat())
}

/// A new repository in `work` with `a.txt` and `lib` added as the submodule `vendor/lib`, not
/// committed yet.
fn superproject(work: &Path, lib: &Upstream) {
    std::fs::create_dir_all(work).unwrap();
    git(work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("a.txt"), "app\n").unwrap();
    let url = lib.file_url();
    let add = ["submodule", "add", "-q", &url, "vendor/lib"];
    git(
        work,
        &[&["-c", "protocol.file.allow=always"], &add[..]].concat(),
    );
}

/// A temporary directory and `root` inside it, for one git-sync.
fn temp_root() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    (dir, root)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn file_first_sync_new_commits_force_push_and_disk_contract() {
    let mut up = Upstream::new();
    let (dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(&root, &up.file_url(), &["--ref=main", "--period=100ms"]);
    let gs = GitSync::spawn(&strs(&args), &[]);
    let first = up.head();
    wait_until(T, "first sync", || {
        published(&link).as_deref() == Some(&first)
    });

    // The contract: a relative link to .worktrees/<sha>, a git worktree with a relative gitdir.
    let target = std::fs::read_link(&link).unwrap();
    assert_eq!(target, Path::new(".worktrees").join(&first));
    assert_eq!(std::fs::read_to_string(link.join("VERSION")).unwrap(), "1");
    let dotgit = std::fs::read_to_string(link.join(".git")).unwrap();
    assert!(
        dotgit.starts_with("gitdir: ../../.git/worktrees/"),
        "{dotgit}"
    );
    assert_eq!(git(&link, &["rev-parse", "HEAD"]), first);
    assert_eq!(git(&link, &["status", "--porcelain"]), "");

    let second = up.commit();
    wait_until(T, "second commit", || {
        published(&link).as_deref() == Some(&second)
    });
    assert_eq!(std::fs::read_to_string(link.join("VERSION")).unwrap(), "2");
    // Unchanged files, modes and symlinks carried over; the index matches the files.
    assert_eq!(
        std::fs::read_to_string(link.join("alias.txt")).unwrap(),
        "same in every commit\n"
    );
    assert_eq!(
        std::fs::read_link(link.join("alias.txt")).unwrap(),
        Path::new("static.txt")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(link.join("run.sh"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "{mode:o}");
    assert_eq!(git(&link, &["status", "--porcelain"]), "");
    assert_eq!(git(&link, &["rev-parse", "HEAD"]), second);
    // --stale-worktree-timeout defaults to 0: the replaced worktree is gone.
    wait_until(T, "old worktree removed", || {
        !root.join(".worktrees").join(&first).exists()
    });

    let rewritten = up.force_push();
    wait_until(T, "force-push", || {
        published(&link).as_deref() == Some(&rewritten)
    });
    assert_eq!(
        std::fs::read_to_string(link.join("VERSION")).unwrap(),
        "102"
    );
    assert!(!gs.stderr().contains("ERROR"), "{}", gs.stderr());
    drop(gs);

    // Mounted at another path (here: the directory moved), the checkout still works.
    let moved = dir.path().join("elsewhere");
    std::fs::rename(&root, &moved).unwrap();
    let link = moved.join("site");
    assert_eq!(git(&link, &["rev-parse", "HEAD"]), rewritten);
    assert_eq!(git(&link, &["status", "--porcelain"]), "");
}

#[test]
fn git_daemon_branch_tag_sha_and_depth() {
    let mut up = Upstream::new();
    let c1 = up.head();
    git(&up.work, &["tag", "-a", "v1", "-m", "release 1"]);
    git(&up.work, &["push", "-q", "origin", "v1"]);
    let c2 = up.commit();
    let _c3 = up.commit();
    let port = free_port();
    let _daemon = git_daemon(&up.srv(), port);
    let url = format!("git://127.0.0.1:{port}/repo.git");

    let cases = [
        ("main", up.head(), "3"),
        ("v1", c1.clone(), "1"),
        (c2.as_str(), c2.clone(), "2"),
    ];
    for (r, want, version) in cases {
        let (_dir, root) = temp_root();
        let args = repo_args(
            &root,
            &url,
            &[&format!("--ref={r}"), "--depth=1", "--one-time"],
        );
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "ref {r}: {log}");
        let link = root.join("site");
        assert_eq!(published(&link).as_deref(), Some(want.as_str()), "ref {r}");
        assert_eq!(
            std::fs::read_to_string(link.join("VERSION")).unwrap(),
            version
        );
        // --depth 1: one commit of history.
        assert_eq!(git(&link, &["rev-list", "--count", "HEAD"]), "1", "ref {r}");
        assert_eq!(
            git(&link, &["rev-parse", "--is-shallow-repository"]),
            "true"
        );
    }

    // --depth 0: full history.
    let (_dir, root) = temp_root();
    let args = repo_args(&root, &url, &["--depth=0", "--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        git(&root.join("site"), &["rev-list", "--count", "HEAD"]),
        "3"
    );
}

#[test]
fn one_time_exit_codes() {
    let up = Upstream::new();
    let (dir, root) = temp_root();
    let ok = repo_args(&root, &up.file_url(), &["--one-time"]);
    assert_eq!(run_once(&strs(&ok), &[]).0, 0);

    let missing = repo_args(
        &dir.path().join("r2"),
        &up.file_url(),
        &["--ref=no-such-branch", "--one-time"],
    );
    let (code, log) = run_once(&strs(&missing), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("no-such-branch") && log.contains("not found"),
        "{log}"
    );
    assert!(
        log.contains("couldn't find remote ref no-such-branch"),
        "{log}"
    );

    // Configuration errors exit 64 and name the setting.
    let (code, log) = run_once(&["--root=/tmp/x", "--one-time"], &[]);
    assert_eq!(code, 64, "{log}");
    assert!(log.contains("--repo"), "{log}");

    // So do unknown flags (upstream flags not implemented here are refused, not ignored).
    let (code, log) = run_once(&["--repo=x", "--root=/tmp/x", "--filter=blob:none"], &[]);
    assert_eq!(code, 64, "{log}");
    assert!(log.contains("--filter"), "{log}");
    let (code, log) = run_once(&["--version"], &[]);
    assert_eq!(code, 0, "{log}");

    // The legacy GIT_SYNC_* names still work.
    let r3 = dir.path().join("r3");
    let (code, log) = run_once(
        &["--no-admin-server", "--one-time"],
        &[
            ("GIT_SYNC_REPO", up.file_url().as_str()),
            ("GIT_SYNC_ROOT", r3.to_str().unwrap()),
            ("GIT_SYNC_LINK", "legacy"),
        ],
    );
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("GIT_SYNC_REPO is deprecated"), "{log}");
    assert_eq!(published(&r3.join("legacy")), Some(up.head()));
}

#[test]
fn http_basic_auth_and_wrong_credentials_never_leak() {
    let up = Upstream::new();
    let srv = HttpGit::start(&up.srv(), "alice", "correct-horse", None);
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, "correct-horse\n").unwrap();

    let root = dir.path().join("ok");
    let args = repo_args(
        &root,
        &srv.url(""),
        &[
            "--username=alice",
            &format!("--password-file={}", pwfile.display()),
            "--one-time",
        ],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&root.join("site")), Some(up.head()));

    // The token in the environment instead of a file.
    let root = dir.path().join("env");
    let args = repo_args(&root, &srv.url(""), &["--username=alice", "--one-time"]);
    let (code, log) = run_once(&strs(&args), &[("GITSYNC_PASSWORD", "correct-horse")]);
    assert_eq!(code, 0, "{log}");

    // Wrong password from a file: a clear error, and the secret nowhere.
    std::fs::write(&pwfile, "wrong-battery-staple\n").unwrap();
    let root = dir.path().join("bad");
    let errfile = dir.path().join("error.json");
    let args = repo_args(
        &root,
        &srv.url(""),
        &[
            "--username=alice",
            &format!("--password-file={}", pwfile.display()),
            &format!("--error-file={}", errfile.display()),
            "--one-time",
        ],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("authentication failed"), "{log}");
    assert!(!log.contains("wrong-battery-staple"), "{log}");
    let err = std::fs::read_to_string(&errfile).unwrap();
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("wrong-battery-staple"), "{err}");

    // Wrong password inside the URL.
    let root = dir.path().join("url");
    let args = repo_args(
        &root,
        &srv.url("alice:hunter2-in-url@"),
        &["--one-time", "-v", "6"],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(!log.contains("hunter2-in-url"), "{log}");
    assert!(
        log.contains("authentication failed") || log.contains("401"),
        "{log}"
    );
    // And the credentials never reach the repository's config on disk.
    let cfg = std::fs::read_to_string(root.join(".git/config")).unwrap();
    assert!(!cfg.contains("hunter2"), "{cfg}");
}

#[test]
fn server_down_then_back_with_error_file_and_metrics() {
    let mut up = Upstream::new();
    let port = free_port();
    let admin = free_port();
    let (_dir, root) = temp_root();
    let errfile = root.join("error.json");
    let gs = GitSync::spawn(
        &[
            &format!("--repo=git://127.0.0.1:{port}/repo.git"),
            &format!("--root={}", root.display()),
            "--link=site",
            "--period=100ms",
            "--max-failures=-1",
            "--error-file=error.json",
            &format!("--admin-addr=127.0.0.1:{admin}"),
        ],
        &[],
    );
    wait_until(T, "error file", || errfile.exists());
    assert_eq!(http(admin, "GET", "/readyz", &[]).0, 503);
    let err = std::fs::read_to_string(&errfile).unwrap();
    assert!(err.contains("cannot reach the repository"), "{err}");

    let _daemon = git_daemon(&up.srv(), port);
    let link = root.join("site");
    wait_until(T, "sync after the server came back", || {
        published(&link) == Some(up.head())
    });
    wait_until(T, "error file removed", || !errfile.exists());
    wait_until(T, "ready", || http(admin, "GET", "/readyz", &[]).0 == 200);
    let next = up.commit();
    wait_until(T, "next commit", || {
        published(&link).as_deref() == Some(&next)
    });

    // The link is published a moment before the sync's metrics are recorded.
    wait_until(T, "metrics of the second sync", || {
        http(admin, "GET", "/metrics", &[])
            .1
            .contains("git_sync_count_total{status=\"success\"} 2")
    });
    let (code, metrics) = http(admin, "GET", "/metrics", &[]);
    assert_eq!(code, 200);
    for want in [
        "git_sync_count_total{status=\"error\"}",
        "git_sync_count_total{status=\"success\"} 2",
        "git_sync_duration_seconds_count{status=\"success\"} 2",
        "git_fetch_count_total 2",
        "git_sync_fetch_duration_seconds_count 2",
        "git_sync_consecutive_failures 0",
        "git_sync_last_success_timestamp_seconds",
        &format!("git_sync_current_commit_info{{git_ref=\"HEAD\",sha=\"{next}\"}} 1"),
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }
    assert!(!gs.stderr().is_empty());
}

#[test]
fn ssh_with_key_and_known_hosts() {
    let up = Upstream::new();
    let sshd = Sshd::start();
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        Sshd::user(),
        sshd.port,
        up.bare.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ok");
    let args = repo_args(
        &root,
        &url,
        &[
            &format!("--ssh-key-file={}", sshd.key.display()),
            &format!("--ssh-known-hosts-file={}", sshd.known_hosts.display()),
            "--one-time",
        ],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&root.join("site")), Some(up.head()));

    // A known_hosts file with another key for this host: refused, with a clear message.
    let other = dir.path().join("other_known_hosts");
    std::fs::write(
        &other,
        format!(
            "[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEg8mS3J1eHUgC0UyQ1o7LD1CwHoYqSvFDfjpCXX0sKm\n",
            sshd.port
        ),
    )
    .unwrap();
    let root = dir.path().join("bad");
    let args = repo_args(
        &root,
        &url,
        &[
            &format!("--ssh-key-file={}", sshd.key.display()),
            &format!("--ssh-known-hosts-file={}", other.display()),
            "--one-time",
        ],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("does not match the known_hosts file"), "{log}");
    assert!(published(&root.join("site")).is_none());
}

#[test]
fn hooks_run_with_the_new_hash() {
    let mut up = Upstream::new();
    let dir = tempfile::tempdir().unwrap();
    // Webhook receiver: records the Gitsync-Hash headers it sees.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let wport = listener.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for s in listener.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let mut hash = None;
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(h) = line.to_ascii_lowercase().strip_prefix("gitsync-hash:") {
                    hash = Some(h.trim().to_owned());
                }
                line.clear();
            }
            seen2.lock().unwrap().extend(hash);
            let _ = (&s).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let out = dir.path().join("hook-out");
    let script = dir.path().join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$GITSYNC_HASH $(cat VERSION)\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let root = dir.path().join("root");
    let touch = dir.path().join("touched");
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--period=100ms",
            &format!("--exechook-command={}", script.display()),
            &format!("--webhook-url=http://127.0.0.1:{wport}/hook"),
            &format!("--touch-file={}", touch.display()),
        ],
    );
    let gs = GitSync::spawn(&strs(&args), &[]);
    let first = up.head();
    wait_until(T, "exechook for the first commit", || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains(&format!("{first} 1"))
    });
    wait_until(T, "webhook", || seen.lock().unwrap().contains(&first));
    assert!(touch.exists());
    let second = up.commit();
    wait_until(T, "exechook for the second commit", || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains(&format!("{second} 2"))
    });
    wait_until(T, "webhook 2", || seen.lock().unwrap().contains(&second));
    drop(gs);

    // --one-time waits for the hooks; a failing hook makes it exit 1.
    let failing = dir.path().join("fail.sh");
    std::fs::write(&failing, "#!/bin/sh\necho nope >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(
        &failing,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let args = repo_args(
        &dir.path().join("r2"),
        &up.file_url(),
        &[
            &format!("--exechook-command={}", failing.display()),
            "--one-time",
        ],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("exechook failed"), "{log}");
}

#[test]
fn sigterm_mid_sync_leaves_nothing_half_published() {
    let up = Upstream::new();
    // Enough data that the throttled server takes seconds to send it.
    let mut big = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(up.work.join("big.bin"), &big).unwrap();
    git(&up.work, &["add", "big.bin"]);
    git(&up.work, &["commit", "-q", "-m", "big"]);
    git(&up.work, &["push", "-q", "origin", "main"]);
    let slow = HttpGit::start(&up.srv(), "u", "p", Some(4096));
    let (_dir, root) = temp_root();
    let args = repo_args(
        &root,
        &slow.url(""),
        &["--username=u", "--password=p", "--grace-period=5s"],
    );
    let mut gs = GitSync::spawn(&strs(&args), &[]);
    // The upload-pack POST is the fetch itself.
    wait_until(T, "fetch in flight", || {
        slow.requests.load(Ordering::Relaxed) >= 1
    });
    std::thread::sleep(Duration::from_millis(500));
    gs.signal("TERM");
    let started = std::time::Instant::now();
    let code = gs.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", gs.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(gs.stderr().contains("interrupted"), "{}", gs.stderr());
    assert!(published(&root.join("site")).is_none(), "nothing published");
    drop(slow);

    // The next run (fast server) completes from this state.
    let fast = HttpGit::start(&up.srv(), "u", "p", None);
    let args = repo_args(&root, &fast.url(""), &["--username=u", "--one-time"]);
    let (code, log) = run_once(&strs(&args), &[("GITSYNC_PASSWORD", "p")]);
    assert_eq!(code, 0, "{log}");
    let link = root.join("site");
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(std::fs::read(link.join("big.bin")).unwrap(), big);
}

#[test]
fn readers_never_see_a_missing_or_mixed_tree() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(
        &root,
        &up.file_url(),
        &["--period=50ms", "--stale-worktree-timeout=30s"],
    );
    let gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "first sync", || published(&link).is_some());

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let (stop2, reads2, link2) = (stop.clone(), reads.clone(), link.clone());
    let reader = std::thread::spawn(move || {
        let mut errors = Vec::new();
        let mut versions = std::collections::BTreeSet::new();
        while !stop2.load(Ordering::Relaxed) && errors.len() < 5 {
            // Through the link: must always exist.
            if let Err(e) = std::fs::read_to_string(link2.join("VERSION")) {
                errors.push(format!("VERSION through the link: {e}"));
            }
            // One resolution of the link, then two files of that tree: must agree.
            match std::fs::read_link(&link2) {
                Ok(t) => {
                    let base = link2.parent().unwrap().join(t);
                    let a = std::fs::read_to_string(base.join("VERSION"));
                    let b = std::fs::read_to_string(base.join("COPY"));
                    match (a, b) {
                        (Ok(a), Ok(b)) if a == b => {
                            versions.insert(a);
                        }
                        (a, b) => errors.push(format!("mixed tree: {a:?} {b:?}")),
                    }
                }
                Err(e) => errors.push(format!("readlink: {e}")),
            }
            reads2.fetch_add(1, Ordering::Relaxed);
        }
        (errors, versions)
    });
    for _ in 0..15 {
        let sha = up.commit();
        wait_until(T, "commit published", || {
            published(&link).as_deref() == Some(&sha)
        });
    }
    stop.store(true, Ordering::Relaxed);
    let (errors, versions) = reader.join().unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(versions.len() >= 10, "reader saw {versions:?}");
    assert!(reads.load(Ordering::Relaxed) > 100);
    // Worktrees kept by --stale-worktree-timeout share the unchanged files (hard links).
    let inodes: std::collections::BTreeSet<u64> = std::fs::read_dir(root.join(".worktrees"))
        .unwrap()
        .map(|e| {
            let m = std::fs::metadata(e.unwrap().path().join("static.txt")).unwrap();
            std::os::unix::fs::MetadataExt::ino(&m)
        })
        .collect();
    assert_eq!(inodes.len(), 1, "{inodes:?}");
    assert!(!gs.stderr().contains("ERROR"), "{}", gs.stderr());
}

#[test]
fn crash_between_link_creation_and_rename_does_not_wedge() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    assert_eq!(run_once(&strs(&args), &[]).0, 0);
    let first = up.head();

    // What a crash leaves: a temporary link created but never renamed (ours, and upstream's fixed
    // `tmp-link`), and a worktree whose checkout never finished.
    let second = up.commit();
    let target = format!(".worktrees/{second}");
    std::os::unix::fs::symlink(&target, root.join(".site.tmp-4242-1")).unwrap();
    std::os::unix::fs::symlink(&target, root.join("tmp-link")).unwrap();
    let half = root.join(format!(".worktrees/.tmp-{second}-4242"));
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("VERSION"), "half").unwrap();
    assert_eq!(published(&link).as_deref(), Some(first.as_str()));

    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&link).as_deref(), Some(second.as_str()));
    assert_eq!(std::fs::read_to_string(link.join("VERSION")).unwrap(), "2");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".git", ".worktrees", "site"]);
    assert!(!half.exists());
}

/// The root is usually a volume that is not ours: an emptyDir belongs to root with mode 0777, or to
/// the pod's fsGroup. libgit2 refuses to open a repository in a directory owned by another user,
/// so git-sync must keep its repository in a directory it creates itself.
#[test]
fn root_owned_by_another_user_like_an_emptydir() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(
        me, 0,
        "this test makes a directory owned by another user, which needs root"
    );
    let up = Upstream::new();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("volume");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&root.join("site")), Some(up.head()));
    // A second run reuses the repository instead of re-cloning it.
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("not a usable git-sync root"), "{log}");
}

#[test]
fn corrupt_or_foreign_root_is_recloned() {
    let up = Upstream::new();
    let (dir, root) = temp_root();
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    assert_eq!(run_once(&strs(&args), &[]).0, 0);

    // Lose the objects: the published commit can no longer be read.
    let objects = root.join(".git/objects");
    for e in std::fs::read_dir(&objects).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != "info" {
            std::fs::remove_dir_all(&p).unwrap();
            std::fs::create_dir_all(&p).unwrap();
        }
    }
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("not a usable git-sync root"), "{log}");
    assert_eq!(git(&root.join("site"), &["rev-parse", "HEAD"]), up.head());

    // A directory that was never ours.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(foreign.join("junk")).unwrap();
    std::fs::write(foreign.join("junk/file"), "x").unwrap();
    let args = repo_args(&foreign, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert!(!foreign.join("junk").exists());
    assert_eq!(published(&foreign.join("site")), Some(up.head()));
}

#[test]
fn materialize_copy_publishes_a_real_directory() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let mut args = repo_args(
        &root,
        &up.file_url(),
        &["--period=100ms", "--materialize=copy"],
    );
    let gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "first copy", || {
        std::fs::read_to_string(link.join("VERSION"))
            .ok()
            .as_deref()
            == Some("1")
    });
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert!(!link.join(".git").exists());
    assert_eq!(
        std::fs::read_to_string(link.join("sub/file.txt")).unwrap(),
        "sub 1\n"
    );
    up.commit();
    wait_until(T, "second copy", || {
        std::fs::read_to_string(link.join("VERSION"))
            .ok()
            .as_deref()
            == Some("2")
    });
    assert_eq!(std::fs::read_to_string(link.join("COPY")).unwrap(), "2");
    // Killed at any point (perhaps while removing the replaced tree): a restart cleans up.
    drop(gs);
    args.push("--one-time".to_owned());
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(std::fs::read_to_string(link.join("VERSION")).unwrap(), "2");
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn sync_on_demand_readiness_and_staleness() {
    let mut up = Upstream::new();
    let (dir, root) = temp_root();
    let link = root.join("site");
    let token = dir.path().join("token");
    std::fs::write(&token, "let-me-sync\n").unwrap();
    let admin = free_port();
    let gs = GitSync::spawn(
        &[
            &format!("--repo={}", up.file_url()),
            &format!("--root={}", root.display()),
            "--link=site",
            "--period=1h",
            // Long enough that the first /readyz below comes well within it on a loaded machine.
            "--stale-after=4s",
            "--sync-on-signal=SIGHUP",
            &format!("--sync-token-file={}", token.display()),
            &format!("--http-bind=127.0.0.1:{admin}"),
        ],
        &[],
    );
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    wait_until(T, "admin up", || http(admin, "GET", "/", &[]).0 == 200);
    assert_eq!(http(admin, "GET", "/readyz", &[]).0, 200);

    // POST /sync: refused without the token, accepted with it.
    let second = up.commit();
    assert_eq!(http(admin, "POST", "/sync", &[]).0, 401);
    assert_eq!(
        http(admin, "POST", "/sync", &[("Authorization", "Bearer guess")]).0,
        401
    );
    assert_eq!(
        http(
            admin,
            "POST",
            "/sync",
            &[("Authorization", "Bearer let-me-sync")]
        )
        .0,
        202
    );
    wait_until(T, "sync on POST", || {
        published(&link).as_deref() == Some(&second)
    });

    // A signal does the same.
    let third = up.commit();
    gs.signal("HUP");
    wait_until(T, "sync on SIGHUP", || {
        published(&link).as_deref() == Some(&third)
    });

    // With --period 1h and --stale-after 4s, readiness fails once the last success ages.
    wait_until(Duration::from_secs(15), "stale", || {
        http(admin, "GET", "/readyz", &[]).0 == 503
    });
    let (_, body) = http(admin, "GET", "/readyz", &[]);
    assert!(body.contains("--stale-after"), "{body}");
    // Upstream's `/` stays 200 after the first sync.
    assert_eq!(http(admin, "GET", "/", &[]).0, 200);
}

#[test]
fn submodules_are_checked_out_unless_off() {
    let lib = Upstream::new();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    superproject(&app, &lib);
    git(&app, &["add", "-A"]);
    git(&app, &["commit", "-q", "-m", "app"]);

    let root = dir.path().join("root");
    let args = repo_args(&root, &format!("file://{}", app.display()), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let link = root.join("site");
    assert_eq!(
        std::fs::read_to_string(link.join("vendor/lib/VERSION")).unwrap(),
        "1"
    );
    // The submodule is a working git checkout too, at the worktree's final path.
    assert_eq!(
        git(&link.join("vendor/lib"), &["rev-parse", "HEAD"]),
        lib.head()
    );
    assert_eq!(git(&link, &["status", "--porcelain"]), "");

    let root = dir.path().join("off");
    let args = repo_args(
        &root,
        &format!("file://{}", app.display()),
        &["--submodules=off", "--one-time"],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let sub = root.join("site/vendor/lib");
    assert!(sub.is_dir() && std::fs::read_dir(&sub).unwrap().next().is_none());
}

#[test]
fn gitattributes_filters_apply() {
    let mut up = Upstream::new();
    std::fs::write(up.work.join(".gitattributes"), "*.crlf text eol=crlf\n").unwrap();
    std::fs::write(up.work.join("win.crlf"), "one\ntwo\n").unwrap();
    let sha = up.commit();
    let (_dir, root) = temp_root();
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let link = root.join("site");
    assert_eq!(published(&link), Some(sha));
    assert_eq!(
        std::fs::read_to_string(link.join("win.crlf")).unwrap(),
        "one\r\ntwo\r\n"
    );
    assert_eq!(std::fs::read_to_string(link.join("VERSION")).unwrap(), "2");
    assert_eq!(git(&link, &["status", "--porcelain"]), "");
}

#[test]
fn a_server_that_accepts_and_then_says_nothing_fails_at_the_sync_timeout() {
    // Accepts connections and holds them open without a byte: no progress callback ever runs, so
    // only the socket timeouts (set from --sync-timeout) can end the sync.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    listener.set_nonblocking(true).unwrap();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        while !stop2.load(Ordering::Relaxed) {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    for scheme in ["http", "git", "ssh"] {
        let args = repo_args(
            &dir.path().join(scheme),
            &format!("{scheme}://git@127.0.0.1:{port}/repo.git"),
            &["--one-time", "--sync-timeout=2s", "--ssh-known-hosts=false"],
        );
        let started = std::time::Instant::now();
        let mut gs = GitSync::spawn(&strs(&args), &[]);
        let code = gs.wait(Duration::from_secs(30));
        let took = started.elapsed();
        assert_eq!(code, Some(1), "{scheme}: {}", gs.stderr());
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(15),
            "{scheme}: took {took:?}: {}",
            gs.stderr()
        );
        assert!(
            gs.stderr().to_lowercase().contains("timed out")
                || gs.stderr().to_lowercase().contains("timeout"),
            "{scheme}: the error says it timed out: {}",
            gs.stderr()
        );
    }
    stop.store(true, Ordering::Relaxed);
    holder.join().unwrap();
}

// ---- Hostile repositories (issue 21): trees made with `git hash-object --literally`, which any
// server can send, with names git itself refuses to check out.

/// Writes an object of `kind` with `git hash-object --literally` into the bare repository.
fn hash_object(bare: &Path, kind: &str, bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("git")
        .args(["hash-object", "-w", "--literally", "--stdin", "-t", kind])
        .current_dir(bare)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A raw tree object: entries of (mode, name, object id), in the order given.
fn raw_tree(bare: &Path, entries: &[(&str, &[u8], &str)]) -> String {
    let mut bytes = Vec::new();
    for (mode, name, id) in entries {
        bytes.extend_from_slice(mode.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(name);
        bytes.push(0);
        for i in (0..id.len()).step_by(2) {
            bytes.push(u8::from_str_radix(&id[i..i + 2], 16).unwrap());
        }
    }
    hash_object(bare, "tree", &bytes)
}

/// Makes `tree` the new tip of `main` in the upstream's bare repository.
fn push_tree(up: &Upstream, tree: &str) -> String {
    let commit = git(
        &up.bare,
        &["commit-tree", tree, "-p", &up.head(), "-m", "hostile"],
    );
    git(&up.bare, &["update-ref", "refs/heads/main", &commit]);
    commit
}

/// Every path under `dir`, recursively, except inside git's own directories.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) && e.file_name() != ".git" {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Publishes a good commit, then serves a commit whose tree `make` builds (given the bare
/// repository and a directory outside the git-sync root for it to aim at), over file:// and
/// git://. Each time: the sync fails naming the bad path, nothing new appears anywhere in the
/// test's directories (the root's parents, the root, the outside directory), the good commit stays
/// published, and the refusal is counted.
fn refused_without_a_trace(make: impl Fn(&Path, &Path) -> String, expect: &str) {
    for transport in ["file", "git"] {
        let up = Upstream::new();
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b/root");
        let port = free_port();
        let _daemon = (transport == "git").then(|| git_daemon(&up.srv(), port));
        let repo = match transport {
            "file" => up.file_url(),
            _ => format!("git://127.0.0.1:{port}/repo.git"),
        };
        let args = repo_args(&root, &repo, &["--one-time"]);
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "{log}");
        let good = up.head();
        assert_eq!(published(&root.join("site")), Some(good.clone()));

        let tree = make(&up.bare, outside.path());
        let bad = push_tree(&up, &tree);
        let before = (listing(dir.path()), listing(outside.path()));
        let args = repo_args(&root, &repo, &["--one-time", "--error-file=error.json"]);
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(
            code, 1,
            "{transport}: the hostile commit was not refused:\n{log}"
        );
        assert!(
            log.contains(expect) && log.contains(&bad),
            "{transport}: {log}"
        );
        let err = std::fs::read_to_string(root.join("error.json")).unwrap();
        assert!(err.contains(expect), "{transport}: {err}");
        let mut after_dir = listing(dir.path());
        after_dir.retain(|p| !p.ends_with("error.json"));
        assert_eq!(
            (after_dir, listing(outside.path())),
            before,
            "{transport}: files appeared"
        );
        assert_eq!(published(&root.join("site")), Some(good), "{transport}");
    }
}

#[test]
fn hostile_tree_dotdot_entry_writes_nothing_outside() {
    refused_without_a_trace(
        |bare, _| {
            let blob = hash_object(bare, "blob", b"pwned\n");
            let inner = raw_tree(bare, &[("100644", b"pwned_by_dotdot", &blob)]);
            let deeper = raw_tree(bare, &[("40000", b"..", &inner)]);
            raw_tree(bare, &[("40000", b"..", &deeper), ("100644", b"ok", &blob)])
        },
        "invalid path '..'",
    );
}

#[test]
fn hostile_tree_slash_and_absolute_names_write_nothing_outside() {
    refused_without_a_trace(
        |bare, _| {
            let blob = hash_object(bare, "blob", b"pwned\n");
            raw_tree(
                bare,
                &[("100644", b"../../../../pwned_by_slash_name", &blob)],
            )
        },
        "invalid path '../../../../pwned_by_slash_name'",
    );
    refused_without_a_trace(
        |bare, outside| {
            let blob = hash_object(bare, "blob", b"pwned\n");
            let name = format!("{}/pwned_absolute", outside.display());
            raw_tree(bare, &[("100644", name.as_bytes(), &blob)])
        },
        "pwned_absolute': a name may not contain `/`",
    );
}

#[test]
fn hostile_tree_dotgit_names_are_refused() {
    for name in [&b".git"[..], b".GIT", b"git~1", b".git. "] {
        refused_without_a_trace(
            |bare, _| {
                let blob = hash_object(bare, "blob", b"gitdir: /elsewhere\n");
                raw_tree(bare, &[("100644", name, &blob)])
            },
            "is reserved",
        );
    }
}

#[test]
fn hostile_tree_symlink_and_directory_of_one_name_is_refused() {
    // `a -> <outside>` and then a directory `a/` with a file: written in that order, the file
    // would land in <outside>.
    refused_without_a_trace(
        |bare, outside| {
            let target = hash_object(bare, "blob", outside.display().to_string().as_bytes());
            let blob = hash_object(bare, "blob", b"pwned\n");
            let inner = raw_tree(bare, &[("100644", b"pwned_through_link", &blob)]);
            raw_tree(bare, &[("120000", b"a", &target), ("40000", b"a", &inner)])
        },
        "two entries of one name",
    );
}

#[test]
fn hostile_submodule_urls_are_refused() {
    // A transport helper that would run a command, and a local repository of this machine named
    // by a repository served over git://.
    for (url, expect, transports) in [
        (
            "ext::sh -c touch% /tmp/pwned_by_ext",
            "transport `ext::`",
            &["file", "git"][..],
        ),
        ("file:///etc", "local URL", &["git"][..]),
    ] {
        let up = Upstream::new();
        let port = free_port();
        let _daemon = git_daemon(&up.srv(), port);
        let gitmodules = format!("[submodule \"x\"]\n\tpath = x\n\turl = {url}\n");
        let blob = hash_object(&up.bare, "blob", gitmodules.as_bytes());
        let tree = raw_tree(
            &up.bare,
            &[
                ("100644", b".gitmodules", &blob),
                ("160000", b"x", &up.head()),
            ],
        );
        let bad = push_tree(&up, &tree);
        for transport in transports {
            let (_dir, root) = temp_root();
            let repo = match *transport {
                "file" => up.file_url(),
                _ => format!("git://127.0.0.1:{port}/repo.git"),
            };
            let args = repo_args(&root, &repo, &["--one-time"]);
            let (code, log) = run_once(&strs(&args), &[]);
            assert_eq!(code, 1, "{url} over {transport}: {log}");
            assert!(log.contains(expect), "{url} over {transport}: {log}");
            assert!(published(&root.join("site")).is_none());
            assert!(
                !root.join(format!(".worktrees/{bad}")).exists(),
                "{url} over {transport}"
            );
        }
        assert!(!Path::new("/tmp/pwned_by_ext").exists());
    }
}

#[test]
fn an_empty_repository_is_waited_for_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    git(&srv, &["init", "-q", "--bare", "-b", "main", "repo.git"]);
    let port = free_port();
    let _daemon = git_daemon(&srv, port);
    for repo in [
        format!("file://{}", srv.join("repo.git").display()),
        format!("git://127.0.0.1:{port}/repo.git"),
    ] {
        let root = dir.path().join(format!("root-{}", repo.len()));
        let args = repo_args(&root, &repo, &["--one-time"]);
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 1, "{repo}: {log}");
        assert!(
            log.contains("the remote repository is empty"),
            "{repo}: {log}"
        );
    }
    // Not one-time: it keeps retrying, and publishes once something is pushed.
    let root = dir.path().join("root-wait");
    let args = repo_args(
        &root,
        &format!("git://127.0.0.1:{port}/repo.git"),
        &["--period=100ms", "--max-failures=-1"],
    );
    let gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "a retry", || {
        gs.stderr()
            .matches("the remote repository is empty")
            .count()
            >= 2
    });
    let work = dir.path().join("work");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            srv.join("repo.git").to_str().unwrap(),
            "work",
        ],
    );
    std::fs::write(work.join("f"), "1").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    wait_until(T, "the first push published", || {
        published(&root.join("site")) == Some(head.clone())
    });
}

/// A v3 pod spec from a tutorial (`k8s.gcr.io/git-sync:v3.x` with `--branch`, `--wait`, `--dest`,
/// `--v`) starts and syncs, with a deprecation warning per flag; `--init-period` retries a missing
/// repository at its own pace until the first success.
#[test]
fn v3_pod_spec_flags_start_with_a_warning() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let gs = GitSync::spawn(
        &[
            &format!("--repo={}", up.file_url()),
            "--branch=main",
            "--wait=0.1",
            &format!("--root={}", root.display()),
            "--dest=site",
            "--v=2",
            "--max-sync-failures=-1",
            "--no-admin-server",
        ],
        &[],
    );
    let link = root.join("site");
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    let next = up.commit();
    wait_until(T, "next commit at --wait's period", || {
        published(&link).as_deref() == Some(&next)
    });
    let log = gs.stderr();
    for flag in ["--branch", "--wait", "--dest", "--v", "--max-sync-failures"] {
        assert!(
            log.contains(&format!("{flag} is deprecated")),
            "no warning for {flag}: {log}"
        );
    }
}

/// upstream: `sync_recover_wrong_worktree_hash`. A commit made inside the published worktree moves
/// its HEAD away from the synced commit; the next sync checks the synced commit out again.
#[test]
fn sync_recover_wrong_worktree_hash() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let (gs, admin, link) = counted_sync(&up, &root);
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);
    // Stopped meanwhile: at a 100 ms period it would repair the worktree before the check below.
    gs.signal("STOP");
    std::fs::write(link.join("local.txt"), "made in the worktree\n").unwrap();
    git(&link, &["add", "local.txt"]);
    git(&link, &["commit", "-q", "-m", "local change"]);
    assert_ne!(git(&link, &["rev-parse", "HEAD"]), up.head());
    gs.signal("CONT");
    wait_until(T, "the worktree back at the synced commit", || {
        let wt = root.join(".worktrees").join(up.head());
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(&wt)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == up.head())
            && !wt.join("local.txt").exists()
    });
    assert_eq!(published(&link), Some(up.head()));
    // As upstream counts it: the repair is a successful sync and a fetch.
    wait_metric(admin, GOOD_SYNCS, 2.0);
    wait_metric(admin, FETCHES, 2.0);
}

/// upstream: `submodule_sync_relative`. A submodule URL relative to the superproject's
/// (`../lib.git`), over file:// and git://.
#[test]
fn submodule_sync_relative() {
    let lib = Upstream::new();
    let srv = lib.srv();
    // The superproject, in the same served directory as the library.
    let work = lib.dir.path().join("app-work");
    superproject(&work, &lib);
    git(
        &work,
        &[
            "config",
            "-f",
            ".gitmodules",
            "submodule.vendor/lib.url",
            "../repo.git",
        ],
    );
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "app"]);
    git(&srv, &["init", "-q", "--bare", "-b", "main", "app.git"]);
    git(
        &work,
        &["push", "-q", srv.join("app.git").to_str().unwrap(), "main"],
    );
    let port = free_port();
    let _daemon = git_daemon(&srv, port);
    for repo in [
        format!("file://{}", srv.join("app.git").display()),
        format!("git://127.0.0.1:{port}/app.git"),
    ] {
        let (_dir, root) = temp_root();
        let args = repo_args(&root, &repo, &["--one-time"]);
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "{repo}: {log}");
        assert_eq!(
            std::fs::read_to_string(root.join("site/vendor/lib/VERSION")).unwrap(),
            "1",
            "{repo}"
        );
    }
}

/// upstream sets umask 0002 with `--group-write`: the repository, the worktrees directory and the
/// checked-out files are all group-writable, not only the files chmod-ed after checkout.
#[test]
fn group_write_covers_everything_written() {
    use std::os::unix::fs::PermissionsExt;
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let args = repo_args(&root, &up.file_url(), &["--one-time", "--group-write"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let mut checked = 0;
    for p in [
        root.join(".git"),
        root.join(".git/config"),
        root.join(".git/objects"),
        root.join(".worktrees"),
        root.join(".worktrees").join(up.head()).join("VERSION"),
        root.join(".worktrees").join(up.head()).join("sub"),
    ] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o020, 0o020, "{} is {mode:o}", p.display());
        checked += 1;
    }
    assert_eq!(checked, 6);
}

/// `--stale-worktree-timeout` holds across restarts (`--one-time` runs, a restarted container): a
/// worktree replaced by an earlier run is kept until the timeout has passed since it was replaced.
#[test]
fn stale_worktree_timeout_across_one_time_runs() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let url = up.file_url();
    let run = |timeout: &str| {
        let args = repo_args(
            &root,
            &url,
            &["--one-time", &format!("--stale-worktree-timeout={timeout}")],
        );
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "{log}");
    };
    run("30s");
    let first = up.head();
    up.commit();
    // The second run replaces the first commit's worktree: it stays, for readers inside it.
    run("30s");
    let old = root.join(".worktrees").join(&first);
    assert!(old.is_dir(), "replaced worktree removed at once");
    // A third run, still within the timeout, keeps it too.
    run("30s");
    assert!(old.is_dir(), "removed by a restart before the timeout");
    // Once the timeout has passed since it was replaced, a run removes it.
    std::thread::sleep(Duration::from_millis(1500));
    run("1s");
    wait_until(T, "the stale worktree removed", || !old.exists());
    assert_eq!(published(&root.join("site")), Some(up.head()));
}

/// Upstream takes https:// webhooks: the call is made over TLS, verified against the system's
/// roots (`SSL_CERT_FILE` here), and a server whose certificate does not verify fails the hook.
#[test]
fn webhook_over_https_verified_by_the_system_roots() {
    let up = Upstream::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    podmates_testkit::certs::make(d);
    podmates_testkit::certs::ca(d, "other-ca");
    let port = free_port();
    let _server = Proc::spawn(
        "openssl s_server",
        std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", "server.crt", "-key", "server.key"])
            .current_dir(d)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null()),
    );
    wait_port(port, "openssl s_server");
    // s_server -www answers GET with a status page.
    let hook = |root: &str, ca: &str| {
        let args = repo_args(
            &d.join(root),
            &up.file_url(),
            &[
                "--one-time",
                &format!("--webhook-url=https://127.0.0.1:{port}/"),
                "--webhook-method=GET",
            ],
        );
        let ca = d.join(ca).display().to_string();
        run_once(&strs(&args), &[("SSL_CERT_FILE", ca.as_str())])
    };
    let (code, log) = hook("r1", "ca.crt");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("hook succeeded"), "{log}");
    let (code, log) = hook("r2", "other-ca.crt");
    assert_eq!(code, 1, "a certificate from another CA was accepted: {log}");
    assert!(log.contains("hook failed"), "{log}");
}

/// Packs and loose-object directories in the root's repository.
fn object_files(root: &Path) -> (usize, usize) {
    let objects = root.join(".git/objects");
    let packs = std::fs::read_dir(objects.join("pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .count();
    let loose = std::fs::read_dir(&objects)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .count();
    (packs, loose)
}

/// upstream: `gc_always`, `gc_off`, `gc_default`. Every fetch adds a pack; with `--git-gc=always`
/// the repository is compacted after each one (one pack, no loose objects) and stays usable
/// (shallow history, worktrees' `git status`); with `off` it grows with every fetch; the default
/// (`auto`) bounds it at 9 packs.
#[test]
fn gc_default_and_gc_off() {
    let mut up = Upstream::new();
    let port = free_port();
    let _daemon = git_daemon(&up.srv(), port);
    let dir = tempfile::tempdir().unwrap();
    for (gc, max_packs) in [("always", 1), ("off", usize::MAX), ("auto", 9)] {
        let root = dir.path().join(gc);
        let mut args = repo_args(
            &root,
            &format!("git://127.0.0.1:{port}/repo.git"),
            &["--period=100ms"],
        );
        if gc != "auto" {
            args.push(format!("--git-gc={gc}"));
        }
        let gs = GitSync::spawn(&strs(&args), &[]);
        let link = root.join("site");
        for _ in 0..if gc == "auto" { 12 } else { 4 } {
            let sha = up.commit();
            wait_until(T, "the new commit", || {
                published(&link).as_deref() == Some(&sha)
            });
        }
        // The sync that published the last commit compacts right after publishing.
        wait_until(T, "compaction", || {
            let (packs, loose) = object_files(&root);
            packs <= max_packs && (gc == "off" || loose == 0)
        });
        let (packs, loose) = object_files(&root);
        if gc == "off" {
            assert!(packs >= 4, "{gc}: {packs} packs");
        } else if gc == "auto" {
            assert!(packs <= 9, "{gc}: {packs} packs after 12 fetches");
        } else {
            assert_eq!((packs, loose), (1, 0), "{gc}");
        }
        assert_eq!(git(&link, &["status", "--porcelain"]), "", "{gc}");
        assert_eq!(git(&link, &["rev-parse", "HEAD"]), up.head(), "{gc}");
        let next = up.commit();
        wait_until(T, "a sync after compaction", || {
            published(&link).as_deref() == Some(&next)
        });
        assert!(!gs.stderr().contains("cannot compact"), "{}", gs.stderr());
    }
}

/// The value of a series in a Prometheus text exposition.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until `series` on the admin port reads `want`.
fn wait_metric(admin: u16, series: &str, want: f64) {
    podmates_testkit::eventually_ok(T, &format!("{series} at {want}"), || {
        let text = http(admin, "GET", "/metrics", &[]).1;
        if metric(&text, series) == Some(want) {
            Ok(())
        } else {
            Err(text)
        }
    });
}

/// git-sync on `up` every 100 ms into `root`, publishing `root/link`, with its admin server on:
/// the process, the admin port and the link.
fn counted_sync(up: &Upstream, root: &Path) -> (GitSync, u16, PathBuf) {
    let admin = free_port();
    let gs = GitSync::spawn(
        &[
            &format!("--repo={}", up.file_url()),
            &format!("--root={}", root.display()),
            "--link=link",
            "--period=100ms",
            &format!("--admin-addr=127.0.0.1:{admin}"),
        ],
        &[],
    );
    (gs, admin, root.join("link"))
}

const GOOD_SYNCS: &str = "git_sync_count_total{status=\"success\"}";
const FETCHES: &str = "git_fetch_count_total";

/// upstream: `sync_default_ref`. Forward, then back to a commit already here: each move is a
/// successful sync and a fetch, as upstream counts them.
#[test]
fn sync_default_ref() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let (_gs, admin, link) = counted_sync(&up, &root);
    let first = up.head();
    wait_until(T, "first sync", || published(&link) == Some(first.clone()));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);
    let second = up.commit();
    wait_until(T, "forward", || published(&link) == Some(second.clone()));
    wait_metric(admin, GOOD_SYNCS, 2.0);
    wait_metric(admin, FETCHES, 2.0);
    // Move backward: the server's main goes back to the first commit.
    git(&up.bare, &["update-ref", "refs/heads/main", &first]);
    wait_until(T, "backward", || published(&link) == Some(first.clone()));
    assert_eq!(std::fs::read_to_string(link.join("VERSION")).unwrap(), "1");
    wait_metric(admin, GOOD_SYNCS, 3.0);
    wait_metric(admin, FETCHES, 3.0);
}

/// upstream: `worktree_unexpected_removal`. The published worktree deleted behind git-sync's
/// back is recreated: a successful sync and a fetch more.
#[test]
fn worktree_unexpected_removal() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let (gs, admin, link) = counted_sync(&up, &root);
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);
    // Stopped while the worktree is removed, as upstream pauses its container.
    gs.signal("STOP");
    std::fs::remove_dir_all(root.join(".worktrees").join(up.head())).unwrap();
    gs.signal("CONT");
    wait_until(T, "the worktree back", || link.join("VERSION").is_file());
    assert_eq!(published(&link), Some(up.head()));
    wait_metric(admin, GOOD_SYNCS, 2.0);
    wait_metric(admin, FETCHES, 2.0);
}

/// A restart with another `--depth` fetches the history again: from 1 to 3 commits, then all of
/// it with 0 (the repository is no longer shallow), without publishing anything new.
#[test]
fn sync_depth_change_on_restart() {
    let mut up = Upstream::new();
    for _ in 0..5 {
        up.commit();
    }
    let port = free_port();
    let _daemon = git_daemon(&up.srv(), port);
    let (_dir, root) = temp_root();
    let history = || git(&root.join("site"), &["rev-list", "--count", "HEAD"]);
    let run = |depth: &str| {
        let args = repo_args(
            &root,
            &format!("git://127.0.0.1:{port}/repo.git"),
            &["--one-time", &format!("--depth={depth}")],
        );
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "{log}");
        log
    };
    run("1");
    assert_eq!(history(), "1");
    let log = run("3");
    assert_eq!(history(), "3", "{log}");
    let log = run("0");
    assert_eq!(history(), "6", "{log}");
    assert!(!root.join(".git/shallow").exists(), "still shallow: {log}");
    assert_eq!(published(&root.join("site")), Some(up.head()));
    // Upstream shrinks too (2 after 3, then 1).
    let log = run("2");
    assert_eq!(history(), "2", "{log}");
    let log = run("1");
    assert_eq!(history(), "1", "{log}");
    assert_eq!(published(&root.join("site")), Some(up.head()));
}

/// upstream: `auth_http_password_file` with `--credential`. A JSON credential for the server's
/// URL (its password in a file) authenticates without `--username`; one for another URL does not
/// apply, and the server's refusal is named.
#[test]
fn credential_flag_for_the_repository_url() {
    let up = Upstream::new();
    let srv = HttpGit::start(&up.srv(), "alice", "correct-horse", None);
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, "correct-horse\n").unwrap();
    let base = srv.url("");
    let base = base.trim_end_matches("repo.git");
    let run = |root: &str, url: &str| {
        let args = repo_args(
            &dir.path().join(root),
            &srv.url(""),
            &[
                &format!(
                    r#"--credential={{"url":"{url}","username":"alice","password-file":"{}"}}"#,
                    pwfile.display()
                ),
                "--one-time",
            ],
        );
        run_once(&strs(&args), &[])
    };
    let (code, log) = run("ok", base);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&dir.path().join("ok/site")), Some(up.head()));
    let (code, log) = run("other", "http://127.0.0.1:1/elsewhere");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("credentials"), "{log}");
    assert!(!log.contains("correct-horse"), "the password leaked: {log}");
}

/// An `--askpass-url` server on `port`: the `n`th request (from 0) is answered by `answer(n)`
/// (status, body); it starts listening only after `delay`.
fn askpass_server(
    port: u16,
    delay: Duration,
    answer: impl Fn(usize) -> (u16, String) + Send + 'static,
) -> Arc<AtomicU64> {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        for (n, s) in l.incoming().flatten().enumerate() {
            use std::io::{Read, Write};
            let mut s = s;
            let mut req = [0u8; 2048];
            let _ = s.read(&mut req);
            let (status, body) = answer(n);
            counted.fetch_add(1, Ordering::Relaxed);
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    calls
}

/// upstream: `auth_askpass_url_correct_password`, `_wrong_password`, `_sometimes_wrong`,
/// `_flaky` and `_slow_start`: credentials asked of a URL before each sync, against smart HTTP
/// with basic auth.
#[test]
fn auth_askpass_url() {
    let mut up = Upstream::new();
    let srv = HttpGit::start(&up.srv(), "alice", "correct-horse", None);
    let right = || (200, "username=alice\npassword=correct-horse\n".to_owned());
    let wrong = || (200, "username=alice\npassword=wrong\n".to_owned());
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let root = dir.path().join(name);
        let mut args = repo_args(&root, &srv.url(""), &[]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        (root, args)
    };

    // wrong_password: the one-time sync fails, naming the refusal, with no secret in the log.
    let port = free_port();
    askpass_server(port, Duration::ZERO, move |_| wrong());
    let url = format!("--askpass-url=http://127.0.0.1:{port}/");
    let (root, args) = run("wrong", &["--one-time", &url]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("refused the credentials"), "{log}");
    assert!(published(&root.join("site")).is_none());

    // correct_password: syncs, and keeps asking before each sync as commits come.
    let port = free_port();
    let calls = askpass_server(port, Duration::ZERO, move |_| right());
    let url = format!("--askpass-url=http://127.0.0.1:{port}/");
    let (root, args) = run("right", &["--period=100ms", &url]);
    let _gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "first sync", || {
        published(&root.join("site")) == Some(up.head())
    });
    let next = up.commit();
    wait_until(T, "next commit", || {
        published(&root.join("site")).as_deref() == Some(&next)
    });
    assert!(calls.load(Ordering::Relaxed) >= 2);

    // sometimes_wrong and flaky: wrong answers and 503s in between; it gets there.
    for (name, bad) in [("sometimes", 200), ("flaky", 503)] {
        let port = free_port();
        askpass_server(port, Duration::ZERO, move |n| {
            if n % 2 == 0 {
                if bad == 503 {
                    (503, String::new())
                } else {
                    wrong()
                }
            } else {
                right()
            }
        });
        let url = format!("--askpass-url=http://127.0.0.1:{port}/");
        let (root, args) = run(name, &["--period=100ms", "--max-failures=-1", &url]);
        let _gs = GitSync::spawn(&strs(&args), &[]);
        wait_until(T, name, || published(&root.join("site")) == Some(up.head()));
    }

    // slow_start: the askpass server comes up a second after git-sync.
    let port = free_port();
    askpass_server(port, Duration::from_secs(1), move |_| right());
    let url = format!("--askpass-url=http://127.0.0.1:{port}/");
    let (root, args) = run("slow", &["--period=100ms", "--max-failures=-1", &url]);
    let gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "sync once askpass is up", || {
        published(&root.join("site")) == Some(up.head())
    });
    assert!(gs.stderr().contains("--askpass-url"), "{}", gs.stderr());
    assert!(!gs.stderr().contains("correct-horse"));
}

/// A GitHub API stand-in over HTTPS (rustls, a certificate of `ca.crt` in `dir`): checks the App
/// JWT of `POST /app/installations/456/access_tokens` (issuer, lifetime, RS256 signature verified
/// by openssl with the app's public key) and answers 201 with `token`, or 401.
fn github_api_stand_in(dir: &Path, token: &'static str) -> (u16, Arc<AtomicU64>) {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(dir.join("server.crt"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let issued = Arc::new(AtomicU64::new(0));
    let counted = issued.clone();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for tcp in l.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req).into_owned();
            let ok = req.starts_with("POST /app/installations/456/access_tokens ")
                && req
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: Bearer "))
                    .or_else(|| {
                        req.lines()
                            .find_map(|l| l.strip_prefix("Authorization: Bearer "))
                    })
                    .is_some_and(|jwt| jwt_is_valid(&dir, jwt.trim()));
            let (status, body) = if ok {
                counted.fetch_add(1, Ordering::Relaxed);
                (
                    "201 Created",
                    format!(r#"{{"token":"{token}","expires_at":"2099-01-01T00:00:00Z"}}"#),
                )
            } else {
                (
                    "401 Unauthorized",
                    r#"{"message":"A JSON web token could not be decoded"}"#.to_owned(),
                )
            };
            let _ = write!(
                tls,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, issued)
}

/// The JWT's header, claims and RS256 signature, checked against `app.pub` in `dir` by openssl.
fn jwt_is_valid(dir: &Path, jwt: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts[..] else { return false };
    let json = |p: &str| -> Option<serde_json::Value> {
        serde_json::from_slice(&b64.decode(p).ok()?).ok()
    };
    let (Some(header), Some(claims), Ok(sig)) = (json(h), json(c), b64.decode(s)) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    if header["alg"] != "RS256"
        || claims["iss"] != "123"
        || exp != iat + 600
        || iat.abs_diff(now) > 60
    {
        return false;
    }
    let n = std::process::id() ^ (now as u32);
    let (input, sigf) = (dir.join(format!("in-{n}")), dir.join(format!("sig-{n}")));
    std::fs::write(&input, format!("{h}.{c}")).unwrap();
    std::fs::write(&sigf, sig).unwrap();
    std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify", "app.pub", "-signature"])
        .arg(&sigf)
        .arg(&input)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// upstream: `github_app_auth_application_id` (and `_client_id`), which need GitHub: here the
/// API is a stand-in on loopback over HTTPS that checks the JWT, and the git server takes the
/// installation token it hands out as the password of `x-access-token`.
#[test]
fn github_app_auth_against_a_stand_in_api() {
    let up = Upstream::new();
    let srv = HttpGit::start(&up.srv(), "x-access-token", "ghs_installation_token", None);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    podmates_testkit::certs::make(d);
    // The app's key as GitHub hands it out: PKCS#1 PEM.
    podmates_testkit::certs::openssl(d, &["genrsa", "-traditional", "-out", "app.pem", "2048"]);
    podmates_testkit::certs::openssl(d, &["rsa", "-in", "app.pem", "-pubout", "-out", "app.pub"]);
    let (api, issued) = github_api_stand_in(d, "ghs_installation_token");
    let ca = d.join("ca.crt").display().to_string();
    let run = |root: &str, key: &str| {
        let args = repo_args(
            &d.join(root),
            &srv.url(""),
            &[
                &format!("--github-base-url=https://127.0.0.1:{api}/"),
                "--github-app-application-id=123",
                "--github-app-installation-id=456",
                &format!("--github-app-private-key-file={}", d.join(key).display()),
                "--one-time",
            ],
        );
        run_once(&strs(&args), &[("SSL_CERT_FILE", ca.as_str())])
    };
    let (code, log) = run("ok", "app.pem");
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&d.join("ok/site")), Some(up.head()));
    assert_eq!(issued.load(Ordering::Relaxed), 1);
    assert!(
        !log.contains("ghs_installation_token"),
        "the token leaked: {log}"
    );

    // Another key: the API refuses the JWT, and the sync fails saying so.
    podmates_testkit::certs::openssl(d, &["genrsa", "-traditional", "-out", "other.pem", "2048"]);
    let (code, log) = run("bad", "other.pem");
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("answered 401"), "{log}");
    assert_eq!(issued.load(Ordering::Relaxed), 1);
}

/// Writes an executable shell script `name` in `dir` with `body`; returns its path.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}

/// Lines in `path` (0 when it does not exist).
fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// A webhook receiver answering every request with the status in `status`; the port and the
/// number of requests seen.
fn webhook_receiver(status: Arc<std::sync::atomic::AtomicU16>) -> (u16, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicU64::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        for s in listener.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let code = status.load(Ordering::SeqCst);
            let _ = (&s).write_all(
                format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (port, hits)
}

/// The content of `VERSION` under `link`, if readable.
fn version(link: &Path) -> Option<String> {
    std::fs::read_to_string(link.join("VERSION")).ok()
}

/// upstream: e2e::init_root_flag_is_weird. A relative `--root` full of `..` is resolved
/// against the working directory.
#[test]
fn init_root_flag_is_weird() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let cwd = std::env::current_dir().unwrap();
    let ups = "../".repeat(cwd.components().count() + 2);
    let weird = PathBuf::from(format!(
        "{ups}{r}/{ups}../{r}",
        r = root.display().to_string().trim_start_matches('/')
    ));
    assert!(weird.is_relative());
    let args = repo_args(&weird, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let link = root.join("site");
    assert!(link.is_symlink());
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
}

/// upstream: e2e::init_root_flag_has_symlink. A `--root` that is a symlink to a directory: the
/// repository and the link land in the directory it points at.
#[test]
fn init_root_flag_has_symlink() {
    let up = Upstream::new();
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("subdir");
    std::fs::create_dir_all(&real).unwrap();
    let rootlink = dir.path().join("rootlink");
    std::os::unix::fs::symlink(&real, &rootlink).unwrap();
    let args = repo_args(&rootlink, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let link = real.join("site");
    assert!(link.is_symlink());
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
    assert!(rootlink.is_symlink(), "the symlinked root was replaced");
}

/// upstream: e2e::worktree_cleanup. While git-sync is stopped, a foreign git worktree is made at
/// the path of the next commit's worktree and junk is left in `.worktrees`: the next sync
/// publishes a proper checkout there and removes the junk.
#[test]
fn worktree_cleanup() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let (gs, admin, link) = counted_sync(&up, &root);
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);

    gs.signal("STOP");
    std::fs::write(up.work.join("file2"), "worktree_cleanup-ok\n").unwrap();
    let second = up.commit();
    let wt = root.join(".worktrees").join(&second);
    git(
        &up.work,
        &[
            "worktree",
            "add",
            "-q",
            wt.to_str().unwrap(),
            "-b",
            "e2e",
            "--no-checkout",
        ],
    );
    assert!(!wt.join("file2").exists());
    let wts = root.join(".worktrees");
    std::fs::create_dir_all(wts.join("not_a_hash/subdir")).unwrap();
    std::fs::write(wts.join("not_a_directory"), "").unwrap();
    gs.signal("CONT");

    wait_until(T, "second sync", || {
        published(&link) == Some(second.clone())
    });
    assert_eq!(
        std::fs::read_to_string(link.join("file2")).unwrap(),
        "worktree_cleanup-ok\n"
    );
    assert_eq!(version(&link).as_deref(), Some("2"));
    assert_eq!(git(&link, &["rev-parse", "HEAD"]), second);
    wait_metric(admin, GOOD_SYNCS, 2.0);
    wait_metric(admin, FETCHES, 2.0);
    wait_until(T, "junk removed", || {
        !wts.join("not_a_hash").exists() && !wts.join("not_a_directory").exists()
    });
}

/// upstream: e2e::v3_v4_upgrade_in_place. A root laid out by v3 (worktree `<root>/<sha>`, link
/// -> `<sha>`) is taken over: the next commit is published and the v3 worktree removed.
#[test]
fn v3_v4_upgrade_in_place() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let sha = published(&link).unwrap();
    assert_eq!(version(&link).as_deref(), Some("1"));
    // v3's layout.
    std::fs::rename(root.join(".worktrees").join(&sha), root.join(&sha)).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&sha, &link).unwrap();
    std::fs::write(up.work.join("file2"), "v3_v4 2\n").unwrap();
    let second = up.commit();

    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert!(link.is_symlink());
    assert_eq!(published(&link), Some(second));
    assert_eq!(version(&link).as_deref(), Some("2"));
    assert_eq!(
        std::fs::read_to_string(link.join("file2")).unwrap(),
        "v3_v4 2\n"
    );
    assert!(!root.join(&sha).exists(), "the v3 worktree is left behind");
}

/// upstream: e2e::sync_branch_switch. A root synced at depth 1 on one branch, restarted on
/// another branch.
#[test]
fn sync_branch_switch() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(
        &root,
        &up.file_url(),
        &["--one-time", "--ref=main", "--depth=1"],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(version(&link).as_deref(), Some("1"));

    git(&up.work, &["checkout", "-q", "-b", "main2"]);
    std::fs::write(up.work.join("VERSION"), "branch 2").unwrap();
    git(&up.work, &["commit", "-q", "-am", "on main2"]);
    git(&up.work, &["push", "-q", "origin", "main2"]);
    let other = up.head();

    let args = repo_args(&root, &up.file_url(), &["--one-time", "--ref=main2"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&link), Some(other));
    assert_eq!(version(&link).as_deref(), Some("branch 2"));
}

/// upstream: e2e::sync_sha_once_sync_different_sha_known. Two one-time runs on the same root,
/// each on a SHA of the branch's history.
#[test]
fn sync_sha_once_sync_different_sha_known() {
    let mut up = Upstream::new();
    let sha1 = up.head();
    let sha2 = up.commit();
    up.commit();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    for (sha, want) in [(&sha1, "1"), (&sha2, "2")] {
        let args = repo_args(
            &root,
            &up.file_url(),
            &["--one-time", &format!("--ref={sha}")],
        );
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "{log}");
        assert_eq!(published(&link).as_ref(), Some(sha));
        assert_eq!(version(&link).as_deref(), Some(want));
    }
}

/// upstream: e2e::sync_sha_once_sync_different_sha_unknown. The second run asks for a SHA the
/// root has never fetched, and that is not the tip of any branch.
#[test]
fn sync_sha_once_sync_different_sha_unknown() {
    let mut up = Upstream::new();
    let sha1 = up.head();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let url = up.file_url();
    let run = |sha: &str| {
        let args = repo_args(&root, &url, &["--one-time", &format!("--ref={sha}")]);
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "{log}");
    };
    run(&sha1);
    assert_eq!(version(&link).as_deref(), Some("1"));
    let sha2 = up.commit();
    up.commit();
    run(&sha2);
    assert_eq!(published(&link), Some(sha2));
    assert_eq!(version(&link).as_deref(), Some("2"));
}

/// upstream: e2e::sync_crash_no_link_cleanup_retry. The link deleted between two runs is made
/// again.
#[test]
fn sync_crash_no_link_cleanup_retry() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    assert_eq!(run_once(&strs(&args), &[]).0, 0);
    assert_eq!(version(&link).as_deref(), Some("1"));
    std::fs::remove_file(&link).unwrap();
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert!(link.is_symlink());
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
}

/// upstream: e2e::sync_sha_shafile_exists. A file named after the SHA to sync, in the root, does
/// not get in the way.
#[test]
fn sync_sha_shafile_exists() {
    let mut up = Upstream::new();
    let sha1 = up.head();
    let sha2 = up.commit();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let run = |sha: &str| {
        let args = repo_args(
            &root,
            &up.file_url(),
            &["--one-time", &format!("--ref={sha}")],
        );
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "{log}");
    };
    run(&sha1);
    assert_eq!(version(&link).as_deref(), Some("1"));
    std::fs::write(root.join(&sha2), "").unwrap();
    run(&sha2);
    assert_eq!(published(&link), Some(sha2));
    assert_eq!(version(&link).as_deref(), Some("2"));
}

/// upstream: e2e::sync_repo_switch. The same root, restarted with another `--repo`.
#[test]
fn sync_repo_switch() {
    let up = Upstream::new();
    let mut other = Upstream::new();
    std::fs::write(other.work.join("ORIGIN"), "other\n").unwrap();
    let sha2 = other.commit();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&link), Some(up.head()));
    let args = repo_args(&root, &other.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&link), Some(sha2));
    assert_eq!(version(&link).as_deref(), Some("2"));
    assert_eq!(
        std::fs::read_to_string(link.join("ORIGIN")).unwrap(),
        "other\n"
    );
}

/// upstream: e2e::sync_slow_git_long_timeout. A fetch slower than a short timeout but within
/// `--sync-timeout` succeeds, then and on the next commit (upstream slows git with a wrapper; a
/// throttled smart-HTTP server here).
#[test]
fn sync_slow_git_long_timeout() {
    let mut up = Upstream::new();
    let server = HttpGit::start(&up.srv(), "u", "p", Some(8));
    let (_dir, root) = temp_root();
    let admin = free_port();
    let link = root.join("site");
    let started = std::time::Instant::now();
    let _gs = GitSync::spawn(
        &[
            &format!("--repo={}", server.url("u:p@")),
            &format!("--root={}", root.display()),
            "--link=site",
            "--period=100ms",
            "--sync-timeout=16s",
            &format!("--admin-addr=127.0.0.1:{admin}"),
        ],
        &[],
    );
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    let took = started.elapsed();
    assert!(took > Duration::from_secs(2), "not slow: {took:?}");
    assert_eq!(version(&link).as_deref(), Some("1"));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);
    let second = up.commit();
    wait_until(T, "second sync", || {
        published(&link) == Some(second.clone())
    });
    assert_eq!(version(&link).as_deref(), Some("2"));
    wait_metric(admin, GOOD_SYNCS, 2.0);
    wait_metric(admin, FETCHES, 2.0);
}

/// upstream: e2e::exechook_fail_retry. A failing exechook is run again after
/// `--exechook-backoff`, not at every period.
#[test]
fn exechook_fail_retry() {
    let up = Upstream::new();
    let (dir, root) = temp_root();
    let runlog = dir.path().join("runlog");
    let hook = script(
        dir.path(),
        "fail.sh",
        &format!("date >> {}\nexit 1\n", runlog.display()),
    );
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--period=100ms",
            &format!("--exechook-command={}", hook.display()),
            "--exechook-backoff=1s",
        ],
    );
    let _gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "a retry of the failing hook", || lines(&runlog) >= 2);
    let seen = lines(&runlog);
    std::thread::sleep(Duration::from_millis(2500));
    let later = lines(&runlog);
    // Retried after each 1 s backoff: a few more runs, not one per 100 ms period.
    assert!(
        (seen + 1..=seen + 4).contains(&later),
        "{seen} then {later}"
    );
}

/// upstream: e2e::exechook_startup_after_crash. A restart on a root already at the wanted
/// commit still runs the exechook once, in the worktree, with the environment inherited.
#[test]
fn exechook_startup_after_crash() {
    let up = Upstream::new();
    let (dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(&root, &up.file_url(), &["--one-time", "--ref=main"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(version(&link).as_deref(), Some("1"));

    let runlog = dir.path().join("runlog");
    let hook = recording_hook(dir.path(), &runlog);
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--one-time",
            "--ref=main",
            &format!("--exechook-command={}", hook.display()),
        ],
    );
    let (code, log) = run_once(&strs(&args), &[("ENVKEY", "envval")]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
    assert_eq!(std::fs::read_to_string(link.join("exechook")).unwrap(), "1");
    assert_eq!(
        std::fs::read_to_string(link.join("exechook-env")).unwrap(),
        "ENVKEY=envval\n"
    );
    assert_eq!(lines(&runlog), 1);
}

/// upstream: e2e::webhook_fail_retry. A webhook answering 500 is called again until it answers
/// the success status, then no more.
#[test]
fn webhook_fail_retry() {
    let up = Upstream::new();
    let status = Arc::new(std::sync::atomic::AtomicU16::new(500));
    let (port, hits) = webhook_receiver(status.clone());
    let (_dir, root) = temp_root();
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--period=100ms",
            &format!("--webhook-url=http://127.0.0.1:{port}/"),
            "--webhook-success-status=200",
            "--webhook-backoff=1s",
        ],
    );
    let _gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "the webhook called", || hits.load(Ordering::SeqCst) >= 1);
    status.store(200, Ordering::SeqCst);
    hits.store(0, Ordering::SeqCst);
    wait_until(T, "the webhook retried", || {
        hits.load(Ordering::SeqCst) >= 1
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "called again after success");
}

/// upstream: e2e::webhook_fire_and_forget. With `--webhook-success-status=0` the answer (404)
/// is not looked at: one call, no retry.
#[test]
fn webhook_fire_and_forget() {
    let up = Upstream::new();
    let status = Arc::new(std::sync::atomic::AtomicU16::new(404));
    let (port, hits) = webhook_receiver(status);
    let (_dir, root) = temp_root();
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--period=100ms",
            &format!("--webhook-url=http://127.0.0.1:{port}/"),
            "--webhook-success-status=0",
            "--webhook-backoff=300ms",
        ],
    );
    let _gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "the webhook called", || hits.load(Ordering::SeqCst) >= 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a fire-and-forget call retried"
    );
}

/// upstream: e2e::expose_http_after_restart. Restarted on a root already in sync (default
/// period), upstream's `/` answers 200 once the first loop has confirmed it.
#[test]
fn expose_http_after_restart() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    assert_eq!(run_once(&strs(&args), &[]).0, 0);
    assert_eq!(version(&link).as_deref(), Some("1"));
    let admin = free_port();
    let _gs = GitSync::spawn(
        &[
            &format!("--repo={}", up.file_url()),
            &format!("--root={}", root.display()),
            "--link=site",
            &format!("--http-bind=127.0.0.1:{admin}"),
        ],
        &[],
    );
    wait_until(Duration::from_secs(5), "the http server up", || {
        http(admin, "GET", "/", &[]).0 != 0
    });
    wait_until(Duration::from_secs(3), "/ at 200", || {
        http(admin, "GET", "/", &[]).0 == 200
    });
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
}

/// upstream: e2e::submodule_sync_shallow. `--submodules=shallow` checks out the submodules but
/// not theirs.
#[test]
fn submodule_sync_shallow() {
    let nested = Upstream::new();
    let mut lib = Upstream::new();
    let add = ["submodule", "add", "-q", &nested.file_url(), "nested"];
    git(
        &lib.work,
        &[&["-c", "protocol.file.allow=always"], &add[..]].concat(),
    );
    lib.commit();
    assert!(git(&lib.bare, &["ls-tree", "main", "nested"]).contains("commit"));
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    superproject(&app, &lib);
    git(&app, &["add", "-A"]);
    git(&app, &["commit", "-q", "-m", "app"]);
    let root = dir.path().join("root");
    let args = repo_args(
        &root,
        &format!("file://{}", app.display()),
        &["--period=100ms", "--submodules=shallow"],
    );
    let _gs = GitSync::spawn(&strs(&args), &[]);
    let link = root.join("site");
    wait_until(T, "first sync", || {
        published(&link) == Some(git(&app, &["rev-parse", "HEAD"]))
    });
    assert_eq!(
        std::fs::read_to_string(link.join("a.txt")).unwrap(),
        "app\n"
    );
    assert_eq!(version(&link.join("vendor/lib")).as_deref(), Some("2"));
    assert!(!link.join("vendor/lib/nested/VERSION").exists());
    // A recursive sync of the same superproject does check the nested one out.
    let (_dir2, full) = temp_root();
    let args = repo_args(&full, &format!("file://{}", app.display()), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        version(&full.join("site/vendor/lib/nested")).as_deref(),
        Some("1")
    );
}

/// upstream: e2e::gc_aggressive. A one-time run with `--git-gc=aggressive` publishes, and leaves
/// the repository compacted (one pack, no loose objects) and usable.
#[test]
fn gc_aggressive() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(
        &root,
        &up.file_url(),
        &["--one-time", "--git-gc=aggressive"],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert!(link.is_symlink());
    assert_eq!(version(&link).as_deref(), Some("1"));
    assert_eq!(object_files(&root), (1, 0));
    assert_eq!(git(&link, &["status", "--porcelain"]), "");
    assert!(!log.contains("cannot compact"), "{log}");
}

/// git-sync on `up` every 100 ms with `--root=root`, `link` and `extra`, admin server on: the
/// process and the admin port.
fn sync_with_link(up: &Upstream, root: &Path, link: &str, extra: &[&str]) -> (GitSync, u16) {
    let admin = free_port();
    let mut args = vec![
        format!("--repo={}", up.file_url()),
        format!("--root={}", root.display()),
        format!("--link={link}"),
        "--period=100ms".to_owned(),
        format!("--admin-addr=127.0.0.1:{admin}"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    (GitSync::spawn(&strs(&args), &[]), admin)
}

/// Forward, then back: each move published at `link` and counted (syncs and fetches 1-2-3).
fn forward_and_back(up: &mut Upstream, admin: u16, link: &Path) {
    let first = up.head();
    wait_until(T, "first sync", || published(link) == Some(first.clone()));
    assert_eq!(version(link).as_deref(), Some("1"));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);
    let second = up.commit();
    wait_until(T, "forward", || published(link) == Some(second.clone()));
    assert_eq!(version(link).as_deref(), Some("2"));
    wait_metric(admin, GOOD_SYNCS, 2.0);
    wait_metric(admin, FETCHES, 2.0);
    git(&up.bare, &["update-ref", "refs/heads/main", &first]);
    wait_until(T, "backward", || published(link) == Some(first.clone()));
    assert_eq!(version(link).as_deref(), Some("1"));
    wait_metric(admin, GOOD_SYNCS, 3.0);
    wait_metric(admin, FETCHES, 3.0);
}

/// upstream: e2e::sync_head_absolute_link. An absolute `--link` outside the root, in
/// directories that do not exist yet.
#[test]
fn sync_head_absolute_link() {
    let mut up = Upstream::new();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let link = dir.path().join("other/dir/link");
    let (_gs, admin) = sync_with_link(&up, &root, link.to_str().unwrap(), &[]);
    forward_and_back(&mut up, admin, &link);
    assert!(link.is_symlink());
    assert!(!root.join("link").exists());
}

/// upstream: e2e::sync_head_subdir_link. `--link=other/dir/link`: parents made under the root.
#[test]
fn sync_head_subdir_link() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let (_gs, admin) = sync_with_link(&up, &root, "other/dir/link", &[]);
    let link = root.join("other/dir/link");
    forward_and_back(&mut up, admin, &link);
    assert!(link.is_symlink());
    assert!(!root.join("link").exists());
}

/// upstream: e2e::init_root_is_under_another_repo. A non-empty root inside another git
/// repository's working tree.
#[test]
fn init_root_is_under_another_repo() {
    let up = Upstream::new();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("subdir/root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("file"), "not empty\n").unwrap();
    git(&dir.path().join("subdir"), &["init", "-q"]);
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let link = root.join("site");
    assert!(link.is_symlink());
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
}

/// upstream: e2e::init_root_fails_sanity. A root holding a non-bare `.git` whose HEAD names a
/// branch that does not exist.
#[test]
fn init_root_fails_sanity() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q"]);
    std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/nonexist\n").unwrap();
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    let link = root.join("site");
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
}

/// upstream: e2e::sync_crash_no_worktree_cleanup_retry. All of `.worktrees` deleted between two
/// runs: the worktree is made again.
#[test]
fn sync_crash_no_worktree_cleanup_retry() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(&root, &up.file_url(), &["--one-time"]);
    assert_eq!(run_once(&strs(&args), &[]).0, 0);
    assert_eq!(version(&link).as_deref(), Some("1"));
    std::fs::remove_dir_all(root.join(".worktrees")).unwrap();
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert!(link.is_symlink());
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
}

/// A sync on SIGHUP despite `--period=100s`, with `--sync-on-signal=<spelling>`.
fn sync_on_sighup_spelled(spelling: &str) {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let link = root.join("site");
    let args = repo_args(
        &root,
        &up.file_url(),
        &["--period=100s", &format!("--sync-on-signal={spelling}")],
    );
    let gs = GitSync::spawn(&strs(&args), &[]);
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
    let second = up.commit();
    gs.signal("HUP");
    wait_until(Duration::from_secs(5), "sync on SIGHUP", || {
        published(&link) == Some(second.clone())
    });
    assert_eq!(version(&link).as_deref(), Some("2"), "{spelling}");
}

/// upstream: e2e::sync_on_signal_hup. The signal named without the `SIG` prefix.
#[test]
fn sync_on_signal_hup() {
    sync_on_sighup_spelled("HUP");
}

/// upstream: e2e::sync_on_signal_1. The signal given by number (1 = SIGHUP).
#[test]
fn sync_on_signal_1() {
    sync_on_sighup_spelled("1");
}

/// upstream: e2e::export_error_abs_path. An absolute `--error-file` in a directory that does not
/// exist yet gets the error, with git's wording for a missing ref.
#[test]
fn export_error_abs_path() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let error = root.join("dir/error.json");
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--ref=does-not-exist",
            &format!("--error-file={}", error.display()),
        ],
    );
    let mut gs = GitSync::spawn(&strs(&args), &[]);
    assert_eq!(gs.wait(T), Some(1), "{}", gs.stderr());
    assert!(!root.join("site").exists());
    let text = std::fs::read_to_string(&error).unwrap();
    assert!(text.contains("couldn't find remote ref"), "{text}");
}

/// The current value of `series` on the admin port.
fn metric_now(admin: u16, series: &str) -> Option<f64> {
    metric(&http(admin, "GET", "/metrics", &[]).1, series)
}

/// upstream: e2e::sync_branch. A branch other than the remote HEAD: forward, back, each a sync
/// and a fetch.
#[test]
fn sync_branch() {
    let mut up = Upstream::new();
    git(&up.work, &["checkout", "-q", "-b", "other-branch"]);
    std::fs::write(up.work.join("VERSION"), "other 1").unwrap();
    git(&up.work, &["commit", "-q", "-am", "other 1"]);
    git(&up.work, &["push", "-q", "origin", "other-branch"]);
    let first = up.head();
    git(&up.work, &["checkout", "-q", "main"]);
    let (_dir, root) = temp_root();
    let (_gs, admin) = sync_with_link(&up, &root, "link", &["--ref=other-branch"]);
    let link = root.join("link");
    wait_until(T, "first sync", || published(&link) == Some(first.clone()));
    assert_eq!(version(&link).as_deref(), Some("other 1"));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);
    // main moving does not matter.
    up.commit();
    git(&up.work, &["checkout", "-q", "other-branch"]);
    std::fs::write(up.work.join("VERSION"), "other 2").unwrap();
    git(&up.work, &["commit", "-q", "-am", "other 2"]);
    git(&up.work, &["push", "-q", "origin", "other-branch"]);
    let second = up.head();
    wait_until(T, "forward", || published(&link) == Some(second.clone()));
    assert_eq!(version(&link).as_deref(), Some("other 2"));
    wait_metric(admin, GOOD_SYNCS, 2.0);
    wait_metric(admin, FETCHES, 2.0);
    git(&up.bare, &["update-ref", "refs/heads/other-branch", &first]);
    wait_until(T, "backward", || published(&link) == Some(first.clone()));
    assert_eq!(version(&link).as_deref(), Some("other 1"));
    wait_metric(admin, GOOD_SYNCS, 3.0);
    wait_metric(admin, FETCHES, 3.0);
}

/// Moves the tag `e2e-tag` of the upstream to `sha`: lightweight, or annotated with `message`.
fn move_tag(up: &Upstream, sha: &str, annotated: Option<&str>) {
    match annotated {
        None => git(&up.work, &["tag", "-f", "e2e-tag", sha]),
        Some(m) => git(&up.work, &["tag", "-af", "e2e-tag", "-m", m, sha]),
    };
    git(
        &up.work,
        &["push", "-q", "-f", "origin", "refs/tags/e2e-tag"],
    );
}

/// upstream's tag tests: the tag moved forward then back is followed (syncs and fetches 1-2-3);
/// a commit after the tag is not.
fn tag_followed(annotated: bool) {
    let mut up = Upstream::new();
    let first = up.head();
    let msg = |m: &'static str| annotated.then_some(m);
    move_tag(&up, &first, msg("tag 1"));
    let (_dir, root) = temp_root();
    let (_gs, admin) = sync_with_link(&up, &root, "link", &["--ref=e2e-tag"]);
    let link = root.join("link");
    wait_until(T, "first sync", || published(&link) == Some(first.clone()));
    assert_eq!(version(&link).as_deref(), Some("1"));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);
    let second = up.commit();
    move_tag(&up, &second, msg("tag 2"));
    wait_until(T, "tag forward", || {
        published(&link) == Some(second.clone())
    });
    assert_eq!(version(&link).as_deref(), Some("2"));
    wait_metric(admin, GOOD_SYNCS, 2.0);
    wait_metric(admin, FETCHES, 2.0);
    move_tag(&up, &first, msg("tag 3"));
    wait_until(T, "tag backward", || {
        published(&link) == Some(first.clone())
    });
    assert_eq!(version(&link).as_deref(), Some("1"));
    wait_metric(admin, GOOD_SYNCS, 3.0);
    wait_metric(admin, FETCHES, 3.0);
    up.commit();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(published(&link), Some(first));
    assert_eq!(version(&link).as_deref(), Some("1"));
    assert_eq!(metric_now(admin, GOOD_SYNCS), Some(3.0));
    assert_eq!(metric_now(admin, FETCHES), Some(3.0));
}

/// upstream: e2e::sync_tag. A lightweight tag.
#[test]
fn sync_tag() {
    tag_followed(false);
}

/// upstream: e2e::sync_annotated_tag. An annotated tag (re-made with a new message each move).
#[test]
fn sync_annotated_tag() {
    tag_followed(true);
}

/// upstream: e2e::sync_sha. Synced on a SHA in a running loop, new commits and a reset of the
/// branch change nothing: no more syncs, no more fetches.
#[test]
fn sync_sha() {
    let mut up = Upstream::new();
    let sha = up.head();
    let (_dir, root) = temp_root();
    let (_gs, admin) = sync_with_link(&up, &root, "link", &[&format!("--ref={sha}")]);
    let link = root.join("link");
    wait_until(T, "first sync", || published(&link) == Some(sha.clone()));
    wait_metric(admin, GOOD_SYNCS, 1.0);
    wait_metric(admin, FETCHES, 1.0);
    up.commit();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(published(&link), Some(sha.clone()));
    assert_eq!(version(&link).as_deref(), Some("1"));
    assert_eq!(metric_now(admin, GOOD_SYNCS), Some(1.0));
    assert_eq!(metric_now(admin, FETCHES), Some(1.0));
    git(&up.bare, &["update-ref", "refs/heads/main", &sha]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(published(&link), Some(sha));
    assert_eq!(metric_now(admin, GOOD_SYNCS), Some(1.0));
    assert_eq!(metric_now(admin, FETCHES), Some(1.0));
}

/// upstream: e2e::webhook_success. One call per published commit, no more.
#[test]
fn webhook_success() {
    let mut up = Upstream::new();
    let (port, hits) = webhook_receiver(Arc::new(std::sync::atomic::AtomicU16::new(200)));
    let (_dir, root) = temp_root();
    let url = format!("--webhook-url=http://127.0.0.1:{port}/");
    let (_gs, _admin) = sync_with_link(&up, &root, "link", &[&url, "--webhook-success-status=200"]);
    let link = root.join("link");
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    wait_until(T, "the webhook", || hits.load(Ordering::SeqCst) >= 1);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let second = up.commit();
    wait_until(T, "second sync", || {
        published(&link) == Some(second.clone())
    });
    wait_until(T, "the webhook again", || hits.load(Ordering::SeqCst) >= 2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

/// One `--one-time` run with a webhook answering `status`: exits `want`, the commit published
/// either way, and exactly one call (no retry).
fn webhook_once(status: u16, want: i32) {
    let up = Upstream::new();
    let (port, hits) = webhook_receiver(Arc::new(std::sync::atomic::AtomicU16::new(status)));
    let (_dir, root) = temp_root();
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--one-time",
            "--period=100ms",
            &format!("--webhook-url=http://127.0.0.1:{port}/"),
            "--webhook-success-status=200",
        ],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, want, "{status}: {log}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "{status}");
    assert_eq!(version(&root.join("site")).as_deref(), Some("1"));
}

/// upstream: e2e::webhook_success_once. 200 under `--one-time`: exit 0 after one call.
#[test]
fn webhook_success_once() {
    webhook_once(200, 0);
}

/// upstream: e2e::webhook_fail_retry_once. 500 under `--one-time`: exit 1, link kept, one call.
#[test]
fn webhook_fail_retry_once() {
    webhook_once(500, 1);
}

/// A hook like upstream's: writes the worktree's `VERSION` to `exechook` and `$ENVKEY` to
/// `exechook-env` in its cwd, then a line to `runlog`.
fn recording_hook(dir: &Path, runlog: &Path) -> PathBuf {
    let body = format!(
        "cat VERSION > exechook\necho \"ENVKEY=$ENVKEY\" > exechook-env\ndate >> {}\n",
        runlog.display()
    );
    script(dir, "hook.sh", &body)
}

/// upstream: e2e::exechook_success. The hook runs once per published commit, in the worktree,
/// with the environment inherited.
#[test]
fn exechook_success() {
    let mut up = Upstream::new();
    let (dir, root) = temp_root();
    let runlog = dir.path().join("runlog");
    let hook = recording_hook(dir.path(), &runlog);
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--period=100ms",
            &format!("--exechook-command={}", hook.display()),
        ],
    );
    let _gs = GitSync::spawn(&strs(&args), &[("ENVKEY", "envval")]);
    let link = root.join("site");
    // The run log is written last: the hook has finished once it has a line.
    wait_until(T, "the hook for the first commit", || lines(&runlog) >= 1);
    assert_eq!(std::fs::read_to_string(link.join("exechook")).unwrap(), "1");
    assert_eq!(
        std::fs::read_to_string(link.join("exechook-env")).unwrap(),
        "ENVKEY=envval\n"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&runlog), 1);
    up.commit();
    wait_until(T, "the hook for the second commit", || lines(&runlog) >= 2);
    assert_eq!(std::fs::read_to_string(link.join("exechook")).unwrap(), "2");
    assert_eq!(
        std::fs::read_to_string(link.join("exechook-env")).unwrap(),
        "ENVKEY=envval\n"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&runlog), 2);
}

/// upstream: e2e::exechook_success_once. `--one-time` waits for a succeeding hook.
#[test]
fn exechook_success_once() {
    let up = Upstream::new();
    let (dir, root) = temp_root();
    let runlog = dir.path().join("runlog");
    let hook = recording_hook(dir.path(), &runlog);
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--one-time",
            &format!("--exechook-command={}", hook.display()),
        ],
    );
    let (code, log) = run_once(&strs(&args), &[("ENVKEY", "envval")]);
    assert_eq!(code, 0, "{log}");
    let link = root.join("site");
    assert_eq!(version(&link).as_deref(), Some("1"));
    assert_eq!(std::fs::read_to_string(link.join("exechook")).unwrap(), "1");
    assert_eq!(
        std::fs::read_to_string(link.join("exechook-env")).unwrap(),
        "ENVKEY=envval\n"
    );
    assert_eq!(lines(&runlog), 1);
}

/// upstream: e2e::exechook_fail_once. Under `--one-time` a failing (slow) hook runs once, no
/// retry after the backoff, exits 1 and leaves the commit published.
#[test]
fn exechook_fail_once() {
    let up = Upstream::new();
    let (dir, root) = temp_root();
    let runlog = dir.path().join("runlog");
    let fail = script(
        dir.path(),
        "fail.sh",
        &format!("sleep 0.2\ndate >> {}\nexit 1\n", runlog.display()),
    );
    let args = repo_args(
        &root,
        &up.file_url(),
        &[
            "--one-time",
            &format!("--exechook-command={}", fail.display()),
            "--exechook-backoff=1s",
        ],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(root.join("site").is_symlink());
    assert_eq!(version(&root.join("site")).as_deref(), Some("1"));
    assert_eq!(lines(&runlog), 1);
}

/// The touch file (relative to the root, or absolute in a directory not made yet) appears after
/// each sync that publishes a commit (forward and back), and not again without one.
fn touch_file_follows_commits(absolute: bool) {
    let mut up = Upstream::new();
    let (dir, root) = temp_root();
    let (flag, touch) = if absolute {
        let p = dir.path().join("dir/touch.file");
        (p.display().to_string(), p)
    } else {
        ("touch.file".to_owned(), root.join("touch.file"))
    };
    let (_gs, _admin) = sync_with_link(&up, &root, "link", &[&format!("--touch-file={flag}")]);
    let link = root.join("link");
    let first = up.head();
    let step = |want: &str| {
        wait_until(T, "the touch file", || touch.exists());
        std::fs::remove_file(&touch).unwrap();
        assert_eq!(published(&link).as_deref(), Some(want));
        std::thread::sleep(Duration::from_secs(1));
        assert!(!touch.exists(), "touched again without a new commit");
    };
    step(&first);
    let second = up.commit();
    step(&second);
    git(&up.bare, &["update-ref", "refs/heads/main", &first]);
    step(&first);
}

/// upstream: e2e::touch_file. `--touch-file=touch.file`, relative to the root.
#[test]
fn touch_file() {
    touch_file_follows_commits(false);
}

/// upstream: e2e::touch_file_abs_path. An absolute `--touch-file` whose directory is made.
#[test]
fn touch_file_abs_path() {
    touch_file_follows_commits(true);
}

/// upstream: e2e::export_error. A relative `--error-file` (under the root) gets git's wording
/// for a missing ref, and is removed by the next successful sync.
#[test]
fn export_error() {
    let up = Upstream::new();
    let (_dir, root) = temp_root();
    let error = root.join("error.json");
    let args = repo_args(
        &root,
        &up.file_url(),
        &["--ref=does-not-exist", "--error-file=error.json"],
    );
    let mut gs = GitSync::spawn(&strs(&args), &[]);
    assert_eq!(gs.wait(T), Some(1), "{}", gs.stderr());
    assert!(!root.join("site").exists());
    let text = std::fs::read_to_string(&error).unwrap();
    assert!(text.contains("couldn't find remote ref"), "{text}");
    let args = repo_args(
        &root,
        &up.file_url(),
        &["--one-time", "--error-file=error.json"],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(version(&root.join("site")).as_deref(), Some("1"));
    assert!(!error.exists(), "error file kept after a success");
}

/// upstream: e2e::expose_http. With `--http-bind`, `/` answers 503 while the first (slow) sync
/// runs, 200 after it; `/metrics` is served.
#[test]
fn expose_http() {
    let up = Upstream::new();
    let server = HttpGit::start(&up.srv(), "u", "p", Some(8));
    let (_dir, root) = temp_root();
    let admin = free_port();
    let link = root.join("site");
    let _gs = GitSync::spawn(
        &[
            &format!("--repo={}", server.url("u:p@")),
            &format!("--root={}", root.display()),
            "--link=site",
            "--period=100ms",
            &format!("--http-bind=127.0.0.1:{admin}"),
        ],
        &[],
    );
    wait_until(Duration::from_secs(5), "the http server up", || {
        http(admin, "GET", "/", &[]).0 != 0
    });
    assert!(published(&link).is_none(), "the first sync was not slow");
    assert_eq!(http(admin, "GET", "/", &[]).0, 503);
    wait_until(T, "first sync", || published(&link) == Some(up.head()));
    wait_until(Duration::from_secs(3), "/ at 200", || {
        http(admin, "GET", "/", &[]).0 == 200
    });
    assert_eq!(http(admin, "GET", "/metrics", &[]).0, 200);
}

/// upstream: e2e::stale_worktree_timeout. In one running process, each replaced worktree is kept
/// for `--stale-worktree-timeout` after it was replaced, then removed, oldest first.
#[test]
fn stale_worktree_timeout() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let wts = root.join(".worktrees");
    let (_gs, _admin) = sync_with_link(&up, &root, "link", &["--stale-worktree-timeout=6s"]);
    let link = root.join("link");
    let wt1 = up.head();
    wait_until(T, "first sync", || published(&link) == Some(wt1.clone()));
    std::thread::sleep(Duration::from_secs(2));
    let wt2 = up.commit();
    wait_until(T, "second sync", || published(&link) == Some(wt2.clone()));
    assert!(
        wts.join(&wt1).join("VERSION").is_file(),
        "wt1 removed at once"
    );
    // wt1 has been stale since wt2 was published; wt2 goes stale 3 s after it, so the two
    // expire 3 s apart, and wt3 is published about 3 s before wt1 expires: margins for a
    // loaded machine.
    std::thread::sleep(Duration::from_secs(3));
    let wt3 = up.commit();
    wait_until(T, "third sync", || published(&link) == Some(wt3.clone()));
    for wt in [&wt1, &wt2, &wt3] {
        assert!(wts.join(wt).join("VERSION").is_file(), "{wt} missing");
    }
    // wt1 expires about 3 s before wt2.
    wait_until(T, "wt1 expired", || !wts.join(&wt1).exists());
    assert!(
        wts.join(&wt2).join("VERSION").is_file(),
        "wt2 expired with wt1"
    );
    wait_until(T, "wt2 expired", || !wts.join(&wt2).exists());
    assert!(wts.join(&wt3).join("VERSION").is_file());
    assert_eq!(published(&link), Some(wt3));
    assert_eq!(version(&link).as_deref(), Some("3"));
}

/// upstream: e2e::stale_worktree_timeout_restart. The same across `--one-time` restarts: wt1
/// expires while wt2 stays, then wt2 goes and only the published wt3 is left.
#[test]
fn stale_worktree_timeout_restart() {
    let mut up = Upstream::new();
    let (_dir, root) = temp_root();
    let wts = root.join(".worktrees");
    let url = up.file_url();
    let run = |timeout: Option<&str>| {
        let mut extra = vec!["--one-time".to_owned()];
        extra.extend(timeout.map(|t| format!("--stale-worktree-timeout={t}")));
        let args = repo_args(&root, &url, &strs(&extra));
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, 0, "{log}");
    };
    let has = |wt: &str| wts.join(wt).join("VERSION").is_file();
    run(None);
    let wt1 = up.head();
    std::thread::sleep(Duration::from_secs(1));
    let wt2 = up.commit();
    run(Some("6s"));
    assert!(has(&wt1) && has(&wt2));
    std::thread::sleep(Duration::from_millis(3500));
    let wt3 = up.commit();
    run(Some("6s"));
    assert!(has(&wt1) && has(&wt2) && has(&wt3));
    // Sleeping 4.25 s puts wt1 (stale since the second run, 3.5 s earlier than wt2) about 1.75 s
    // past the 6 s timeout and wt2 about 1.75 s before it: margins for a loaded machine.
    std::thread::sleep(Duration::from_millis(4250));
    run(Some("6s"));
    assert!(!wts.join(&wt1).exists(), "wt1 not expired");
    assert!(has(&wt2), "wt2 expired early");
    std::thread::sleep(Duration::from_millis(3500));
    run(Some("6s"));
    assert!(!wts.join(&wt2).exists(), "wt2 not expired");
    assert!(has(&wt3));
    assert_eq!(published(&root.join("site")), Some(wt3));
}

/// upstream: e2e::auth_http_password. `--username` with the password in `GITSYNC_PASSWORD`: a
/// wrong user or a wrong password fails (exit 1, nothing published), the right pair syncs.
#[test]
fn auth_http_password() {
    let up = Upstream::new();
    let srv = HttpGit::start(&up.srv(), "alice", "correct-horse", None);
    let dir = tempfile::tempdir().unwrap();
    for (i, (user, password, want)) in [
        ("mallory", "correct-horse", 1),
        ("alice", "not-the-password-42", 1),
        ("alice", "correct-horse", 0),
    ]
    .into_iter()
    .enumerate()
    {
        let root = dir.path().join(i.to_string());
        let args = repo_args(
            &root,
            &srv.url(""),
            &[&format!("--username={user}"), "--one-time"],
        );
        let (code, log) = run_once(&strs(&args), &[("GITSYNC_PASSWORD", password)]);
        assert_eq!(code, want, "{user}/{password}: {log}");
        let link = root.join("site");
        if want == 0 {
            assert_eq!(published(&link), Some(up.head()));
            assert_eq!(version(&link).as_deref(), Some("1"));
        } else {
            assert!(published(&link).is_none(), "{user}/{password}");
            assert!(!log.contains(password), "{log}");
        }
    }
}

/// upstream: e2e::auth_http_password_in_url. Credentials in the URL: a wrong user or password
/// fails, the right pair syncs.
#[test]
fn auth_http_password_in_url() {
    let up = Upstream::new();
    let srv = HttpGit::start(&up.srv(), "alice", "correct-horse", None);
    let dir = tempfile::tempdir().unwrap();
    for (i, (userinfo, want)) in [
        ("mallory:correct-horse@", 1),
        ("alice:wrong@", 1),
        ("alice:correct-horse@", 0),
    ]
    .into_iter()
    .enumerate()
    {
        let root = dir.path().join(i.to_string());
        let args = repo_args(&root, &srv.url(userinfo), &["--one-time"]);
        let (code, log) = run_once(&strs(&args), &[]);
        assert_eq!(code, want, "{userinfo}: {log}");
        let link = root.join("site");
        if want == 0 {
            assert_eq!(published(&link), Some(up.head()));
            assert_eq!(version(&link).as_deref(), Some("1"));
        } else {
            assert!(published(&link).is_none(), "{userinfo}");
        }
    }
}

/// upstream: e2e::submodule_sync_default. In a running loop: the submodule moved forward and
/// back, a nested submodule added and removed, the submodule removed; each a successful sync.
#[test]
fn submodule_sync_default() {
    let mut lib = Upstream::new();
    let lib_first = lib.head();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    superproject(&app, &lib);
    git(&app, &["add", "-A"]);
    git(&app, &["commit", "-q", "-m", "app"]);
    // Points the superproject's submodule at the library's current main and commits.
    let bump = |msg: &str| {
        git(
            &app,
            &[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "update",
                "-q",
                "--remote",
            ],
        );
        git(&app, &["commit", "-q", "-am", msg]);
        git(&app, &["rev-parse", "HEAD"])
    };
    let (_dir, root) = temp_root();
    let admin = free_port();
    let _gs = GitSync::spawn(
        &[
            &format!("--repo=file://{}", app.display()),
            &format!("--root={}", root.display()),
            "--link=link",
            "--period=100ms",
            &format!("--admin-addr=127.0.0.1:{admin}"),
        ],
        &[],
    );
    let link = root.join("link");
    let sub = link.join("vendor/lib");
    let step = |sha: String, n: f64| {
        wait_until(T, "the superproject's commit", || {
            published(&link) == Some(sha.clone())
        });
        assert_eq!(
            std::fs::read_to_string(link.join("a.txt")).unwrap(),
            "app\n"
        );
        wait_metric(admin, GOOD_SYNCS, n);
    };
    step(git(&app, &["rev-parse", "HEAD"]), 1.0);
    assert_eq!(version(&sub).as_deref(), Some("1"));

    lib.commit();
    step(bump("lib forward"), 2.0);
    assert_eq!(version(&sub).as_deref(), Some("2"));

    git(&lib.bare, &["update-ref", "refs/heads/main", &lib_first]);
    step(bump("lib backward"), 3.0);
    assert_eq!(version(&sub).as_deref(), Some("1"));

    let nested = Upstream::new();
    let add = ["submodule", "add", "-q", &nested.file_url(), "nested"];
    git(
        &lib.work,
        &[&["-c", "protocol.file.allow=always"], &add[..]].concat(),
    );
    lib.commit();
    step(bump("nested added"), 4.0);
    assert_eq!(version(&sub.join("nested")).as_deref(), Some("1"));

    git(&lib.work, &["rm", "-qf", "nested"]);
    std::fs::remove_dir_all(lib.work.join(".git/modules/nested")).unwrap();
    lib.commit();
    step(bump("nested removed"), 5.0);
    assert!(version(&sub).is_some());
    assert!(!sub.join("nested/VERSION").exists());

    git(&app, &["submodule", "deinit", "-q", "vendor/lib"]);
    git(&app, &["rm", "-qf", "vendor/lib"]);
    git(&app, &["commit", "-q", "-m", "submodule removed"]);
    step(git(&app, &["rev-parse", "HEAD"]), 6.0);
    assert!(!sub.join("VERSION").exists());
}

/// upstream: e2e::auth_ssh_url. ssh:// with a key the server does not accept fails; with
/// several `--ssh-key-file`, the accepted one last, it syncs.
#[test]
fn auth_ssh_url() {
    let up = Upstream::new();
    let sshd = Sshd::start();
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        Sshd::user(),
        sshd.port,
        up.bare.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for name in ["wrong1", "wrong2"] {
        let key = dir.path().join(name);
        podmates_testkit::proc::run_ok(
            std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key),
        );
        wrong.push(format!("--ssh-key-file={}", key.display()));
    }
    let known = format!("--ssh-known-hosts-file={}", sshd.known_hosts.display());
    let right = format!("--ssh-key-file={}", sshd.key.display());
    let run = |root: &str, keys: &[&String]| {
        let root = dir.path().join(root);
        let mut extra: Vec<&str> = vec![&known, "--one-time"];
        extra.extend(keys.iter().map(|k| k.as_str()));
        let args = repo_args(&root, &url, &extra);
        let (code, log) = run_once(&strs(&args), &[]);
        (code, log, root.join("site"))
    };
    let (code, log, link) = run("wrong", &[&wrong[0]]);
    assert_eq!(code, 1, "{log}");
    assert!(published(&link).is_none());
    let (code, log, link) = run("several", &[&wrong[0], &wrong[1], &right]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(published(&link), Some(up.head()));
    assert_eq!(version(&link).as_deref(), Some("1"));
}

/// upstream: e2e::submodule_sync_over_http_different_passwords. The superproject, its submodule
/// and the submodule's own submodule on three smart-HTTP servers with three passwords, one
/// `--credential` each.
#[test]
fn submodule_sync_over_http_different_passwords() {
    let nested = Upstream::new();
    let nested_srv = HttpGit::start(&nested.srv(), "test", "test1", None);
    let mut lib = Upstream::new();
    let lib_srv = HttpGit::start(&lib.srv(), "test", "test2", None);
    // Added from the file (no credentials needed here), then pointed at the HTTP server.
    let add = ["submodule", "add", "-q", &nested.file_url(), "nested"];
    git(
        &lib.work,
        &[&["-c", "protocol.file.allow=always"], &add[..]].concat(),
    );
    let nested_url = nested_srv.url("");
    git(
        &lib.work,
        &[
            "config",
            "-f",
            ".gitmodules",
            "submodule.nested.url",
            &nested_url,
        ],
    );
    lib.commit();

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("app-work");
    superproject(&work, &lib);
    let lib_url = lib_srv.url("");
    git(
        &work,
        &[
            "config",
            "-f",
            ".gitmodules",
            "submodule.vendor/lib.url",
            &lib_url,
        ],
    );
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "app"]);
    let srv = dir.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    git(&srv, &["init", "-q", "--bare", "-b", "main", "repo.git"]);
    git(
        &work,
        &["push", "-q", srv.join("repo.git").to_str().unwrap(), "main"],
    );
    let app_srv = HttpGit::start(&srv, "test", "test3", None);
    let app_url = app_srv.url("");

    let (_dir, root) = temp_root();
    let admin = free_port();
    let cred = |url: &str, pw: &str| {
        format!(r#"--credential={{"url":"{url}","username":"test","password":"{pw}"}}"#)
    };
    let _gs = GitSync::spawn(
        &[
            &format!("--repo={app_url}"),
            &format!("--root={}", root.display()),
            "--link=link",
            "--period=100ms",
            &format!("--admin-addr=127.0.0.1:{admin}"),
            &cred(&nested_url, "test1"),
            &cred(&lib_url, "test2"),
            &cred(&app_url, "test3"),
        ],
        &[],
    );
    let link = root.join("link");
    let head = git(&work, &["rev-parse", "HEAD"]);
    wait_until(T, "first sync", || published(&link) == Some(head.clone()));
    assert_eq!(
        std::fs::read_to_string(link.join("a.txt")).unwrap(),
        "app\n"
    );
    assert_eq!(version(&link.join("vendor/lib")).as_deref(), Some("2"));
    assert_eq!(
        version(&link.join("vendor/lib/nested")).as_deref(),
        Some("1")
    );
    wait_metric(admin, GOOD_SYNCS, 1.0);
}

/// upstream: e2e::submodule_sync_over_ssh_different_keys. The superproject, its submodule and the
/// submodule's own submodule behind three sshd, each accepting only its own key; git-sync is
/// given the three keys.
#[test]
fn submodule_sync_over_ssh_different_keys() {
    let ssh_url = |sshd: &Sshd, bare: &Path| {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            Sshd::user(),
            sshd.port,
            bare.display()
        )
    };
    let nested = Upstream::new();
    let nested_sshd = Sshd::start();
    let mut lib = Upstream::new();
    let lib_sshd = Sshd::start();
    // Added from the file (no key needed here), then pointed at the ssh server.
    let add = ["submodule", "add", "-q", &nested.file_url(), "nested"];
    git(
        &lib.work,
        &[&["-c", "protocol.file.allow=always"], &add[..]].concat(),
    );
    let nested_url = ssh_url(&nested_sshd, &nested.bare);
    git(
        &lib.work,
        &[
            "config",
            "-f",
            ".gitmodules",
            "submodule.nested.url",
            &nested_url,
        ],
    );
    lib.commit();

    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("app-work");
    superproject(&work, &lib);
    let lib_url = ssh_url(&lib_sshd, &lib.bare);
    git(
        &work,
        &[
            "config",
            "-f",
            ".gitmodules",
            "submodule.vendor/lib.url",
            &lib_url,
        ],
    );
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "app"]);
    let app_bare = dir.path().join("app.git");
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", "app.git"],
    );
    git(&work, &["push", "-q", app_bare.to_str().unwrap(), "main"]);
    let app_sshd = Sshd::start();

    let (_dir, root) = temp_root();
    let admin = free_port();
    let key = |s: &Sshd| format!("--ssh-key-file={}", s.key.display());
    let _gs = GitSync::spawn(
        &[
            &format!("--repo={}", ssh_url(&app_sshd, &app_bare)),
            &format!("--root={}", root.display()),
            "--link=link",
            "--period=100ms",
            &format!("--admin-addr=127.0.0.1:{admin}"),
            &key(&nested_sshd),
            &key(&lib_sshd),
            &key(&app_sshd),
            "--ssh-known-hosts=false",
        ],
        &[],
    );
    let link = root.join("link");
    let head = git(&work, &["rev-parse", "HEAD"]);
    wait_until(T, "first sync", || published(&link) == Some(head.clone()));
    assert_eq!(
        std::fs::read_to_string(link.join("a.txt")).unwrap(),
        "app\n"
    );
    assert_eq!(version(&link.join("vendor/lib")).as_deref(), Some("2"));
    assert_eq!(
        version(&link.join("vendor/lib/nested")).as_deref(),
        Some("1")
    );
    wait_metric(admin, GOOD_SYNCS, 1.0);

    // The keys are not interchangeable: without the nested submodule's key the sync fails.
    let (_dir2, other) = temp_root();
    let args = repo_args(
        &other,
        &ssh_url(&app_sshd, &app_bare),
        &[
            "--one-time",
            &key(&lib_sshd),
            &key(&app_sshd),
            "--ssh-known-hosts=false",
        ],
    );
    let (code, log) = run_once(&strs(&args), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(published(&other.join("site")).is_none());
}
