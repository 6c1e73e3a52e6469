//! `cargo xtask images [NAME...]`: static release binaries, one distroless image each, a smoke test
//! of each image, and their sizes.
//!
//! The Containerfiles in `images/<name>/` are the shipped files. Where gcr.io cannot be reached, the
//! distroless base is assembled locally from the same Debian packages distroless/static is made of
//! (base-files, netbase, tzdata, ca-certificates, plus the nonroot user) and passed in with
//! `--build-arg BASE=...`, so the file under test is the file that ships.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binaries::BINARIES;
use crate::podman::{self, podman};
use crate::sh;

/// The upstream base image and its local stand-in.
const UPSTREAM_BASE: &str = "gcr.io/distroless/static-debian12:nonroot";
const LOCAL_BASE: &str = "localhost/podmates/distroless-static:nonroot";
/// Debian packages distroless/static-debian12 is made of.
const BASE_PACKAGES: &[&str] = &["base-files", "netbase", "tzdata", "ca-certificates"];

/// Size limits from the project's goals, in bytes (uncompressed).
fn size_target(name: &str) -> u64 {
    match name {
        "git-sync" => 25_000_000,
        // An init container is pulled before the application can start: kept smaller.
        "wait-for" => 8_000_000,
        _ => 15_000_000,
    }
}

/// The binaries whose crate exists in this checkout.
pub(crate) fn existing() -> Vec<&'static str> {
    BINARIES
        .iter()
        .filter(|b| sh::root().join(b.folder).join("Cargo.toml").exists())
        .map(|b| b.name)
        .collect()
}

/// The workspace version, read from the root Cargo.toml.
pub(crate) fn version() -> String {
    let toml = std::fs::read_to_string(sh::root().join("Cargo.toml")).unwrap_or_default();
    let mut in_pkg = false;
    for line in toml.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_pkg = l == "[workspace.package]";
        } else if in_pkg
            && l.starts_with("version")
            && let Some(v) = l.split('"').nth(1)
        {
            return v.to_owned();
        }
    }
    "0.0.0".to_owned()
}

/// `podmates/<name>:<version>`.
pub(crate) fn image_ref(name: &str) -> String {
    format!("localhost/podmates/{name}:{}", version())
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let names = select(args)?;
    build(&names)?;
    Ok(())
}

fn select(args: &[String]) -> Result<Vec<&'static str>, String> {
    let have = existing();
    if args.is_empty() {
        if have.is_empty() {
            return Err("no binary crates exist yet".to_owned());
        }
        return Ok(have);
    }
    args.iter()
        .map(|a| {
            have.iter()
                .find(|n| **n == a.as_str())
                .copied()
                .ok_or_else(|| {
                    format!(
                        "no binary `{a}` in this checkout; have: {}",
                        have.join(", ")
                    )
                })
        })
        .collect()
}

