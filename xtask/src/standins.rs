//! Local stand-ins for the third-party images the examples use (nginx, redis, busybox, a git
//! server), for machines that cannot reach a registry. They are built from Debian packages with
//! debootstrap and tagged with the upstream names the manifests use, so the manifests are played
//! unchanged; `imagePullPolicy: IfNotPresent` makes podman use the local image.

use std::process::Command;

use crate::podman::{image_exists, podman};
use crate::sh;

const DEBIAN: &str = "localhost/podmates-standin/debian:bookworm";

/// (tag, Containerfile body after `FROM debian`).
const STANDINS: &[(&str, &str)] = &[
    (
        "docker.io/nginxinc/nginx-unprivileged:1.27-alpine",
        "USER 101:101\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
    ),
    ("docker.io/library/busybox:1.36", "CMD [\"sh\"]\n"),
    (
        "docker.io/library/redis:7.2-alpine",
        "USER 999:999\nCMD [\"redis-server\", \"--save\", \"\", \"--appendonly\", \"no\"]\n",
    ),
    (
        "localhost/podmates-standin/git-server:dev",
        "CMD [\"git\", \"daemon\", \"--reuseaddr\", \"--export-all\", \"--base-path=/srv/git\", \"--listen=127.0.0.1\", \"/srv/git\"]\n",
    ),
];

/// Builds the stand-ins that are missing (the Debian root file system once, then each tag).
pub(crate) fn ensure() -> Result<(), String> {
    if STANDINS.iter().all(|(tag, _)| image_exists(tag)) {
        return Ok(());
    }
    if !image_exists(DEBIAN) {
        let work = sh::root().join("target/e2e/standin");
        let rootfs = work.join("rootfs");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        eprintln!("building the stand-in root file system with debootstrap (about a minute)");
        sh::run(
            Command::new("debootstrap")
                .args([
                    "--variant=minbase",
                    "--include=nginx-light,redis-server,busybox,git,ca-certificates",
                    "bookworm",
                ])
                .arg(&rootfs)
                .arg("http://deb.debian.org/debian"),
        )?;
        // Like upstream's nginx image: no log files or welcome page that podman would copy into a
        // volume mounted over them (the kubelet never copies image content into an emptyDir).
        for dir in ["var/log/nginx", "usr/share/nginx/html"] {
            let d = rootfs.join(dir);
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let tar = work.join("rootfs.tar");
        sh::run(
            Command::new("tar")
                .args(["--numeric-owner", "-C"])
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        )?;
        sh::run(podman().args(["import", "--quiet"]).arg(&tar).arg(DEBIAN))?;
        let _ = std::fs::remove_dir_all(&work);
    }
    let ctx = sh::root().join("target/e2e/standin-ctx");
    std::fs::create_dir_all(&ctx).map_err(|e| e.to_string())?;
    for (tag, body) in STANDINS {
        if image_exists(tag) {
            continue;
        }
        let file = ctx.join("Containerfile");
        std::fs::write(&file, format!("FROM {DEBIAN}\n{body}")).map_err(|e| e.to_string())?;
        sh::run(
            podman()
                .args(["build", "--quiet", "-t", tag, "-f"])
                .arg(&file)
                .arg(&ctx),
        )?;
    }
    Ok(())
}
