//! `cargo xtask manifests`: every manifest of `k8s-examples/` rendered as `kubectl apply -k` would
//! render it (and each e2e overlay, and the files applied on their own), then checked by
//! `manifests.py` with the clients venv's Python: a strict schema check with the PyPI package
//! `kubernetes-validate` (no field the API server would drop, no wrong type) against the oldest and
//! the newest Kubernetes the examples claim, Pod Security `restricted` for every pod (the stand-ins
//! of the overlays included), and the rules of a manifest a platform team applies (see the script).
//! No cluster and no network: the schemas ship inside the package.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{clients, e2e, sh};

/// The oldest and newest Kubernetes versions the examples claim (native sidecars need 1.29);
/// kubernetes-validate bundles schemas from 1.25 to 1.37.
pub(crate) const VERSIONS: &[&str] = &["1.29", "1.37"];

const SCRIPT: &str = include_str!("manifests.py");

/// `python manifests.py <args>` with the clients venv's interpreter (the script written under
/// `target/`, so that the command lines printed stay short).
pub(crate) fn script(args: &[&str]) -> Result<Command, String> {
    let python = clients::dir().join("venv/bin/python");
    if !python.exists() {
        clients::ensure()?;
    }
    let file = sh::root().join("target/manifests.py");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(SCRIPT) {
        write(&file, SCRIPT)?;
    }
    let mut c = Command::new(python);
    c.arg(file).args(args);
    Ok(c)
}

/// A rendered manifest set and the kustomization whose `images:` it must be covered by.
struct Rendered {
    file: PathBuf,
    kustomization: Option<PathBuf>,
}

pub(crate) fn run() -> Result<(), String> {
    let examples = sh::root().join("k8s-examples");
    let out = sh::root().join("target/manifests");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut sets = Vec::new();
    for dir in subdirs(&examples)? {
        let name = file_name(&dir);
        if name == "e2e-overlays" {
            for overlay in subdirs(&dir)? {
                let file = out.join(format!("e2e-overlay-{}.yaml", file_name(&overlay)));
                write(&file, &e2e::kustomize(&overlay)?)?;
                // The stand-ins an overlay adds are not shipped: no `images:` entry needed.
                sets.push(Rendered {
                    file,
                    kustomization: None,
                });
            }
            continue;
        }
        let kustomization = dir.join("kustomization.yaml");
        let listed = if kustomization.exists() {
            let file = out.join(format!("{name}.yaml"));
            write(&file, &e2e::kustomize(&dir)?)?;
            sets.push(Rendered {
                file,
                kustomization: Some(kustomization.clone()),
            });
            std::fs::read_to_string(&kustomization).map_err(|e| e.to_string())?
        } else {
            String::new()
        };
        // Files applied on their own (`kubectl apply -f`), such as a Job beside a Deployment.
        for f in yaml_files(&dir)? {
            let base = file_name(&f);
            let resource = format!("- {base}");
            if base == "kustomization.yaml" || listed.lines().any(|l| l.trim() == resource) {
                continue;
            }
            sets.push(Rendered {
                file: f,
                kustomization: None,
            });
        }
    }
    let versions = VERSIONS.join(",");
    let mut args: Vec<String> = vec!["check".into(), versions];
    for s in &sets {
        args.push(s.file.display().to_string());
        args.push(
            s.kustomization
                .as_ref()
                .map_or("-".to_owned(), |k| k.display().to_string()),
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sh::run(&mut script(&args)?)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write(file: &Path, text: &str) -> Result<(), String> {
    std::fs::write(file, text).map_err(|e| format!("{}: {e}", file.display()))
}