/// Builds and smoke-tests the images of `names`; prints a size table.
pub(crate) fn build(names: &[&str]) -> Result<(), String> {
    podman::ensure()?;
    let base = base_image()?;
    let bins = build_static(names)?;
    let version = version();
    let revision = sh::output(
        Command::new("git")
            .current_dir(sh::root())
            .args(["rev-parse", "HEAD"]),
    )
    .map(|s| s.trim().to_owned())
    .unwrap_or_else(|_| "unknown".to_owned());
    let ctx_root = sh::root().join("target/images/context");
    let mut sizes = Vec::new();
    for (name, bin) in names.iter().zip(&bins) {
        let ctx = ctx_root.join(name);
        let _ = std::fs::remove_dir_all(&ctx);
        std::fs::create_dir_all(&ctx).map_err(|e| format!("{}: {e}", ctx.display()))?;
        std::fs::copy(bin, ctx.join(name)).map_err(|e| format!("copy {}: {e}", bin.display()))?;
        set_mode(&ctx.join(name), 0o555)?;
        let file = sh::root().join("images").join(name).join("Containerfile");
        sh::run(
            podman()
                .arg("build")
                .arg("--quiet")
                .arg("-f")
                .arg(&file)
                .args(["--build-arg", &format!("BASE={base}")])
                .args(["--build-arg", &format!("VERSION={version}")])
                .args(["--build-arg", &format!("REVISION={revision}")])
                .args(["-t", &format!("localhost/podmates/{name}:{version}")])
                .args(["-t", &format!("localhost/podmates/{name}:dev")])
                .arg(&ctx),
        )?;
        smoke_test(name)?;
        let size: u64 = sh::output(podman().args([
            "image",
            "inspect",
            "--format",
            "{{.Size}}",
            &image_ref(name),
        ]))?
        .trim()
        .parse()
        .map_err(|e| format!("image size of {name}: {e}"))?;
        sizes.push((name.to_owned(), size));
    }
    eprintln!("\n{:<36} {:>10} {:>10}  verdict", "image", "size", "target");
    let mut over = Vec::new();
    for (name, size) in &sizes {
        let target = size_target(name);
        let ok = *size <= target;
        if !ok {
            over.push((*name).to_owned());
        }
        eprintln!(
            "{:<36} {:>8.1}MB {:>8.1}MB  {}",
            format!("podmates/{name}:{version}"),
            *size as f64 / 1e6,
            target as f64 / 1e6,
            if ok { "ok" } else { "OVER TARGET" }
        );
    }
    if !over.is_empty() {
        eprintln!("warning: over the size target: {}", over.join(", "));
    }
    Ok(())
}

/// The cargo profile a binary ships with. `release-small` (opt-level "z", see Cargo.toml) for the
/// nginx exporter, whose resident code is most of its memory and whose speed has room to spare.
pub(crate) fn cargo_profile(name: &str) -> &'static str {
    match name {
        "nginx-exporter" => "release-small",
        _ => "release",
    }
}

/// Static release binaries for the host architecture (glibc with crt-static needs nothing extra).
/// A separate `--target` keeps RUSTFLAGS away from build scripts and proc macros. One cargo run per
/// profile, in the order of `names`.
pub(crate) fn build_static(names: &[&str]) -> Result<Vec<PathBuf>, String> {
    let arch = sh::output(Command::new("uname").arg("-m"))?
        .trim()
        .to_owned();
    let triple = format!("{arch}-unknown-linux-gnu");
    let mut profiles: Vec<&str> = names.iter().map(|n| cargo_profile(n)).collect();
    profiles.sort_unstable();
    profiles.dedup();
    for profile in profiles {
        let mut cmd = sh::cargo();
        cmd.args([
            "build",
            "--profile",
            profile,
            "--locked",
            "--target",
            &triple,
        ]);
        for n in names.iter().filter(|n| cargo_profile(n) == profile) {
            cmd.args(["-p", n]);
        }
        cmd.env("RUSTFLAGS", "-C target-feature=+crt-static");
        sh::run(&mut cmd)?;
    }
    names
        .iter()
        .map(|n| {
            let p = target_dir().join(&triple).join(cargo_profile(n)).join(n);
            if p.exists() {
                Ok(p)
            } else {
                Err(format!("built, but {} is missing", p.display()))
            }
        })
        .collect()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sh::root().join("target"))
}

