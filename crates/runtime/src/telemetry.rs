//! Diagnostics: tracing to stderr, as text or JSON.
//!
//! stderr, always: log-tail and log-normalize write their data to stdout, and `kubectl logs` shows
//! both streams, so a diagnostic on stdout would corrupt the data stream of a log pipeline.

use tracing_subscriber::EnvFilter;

use crate::LogFormat;

/// Installs the global subscriber. The filter comes from `level` (the `--log-level` flag), else
/// `RUST_LOG`, else `info`. Returns an error naming the bad directive; calling it twice is harmless
/// (tests start several servers in one process).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), String> {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| format!("`{l}`: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let res = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed: keep the first one.
    drop(res);
    Ok(())
}
