//! The nginx-exporter binary: nginx-prometheus-exporter's command line (both `--flag` and the old
//! `-flag` forms, the same environment variables) turned into a [`Config`].

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use clap::Parser;
use clap::builder::BoolishValueParser;
use hyper::header::HeaderValue;
use nginx_exporter::access_log::{AccessLogConfig, compile_format};
use nginx_exporter::target::ClientSettings;
use nginx_exporter::tls::{self, TlsSettings};
use nginx_exporter::{Config, Exporter};
use podmates_runtime::{Binary, LogFormat, RuntimeArgs, exit_usage};

const NAME: &str = "nginx-exporter";

/// nginx stub_status as Prometheus metrics: a drop-in for nginx-prometheus-exporter.
///
/// Flags also work in the old single-dash form (`-nginx.scrape-uri`).
#[derive(Parser, Debug)]
#[command(name = NAME, version)]
struct Cli {
    /// URI of nginx's stub_status page: http://, https:// or unix:<socket>:<path>. Repeat for
    /// several targets (then every series gets an `addr` label). SCRAPE_URI takes one per line.
    #[arg(
        long = "nginx.scrape-uri",
        env = "SCRAPE_URI",
        value_name = "URI",
        default_value = "http://127.0.0.1:8080/stub_status"
    )]
    scrape_uri: Vec<String>,

    /// Address to serve metrics on (`:9113` means every interface). Repeatable.
    #[arg(
        long = "web.listen-address",
        env = "LISTEN_ADDRESS",
        value_name = "ADDR",
        default_value = ":9113"
    )]
    listen_address: Vec<String>,

    /// Path under which the metrics are served.
    #[arg(
        long = "web.telemetry-path",
        env = "TELEMETRY_PATH",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    telemetry_path: String,

    /// Serve only the nginx metrics (not the exporter's own build info and error counters).
    #[arg(long = "web.nginx-metrics-only", env = "NGINX_METRICS_ONLY", num_args = 0..=1,
          default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    nginx_metrics_only: bool,

    /// What `/probe?target=` may scrape besides the --nginx.scrape-uri targets: a URI prefix
    /// (repeatable), or `*` for any target as the Go exporter allows.
    #[arg(
        long = "probe.allowed-target",
        env = "PROBE_ALLOWED_TARGETS",
        value_name = "PREFIX",
        value_delimiter = ','
    )]
    probe_allowed_target: Vec<String>,

    /// Timeout of one scrape of nginx, e.g. 5s, 500ms.
    #[arg(long = "nginx.timeout", env = "TIMEOUT", value_name = "DURATION", default_value = "5s",
          value_parser = podmates_runtime::args::parse_duration)]
    timeout: Duration,

    /// Verify nginx's TLS certificate (https targets). `--no-nginx.ssl-verify` turns it off.
    #[arg(long = "nginx.ssl-verify", env = "SSL_VERIFY", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    ssl_verify: bool,

    /// Turns off `--nginx.ssl-verify` (kingpin's negated form).
    #[arg(long = "no-nginx.ssl-verify", hide = true)]
    no_ssl_verify: bool,

    /// PEM CA certificate(s) to verify nginx's certificate with, instead of the system roots.
    #[arg(long = "nginx.ssl-ca-cert", env = "SSL_CA_CERT", value_name = "FILE")]
    ssl_ca_cert: Option<PathBuf>,

    /// PEM client certificate for mutual TLS toward nginx.
    #[arg(
        long = "nginx.ssl-client-cert",
        env = "SSL_CLIENT_CERT",
        value_name = "FILE"
    )]
    ssl_client_cert: Option<PathBuf>,

    /// PEM private key of the client certificate.
    #[arg(
        long = "nginx.ssl-client-key",
        env = "SSL_CLIENT_KEY",
        value_name = "FILE"
    )]
    ssl_client_key: Option<PathBuf>,

    /// Label added to every nginx series, `name=value`. Repeatable. CONST_LABELS takes them
    /// separated by newlines or commas.
    #[arg(long = "prometheus.const-label", value_name = "NAME=VALUE")]
    const_label: Vec<String>,

    /// Old form: comma-separated `name=value` list.
    #[arg(long = "prometheus.const-labels", value_name = "LIST")]
    const_labels: Vec<String>,

    /// Log level: debug, info, warn, error (same as --log-level / PODMATES_LOG_LEVEL).
    #[arg(long = "log.level", value_name = "LEVEL",
          value_parser = ["debug", "info", "warn", "error"])]
    go_log_level: Option<String>,

    /// Log format: logfmt (text) or json (same as --log-format / PODMATES_LOG_FORMAT).
    #[arg(long = "log.format", value_name = "FORMAT", value_parser = ["logfmt", "json"])]
    go_log_format: Option<String>,

    /// Host header sent to nginx instead of the URI's host (virtual hosts).
    #[arg(
        long = "nginx.host-header",
        env = "NGINX_HOST_HEADER",
        value_name = "HOST"
    )]
    host_header: Option<String>,

    /// User for basic auth toward nginx (with --nginx.basic-auth-password-file). Credentials in a
    /// scrape URI (`http://user:pass@host/...`) take precedence for that target.
    #[arg(
        long = "nginx.basic-auth-user",
        env = "NGINX_BASIC_AUTH_USER",
        value_name = "USER"
    )]
    basic_auth_user: Option<String>,

    /// File holding the basic auth password (trailing newline ignored).
    #[arg(
        long = "nginx.basic-auth-password-file",
        env = "NGINX_BASIC_AUTH_PASSWORD_FILE",
        value_name = "FILE"
    )]
    basic_auth_password_file: Option<PathBuf>,

    /// File holding a bearer token sent as `Authorization: Bearer <token>`.
    #[arg(
        long = "nginx.bearer-token-file",
        env = "NGINX_BEARER_TOKEN_FILE",
        value_name = "FILE"
    )]
    bearer_token_file: Option<PathBuf>,

    /// NGINX Plus API mode of the Go exporter: not supported (exits with an error when true).
    #[arg(long = "nginx.plus", env = "NGINX_PLUS", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", value_parser = BoolishValueParser::new(), hide = true)]
    nginx_plus: bool,

    /// Accepted for compatibility and ignored: the exporter never exits because nginx is down.
    #[arg(long = "nginx.retries", env = "NGINX_RETRIES", hide = true)]
    retries: Option<String>,

    /// Accepted for compatibility and ignored (see --nginx.retries).
    #[arg(
        long = "nginx.retry-interval",
        env = "NGINX_RETRY_INTERVAL",
        hide = true
    )]
    retry_interval: Option<String>,

    /// PROXY protocol toward nginx: not supported (exits with an error when true).
    #[arg(long = "nginx.proxy-protocol", env = "PROXY_PROTOCOL", num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide = true)]
    proxy_protocol: bool,

    /// exporter-toolkit web config (TLS/auth on the metrics endpoint): not supported.
    #[arg(long = "web.config.file", env = "CONFIG_FILE", hide = true)]
    web_config_file: Option<PathBuf>,

    /// HTTPS on the metrics endpoint (0.x): not supported (exits with an error when true).
    #[arg(long = "web.secured-metrics", env = "SECURED_METRICS", num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = BoolishValueParser::new(), hide = true)]
    secured_metrics: bool,

    /// nginx access log to follow (path or glob) for responses by status class and latency
    /// histograms.
    #[arg(long = "access-log", env = "ACCESS_LOG", value_name = "PATH")]
    access_log: Option<PathBuf>,

    /// Format of the access log: `combined`, `main`, or the `log_format` string itself. Latency
    /// histograms appear when it has $request_time / $upstream_response_time.
    #[arg(
        long = "access-log-format",
        env = "ACCESS_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "combined"
    )]
    access_log_format: String,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Long flag names that may be written with a single dash, as Go's flag package and the old
