//! System packages the tests and benchmarks drive: the real rivals and servers, never mocks.

use std::process::Command;

use crate::sh;

/// A Debian package and a file it installs, used to tell whether it is present without asking
/// dpkg about every package.
pub(crate) struct Package {
    pub(crate) name: &'static str,
    pub(crate) provides: &'static str,
}

const fn pkg(name: &'static str, provides: &'static str) -> Package {
    Package { name, provides }
}

/// What `cargo xtask test` needs.
pub(crate) const TEST_PACKAGES: &[Package] = &[
    pkg("git", "/usr/bin/git"),
    pkg("redis-server", "/usr/bin/redis-server"),
    pkg("redis-tools", "/usr/bin/redis-cli"),
    pkg("nutcracker", "/usr/sbin/nutcracker"),
    // redis-py, the client redis-ambassador's compatibility test drives.
    pkg(
        "python3-redis",
        "/usr/lib/python3/dist-packages/redis/__init__.py",
    ),
    pkg("nginx-light", "/usr/sbin/nginx"),
    pkg(
        "prometheus-nginx-exporter",
        "/usr/bin/prometheus-nginx-exporter",
    ),
    // TLS certificates for the nginx-exporter's https tests.
    pkg("openssl", "/usr/bin/openssl"),
    pkg("liblognorm-utils", "/usr/bin/lognormalizer"),
    // The syslog receiver log-normalize's --syslog-tcp test ships to.
    pkg("rsyslog", "/usr/sbin/rsyslogd"),
    pkg("logrotate", "/usr/sbin/logrotate"),
    pkg("openssh-server", "/usr/sbin/sshd"),
    pkg("openssh-client", "/usr/bin/ssh-keygen"),
    pkg("busybox", "/bin/busybox"),
    // The venv that `cargo xtask clients` installs the PyPI clients into.
    pkg("python3-venv", "/usr/share/doc/python3-venv"),
];

/// What the benchmarks need on top of the test packages.
pub(crate) const BENCH_PACKAGES: &[Package] = &[
    pkg("wrk", "/usr/bin/wrk"),
    pkg("hyperfine", "/usr/bin/hyperfine"),
    // git-sync's bench: peak RSS of a process tree.
    pkg("time", "/usr/bin/time"),
];

/// Installs the missing packages with apt-get when running as root on Debian/Ubuntu; otherwise
/// prints the exact command to run and fails.
pub(crate) fn ensure_packages(pkgs: &[Package]) -> Result<(), String> {
    let missing: Vec<&str> = pkgs
        .iter()
        .filter(|p| !std::path::Path::new(p.provides).exists())
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        eprintln!("system packages: all {} present", pkgs.len());
        return Ok(());
    }
    let cmdline = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !sh::have("apt-get") {
        return Err(format!(
            "missing system packages {missing:?} and no apt-get here; install their equivalents"
        ));
    }
    if !is_root() {
        return Err(format!(
            "missing system packages; run as root:\n  apt-get update && {cmdline}"
        ));
    }
    eprintln!("system packages: installing {}", missing.join(" "));
    // Package postinst scripts try to start services (nginx, redis); with no init system here they
    // must not, and tests start their own instances on loopback anyway.
    let policy = std::path::Path::new("/usr/sbin/policy-rc.d");
    let wrote_policy = if policy.exists() {
        false
    } else {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")
            .and_then(|()| set_executable(policy))
            .is_ok()
    };
    let res = sh::run(Command::new("apt-get").args(["update", "-q"])).and_then(|()| {
        sh::run(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing),
        )
    });
    if wrote_policy {
        let _ = std::fs::remove_file(policy);
    }
    res?;
    let still: Vec<&str> = pkgs
        .iter()
        .filter(|p| !std::path::Path::new(p.provides).exists())
        .map(|p| p.provides)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("installed, but these are still missing: {still:?}"))
    }
}

fn set_executable(p: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
}

fn is_root() -> bool {
    sh::output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}
