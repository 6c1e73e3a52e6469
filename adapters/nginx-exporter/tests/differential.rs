//! Debian's prometheus-nginx-exporter (Go) and ours against the same real nginx: the nginx families
//! must have the same names, types, help, labels and values, allowing for the requests and
//! connections the scrapes themselves make.

use std::collections::BTreeMap;

use crate::common::{Exporter, GO_EXPORTER, Metrics, Nginx, OURS, free_port};
use podmates_testkit::require;

fn nginx_only(m: &Metrics) -> Metrics {
    let keep = |name: &str| name.starts_with("nginx_") && !name.starts_with("nginx_exporter");
    Metrics {
        samples: m
            .samples
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        help: m
            .help
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        types: m
            .types
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn start_pair(uri: &str) -> (Exporter, Exporter) {
    require(GO_EXPORTER);
    let go_port = free_port();
    // Debian ships 0.11, which knows only the single-dash flags and the comma-separated labels.
    let go = Exporter::spawn(
        GO_EXPORTER,
        &[
            format!("-nginx.scrape-uri={uri}"),
            format!("-web.listen-address=127.0.0.1:{go_port}"),
            "-prometheus.const-labels=env=test,team=web".to_owned(),
        ],
        &[],
        ([127, 0, 0, 1], go_port).into(),
        "/metrics",
    );
    let ours_port = free_port();
    let ours = Exporter::spawn(
        OURS,
        &[
            format!("-nginx.scrape-uri={uri}"),
            format!("-web.listen-address=127.0.0.1:{ours_port}"),
            "-prometheus.const-labels=env=test,team=web".to_owned(),
        ],
        &[],
        ([127, 0, 0, 1], ours_port).into(),
        "/healthz",
    );
    (go, ours)
}

#[test]
fn same_families_types_help_labels_and_values_as_the_go_exporter() {
    let nginx = Nginx::start(false);
    let (go, ours) = start_pair(&nginx.url("/stub_status"));
    // Warm both up so each has its keep-alive connection to nginx.
    go.metrics();
    ours.metrics();

    // Interleaved: every counter of ours must lie between the Go exporter's before and after.
    let g1 = nginx_only(&go.metrics());
    let o = nginx_only(&ours.metrics());
    let g2 = nginx_only(&go.metrics());

    assert_eq!(o.types, g1.types, "names and types");
    assert_eq!(o.help, g1.help, "help strings");
    let keys = |m: &Metrics| m.samples.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&o), keys(&g1), "series and labels");
    assert_eq!(o.types.len(), 8, "{:?}", o.types);

    let mut checked = BTreeMap::new();
    for (series, v) in &o.samples {
        let name = series.split('{').next().unwrap();
        let (a, b) = (g1.samples[series], g2.samples[series]);
        match o.types[name].as_str() {
            "counter" => assert!(
                a <= *v && *v <= b,
                "{series}: ours {v} not between Go's {a} and {b}"
            ),
            // Gauges move with the scrapes' own connections: within a few of Go's readings.
            _ => assert!(
                (v - a).abs() <= 3.0 || (v - b).abs() <= 3.0,
                "{series}: ours {v}, Go's {a} / {b}"
            ),
        }
        checked.insert(name.to_owned(), *v);
    }
    assert_eq!(checked["nginx_up"], 1.0);
    assert!(checked["nginx_http_requests_total"] >= 3.0);

    // The raw text of the nginx families has the same shape, line for line (HELP, TYPE, sample).
    let shape = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                l.contains("nginx_")
                    && !l.contains("nginx_exporter")
                    && !l.contains("nginxexporter")
            })
            .map(|l| l.rsplit_once(' ').map_or(l, |(a, _)| a).to_owned())
            .collect()
    };
    assert_eq!(
        shape(&ours.get_ok("/metrics")),
        shape(&go.get_ok("/metrics"))
    );
}

#[test]
fn nginx_down_looks_the_same_in_both() {
    let mut nginx = Nginx::start(false);
    let (go, ours) = start_pair(&nginx.url("/stub_status"));
    assert_eq!(nginx_only(&go.metrics()).samples.len(), 8);
    nginx.stop();
    let g = nginx_only(&go.metrics());
    let o = nginx_only(&ours.metrics());
    assert_eq!(
        o.samples, g.samples,
        "only nginx_up 0 with the const labels"
    );
    assert_eq!(o.samples.values().copied().collect::<Vec<_>>(), [0.0]);
    nginx.resume();
    assert_eq!(nginx_only(&ours.metrics()).samples.len(), 8);
    assert_eq!(nginx_only(&go.metrics()).samples.len(), 8);
}
