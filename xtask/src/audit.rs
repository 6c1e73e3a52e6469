//! `cargo xtask audit`: cargo-audit over Cargo.lock against the RustSec advisory database, failing
//! on any vulnerability or unsound-code advisory of a crate the workspace uses.
//!
//! The machines this runs on reach package registries only, not GitHub, so the database is a
//! snapshot on disk: `PODMATES_ADVISORY_DB`, else `advisory-db` in the `shared` folder beside the
//! workspace's parent. cargo-audit itself is installed from crates.io into `target/tools` when
//! the machine lacks it.

use std::path::PathBuf;
use std::process::Command;

use crate::sh;

/// The cargo-audit release installed when none is on the machine.
const CARGO_AUDIT: &str = "cargo-audit@0.22.2";

fn database() -> Option<PathBuf> {
    let root = sh::root();
    std::env::var_os("PODMATES_ADVISORY_DB")
        .map(PathBuf::from)
        .into_iter()
        .chain(root.parent().map(|p| p.join("shared/advisory-db")))
        .chain(
            root.parent()
                .and_then(|p| p.parent())
                .map(|p| p.join("shared/advisory-db")),
        )
        .find(|p| p.join("crates").is_dir())
}

/// The cargo-audit executable: on PATH (`cargo audit`), or installed into `target/tools`.
fn cargo_audit() -> Result<Command, String> {
    if Command::new("cargo-audit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(Command::new("cargo-audit"));
    }
    let tools = sh::root().join("target/tools");
    let bin = tools.join("bin/cargo-audit");
    if !bin.exists() {
        sh::run(
            sh::cargo()
                // Without binary scanning (object, syn): only Cargo.lock is audited, and it
                // compiles in less time on a fresh machine.
                .args([
                    "install",
                    "--locked",
                    "--quiet",
                    "--no-default-features",
                    "--root",
                ])
                .arg(&tools)
                .arg(CARGO_AUDIT),
        )?;
    }
    Ok(Command::new(bin))
}

pub(crate) fn run() -> Result<(), String> {
    let Some(db) = database() else {
        // Without network access to GitHub there is nothing to check against; say so loudly
        // rather than fail every other stage's result with it.
        eprintln!(
            "audit: SKIPPED: no advisory database snapshot (set PODMATES_ADVISORY_DB to a copy \
             of rustsec/advisory-db, or put one at ../shared/advisory-db)"
        );
        return Ok(());
    };
    eprintln!("audit: advisory database {}", db.display());
    let mut cmd = cargo_audit()?;
    cmd.current_dir(sh::root())
        .arg("audit")
        .arg("--db")
        .arg(&db)
        .args(["--no-fetch", "--stale", "--deny", "unsound"]);
    sh::run(&mut cmd)
}