/// exporter accept them.
const SINGLE_DASH_OK: &[&str] = &[
    "nginx.scrape-uri",
    "web.listen-address",
    "web.telemetry-path",
    "web.nginx-metrics-only",
    "probe.allowed-target",
    "nginx.timeout",
    "nginx.ssl-verify",
    "no-nginx.ssl-verify",
    "nginx.ssl-ca-cert",
    "nginx.ssl-client-cert",
    "nginx.ssl-client-key",
    "prometheus.const-label",
    "prometheus.const-labels",
    "log.level",
    "log.format",
    "nginx.host-header",
    "nginx.basic-auth-user",
    "nginx.basic-auth-password-file",
    "nginx.bearer-token-file",
    "nginx.plus",
    "nginx.retries",
    "nginx.retry-interval",
    "nginx.proxy-protocol",
    "web.config.file",
    "web.secured-metrics",
    "access-log",
    "access-log-format",
    "version",
    "help",
];

/// Rewrites `-name[=v]` to `--name[=v]` for the known long flags, before clap sees the arguments.
fn normalise_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest_verbatim = false;
    for (i, a) in args.into_iter().enumerate() {
        if i == 0 || rest_verbatim || a.starts_with("--") || !a.starts_with('-') {
            rest_verbatim |= a == "--";
            out.push(a);
            continue;
        }
        let name = a[1..].split('=').next().unwrap_or("");
        if SINGLE_DASH_OK.contains(&name) {
            out.push(format!("-{a}"));
        } else {
            out.push(a);
        }
    }
    out
}

