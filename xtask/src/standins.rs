//! Local stand-ins for the third-party images the examples use (nginx, Apache httpd, redis,
//! busybox, a git server), for machines that cannot reach a registry. They are built from Debian packages with
//! debootstrap and tagged with the upstream names the manifests use, so the manifests are played
//! unchanged; `imagePullPolicy: IfNotPresent` makes podman use the local image.

use std::process::Command;

use crate::podman::{image_exists, podman};
use crate::sh;

/// The Debian root file system every stand-in is made from; the tag names its package set, so a
/// machine holding an older one builds this one.
const DEBIAN: &str = "localhost/podmates-standin/debian:bookworm-apache2";
const DEBIAN_PACKAGES: &str = "nginx-light,apache2,redis-server,busybox,git,ca-certificates";

/// (tag, Containerfile body after `FROM debian`).
const STANDINS: &[(&str, &str)] = &[
    (
        "docker.io/nginxinc/nginx-unprivileged:1.27-alpine",
        "USER 101:101\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
    ),
    ("docker.io/library/busybox:1.36", "CMD [\"sh\"]\n"),
    // Debian's apache2 in the layout of the upstream httpd image: `httpd` on PATH, modules in
    // /usr/local/apache2/modules (see `apache_layout`). Debian builds mod_log_config and
    // mod_unixd in, which upstream loads as modules: the example's config loads them only
    // `<IfModule !...>`, so it runs on both.
    (
        "docker.io/library/httpd:2.4",
        "STOPSIGNAL SIGWINCH\nCMD [\"httpd\", \"-DFOREGROUND\"]\n",
    ),
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
                .arg("--variant=minbase")
                .arg(format!("--include={DEBIAN_PACKAGES}"))
                .arg("bookworm")
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
        apache_layout(&rootfs)?;
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

/// Debian's apache2 where the upstream httpd image keeps Apache (`/usr/local/apache2`, `httpd` on
/// PATH), without Debian's own logs, pages or the `${APACHE_*}` configuration that only
/// apache2ctl fills in.
fn apache_layout(rootfs: &std::path::Path) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let apache = rootfs.join("usr/local/apache2");
    for d in ["logs", "htdocs", "conf"] {
        std::fs::create_dir_all(apache.join(d)).map_err(|e| io(d, e))?;
    }
    std::os::unix::fs::symlink("/usr/lib/apache2/modules", apache.join("modules"))
        .map_err(|e| io("modules link", e))?;
    std::os::unix::fs::symlink("/usr/sbin/apache2", rootfs.join("usr/local/bin/httpd"))
        .map_err(|e| io("httpd link", e))?;
    std::fs::write(
        apache.join("htdocs/index.html"),
        "<html><body><h1>It works!</h1></body></html>\n",
    )
    .map_err(|e| io("index.html", e))?;
    for d in ["var/log/apache2", "var/www/html"] {
        let d = rootfs.join(d);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).map_err(|e| io(&d.display().to_string(), e))?;
    }
    Ok(())
}
