//! Project automation, in Rust so it runs wherever cargo does (see matklad/cargo-xtask).
//!
//! `cargo xtask test` is the one test command of the project: it installs the system packages the
//! tests drive, then runs fmt, clippy and the workspace tests, printing a header per stage and a
//! summary. `cargo xtask bench <name>` runs a binary's benchmark against its rival.
//!
//! No dependencies on purpose: a fresh machine compiles this in seconds.

mod audit;
mod bench;
mod binaries;
mod checkov;
mod clients;
mod demo;
mod e2e;
mod fuzz;
mod images;
mod manifests;
mod podman;
mod sh;
mod standins;
mod system;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo                 build the images and run all five binaries together in two pods, live
  test                 install test dependencies, run fmt, clippy and every test (the CI command)
  test --no-install    the same without touching system packages
  test --no-containers the same without the image and pod stages
  bench <name> [args]  run a binary's benchmark against its rival and print ratios
  images [NAME...]     build and smoke-test the distroless image of each binary (all by default)
  e2e [EXAMPLE...]     play every k8s-examples/ tutorial as a real pod with podman and check it
  checkov              run checkov's Kubernetes checks over k8s-examples/
  manifests            strict schema (Kubernetes 1.29 and 1.37) and Pod Security checks of k8s-examples/
  audit                cargo-audit of Cargo.lock against the RustSec database snapshot
  fuzz [TARGET...] [--seconds N] [--jobs N] [--dev]
                       run the fuzz targets of fuzz/ (all by default) for N seconds each (60)
  deps                 only install the system packages the tests need
  clients              only install the client libraries (PyPI, npm) into target/clients
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match cmd.as_str() {
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "images" => images::run(rest),
        "e2e" => e2e::run(rest),
        "demo" => demo::run(rest),
        "checkov" => checkov::run(),
        "manifests" => manifests::run(),
        "audit" => audit::run(),
        "fuzz" => fuzz::run(rest),
        "deps" => system::ensure_packages(system::TEST_PACKAGES),
        "clients" => clients::ensure().map(|d| println!("{}", d.display())),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    /// The `[lints...]` tables of a manifest, from `marker` (`[workspace.lints.` or `[lints.`) to
    /// the next table that is not a lints table, with the prefix removed.
    fn lints(manifest: &str, marker: &str) -> String {
        let text = std::fs::read_to_string(crate::sh::root().join(manifest)).unwrap();
        let start = text.find(marker).expect("lints table");
        let mut out = String::new();
        for line in text[start..].lines() {
            if line.starts_with('[') && !line.starts_with(marker) {
                break;
            }
            if !line.starts_with('#') && !line.trim().is_empty() {
                out.push_str(&line.replacen(marker, "[", 1));
                out.push('\n');
            }
        }
        out
    }

    /// git-sync copies the workspace lints to deny rather than forbid `unsafe_code` (see its
    /// Cargo.toml): the copy must not drift from the original in anything else.
    #[test]
    fn git_sync_lints_are_the_workspace_lints_but_unsafe_code_denied() {
        let workspace = lints("Cargo.toml", "[workspace.lints.")
            .replace("unsafe_code = \"forbid\"", "unsafe_code = \"deny\"");
        assert!(workspace.contains("[clippy]") && workspace.contains("unsafe_code = \"deny\""));
        assert_eq!(lints("sidecars/git-sync/Cargo.toml", "[lints."), workspace);
    }
}
