//! The one list of the project's binaries. Everything else that names them (the workspace members,
//! the README's tables, each binary's default admin address, the images, the benches) is checked
//! against it by the tests below, so that adding a binary is one line here plus what the tests
//! then ask for.

/// A binary of the workspace.
pub(crate) struct Binary {
    /// Crate, executable and image name.
    pub(crate) name: &'static str,
    /// Folder of its crate: `<pattern>/<name>`.
    pub(crate) folder: &'static str,
    /// Default admin port (`None`: no admin server unless asked for). Read by the tests below,
    /// which hold the binaries' sources and the README to it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) admin_port: Option<u16>,
}

const fn bin(name: &'static str, folder: &'static str, admin_port: Option<u16>) -> Binary {
    Binary {
        name,
        folder,
        admin_port,
    }
}

/// Every binary, in the README's order.
pub(crate) const BINARIES: &[Binary] = &[
    bin("wait-for", "inits/wait-for", None),
    bin("log-tail", "sidecars/log-tail", Some(9101)),
    bin("git-sync", "sidecars/git-sync", Some(9103)),
    bin("nginx-exporter", "adapters/nginx-exporter", Some(9113)),
    bin("log-normalize", "adapters/log-normalize", Some(9102)),
    bin(
        "redis-ambassador",
        "ambassadors/redis-ambassador",
        Some(9104),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sh;

    fn read(path: &str) -> String {
        std::fs::read_to_string(sh::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The Rust sources of a binary's crate, concatenated.
    fn sources(folder: &str) -> String {
        let mut out = String::new();
        let dir = sh::root().join(folder).join("src");
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(e.path()).unwrap());
            }
        }
        out
    }

    #[test]
    fn every_binary_is_a_member_in_the_readme_with_an_image() {
        let cargo = read("Cargo.toml");
        let readme = read("README.md");
        for b in BINARIES {
            assert!(
                cargo.contains(&format!("\"{}\"", b.folder)),
                "{}: not a workspace member",
                b.name
            );
            let row = format!("| {} |", b.name);
            let line = readme
                .lines()
                .find(|l| l.starts_with(&row) && l.contains(&format!("`{}`", b.folder)))
                .unwrap_or_else(|| {
                    panic!("{}: no row with its folder in README.md's table", b.name)
                });
            assert!(
                line.contains(&format!("`podmates/{}`", b.name)),
                "{}: image name",
                b.name
            );
            assert!(
                sh::root()
                    .join("images")
                    .join(b.name)
                    .join("Containerfile")
                    .is_file(),
                "{}: no images/{}/Containerfile",
                b.name,
                b.name
            );
            assert!(
                sh::root().join(b.folder).join("README.md").is_file(),
                "{}: no README.md",
                b.name
            );
        }
        // And nothing the table does not know: every member under a pattern folder is listed.
        for line in cargo.lines() {
            let m = line.trim().trim_matches(|c| c == '"' || c == ',');
            if ["inits/", "sidecars/", "adapters/", "ambassadors/"]
                .iter()
                .any(|p| m.starts_with(p))
            {
                assert!(
                    BINARIES.iter().any(|b| b.folder == m),
                    "{m}: missing from BINARIES"
                );
            }
        }
    }

    /// One outline for every binary's README: after the opening (what it replaces), these
    /// sections in this order, others allowed between them.
    #[test]
    fn every_readme_follows_the_outline() {
        const OUTLINE: &[&str] = &[
            "Migrating",
            "Flags",
            "Pod snippet",
            "Metrics",
            "Benchmark",
            "Tests",
        ];
        for b in BINARIES {
            let readme = read(&format!("{}/README.md", b.folder));
            let headings: Vec<&str> = readme
                .lines()
                .filter_map(|l| l.strip_prefix("## "))
                .collect();
            let mut at = 0;
            for want in OUTLINE {
                let found = headings[at..].iter().position(|h| h.starts_with(want));
                let Some(i) = found else {
                    panic!(
                        "{}: README.md has no `## {want}...` after the sections before it: {headings:?}",
                        b.name
                    )
                };
                at += i + 1;
            }
        }
    }

    #[test]
    fn admin_ports_are_unique_and_what_each_binary_and_the_readme_say() {
        let readme = read("README.md");
        let mut seen = std::collections::HashSet::new();
        for b in BINARIES {
            let src = sources(b.folder);
            match b.admin_port {
                Some(port) => {
                    assert!(
                        seen.insert(port),
                        "{}: admin port {port} used twice",
                        b.name
                    );
                    assert!(
                        src.contains(&format!("default_admin_addr: \"[::]:{port}\"")),
                        "{}: its default_admin_addr is not [::]:{port}",
                        b.name
                    );
                    assert!(
                        readme.contains(&format!("| {} | {port}", b.name)),
                        "{}: README.md's port table does not say {port}",
                        b.name
                    );
                }
                None => assert!(
                    src.contains("default_admin_addr: \"\""),
                    "{}: has a default admin address",
                    b.name
                ),
            }
        }
    }
}
