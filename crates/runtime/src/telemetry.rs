//! Diagnostics: tracing to stderr, as text or JSON.
//!
//! stderr, always: log-tail and log-normalize write their data to stdout, and `kubectl logs` shows
//! both streams, so a diagnostic on stdout would corrupt the data stream of a log pipeline.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::LogFormat;

type Handle = tracing_subscriber::reload::Handle<Targets, tracing_subscriber::Registry>;

/// The installed filter, so a binary can change its default level while it runs (nutcracker's
/// SIGTTIN/SIGTTOU).
static FILTER: std::sync::OnceLock<Handle> = std::sync::OnceLock::new();

/// Replaces the default level of the installed filter, keeping its per-target levels. `false`
/// when no subscriber was installed by [`init`].
pub fn set_default_level(level: LevelFilter) -> bool {
    let Some(h) = FILTER.get() else {
        return false;
    };
    h.modify(|t| {
        let targets: Vec<(String, LevelFilter)> =
            t.iter().map(|(n, l)| (n.to_owned(), l)).collect();
        *t = Targets::new().with_default(level).with_targets(targets);
    })
    .is_ok()
}

/// The default level of the installed filter.
pub fn default_level() -> Option<LevelFilter> {
    FILTER
        .get()?
        .with_current(|t| t.default_level())
        .ok()
        .flatten()
}

/// Installs the global subscriber. The filter comes from `level` (the `--log-level` flag), else
/// `RUST_LOG`, else `info`. Returns an error naming the bad directive; calling it twice is harmless
/// (tests start several servers in one process).
///
/// The filter is `RUST_LOG`'s common form, a default level and `target=level` pairs
/// (`warn,log_tail=debug`), parsed by `Targets` rather than `EnvFilter`: `EnvFilter`'s span and
/// field matching brings a regex engine that is a sizeable share of every binary's resident code.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), FilterError> {
    let filter = match level {
        Some(l) => parse(l)?,
        None => match std::env::var("RUST_LOG") {
            Ok(l) if !l.trim().is_empty() => parse(&l).map_err(|e| FilterError {
                from_rust_log: true,
                ..e
            })?,
            _ => Targets::new().with_default(LevelFilter::INFO),
        },
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let res = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(fmt.with_ansi(false).with_filter(filter))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(fmt.json().flatten_event(true).with_filter(filter))
            .try_init(),
    };
    // Already installed: keep the first one.
    if res.is_ok() {
        let _ = FILTER.set(handle);
    }
    Ok(())
}

/// A log filter that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{}`{directives}`: {source}", if *.from_rust_log { "RUST_LOG: " } else { "" })]
pub struct FilterError {
    /// The filter given.
    pub directives: String,
    /// Whether it came from `RUST_LOG` rather than `--log-level`.
    pub from_rust_log: bool,
    /// The parser's error.
    #[source]
    pub source: tracing_subscriber::filter::ParseError,
}

fn parse(directives: &str) -> Result<Targets, FilterError> {
    directives.parse::<Targets>().map_err(|source| FilterError {
        directives: directives.to_owned(),
        from_rust_log: false,
        source,
    })
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::parse;

    #[test]
    fn accepts_a_level_and_per_target_levels() {
        let t = parse("warn,log_tail=debug").unwrap();
        assert!(t.would_enable("log_tail::follow", &Level::DEBUG));
        assert!(!t.would_enable("hyper", &Level::INFO));
        assert!(t.would_enable("hyper", &Level::WARN));
        assert!(parse("INFO").unwrap().would_enable("x", &Level::INFO));
    }

    #[test]
    fn rejects_an_unknown_level_naming_it() {
        let e = parse("log_tail=loud").unwrap_err().to_string();
        assert!(e.contains("log_tail=loud"), "{e}");
    }
}
