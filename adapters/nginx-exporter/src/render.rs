//! The nginx metric families, written in Prometheus text format exactly as nginx-prometheus-exporter
//! writes them: same names, types, help, family order (sorted by name), label order (sorted by
//! name) and number formatting (Go's shortest `%g`, so `16630948` is `1.6630948e+07`).
//!
//! These are written by hand rather than through prometheus-client because its encoder appends
//! `_total` to every counter, and the exporter's counters (`nginx_connections_accepted`, ...) have no
//! suffix: dashboards and alerts use these exact names.

use std::fmt::Write as _;

use crate::stub_status::StubStatus;

/// One family: name, type, help, and how to read its value from a page.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&StubStatus) -> u64,
}

/// In the order the Go exporter writes them (sorted by name); `nginx_up` is last.
const FAMILIES: [Family; 7] = [
    Family {
        name: "nginx_connections_accepted",
        kind: "counter",
        help: "Accepted client connections",
        value: |s| s.accepted,
    },
    Family {
        name: "nginx_connections_active",
        kind: "gauge",
        help: "Active client connections",
        value: |s| s.active,
    },
    Family {
        name: "nginx_connections_handled",
        kind: "counter",
        help: "Handled client connections",
        value: |s| s.handled,
    },
    Family {
        name: "nginx_connections_reading",
        kind: "gauge",
        help: "Connections where NGINX is reading the request header",
        value: |s| s.reading,
    },
    Family {
        name: "nginx_connections_waiting",
        kind: "gauge",
        help: "Idle client connections",
        value: |s| s.waiting,
    },
    Family {
        name: "nginx_connections_writing",
        kind: "gauge",
        help: "Connections where NGINX is writing the response back to the client",
        value: |s| s.writing,
    },
    Family {
        name: "nginx_http_requests_total",
        kind: "counter",
        help: "Total http requests",
        value: |s| s.requests,
    },
];

/// Writes the nginx families for the scraped targets. Each target comes with its label block
/// (`{a="b",addr="..."}` or empty, see [`label_block`]) and its page, or `None` when the scrape
/// failed: then only its `nginx_up 0` is written, as the Go exporter does.
pub fn write_nginx(out: &mut String, targets: &[(&str, Option<StubStatus>)]) {
    for fam in &FAMILIES {
        if targets.iter().all(|(_, s)| s.is_none()) {
            break;
        }
        header(out, fam.name, fam.help, fam.kind);
        for (labels, status) in targets {
            if let Some(s) = status {
                sample(out, fam.name, labels, (fam.value)(s));
            }
        }
    }
    header(out, "nginx_up", "Status of the last metric scrape", "gauge");
    for (labels, status) in targets {
        sample(out, "nginx_up", labels, u64::from(status.is_some()));
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

fn sample(out: &mut String, name: &str, labels: &str, v: u64) {
    out.push_str(name);
    out.push_str(labels);
    out.push(' ');
    push_go_float(out, v);
    out.push('\n');
}

/// Appends `v` as Go's `strconv.FormatFloat(float64(v), 'g', -1, 64)` does: plain digits below
/// one million, otherwise the shortest mantissa with a two-digit-minimum exponent (`1e+06`).
pub fn push_go_float(out: &mut String, v: u64) {
    if v < 1_000_000 {
        let _ = write!(out, "{v}");
        return;
    }
    // Through f64 like Go, so values beyond 2^53 round the same way.
    #[allow(clippy::cast_precision_loss)]
    let f = v as f64;
    let e = format!("{f:e}"); // e.g. "1.6630948e7"
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let _ = write!(out, "{mantissa}e+{exp:0>2}");
}

/// Builds the `{name="value",...}` block for a target from the const labels and, when several
/// targets are scraped, its `addr`; labels are sorted by name like the Go client sorts them.
pub fn label_block(const_labels: &[(String, String)], addr: Option<&str>) -> String {
    let mut labels: Vec<(&str, &str)> = const_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(a) = addr {
        labels.retain(|(k, _)| *k != "addr");
        labels.push(("addr", a));
    }
    labels.sort_by(|a, b| a.0.cmp(b.0));
    if labels.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        escape_label_value(&mut s, v);
        s.push('"');
    }
    s.push('}');
    s
}

/// Escapes a label value for the text format: backslash, double quote and newline.
pub fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_formatting() {
        let f = |v| {
            let mut s = String::new();
            push_go_float(&mut s, v);
            s
        };
        assert_eq!(f(0), "0");
        assert_eq!(f(999_999), "999999");
        assert_eq!(f(1_000_000), "1e+06");
        assert_eq!(f(16_630_948), "1.6630948e+07");
        assert_eq!(f(31_070_465), "3.1070465e+07");
        assert_eq!(f(12_345_678_901_234), "1.2345678901234e+13");
    }

    #[test]
    fn labels_sorted_and_escaped() {
        let c = vec![
            ("zone".to_owned(), "a\"b".to_owned()),
            ("app".to_owned(), "x".to_owned()),
        ];
        assert_eq!(
            label_block(&c, Some("unix:/s:/st")),
            r#"{addr="unix:/s:/st",app="x",zone="a\"b"}"#
        );
        assert_eq!(label_block(&[], None), "");
    }

    #[test]
    fn down_target_only_has_up() {
        let mut out = String::new();
        write_nginx(&mut out, &[("", None)]);
        assert_eq!(
            out,
            "# HELP nginx_up Status of the last metric scrape\n# TYPE nginx_up gauge\nnginx_up 0\n"
        );
    }

    #[test]
    fn up_target_has_all_families_in_go_order() {
        let s = StubStatus {
            active: 1,
            accepted: 2,
            handled: 3,
            requests: 4,
            reading: 5,
            writing: 6,
            waiting: 7,
        };
        let mut out = String::new();
        write_nginx(&mut out, &[("{a=\"b\"}", Some(s))]);
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "nginx_connections_accepted{a=\"b\"} 2",
                "nginx_connections_active{a=\"b\"} 1",
                "nginx_connections_handled{a=\"b\"} 3",
                "nginx_connections_reading{a=\"b\"} 5",
                "nginx_connections_waiting{a=\"b\"} 7",
                "nginx_connections_writing{a=\"b\"} 6",
                "nginx_http_requests_total{a=\"b\"} 4",
                "nginx_up{a=\"b\"} 1",
            ]
        );
    }
}