/// `:9113` means every interface: IPv6 and IPv4 where the kernel has IPv6, else IPv4.
fn bind(addr: &str) -> Result<TcpListener, String> {
    let bind_one = |a: SocketAddr| -> Result<TcpListener, String> {
        podmates_runtime::net::bind_tcp(a).map_err(|e| format!("cannot listen on {a}: {e}"))
    };
    if let Some(port) = addr.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{addr}` is not an address like :9113 or 127.0.0.1:9113"))?;
        return bind_one(SocketAddr::from(([0u16; 8], port)));
    }
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("`{addr}` is not an address like :9113 or 127.0.0.1:9113 ({e})"))?
        .collect();
    let first = addrs
        .first()
        .ok_or_else(|| format!("`{addr}` resolves to no address"))?;
    bind_one(*first)
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not name=value"))?;
    let k = k.trim();
    let valid = k
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if k.is_empty() || !valid || k.starts_with("__") {
        return Err(format!("`{k}` is not a valid label name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

fn read_secret(flag: &str, path: &PathBuf) -> Result<String, String> {
    let s = std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

fn config(cli: &Cli) -> Result<Config, String> {
    if cli.nginx_plus {
        return Err("--nginx.plus: the NGINX Plus API is not supported; this exporter reads nginx OSS stub_status".to_owned());
    }
    if cli.proxy_protocol {
        return Err(
            "--nginx.proxy-protocol: PROXY protocol toward nginx is not supported".to_owned(),
        );
    }
    if cli.secured_metrics || cli.web_config_file.is_some() {
        return Err("--web.config.file / --web.secured-metrics: TLS on the metrics endpoint is not supported; terminate TLS in front of it".to_owned());
    }
    if cli.retries.is_some() || cli.retry_interval.is_some() {
        tracing::debug!(
            "--nginx.retries/--nginx.retry-interval are ignored: the exporter starts and keeps running whether nginx is up or not"
        );
    }
    let scrape_uris: Vec<String> = cli
        .scrape_uri
        .iter()
        .flat_map(|s| s.split(['\n', '\r']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scrape_uris.is_empty() {
        return Err("--nginx.scrape-uri: no scrape URI given".to_owned());
    }
    if !cli.telemetry_path.starts_with('/') {
        return Err(format!(
            "--web.telemetry-path: `{}` must start with /",
            cli.telemetry_path
        ));
    }

    let mut const_labels = Vec::new();
    let env_labels = if cli.const_label.is_empty() {
        std::env::var("CONST_LABELS").unwrap_or_default()
    } else {
        String::new()
    };
    let from_lists = cli
        .const_labels
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(env_labels.as_str()))
        .flat_map(|s| s.split([',', '\n']))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    for s in cli.const_label.iter().map(String::as_str).chain(from_lists) {
        let (k, v) = parse_label(s).map_err(|e| format!("--prometheus.const-label: {e}"))?;
        if k == "addr" && scrape_uris.len() > 1 {
            return Err(
                "--prometheus.const-label: `addr` is the label that tells several targets apart"
                    .to_owned(),
            );
        }
        const_labels.retain(|(name, _): &(String, String)| *name != k);
        const_labels.push((k, v));
    }

    let mut listeners = Vec::new();
    for s in cli
        .listen_address
        .iter()
        .flat_map(|s| s.split(['\n', ',']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        listeners.push(bind(s).map_err(|e| format!("--web.listen-address: {e}"))?);
    }

    let tls_settings = TlsSettings {
        verify: cli.ssl_verify && !cli.no_ssl_verify,
        ca_cert: cli.ssl_ca_cert.clone(),
        client_cert: cli.ssl_client_cert.clone(),
        client_key: cli.ssl_client_key.clone(),
    };
    let tls = Arc::new(std::sync::OnceLock::new());
    if scrape_uris.iter().any(|u| u.starts_with("https://")) {
        let config = tls::client_config(&tls_settings).map_err(|e| e.to_string())?;
        let _ = tls.set(config);
    } else {
        // Built on first use (by /probe); the files must still be there.
        tls::check_files(&tls_settings).map_err(|e| e.to_string())?;
    }

    let host_header = cli
        .host_header
        .as_deref()
        .map(|h| {
            HeaderValue::from_str(h)
                .map_err(|_| format!("--nginx.host-header: `{h}` is not a valid header value"))
        })
        .transpose()?;
    let authorization = match (
        &cli.basic_auth_user,
        &cli.basic_auth_password_file,
        &cli.bearer_token_file,
    ) {
        (Some(_), _, Some(_)) => {
            return Err(
                "--nginx.basic-auth-user and --nginx.bearer-token-file exclude each other"
                    .to_owned(),
            );
        }
        (None, Some(_), _) => {
            return Err(
                "--nginx.basic-auth-password-file needs --nginx.basic-auth-user".to_owned(),
            );
        }
        (Some(user), pw, None) => {
            let pw = match pw {
                Some(p) => read_secret("--nginx.basic-auth-password-file", p)?,
                None => String::new(),
            };
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
            Some(
                HeaderValue::from_str(&format!("Basic {enc}"))
                    .map_err(|_| "--nginx.basic-auth-user: not a valid header value".to_owned())?,
            )
        }
        (None, None, Some(f)) => {
            let token = read_secret("--nginx.bearer-token-file", f)?;
            let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                "--nginx.bearer-token-file: the token is not a valid header value".to_owned()
            })?;
            v.set_sensitive(true);
            Some(v)
        }
        (None, None, None) => None,
    };

    let access_log = match &cli.access_log {
        Some(path) => Some(AccessLogConfig {
            path: path.clone(),
            format: Arc::new(
                compile_format(&cli.access_log_format)
                    .map_err(|e| format!("--access-log-format: {e}"))?,
            ),
        }),
        None => None,
    };

    let scrape_uris_for_probe = scrape_uris.clone();
    Ok(Config {
        scrape_uris,
        listeners,
        telemetry_path: cli.telemetry_path.clone(),
        nginx_metrics_only: cli.nginx_metrics_only,
        client: ClientSettings {
            timeout: cli.timeout,
            tls,
            tls_settings,
            host_header,
            authorization,
        },
        const_labels,
        access_log,
        probe_allowed: (!cli.probe_allowed_target.is_empty()).then(|| {
            cli.probe_allowed_target
                .iter()
                .cloned()
                .chain(scrape_uris_for_probe)
                .collect()
        }),
    })
}

fn main() -> ExitCode {
    let args = normalise_args(std::env::args());
    let mut cli: Cli = podmates_runtime::parse_args(args);
    // The Go exporter's log flags drive the shared runtime's logging.
    if let Some(level) = &cli.go_log_level {
        cli.runtime.log_level.get_or_insert_with(|| level.clone());
    }
    match cli.go_log_format.as_deref() {
        Some("json") => cli.runtime.log_format = LogFormat::Json,
        Some(_) => cli.runtime.log_format = LogFormat::Text,
        None => {}
    }
    // The admin server is the metrics server on --web.listen-address; --admin-addr, when given,
    // is one more listener with the same routes.
    if cli.runtime.admin_addr.is_none() {
        cli.runtime.no_admin_server = true;
    }
    let config = config(&cli).unwrap_or_else(|e| exit_usage(NAME, e));
    let exporter = Exporter::new(&config).unwrap_or_else(|e| exit_usage(NAME, e));
    podmates_runtime::start(
        Binary {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            default_admin_addr: "[::]:9113",
            // A scrape is a few hundred bytes each way: one worker serves more scrapes/s than two
            // on a busy node (measured with `cargo xtask bench nginx-exporter`) and keeps RSS down.
            worker_threads: Some(1),
        },
        &cli.runtime,
        move |ctx| nginx_exporter::run(exporter, config, ctx),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    podmates_runtime::test_flags_documented!(Cli, include_str!("../README.md"));

    fn norm(a: &[&str]) -> Vec<String> {
        normalise_args(a.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn single_dash_long_flags_are_rewritten() {
        assert_eq!(
            norm(&[
                "x",
                "-nginx.scrape-uri=http://a/",
                "-web.listen-address",
                ":1",
                "-h"
            ]),
            [
                "x",
                "--nginx.scrape-uri=http://a/",
                "--web.listen-address",
                ":1",
                "-h"
            ]
        );
        // Values that start with a dash and unknown flags are left alone.
        assert_eq!(
            norm(&["x", "-unknown", "--", "-log.level"]),
            ["x", "-unknown", "--", "-log.level"]
        );
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_label("a=b=c").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
        assert!(parse_label("1a=b").is_err());
        assert!(parse_label("ab").is_err());
    }
}
