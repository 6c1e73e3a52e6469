//! checkov's Kubernetes checks over `k8s-examples/`. Installed from PyPI into a virtual environment
//! under `target/` (pinned, so a new checkov release cannot turn CI red overnight); runs offline
//! (`--skip-download`). Exceptions are annotations on the resources, each with its reason.

use std::process::Command;

use crate::sh;

const CHECKOV: &str = "checkov==3.3.30";

pub(crate) fn run() -> Result<(), String> {
    let venv = sh::root().join("target/checkov-venv");
    let bin = venv.join("bin/checkov");
    if !bin.exists() {
        sh::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        sh::run(Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            CHECKOV,
        ]))?;
    }
    sh::run(
        Command::new(&bin)
            .current_dir(sh::root())
            .args([
                "-d",
                "k8s-examples",
                "--framework",
                "kubernetes",
                "--quiet",
                "--compact",
                "--skip-download",
            ])
            // No telemetry or platform calls from a build machine.
            .env("BC_SKIP_MAPPING", "TRUE")
            .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false"),
    )
}
