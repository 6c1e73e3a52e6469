//! `cargo xtask test`: the project's one test command, as CI runs it.

use std::time::{Duration, Instant};

use crate::{audit, checkov, clients, e2e, fuzz, images, manifests, podman, sh, system};

struct Stage {
    name: &'static str,
    result: Result<(), String>,
    took: Duration,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let install = !args.iter().any(|a| a == "--no-install");
    let containers = !args.iter().any(|a| a == "--no-containers");
    let mut stages: Vec<Stage> = Vec::new();
    let mut stage = |name: &'static str, f: &dyn Fn() -> Result<(), String>| {
        eprintln!("\n==== {name} ====");
        let start = Instant::now();
        let result = f();
        if let Err(e) = &result {
            eprintln!("---- {name}: FAILED: {e}");
        }
        stages.push(Stage {
            name,
            result,
            took: start.elapsed(),
        });
    };

    if install {
        stage("system packages", &|| {
            system::ensure_packages(system::TEST_PACKAGES)
        });
    }
    // The client libraries from PyPI and npm, newest releases, into target/clients.
    stage("clients", &|| clients::ensure().map(|_| ()));
    // Every k8s-examples manifest against the Kubernetes schemas and Pod Security `restricted`
    // (kubernetes-validate from the clients venv; no cluster, a few seconds).
    stage("manifests (schema)", &manifests::run);
    stage("rustfmt", &|| {
        sh::run(sh::cargo().args(["fmt", "--all", "--check"]))
    });
    stage("clippy", &|| {
        sh::run(sh::cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))
    });
    stage("audit", &audit::run);
    stage("tests", &|| {
        sh::run(sh::cargo().env("PODMATES_CLIENTS", clients::dir()).args([
            "test",
            "--workspace",
            "--locked",
        ]))
    });
    // Every fuzz target for 10 s from its committed corpus (cargo-fuzz installed and the fuzz
    // crate built on demand); a crash fails the stage.
    stage("fuzz (short)", &fuzz::short);

    if containers {
        // The container stage: every binary's image built and smoke-tested, then every example
        // played as a pod. podman is installed and configured here on a fresh machine.
        stage("container images", &|| {
            podman::ensure()?;
            let have = images::existing();
            if have.is_empty() {
                eprintln!("no binaries yet: nothing to build");
                return Ok(());
            }
            images::build(&have)
        });
        stage("e2e (k8s-examples)", &|| e2e::run(&[]));
        stage("checkov (k8s-examples)", &checkov::run);
    }

    eprintln!("\n==== summary ====");
    let mut failed = 0;
    for s in &stages {
        let verdict = if s.result.is_ok() { "ok" } else { "FAILED" };
        if s.result.is_err() {
            failed += 1;
        }
        eprintln!(
            "{:<18} {:<7} {:>7.1}s",
            s.name,
            verdict,
            s.took.as_secs_f64()
        );
    }
    if failed == 0 {
        eprintln!("all {} stages passed", stages.len());
        Ok(())
    } else {
        Err(format!("{failed} of {} stages failed", stages.len()))
    }
}
