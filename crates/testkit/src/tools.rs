//! The Debian packages the tests and benchmarks drive (the real rivals and servers, never mocks):
//! one table, which `cargo xtask test` installs from and [`require`] names in its hint.

/// A Debian package and a file it installs, used to tell whether it is present without asking
/// dpkg about every package.
pub struct Package {
    /// The Debian package.
    pub name: &'static str,
    /// An absolute path it installs.
    pub provides: &'static str,
}

const fn pkg(name: &'static str, provides: &'static str) -> Package {
    Package { name, provides }
}

/// What `cargo xtask test` needs.
pub const TEST_PACKAGES: &[Package] = &[
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
    // The servers wait-for's tests wait for: PostgreSQL (initdb and postgres of the newest
    // version under /usr/lib/postgresql), MariaDB, and dnsmasq as the DNS server whose names
    // appear while wait-for waits.
    pkg("postgresql", "/usr/share/postgresql-common/pg_wrapper"),
    pkg("mariadb-server", "/usr/sbin/mariadbd"),
    pkg("mariadb-client-core", "/usr/bin/mariadb"),
    pkg("dnsmasq-base", "/usr/sbin/dnsmasq"),
    // The venv that `cargo xtask clients` installs the PyPI clients into.
    pkg("python3-venv", "/usr/share/doc/python3-venv"),
];

/// What the benchmarks need on top of the test packages.
pub const BENCH_PACKAGES: &[Package] = &[
    pkg("wrk", "/usr/bin/wrk"),
    pkg("hyperfine", "/usr/bin/hyperfine"),
    // git-sync's bench: peak RSS of a process tree.
    pkg("time", "/usr/bin/time"),
];

/// Fails with the Debian package that provides `path` (an absolute path of the table, or a
/// program name looked up on PATH) when it is missing.
///
/// # Panics
/// When the program is missing, naming the package and the command that installs it.
pub fn require(path: &str) {
    let found = if path.contains('/') {
        std::path::Path::new(path).exists()
    } else {
        let dirs = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&dirs)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|d| d.join(path).is_file())
    };
    if found {
        return;
    }
    let package = TEST_PACKAGES
        .iter()
        .chain(BENCH_PACKAGES)
        .find(|p| p.provides == path || p.provides.rsplit('/').next() == Some(path))
        .map_or(
            "(not in the package table of crates/testkit/src/tools.rs)",
            |p| p.name,
        );
    panic!("`{path}` is missing: install the Debian package {package} (`cargo xtask deps` does)");
}
