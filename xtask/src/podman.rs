//! Podman, set up the way that works on build machines without systemd cgroups: Debian's podman
//! with runc and cgroupfs, configured through `images/containers.conf` (CONTAINERS_CONF), so
//! nothing under /etc is changed.

use std::process::Command;

use crate::{sh, system};

/// Debian packages for building images and playing pods.
pub(crate) const PACKAGES: &[system::Package] = &[
    system::Package {
        name: "podman",
        provides: "/usr/bin/podman",
    },
    system::Package {
        name: "runc",
        provides: "/usr/sbin/runc",
    },
    system::Package {
        name: "catatonit",
        provides: "/usr/bin/catatonit",
    },
    system::Package {
        name: "debootstrap",
        provides: "/usr/sbin/debootstrap",
    },
];

/// Installs podman and friends if needed.
pub(crate) fn ensure() -> Result<(), String> {
    system::ensure_packages(PACKAGES)
}

/// A `podman` command using the repository's containers.conf.
pub(crate) fn podman() -> Command {
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", sh::root().join("images/containers.conf"));
    c
}

/// Whether a local image exists.
pub(crate) fn image_exists(name: &str) -> bool {
    podman()
        .args(["image", "exists", name])
        .status()
        .is_ok_and(|s| s.success())
}
