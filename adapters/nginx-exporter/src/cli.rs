//! The nginx-exporter command line: nginx-prometheus-exporter's flags (both `--flag` and the old
//! `-flag` forms, the same environment variables) turned into checked [`Settings`] without I/O;
//! `open.rs` then binds the listeners and reads the files they name.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hyper::header::HeaderValue;
use nginx_exporter::access_log::{AccessLogConfig, compile_format};
use nginx_exporter::tls::TlsSettings;
use podmates_runtime::args::{ListenAddr, parse_go_bool};
use podmates_runtime::{LogFormat, RuntimeArgs, UsageError};

pub(crate) const NAME: &str = "nginx-exporter";

/// nginx stub_status as Prometheus metrics: a drop-in for nginx-prometheus-exporter.
///
/// Flags also work in the old single-dash form (`-nginx.scrape-uri`).
#[derive(Parser, Debug)]
#[command(name = NAME, version)]
pub(crate) struct Cli {
    /// URI of nginx's stub_status page: http://, https:// or unix:<socket>:<path>. Repeat for
    /// several targets (then every series gets an `addr` label). SCRAPE_URI takes one per line.
    #[arg(
        long = "nginx.scrape-uri",
        env = "SCRAPE_URI",
        value_name = "URI",
        default_value = "http://127.0.0.1:8080/stub_status"
    )]
    pub(crate) scrape_uri: Vec<String>,

    /// Address to serve metrics on (`:9113` means every interface). Repeatable.
    #[arg(
        long = "web.listen-address",
        env = "LISTEN_ADDRESS",
        value_name = "ADDR",
        default_value = ":9113"
    )]
    pub(crate) listen_address: Vec<String>,

    /// Path under which the metrics are served.
    #[arg(
        long = "web.telemetry-path",
        env = "TELEMETRY_PATH",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    pub(crate) telemetry_path: String,

    /// Serve only the nginx metrics (not the exporter's own build info and error counters).
    #[arg(long = "web.nginx-metrics-only", env = "NGINX_METRICS_ONLY", num_args = 0..=1,
          default_value = "false", default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) nginx_metrics_only: bool,

    /// What `/probe?target=` may scrape besides the --nginx.scrape-uri targets: a URI prefix
    /// (repeatable), or `*` for any target as the Go exporter allows.
    #[arg(
        long = "probe.allowed-target",
        env = "PROBE_ALLOWED_TARGETS",
        value_name = "PREFIX",
        value_delimiter = ','
    )]
    pub(crate) probe_allowed_target: Vec<String>,

    /// Timeout of one scrape of nginx, e.g. 5s, 500ms.
    #[arg(long = "nginx.timeout", env = "TIMEOUT", value_name = "DURATION", default_value = "5s",
          value_parser = podmates_runtime::args::parse_duration)]
    pub(crate) timeout: Duration,

    /// Verify nginx's TLS certificate (https targets). `--no-nginx.ssl-verify` turns it off.
    #[arg(long = "nginx.ssl-verify", env = "SSL_VERIFY", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub(crate) ssl_verify: bool,

    /// Turns off `--nginx.ssl-verify` (kingpin's negated form).
    #[arg(long = "no-nginx.ssl-verify", hide = true)]
    pub(crate) no_ssl_verify: bool,

    /// PEM CA certificate(s) to verify nginx's certificate with, instead of the system roots.
    #[arg(long = "nginx.ssl-ca-cert", env = "SSL_CA_CERT", value_name = "FILE")]
    pub(crate) ssl_ca_cert: Option<PathBuf>,

    /// PEM client certificate for mutual TLS toward nginx.
    #[arg(
        long = "nginx.ssl-client-cert",
        env = "SSL_CLIENT_CERT",
        value_name = "FILE"
    )]
    pub(crate) ssl_client_cert: Option<PathBuf>,

    /// PEM private key of the client certificate.
    #[arg(
        long = "nginx.ssl-client-key",
        env = "SSL_CLIENT_KEY",
        value_name = "FILE"
    )]
    pub(crate) ssl_client_key: Option<PathBuf>,

    /// Label added to every nginx series, `name=value`. Repeatable. CONST_LABELS takes them
    /// separated by newlines or commas.
    #[arg(long = "prometheus.const-label", value_name = "NAME=VALUE")]
    pub(crate) const_label: Vec<String>,

    /// Old form: comma-separated `name=value` list.
    #[arg(long = "prometheus.const-labels", value_name = "LIST")]
    pub(crate) const_labels: Vec<String>,

    /// `CONST_LABELS`, read with the other variables while parsing; used when no
    /// --prometheus.const-label is given.
    #[arg(skip = std::env::var("CONST_LABELS").unwrap_or_default())]
    pub(crate) const_labels_env: String,

    /// Log level: debug, info, warn, error (same as --log-level / PODMATES_LOG_LEVEL).
    #[arg(long = "log.level", value_name = "LEVEL",
          value_parser = ["debug", "info", "warn", "error"])]
    pub(crate) go_log_level: Option<String>,

    /// Log format: logfmt (text) or json (same as --log-format / PODMATES_LOG_FORMAT).
    #[arg(long = "log.format", value_name = "FORMAT", value_parser = ["logfmt", "json"])]
    pub(crate) go_log_format: Option<String>,

    /// Host header sent to nginx instead of the URI's host (virtual hosts).
    #[arg(
        long = "nginx.host-header",
        env = "NGINX_HOST_HEADER",
        value_name = "HOST"
    )]
    pub(crate) host_header: Option<String>,

    /// User for basic auth toward nginx (with --nginx.basic-auth-password-file). Credentials in a
    /// scrape URI (`http://user:pass@host/...`) take precedence for that target.
    #[arg(
        long = "nginx.basic-auth-user",
        env = "NGINX_BASIC_AUTH_USER",
        value_name = "USER"
    )]
    pub(crate) basic_auth_user: Option<String>,

    /// File holding the basic auth password (trailing newline ignored).
    #[arg(
        long = "nginx.basic-auth-password-file",
        env = "NGINX_BASIC_AUTH_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub(crate) basic_auth_password_file: Option<PathBuf>,

    /// File holding a bearer token sent as `Authorization: Bearer <token>`.
    #[arg(
        long = "nginx.bearer-token-file",
        env = "NGINX_BEARER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub(crate) bearer_token_file: Option<PathBuf>,

    /// NGINX Plus API mode of the Go exporter: not supported (exits with an error when true).
    #[arg(long = "nginx.plus", env = "NGINX_PLUS", num_args = 0..=1, default_value = "false",
          default_missing_value = "true", value_parser = parse_go_bool, hide = true)]
    pub(crate) nginx_plus: bool,

    /// Accepted for compatibility and ignored: the exporter never exits because nginx is down.
    #[arg(long = "nginx.retries", env = "NGINX_RETRIES", hide = true)]
    pub(crate) retries: Option<String>,

    /// Accepted for compatibility and ignored (see --nginx.retries).
    #[arg(
        long = "nginx.retry-interval",
        env = "NGINX_RETRY_INTERVAL",
        hide = true
    )]
    pub(crate) retry_interval: Option<String>,

    /// PROXY protocol toward nginx: not supported (exits with an error when true).
    #[arg(long = "nginx.proxy-protocol", env = "PROXY_PROTOCOL", num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = parse_go_bool, hide = true)]
    pub(crate) proxy_protocol: bool,

    /// exporter-toolkit web config (TLS/auth on the metrics endpoint): not supported.
    #[arg(long = "web.config.file", env = "CONFIG_FILE", hide = true)]
    pub(crate) web_config_file: Option<PathBuf>,

    /// HTTPS on the metrics endpoint (0.x): not supported (exits with an error when true).
    #[arg(long = "web.secured-metrics", env = "SECURED_METRICS", num_args = 0..=1,
          default_value = "false", default_missing_value = "true",
          value_parser = parse_go_bool, hide = true)]
    pub(crate) secured_metrics: bool,

    /// nginx access log to follow (path or glob) for responses by status class and latency
    /// histograms.
    #[arg(long = "access-log", env = "ACCESS_LOG", value_name = "PATH")]
    pub(crate) access_log: Option<PathBuf>,

    /// Format of the access log: `combined`, `main`, or the `log_format` string itself. Latency
    /// histograms appear when it has $request_time / $upstream_response_time.
    #[arg(
        long = "access-log-format",
        env = "ACCESS_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "combined"
    )]
    pub(crate) access_log_format: String,

    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
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
pub(crate) fn normalise_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
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

