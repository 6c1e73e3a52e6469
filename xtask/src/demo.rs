//! `cargo xtask demo`: the flagship pods with all five binaries, live, on this machine.
//!
//! Installs podman, builds the images, plays `k8s-examples/demo/demo.yaml`, waits until every part
//! works (the same checks as its e2e run), then streams what is happening and tears everything down
//! on Ctrl-C.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::e2e::{self, Pod};
use crate::{images, podman, standins};

pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    podman::ensure()?;
    let all = images::existing();
    images::build(&all)?;
    standins::ensure()?;
    eprintln!("\nstarting the demo pods (podman kube play --network none)");
    let (rendered, volumes) = e2e::up("demo")?;
    let web = Pod {
        name: "podmates-demo-web".to_owned(),
    };
    if let Err(e) = e2e::check_demo(&web) {
        e2e::down(&rendered, &volumes);
        return Err(format!("the demo did not come up: {e}"));
    }
    let conf = crate::sh::root().join("images/containers.conf");
    let conf = conf.display();
    eprintln!(
        "
podmates demo is running: two pods, only their own loopback network.

  podmates-demo-web    nginx serving a site kept in step with a git branch by git-sync,
                       log-tail streaming nginx's logs, log-normalize turning the access log
                       into ECS JSON, nginx-exporter serving metrics, a visitor sending requests
  podmates-demo-cache  an app using one Redis on localhost:22121; redis-ambassador shards it over
                       two Redis servers

Try, in another terminal (export CONTAINERS_CONF={conf} first):
  podman exec podmates-demo-web-visitor busybox wget -qO- http://127.0.0.1:8080/
  podman exec podmates-demo-web-visitor busybox wget -qO- http://127.0.0.1:9113/metrics
  podman exec podmates-demo-web-visitor busybox wget -qO- http://127.0.0.1:9103/metrics
  podman logs -f podmates-demo-web-log-normalize
  podman exec podmates-demo-cache-app redis-cli -p 22121 MGET user:1 user:2 user:3
  podman exec podmates-demo-cache-app redis-cli -p 6379 DBSIZE    # shard redis-0
  podman exec podmates-demo-cache-app redis-cli -p 6380 DBSIZE    # shard redis-1
  podman exec podmates-demo-web-git-host sh -c 'cd /srv/git/work && echo \"<h1>version 2</h1>\" > index.html \\
      && git -c user.name=you -c user.email=you@example.invalid commit -qam v2 && git push -q origin HEAD:main'

Live output below: log-tail (nginx's files), log-normalize (ECS JSON) and the cache app.
Press Ctrl-C to stop and remove the pods.
"
    );
    // The rest runs in a shell that owns the Ctrl-C: it stops the log streams and tears the pods
    // down however the demo ends.
    let vols = volumes.join(" ");
    let script = format!(
        "podman logs -f podmates-demo-web-log-tail 2>/dev/null | sed 's/^/[log-tail]      /' & P1=$!
         podman logs -f podmates-demo-web-log-normalize 2>/dev/null | sed 's/^/[log-normalize] /' & P2=$!
         podman logs -f podmates-demo-cache-app 2>/dev/null | sed 's/^/[cache-app]     /' & P3=$!
         cleanup() {{
           # A second Ctrl-C must not interrupt the teardown.
           trap '' INT TERM
           trap - EXIT
           echo; echo 'stopping the demo pods'
           kill $P1 $P2 $P3 2>/dev/null
           podman kube play --down '{rendered}' >/dev/null 2>&1
           podman pod rm -f -t 0 podmates-demo-web podmates-demo-cache >/dev/null 2>&1
           podman volume rm -f {vols} >/dev/null 2>&1
           echo 'demo removed'
           exit 0
         }}
         trap cleanup INT TERM EXIT
         wait",
        rendered = rendered.display(),
    );
    let err = Command::new("sh")
        .args(["-c", &script])
        .env(
            "CONTAINERS_CONF",
            crate::sh::root().join("images/containers.conf"),
        )
        .exec();
    e2e::down(&rendered, &volumes);
    Err(format!("cannot run the demo's shell: {err}"))
}
