//! System packages the tests and benchmarks drive: the real rivals and servers, never mocks.

use std::process::Command;

use crate::sh;

pub(crate) use podmates_testkit::tools::{BENCH_PACKAGES, Package, TEST_PACKAGES};

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