/// A const label that is not `name=value` with a valid Prometheus label name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LabelError {
    /// No `=`.
    #[error("`{0}` is not name=value")]
    NoValue(String),
    /// Not a label name (or one reserved for Prometheus).
    #[error("`{0}` is not a valid label name")]
    BadName(String),
}

fn parse_label(s: &str) -> Result<(String, String), LabelError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| LabelError::NoValue(s.to_owned()))?;
    let k = k.trim();
    let valid = k
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if k.is_empty() || !valid || k.starts_with("__") {
        return Err(LabelError::BadName(k.to_owned()));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// How the exporter authenticates toward nginx (the secret files are read by `open`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// No `Authorization` header.
    None,
    /// `--nginx.basic-auth-user`, with the password from `--nginx.basic-auth-password-file`
    /// (empty without one).
    Basic {
        /// The user.
        user: String,
        /// The password file.
        password_file: Option<PathBuf>,
    },
    /// `--nginx.bearer-token-file`.
    Bearer(PathBuf),
}

/// The command line, checked; what is left to open is named, not yet bound or read.
#[derive(Debug)]
pub(crate) struct Settings {
    /// `--nginx.scrape-uri`, one per line, at least one.
    pub(crate) scrape_uris: Vec<String>,
    /// `--web.listen-address`, at least one.
    pub(crate) listen: Vec<ListenAddr>,
    /// `--web.telemetry-path`.
    pub(crate) telemetry_path: String,
    /// `--web.nginx-metrics-only`.
    pub(crate) nginx_metrics_only: bool,
    /// `--nginx.timeout`.
    pub(crate) timeout: Duration,
    /// The `--nginx.ssl-*` flags.
    pub(crate) tls: TlsSettings,
    /// `--nginx.host-header`.
    pub(crate) host_header: Option<HeaderValue>,
    /// The `--nginx.basic-auth-*` and `--nginx.bearer-token-file` flags.
    pub(crate) auth: Auth,
    /// `--prometheus.const-label(s)` and `CONST_LABELS`, later ones replacing earlier ones.
    pub(crate) const_labels: Vec<(String, String)>,
    /// `--access-log` and its compiled format.
    pub(crate) access_log: Option<AccessLogConfig>,
    /// `--probe.allowed-target` and the scrape URIs, or `None` for the scrape URIs only.
    pub(crate) probe_allowed: Option<Vec<String>>,
    /// `--nginx.retries` / `--nginx.retry-interval` were given (they have no effect).
    pub(crate) retries_given: bool,
    /// The runtime's flags, with the Go exporter's `--log.level` and `--log.format` applied and
    /// the admin server only where `--admin-addr` asks for one (the metrics are served on the
    /// listeners).
    pub(crate) runtime: RuntimeArgs,
}