/// The distroless base: upstream when it can be pulled, else the local equivalent (built once).
fn base_image() -> Result<String, String> {
    if podman::image_exists(UPSTREAM_BASE) {
        return Ok(UPSTREAM_BASE.to_owned());
    }
    if std::env::var_os("PODMATES_PULL_BASE").is_some()
        && podman()
            .args(["pull", "-q", UPSTREAM_BASE])
            .status()
            .is_ok_and(|s| s.success())
    {
        return Ok(UPSTREAM_BASE.to_owned());
    }
    if podman::image_exists(LOCAL_BASE) {
        return Ok(LOCAL_BASE.to_owned());
    }
    eprintln!("assembling {LOCAL_BASE} from Debian packages {BASE_PACKAGES:?}");
    let work = sh::root().join("target/images/base");
    let _ = std::fs::remove_dir_all(&work);
    let debs = work.join("debs");
    let rootfs = work.join("rootfs");
    for d in [&debs, &rootfs] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    sh::run(
        Command::new("apt-get")
            .current_dir(&debs)
            .arg("download")
            .args(BASE_PACKAGES),
    )?;
    for entry in std::fs::read_dir(&debs).map_err(|e| e.to_string())? {
        let deb = entry.map_err(|e| e.to_string())?.path();
        sh::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&rootfs))?;
    }
    write_base_files(&rootfs)?;
    let tar = work.join("rootfs.tar");
    sh::run(
        Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    )?;
    sh::run(
        podman()
            .args(["import", "--quiet", "--change", "USER=65532:65532"])
            .args(["--change", "WORKDIR=/home/nonroot"])
            .arg(&tar)
            .arg(LOCAL_BASE),
    )?;
    Ok(LOCAL_BASE.to_owned())
}

/// What distroless adds beyond the packages: users, home directories, the CA bundle that
/// update-ca-certificates would have generated, and a world-writable /tmp.
fn write_base_files(rootfs: &Path) -> Result<(), String> {
    let w = |rel: &str, content: &str| {
        let p = rootfs.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, content).map_err(|e| format!("{}: {e}", p.display()))
    };
    w(
        "etc/passwd",
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )?;
    w(
        "etc/group",
        "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n",
    )?;
    for d in ["home/nonroot", "root", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).map_err(|e| e.to_string())?;
    }
    set_mode(&rootfs.join("tmp"), 0o1777)?;
    set_mode(&rootfs.join("root"), 0o700)?;
    // The bundle, in the order update-ca-certificates writes it.
    let mozilla = rootfs.join("usr/share/ca-certificates/mozilla");
    let mut certs: Vec<PathBuf> = std::fs::read_dir(&mozilla)
        .map_err(|e| format!("{}: {e}", mozilla.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    certs.sort();
    let mut bundle = String::new();
    for c in &certs {
        bundle.push_str(&std::fs::read_to_string(c).map_err(|e| e.to_string())?);
        if !bundle.ends_with('\n') {
            bundle.push('\n');
        }
    }
    w("etc/ssl/certs/ca-certificates.crt", &bundle)?;
    // The package's documentation and man pages are not in distroless either.
    let _ = std::fs::remove_dir_all(rootfs.join("usr/share/doc"));
    let _ = std::fs::remove_dir_all(rootfs.join("usr/share/man"));
    Ok(())
}

/// Runs the image as Kubernetes runs it under a restricted security context: uid 65532, read-only
/// root, no capabilities, no network; checks `--version`, `--help` and that there is no shell.
fn smoke_test(name: &str) -> Result<(), String> {
    let image = image_ref(name);
    let run = |args: &[&str]| {
        let mut c = podman();
        c.args([
            "run",
            "--rm",
            "--read-only",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--user=65532:65532",
            "--network=none",
        ]);
        c.args(args);
        c
    };
    let version = sh::output(&mut run(&[&image, "--version"]))
        .map_err(|e| format!("{name}: --version failed: {e}"))?;
    if !version.contains(&crate::images::version()) {
        return Err(format!("{name}: --version printed `{}`", version.trim()));
    }
    let help = sh::output(&mut run(&[&image, "--help"]))
        .map_err(|e| format!("{name}: --help failed: {e}"))?;
    if !help.to_lowercase().contains("usage") {
        return Err(format!("{name}: --help printed no usage"));
    }
    for shell in ["/bin/sh", "/bin/bash", "/busybox/sh"] {
        if run(&["--entrypoint", shell, &image, "-c", "true"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Err(format!("{name}: the image has a shell at {shell}"));
        }
    }
    let user =
        sh::output(podman().args(["image", "inspect", "--format", "{{.Config.User}}", &image]))?;
    if user.trim() != "65532:65532" {
        return Err(format!(
            "{name}: image user is `{}`, want 65532:65532",
            user.trim()
        ));
    }
    eprintln!("smoke test {image}: ok ({})", version.trim());
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", p.display()))
}
