//! Certificates for tests that speak TLS, made with openssl: a CA, a server certificate for
//! `127.0.0.1` and `localhost`, and a client certificate, all ECDSA P-256, valid two days.

use std::path::Path;
use std::process::Command;

/// Runs openssl in `dir`.
///
/// # Panics
/// When openssl is missing or fails, with its stderr.
pub fn openssl(dir: &Path, args: &[&str]) {
    crate::require("/usr/bin/openssl");
    crate::proc::run_ok(Command::new("openssl").args(args).current_dir(dir));
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA: `<name>.crt` and `<name>.key` in `dir`.
pub fn ca(dir: &Path, name: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    let mut a = vec!["req", "-x509"];
    a.extend(EC);
    a.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
    openssl(dir, &a);
}

/// A certificate `<name>.crt` / `<name>.key` signed by the CA `<ca>.crt`, with the extensions
/// given (`subjectAltName=...`, `extendedKeyUsage=...`).
pub fn signed(dir: &Path, ca: &str, name: &str, cn: &str, extensions: &str) {
    let ext = format!("{name}.ext");
    std::fs::write(dir.join(&ext), format!("{extensions}\n")).expect("write extensions");
    let (key, csr, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("/CN={cn}"),
    );
    let mut a = vec!["req"];
    a.extend(EC);
    a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &a);
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

/// `ca.crt`, `server.crt` / `server.key` (for 127.0.0.1 and localhost) and `client.crt` /
/// `client.key` (CN `scraper`, client auth) in `dir`, readable by every user (servers started
/// by root drop to nobody).
pub fn make(dir: &Path) {
    ca(dir, "ca");
    signed(
        dir,
        "ca",
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
    );
    signed(
        dir,
        "ca",
        "client",
        "scraper",
        "extendedKeyUsage=clientAuth",
    );
    for f in [
        "ca.crt",
        "server.crt",
        "server.key",
        "client.crt",
        "client.key",
    ] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
}
