"""Checks of the rendered k8s-examples manifests, run by xtask (manifests.rs, e2e.rs) with the
Python of the clients venv, where kubernetes-validate and PyYAML are installed.

  check VERSIONS RENDERED KUSTOMIZATION|- [RENDERED KUSTOMIZATION|- ...]
      strict schema validation of every object against each Kubernetes version (comma-separated),
      Pod Security "restricted" for every pod, and the project's rules for manifests a platform
      team applies: named ports behind every network probe, an `images:` entry for every image,
      a PodDisruptionBudget for every workload with more than one replica, redis-server's
      maxmemory under its memory limit, a startup probe on every native sidecar (/readyz for
      podmates images), port names unique in a pod.
  probes RENDERED
      one line per probe (tab-separated) for the e2e, which checks each endpoint itself.
  podman-form RENDERED OUT
      writes what podman 4.3 can play: no container ports, native sidecars (init containers with
      restartPolicy Always) as the first ordinary containers, and the other containers gated on
      the sidecars' startup probes as the kubelet gates them; prints the sidecars it moved.
"""

import re
import shlex
import sys

import kubernetes_validate
import kubernetes_validate.utils
import yaml

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pod_template(doc):
    """(labels, pod spec) of a pod or workload, or None."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return (doc.get("metadata") or {}).get("labels") or {}, spec
    if kind in WORKLOADS:
        t = spec.get("template") or {}
        return (t.get("metadata") or {}).get("labels") or {}, t.get("spec") or {}
    if kind == "CronJob":
        t = spec["jobTemplate"]["spec"]["template"]
        return (t.get("metadata") or {}).get("labels") or {}, t.get("spec") or {}
    return None


def containers(spec):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            yield key, c


def where(doc, c=None):
    s = "%s/%s" % (doc.get("kind"), (doc.get("metadata") or {}).get("name"))
    return s + (" container %s" % c["name"] if c is not None else "")


# Pod Security Standards, "restricted" profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                   "persistentVolumeClaim", "projected", "secret", "name"}


def restricted(doc, spec):
    errs = []
    psc = spec.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            errs.append("%s: %s is set" % (where(doc), host))
    for v in spec.get("volumes") or []:
        bad = set(v) - ALLOWED_VOLUMES
        if bad:
            errs.append("%s: volume %s is of type %s" % (where(doc), v.get("name"), sorted(bad)))
    for _, c in containers(spec):
        sc = c.get("securityContext") or {}
        w = where(doc, c)
        if sc.get("privileged"):
            errs.append(w + ": privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            errs.append(w + ": allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            errs.append(w + ": capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            errs.append(w + ": adds capabilities %s" % caps.get("add"))
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root is not True:
            errs.append(w + ": runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            errs.append(w + ": runs as uid 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            errs.append(w + ": seccompProfile must be RuntimeDefault or Localhost")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                errs.append(w + ": hostPort %s" % p["hostPort"])
    return errs


def probes_of(c):
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(kind)
        if p:
            yield kind, p


def port_number(c, port):
    """A probe's port as a number: a name is resolved against the container's ports."""
    if isinstance(port, int):
        return port
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def rules(doc, labels, spec, images):
    errs = []
    names = [p["name"] for _, c in containers(spec) for p in c.get("ports") or [] if p.get("name")]
    for n in sorted({n for n in names if names.count(n) > 1}):
        errs.append("%s: port name %s is used by more than one container of the pod" % (where(doc), n))
    for key, c in containers(spec):
        w = where(doc, c)
        image = c.get("image", "")
        name = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        if images is not None and name not in images:
            errs.append("%s: image %s has no `images:` entry in its kustomization" % (w, name))
        for kind, p in probes_of(c):
            h = p.get("httpGet") or p.get("tcpSocket")
            if h is None:
                continue
            if not isinstance(h.get("port"), str):
                errs.append("%s: %s refers to port %s by number, not by name" % (w, kind, h.get("port")))
            elif port_number(c, h["port"]) is None:
                errs.append("%s: %s names port %s, which the container does not declare" % (w, kind, h["port"]))
        if key == "initContainers" and c.get("restartPolicy") == "Always":
            sp = c.get("startupProbe") or {}
            if not sp:
                errs.append(w + ": a native sidecar needs a startupProbe")
            elif image.startswith("podmates/") and (sp.get("httpGet") or {}).get("path") != "/readyz":
                errs.append(w + ": a podmates native sidecar's startupProbe is its /readyz")
        args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
        if any(a.endswith("redis-server") for a in args[:1]) and limit:
            mm = args[args.index("--maxmemory") + 1] if "--maxmemory" in args else None
            if mm is None:
                errs.append(w + ": redis-server without --maxmemory under its %s limit" % limit)
            elif redis_bytes(mm) >= k8s_bytes(limit):
                errs.append(w + ": --maxmemory %s is not under the %s limit" % (mm, limit))
    return errs


def k8s_bytes(q):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|K|M|G)?", str(q))
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "K": 10**3, "M": 10**6, "G": 10**9}
    return int(m.group(1)) * mult[m.group(2)]


def redis_bytes(q):
    m = re.fullmatch(r"(\d+)(kb|mb|gb|k|m|g)?", str(q).lower())
    mult = {None: 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "k": 10**3, "m": 10**6, "g": 10**9}
    return int(m.group(1)) * mult[m.group(2)]


def kustomization_images(path):
    if path == "-":
        return None
    with open(path) as f:
        k = yaml.safe_load(f) or {}
    return {i["name"] for i in k.get("images") or []}


def check(versions, pairs):
    errs, count = [], 0
    for rendered, kust in pairs:
        docs = load(rendered)
        images = kustomization_images(kust)
        pdbs = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
        for doc in docs:
            count += 1
            for v in versions:
                try:
                    kubernetes_validate.validate(doc, v, strict=True)
                except kubernetes_validate.ValidationError as e:
                    path = ".".join(str(p) for p in e.path)
                    errs.append("%s: %s: Kubernetes %s: %s: %s" % (rendered, where(doc), v, path, e.message))
                except (kubernetes_validate.SchemaNotFoundError,
                        kubernetes_validate.utils.VersionNotSupportedError) as e:
                    errs.append("%s: %s: %s" % (rendered, where(doc), e.message))
            t = pod_template(doc)
            if t is None:
                continue
            labels, spec = t
            errs += ["%s: %s" % (rendered, e) for e in restricted(doc, spec)]
            errs += ["%s: %s" % (rendered, e) for e in rules(doc, labels, spec, images)]
            replicas = (doc.get("spec") or {}).get("replicas", 1)
            if doc.get("kind") in ("Deployment", "StatefulSet") and replicas > 1:
                covered = any(
                    (p["spec"].get("selector") or {}).get("matchLabels", {}).items() <= labels.items()
                    for p in pdbs)
                if not covered:
                    errs.append("%s: %s has %d replicas and no PodDisruptionBudget" % (rendered, where(doc), replicas))
    for e in errs:
        print(e)
    print("%d objects in %d files: %s against Kubernetes %s (strict), Pod Security restricted"
          % (count, len(pairs), "ok" if not errs else "%d problems" % len(errs), ", ".join(versions)))
    return 1 if errs else 0


def probes(rendered):
    for doc in load(rendered):
        t = pod_template(doc)
        if t is None:
            continue
        _, spec = t
        cs = [c for _, c in containers(spec)]
        # A running container with a shell and busybox (a stand-in, not a distroless podmates
        # image; not an init container that has exited) from which the HTTP endpoints are fetched.
        running = [c for k, c in containers(spec)
                   if k != "initContainers" or c.get("restartPolicy") == "Always"]
        client = next((c["name"] for c in running if not c.get("image", "").startswith("podmates/")), "-")
        for c in cs:
            for kind, p in probes_of(c):
                head = [doc["kind"], doc["metadata"]["name"], c["name"], kind]
                if "httpGet" in p:
                    h = p["httpGet"]
                    head += ["http", client, str(port_number(c, h["port"])), h.get("path", "/")]
                elif "exec" in p:
                    head += ["exec", c["name"], "\x1f".join(p["exec"]["command"])]
                elif "tcpSocket" in p:
                    head += ["tcp", client, str(port_number(c, p["tcpSocket"]["port"]))]
                else:
                    head += ["unsupported"]
                print("\t".join(head))
    return 0


def podman_form(rendered, out):
    """What podman 4.3 plays: no container ports (it turns each into a port mapping, refused under
    --network none; the pod's loopback needs none), and native sidecars as the first ordinary
    containers (podman would wait for them to exit as init containers)."""
    docs = load(rendered)
    moved = []
    for doc in docs:
        t = pod_template(doc)
        if t is None:
            continue
        spec = t[1]
        init = spec.get("initContainers") or []
        sidecars = [c for c in init if c.get("restartPolicy") == "Always"]
        if init:
            spec["initContainers"] = [c for c in init if c.get("restartPolicy") != "Always"]
            if not spec["initContainers"]:
                del spec["initContainers"]
        gates = []
        for c in sidecars:
            del c["restartPolicy"]
            moved.append(c["name"])
            sp = c.get("startupProbe") or {}
            if "httpGet" in sp:
                h = sp["httpGet"]
                url = "http://127.0.0.1:%s%s" % (port_number(c, h["port"]), h.get("path", "/"))
                gates.append("until timeout 2 busybox wget -q -O /dev/null %s 2>/dev/null; do sleep 0.2; done; " % url)
            elif "exec" in sp:
                cmd = " ".join(shlex.quote(a) for a in sp["exec"]["command"])
                gates.append("if command -v %s >/dev/null; then until timeout 2 %s >/dev/null 2>&1; do sleep 0.2; done; fi; "
                             % (shlex.quote(sp["exec"]["command"][0]), cmd))
        for c in spec["containers"]:
            gate(c, gates)
        spec["containers"] = sidecars + spec["containers"]
        for _, c in containers(spec):
            c.pop("ports", None)
    with open(out, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False, explicit_start=True, width=1 << 16)
    print(" ".join(moved))
    return 0


def gate(c, waits):
    """Makes a container start as the kubelet starts it after native sidecars: once each sidecar's
    startup probe passes (the same GET, with busybox wget; an exec probe's command run here when
    this image has the program, as the stand-ins all do). A container without a command of its
    own, or from a distroless podmates image, has no shell to wait in and is left as it is."""
    if not waits or not c.get("command") or c.get("image", "").startswith("podmates/"):
        return
    c["command"], c["args"] = ["sh", "-c", "".join(waits) + 'exec "$@"', "sh"], c["command"] + (c.get("args") or [])


def main(argv):
    if argv[:1] == ["check"] and len(argv) >= 4 and len(argv) % 2 == 0:
        return check(argv[1].split(","), list(zip(argv[2::2], argv[3::2])))
    if argv[:1] == ["probes"] and len(argv) == 2:
        return probes(argv[1])
    if argv[:1] == ["podman-form"] and len(argv) == 3:
        return podman_form(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
