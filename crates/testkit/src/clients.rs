//! The client libraries that `cargo xtask clients` (a stage of `cargo xtask test`) installs from
//! PyPI and npm: where they are, for tests that run them on their default settings.

use std::path::PathBuf;

/// The folder xtask installed into: `PODMATES_CLIENTS`, or `target/clients` of the workspace.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PODMATES_CLIENTS") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/clients")
}

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} not found at {}: run `cargo xtask clients` (part of `cargo xtask test`) first",
        path.display()
    );
    path
}

/// The venv's python, with the PyPI clients importable.
///
/// # Panics
/// When the clients are not installed, naming the command that installs them.
pub fn python() -> PathBuf {
    require(dir().join("venv/bin/python"), "the PyPI clients' venv")
}

/// The `node_modules` folder holding the npm clients (pass it as `NODE_PATH`).
///
/// # Panics
/// When the clients are not installed, naming the command that installs them.
pub fn node_modules() -> PathBuf {
    require(dir().join("node/node_modules"), "the npm clients")
}