impl TryFrom<&Cli> for Settings {
    type Error = UsageError;

    fn try_from(cli: &Cli) -> Result<Self, UsageError> {
        if cli.nginx_plus {
            return Err(UsageError::new(
                "--nginx.plus",
                "the NGINX Plus API is not supported; this exporter reads nginx OSS stub_status",
            ));
        }
        if cli.proxy_protocol {
            return Err(UsageError::new(
                "--nginx.proxy-protocol",
                "PROXY protocol toward nginx is not supported",
            ));
        }
        if cli.secured_metrics || cli.web_config_file.is_some() {
            return Err(UsageError::new(
                "--web.config.file / --web.secured-metrics",
                "TLS on the metrics endpoint is not supported; terminate TLS in front of it",
            ));
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
            return Err(UsageError::new("--nginx.scrape-uri", "no scrape URI given"));
        }
        if !cli.telemetry_path.starts_with('/') {
            return Err(UsageError::new(
                "--web.telemetry-path",
                format!("`{}` must start with /", cli.telemetry_path),
            ));
        }
        let const_labels = const_labels(cli, scrape_uris.len() > 1)?;
        let listen = cli
            .listen_address
            .iter()
            .flat_map(|s| s.split(['\n', ',']))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ListenAddr>()
                    .map_err(|e| UsageError::caused("--web.listen-address", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let host_header = cli
            .host_header
            .as_deref()
            .map(|h| {
                HeaderValue::from_str(h).map_err(|e| UsageError {
                    flag: "--nginx.host-header",
                    reason: format!("`{h}` is not a valid header value"),
                    source: Some(e.into()),
                })
            })
            .transpose()?;
        let auth = match (
            &cli.basic_auth_user,
            &cli.basic_auth_password_file,
            &cli.bearer_token_file,
        ) {
            (Some(_), _, Some(_)) => {
                return Err(UsageError::new(
                    "--nginx.basic-auth-user and --nginx.bearer-token-file",
                    "they exclude each other",
                ));
            }
            (None, Some(_), _) => {
                return Err(UsageError::new(
                    "--nginx.basic-auth-password-file",
                    "needs --nginx.basic-auth-user",
                ));
            }
            (Some(user), pw, None) => Auth::Basic {
                user: user.clone(),
                password_file: pw.clone(),
            },
            (None, None, Some(f)) => Auth::Bearer(f.clone()),
            (None, None, None) => Auth::None,
        };
        let access_log = match &cli.access_log {
            Some(path) => Some(AccessLogConfig {
                path: path.clone(),
                format: Arc::new(
                    compile_format(&cli.access_log_format)
                        .map_err(|e| UsageError::caused("--access-log-format", e))?,
                ),
            }),
            None => None,
        };
        let probe_allowed = (!cli.probe_allowed_target.is_empty()).then(|| {
            cli.probe_allowed_target
                .iter()
                .chain(&scrape_uris)
                .cloned()
                .collect()
        });
        Ok(Settings {
            scrape_uris,
            listen,
            telemetry_path: cli.telemetry_path.clone(),
            nginx_metrics_only: cli.nginx_metrics_only,
            timeout: cli.timeout,
            tls: TlsSettings {
                verify: cli.ssl_verify && !cli.no_ssl_verify,
                ca_cert: cli.ssl_ca_cert.clone(),
                client_cert: cli.ssl_client_cert.clone(),
                client_key: cli.ssl_client_key.clone(),
            },
            host_header,
            auth,
            const_labels,
            access_log,
            probe_allowed,
            retries_given: cli.retries.is_some() || cli.retry_interval.is_some(),
            runtime: runtime_args(cli),
        })
    }
}

/// The runtime's flags as the Go exporter's log flags and the metrics listeners change them.
fn runtime_args(cli: &Cli) -> RuntimeArgs {
    let mut runtime = cli.runtime.clone();
    if let Some(level) = &cli.go_log_level {
        runtime.log_level.get_or_insert_with(|| level.clone());
    }
    match cli.go_log_format.as_deref() {
        Some("json") => runtime.log_format = LogFormat::Json,
        Some(_) => runtime.log_format = LogFormat::Text,
        None => {}
    }
    // The admin server is the metrics server on --web.listen-address; --admin-addr, when given,
    // is one more listener with the same routes.
    if runtime.admin_addr.is_none() {
        runtime.no_admin_server = true;
    }
    runtime
}

/// `--prometheus.const-label`, then `--prometheus.const-labels` and `CONST_LABELS` (only without
/// --prometheus.const-label), a later label replacing an earlier one of the same name.
fn const_labels(cli: &Cli, several_targets: bool) -> Result<Vec<(String, String)>, UsageError> {
    let env_labels = if cli.const_label.is_empty() {
        cli.const_labels_env.as_str()
    } else {
        ""
    };
    let from_lists = cli
        .const_labels
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(env_labels))
        .flat_map(|s| s.split([',', '\n']))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let mut labels: Vec<(String, String)> = Vec::new();
    for s in cli.const_label.iter().map(String::as_str).chain(from_lists) {
        let (k, v) =
            parse_label(s).map_err(|e| UsageError::caused("--prometheus.const-label", e))?;
        if k == "addr" && several_targets {
            return Err(UsageError::new(
                "--prometheus.const-label",
                "`addr` is the label that tells several targets apart",
            ));
        }
        labels.retain(|(name, _)| *name != k);
        labels.push((k, v));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use podmates_runtime::args::convert;

    podmates_runtime::test_flags_documented!(Cli, include_str!("../README.md"));

    #[test]
    fn conversion_names_the_flag_and_opens_nothing() {
        // A port that is certainly taken and a file that does not exist: neither is touched here.
        let s = convert::<Cli, Settings>(&[
            "--web.listen-address=:1,localhost:2",
            "--nginx.bearer-token-file=/nonexistent/token",
            "--nginx.ssl-ca-cert=/nonexistent/ca.pem",
            "--prometheus.const-label=a=1",
            "--prometheus.const-labels=b=2,a=3",
        ])
        .unwrap();
        assert_eq!(
            s.listen,
            [
                ListenAddr::Ip("[::]:1".parse().unwrap()),
                ListenAddr::Host("localhost".to_owned(), 2)
            ]
        );
        assert_eq!(s.auth, Auth::Bearer("/nonexistent/token".into()));
        assert_eq!(
            s.const_labels,
            [
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "3".to_owned())
            ]
        );
        assert!(s.runtime.no_admin_server);
        for (args, flag) in [
            (
                &["--web.listen-address=nowhere"][..],
                "--web.listen-address",
            ),
            (&["--nginx.plus"][..], "--nginx.plus"),
            (&["--web.telemetry-path=m"][..], "--web.telemetry-path"),
            (
                &["--prometheus.const-label=1a=b"][..],
                "--prometheus.const-label",
            ),
            (
                &["--nginx.basic-auth-password-file=/p"][..],
                "--nginx.basic-auth-password-file",
            ),
            (
                &["--access-log=/l", "--access-log-format=$x"][..],
                "--access-log-format",
            ),
        ] {
            let e = convert::<Cli, Settings>(args).unwrap_err();
            assert_eq!(e.flag, flag, "{args:?}: {e}");
        }
    }

    #[test]
    fn go_log_flags_drive_the_runtime() {
        let s =
            convert::<Cli, Settings>(&["--log.level=warn", "--log.format=json", "--admin-addr=:9"])
                .unwrap();
        assert_eq!(s.runtime.log_level.as_deref(), Some("warn"));
        assert_eq!(s.runtime.log_format, LogFormat::Json);
        assert!(!s.runtime.no_admin_server);
    }

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
        assert_eq!(
            parse_label("1a=b"),
            Err(LabelError::BadName("1a".to_owned()))
        );
        assert!(parse_label("ab").is_err());
    }
}
