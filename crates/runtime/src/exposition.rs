//! Metrics exposition formats.
//!
//! prometheus-client encodes OpenMetrics text. Scrapers that ask for it (`Accept:
//! application/openmetrics-text`) get it unchanged; everything else (curl, older Prometheus, the
//! Datadog and Telegraf scrapers) gets the classic Prometheus text format 0.0.4, which differs in
//! ways that break strict parsers: no `# EOF`, no `# UNIT`, no `info`/`stateset`/`unknown` types,
//! and a counter family is named after its samples (`foo_total`), not without the suffix.

use prometheus_client::registry::Registry;

/// Content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Encodes `registry` as OpenMetrics text.
pub fn encode_openmetrics(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail; an Err here would be an encoder bug (invalid label set),
    // which we surface in the output rather than panicking a server.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        out.push_str(&format!("# encoding error: {e}\n"));
    }
    out
}

/// Converts OpenMetrics text (as prometheus-client writes it) to Prometheus text format 0.0.4.
pub fn openmetrics_to_prometheus(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let mut lines = om.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // A family: HELP, TYPE, (UNIT), samples. Look at TYPE to decide the renaming.
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let ty = lines
                .peek()
                .and_then(|l| l.strip_prefix("# TYPE "))
                .and_then(|t| t.split_once(' '))
                .filter(|(n, _)| *n == name)
                .map(|(_, t)| t.to_owned());
            if ty.is_some() {
                lines.next();
            }
            let (new_name, new_ty) = match ty.as_deref() {
                Some("counter") => (format!("{name}_total"), "counter"),
                Some("info") => (format!("{name}_info"), "gauge"),
                Some("gauge") => (name.to_owned(), "gauge"),
                Some("histogram") => (name.to_owned(), "histogram"),
                Some("summary") => (name.to_owned(), "summary"),
                Some("stateset") | Some("gaugehistogram") => (name.to_owned(), "gauge"),
                _ => (name.to_owned(), "untyped"),
            };
            out.push_str("# HELP ");
            out.push_str(&new_name);
            out.push(' ');
            out.push_str(help);
            out.push('\n');
            out.push_str("# TYPE ");
            out.push_str(&new_name);
            out.push(' ');
            out.push_str(new_ty);
            out.push('\n');
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            // TYPE without HELP: pass through with the same renaming rules.
            let (name, t) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            match t {
                "counter" => out.push_str(&format!("# TYPE {name}_total counter\n")),
                "info" => out.push_str(&format!("# TYPE {name}_info gauge\n")),
                "unknown" => out.push_str(&format!("# TYPE {name} untyped\n")),
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            continue;
        }
        // `_created` samples are OpenMetrics-only.
        let sample_name = line.split(['{', ' ']).next().unwrap_or("");
        if sample_name.ends_with("_created") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::info::Info;

    #[test]
    fn converts_counters_info_and_eof() {
        let mut reg = Registry::default();
        let c: Counter = Counter::default();
        c.inc_by(3);
        reg.register("lines", "Lines read", c);
        let g: Gauge = Gauge::default();
        g.set(7);
        reg.register("files", "Files watched", g);
        reg.register(
            "demo_build",
            "Build information",
            Info::new(vec![("version", "1.2.3")]),
        );
        let om = encode_openmetrics(&reg);
        assert!(om.ends_with("# EOF\n"), "{om}");
        let prom = openmetrics_to_prometheus(&om);
        assert!(prom.contains("# HELP lines_total Lines read.\n"), "{prom}");
        assert!(
            prom.contains("# TYPE lines_total counter\nlines_total 3\n"),
            "{prom}"
        );
        assert!(prom.contains("# TYPE files gauge\nfiles 7\n"), "{prom}");
        assert!(
            prom.contains("# TYPE demo_build_info gauge\ndemo_build_info{version=\"1.2.3\"} 1\n"),
            "{prom}"
        );
        assert!(!prom.contains("EOF"));
        assert!(!prom.contains("_created"));
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(None));
    }
}
