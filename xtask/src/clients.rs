//! The client libraries users run, installed from their registries into folders xtask creates:
//! a Python venv (PyPI) and an npm prefix, both under `target/clients/`. Tests find them through
//! `podmates_testkit::clients` (the `PODMATES_CLIENTS` env var, set by `cargo xtask test`).
//!
//! Each is installed at its newest release and used with its default settings: the point is to
//! run what a user who adds the library today gets.

use std::path::PathBuf;
use std::process::Command;

use crate::sh;

/// PyPI packages the tests import, newest release of each.
pub(crate) const PYPI: &[&str] = &[
    // redis-ambassador: the Python client on its defaults (RESP3 since 8.x).
    "redis",
    // log-normalize: OTLP/JSON output checked against the official proto definitions.
    "opentelemetry-proto",
    // k8s-examples: strict schema check of the rendered manifests.
    "kubernetes-validate",
];

/// npm packages the tests require, newest release of each.
pub(crate) const NPM: &[&str] = &[
    // redis-ambassador: the two Node.js clients on their defaults.
    "ioredis", "redis",
];

/// `target/clients` in the workspace.
pub(crate) fn dir() -> PathBuf {
    sh::root().join("target").join("clients")
}

/// Creates or completes the venv and the npm prefix; returns the folder to pass to the tests as
/// `PODMATES_CLIENTS`. A stamp naming the packages skips the work when nothing changed.
pub(crate) fn ensure() -> Result<PathBuf, String> {
    let dir = dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let stamp = dir.join("installed");
    let want = format!("pypi {}\nnpm {}\n", PYPI.join(" "), NPM.join(" "));
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        eprintln!("clients: present in {}", dir.display());
        return Ok(dir);
    }
    let venv = dir.join("venv");
    if !venv.join("bin/python").exists() {
        sh::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    sh::run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", "--upgrade"])
            .args(PYPI),
    )?;
    let node = dir.join("node");
    std::fs::create_dir_all(&node).map_err(|e| format!("cannot create {}: {e}", node.display()))?;
    sh::run(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&node)
            .args(["--no-audit", "--no-fund", "--loglevel=error"])
            .args(NPM.iter().map(|p| format!("{p}@latest"))),
    )?;
    std::fs::write(&stamp, want).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(dir)
}
