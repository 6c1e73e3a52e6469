//! The flags every binary shares, flattened into its clap CLI with `#[command(flatten)]`.

use std::net::SocketAddr;
use std::time::Duration;

/// Output format of the diagnostics written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Admin server, logging and shutdown flags common to all podmates binaries.
///
/// Environment variables use the `PODMATES_` prefix: each container has its own environment, so one
/// name per setting is enough and a platform team can set them the same way for every image.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Address of the admin HTTP server (/metrics, /healthz, /readyz).
    /// Defaults to the binary's own port.
    #[arg(long, env = "PODMATES_ADMIN_ADDR", value_name = "ADDR", value_parser = parse_admin_addr)]
    pub admin_addr: Option<SocketAddr>,

    /// Disable the admin server (tests, one-shot runs).
    #[arg(long, env = "PODMATES_NO_ADMIN")]
    pub no_admin_server: bool,

    /// Format of the diagnostics on stderr.
    #[arg(long, env = "PODMATES_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `warn,log_tail=debug`. Falls back to RUST_LOG, then `info`.
    #[arg(long, env = "PODMATES_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// How long to drain after SIGTERM before giving up, e.g. `10s`, `500ms`, `1m`.
    /// Keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "PODMATES_GRACE_PERIOD", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub grace_period: Duration,
}

impl RuntimeArgs {
    /// Whether the admin server is disabled.
    pub fn no_admin(&self) -> bool {
        self.no_admin_server
    }
}

fn parse_admin_addr(s: &str) -> Result<SocketAddr, String> {
    // `:9101` as Go tools write it means every interface: `[::]`, which `net::bind_tcp` makes
    // dual-stack.
    let s = s.trim();
    let full = if let Some(port) = s.strip_prefix(':') {
        format!("[::]:{port}")
    } else {
        s.to_owned()
    };
    full.parse()
        .map_err(|e| format!("`{s}` is not an address like [::]:9101, 0.0.0.0:9101 or :9101 ({e})"))
}

/// Parses durations written the way Go and Kubernetes users write them: `500ms`, `10s`, `1m30s`,
/// `2h`, `1.5s`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let orig = s;
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("`{orig}`: {e}"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{orig}`: missing unit (use ms, s, m or h)"))?;
        if num_end == 0 {
            return Err(format!("`{orig}`: expected a number before the unit"));
        }
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("`{orig}`: bad number `{}`", &rest[..num_end]))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("`{orig}`: unknown unit `{u}` (use ms, s, m or h)")),
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("`{orig}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_go_syntax() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn admin_addr_accepts_go_style_port() {
        assert_eq!(
            parse_admin_addr(":9101").unwrap(),
            "[::]:9101".parse().unwrap()
        );
        assert_eq!(
            parse_admin_addr("127.0.0.1:1").unwrap(),
            "127.0.0.1:1".parse().unwrap()
        );
        assert!(parse_admin_addr("nope").unwrap_err().contains("nope"));
    }
}
