//! `cargo xtask e2e [EXAMPLE...]`: plays every example of `k8s-examples/` as a real pod with
//! `podman kube play --network none` (the pod gets only its own loopback), checks what its tutorial
//! promises, and tears it down, also on failure.
//!
//! The podmates images are built first (`cargo xtask images`); third-party images are local
//! stand-ins tagged with their upstream names (see standins.rs). Where an example needs something a
//! cluster would provide (a git server, a Redis StatefulSet), its `e2e/` folder holds a kustomize
//! overlay adding a stand-in container to the pod; `kubectl kustomize` renders it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::podman::{self, podman};
use crate::{images, sh, standins};

/// A running pod of an example.
pub(crate) struct Pod {
    pub(crate) name: String,
}

impl Pod {
    /// Runs a command in one of the pod's containers and returns its stdout.
    pub(crate) fn exec(&self, container: &str, args: &[&str]) -> Result<String, String> {
        sh::output(
            podman()
                .args(["exec", &format!("{}-{container}", self.name)])
                .args(args),
        )
    }

    /// A container's logs: (stdout, stderr).
    pub(crate) fn logs(&self, container: &str) -> Result<(String, String), String> {
        let out = podman()
            .args(["logs", &format!("{}-{container}", self.name)])
            .output()
            .map_err(|e| e.to_string())?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// An HTTP GET from inside the pod (busybox wget in the named container).
    pub(crate) fn http_get(&self, container: &str, url: &str) -> Result<String, String> {
        // No `-T`: Debian busybox 1.35 wget crashes with it; `timeout` bounds the request instead.
        self.exec(
            container,
            &["timeout", "10", "busybox", "wget", "-q", "-O", "-", url],
        )
    }
}

/// Retries `f` every 250 ms until it returns Ok or `timeout` passes; returns the last error.
pub(crate) fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() > timeout => {
                return Err(format!("{what}: not true after {timeout:?}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

type Check = fn(&Pod) -> Result<(), String>;

/// An example: its folder, the podmates binaries it needs, its pod's name and its checks.
struct Example {
    dir: &'static str,
    needs: &'static [&'static str],
    pod: &'static str,
    check: Check,
}

const EXAMPLES: &[Example] = &[Example {
    dir: "shared-volume",
    needs: &[],
    pod: "shared-volume",
    check: check_shared_volume,
}];

fn check_shared_volume(pod: &Pod) -> Result<(), String> {
    // The content container writes the page; the web container serves it over the pod's loopback.
    let first = eventually("the page is served", Duration::from_secs(20), || {
        let page = pod.http_get("content", "http://127.0.0.1:8080/")?;
        if page.contains("written by the content container at") {
            Ok(page)
        } else {
            Err(format!("unexpected page: {page}"))
        }
    })?;
    eventually("the page changes", Duration::from_secs(20), || {
        let page = pod.http_get("content", "http://127.0.0.1:8080/")?;
        if page != first {
            Ok(())
        } else {
            Err("same page".to_owned())
        }
    })?;
    let (out, _) = pod.logs("web")?;
    if !out.contains("\"GET / HTTP/1.1\" 200") {
        return Err(format!("web access log lacks the requests: {out}"));
    }
    Ok(())
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    podman::ensure()?;
    let have = images::existing();
    let selected: Vec<&Example> = if args.is_empty() {
        EXAMPLES.iter().collect()
    } else {
        args.iter()
            .map(|a| {
                EXAMPLES
                    .iter()
                    .find(|e| e.dir == a.as_str())
                    .ok_or_else(|| format!("no example `{a}`"))
            })
            .collect::<Result<_, _>>()?
    };
    let mut needed: Vec<&str> = selected
        .iter()
        .flat_map(|e| e.needs.iter().copied())
        .collect();
    needed.sort_unstable();
    needed.dedup();
    if let Some(missing) = needed.iter().find(|n| !have.contains(n)) {
        return Err(format!(
            "example needs binary `{missing}`, which does not exist"
        ));
    }
    if !needed.is_empty() {
        images::build(&needed)?;
    }
    standins::ensure()?;
    let mut failed = Vec::new();
    for ex in selected {
        eprintln!("\n---- e2e: {} ----", ex.dir);
        let start = Instant::now();
        match play_and_check(ex) {
            Ok(()) => eprintln!(
                "---- e2e: {} ok ({:.1}s)",
                ex.dir,
                start.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("---- e2e: {} FAILED: {e}", ex.dir);
                failed.push(ex.dir);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("examples failed: {}", failed.join(", ")))
    }
}

fn play_and_check(ex: &Example) -> Result<(), String> {
    let rendered = render(ex.dir)?;
    let volumes = volume_names(&std::fs::read_to_string(&rendered).map_err(|e| e.to_string())?);
    // A previous run that was killed may have left the pod behind.
    teardown(&rendered, &volumes);
    prepare_volumes(&volumes)?;
    let res = sh::output(
        podman()
            .args(["kube", "play", "--network", "none"])
            .arg(&rendered),
    )
    .and_then(|_| {
        let pod = Pod {
            name: ex.pod.to_owned(),
        };
        let r = (ex.check)(&pod);
        if r.is_err() {
            dump_logs(&pod);
        }
        r
    });
    teardown(&rendered, &volumes);
    res
}

/// Renders an example to one YAML file: its `e2e/` overlay if it has one, else its kustomization,
/// else its manifests concatenated.
fn render(dir: &str) -> Result<PathBuf, String> {
    let src = sh::root().join("k8s-examples").join(dir);
    let out_dir = sh::root().join("target/e2e");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let out = out_dir.join(format!("{dir}.yaml"));
    let yaml = if src.join("e2e/kustomization.yaml").exists() {
        kustomize(&src.join("e2e"))?
    } else if src.join("kustomization.yaml").exists() {
        kustomize(&src)?
    } else {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
            .map_err(|e| format!("{}: {e}", src.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        let mut all = String::new();
        for f in files {
            all.push_str("---\n");
            all.push_str(&std::fs::read_to_string(&f).map_err(|e| e.to_string())?);
        }
        all
    };
    std::fs::write(&out, yaml).map_err(|e| e.to_string())?;
    Ok(out)
}

fn kustomize(dir: &Path) -> Result<String, String> {
    if !sh::have("kubectl") {
        return Err("kubectl (for `kubectl kustomize`) is not installed".to_owned());
    }
    sh::output(Command::new("kubectl").arg("kustomize").arg(dir))
}

/// Names of the emptyDir and configMap volumes in rendered YAML (kustomize sorts keys, so the
/// `name:` may come before or after the volume type).
fn volume_names(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut names = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start_matches([' ', '-']).trim();
        if !(t.starts_with("emptyDir:") || t.starts_with("configMap:")) {
            continue;
        }
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        let same_item = |l: &&&str| {
            let ind = l.len() - l.trim_start_matches([' ', '-']).len();
            ind == indent && l.trim_start_matches([' ', '-']).starts_with("name:")
        };
        let found = lines[..i]
            .iter()
            .rev()
            .take(1)
            .find(same_item)
            .or_else(|| lines[i + 1..].iter().take(4).find(same_item));
        if let Some(l) = found {
            let n = l
                .trim_start_matches([' ', '-'])
                .trim_start_matches("name:")
                .trim();
            names.push(n.trim_matches('"').to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Kubernetes creates each emptyDir empty and world-writable; podman 4 maps emptyDir to a named
/// volume and, on first mount, copies the image's directory into it and takes its owner and mode
/// (root, 0755). A volume created with explicit ownership options is left alone, so creating it
/// first with the Kubernetes mode gives the non-root containers the same semantics as on a node.
fn prepare_volumes(names: &[String]) -> Result<(), String> {
    for n in names {
        sh::output(podman().args(["volume", "create", "--opt", "o=uid=0,gid=0", n]))?;
        let mount =
            sh::output(podman().args(["volume", "inspect", "--format", "{{.Mountpoint}}", n]))?;
        let mount = mount.trim();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(mount, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| format!("chmod {mount}: {e}"))?;
    }
    Ok(())
}

fn teardown(rendered: &Path, volumes: &[String]) {
    let _ = podman()
        .args(["kube", "play", "--down"])
        .arg(rendered)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    for v in volumes {
        let _ = podman()
            .args(["volume", "rm", "-f", v])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn dump_logs(pod: &Pod) {
    let Ok(list) = sh::output(podman().args([
        "ps",
        "-a",
        "--filter",
        &format!("pod={}", pod.name),
        "--format",
        "{{.Names}} {{.Status}}",
    ])) else {
        return;
    };
    eprintln!("containers of pod {}:\n{list}", pod.name);
    for line in list.lines() {
        let name = line.split(' ').next().unwrap_or_default();
        if name.ends_with("-infra") {
            continue;
        }
        if let Ok(out) = podman().args(["logs", "--tail", "30", name]).output() {
            eprintln!(
                "--- logs of {name} ---\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
