//! The command line: flags (each also an environment variable) into a validated [`Config`],
//! without I/O, and the rewriting that lets simple wait4x, dockerize and wait-for-it.sh command
//! lines run unchanged.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hyper::header::{HeaderName, HeaderValue};
use podmates_runtime::args::parse_duration;
use podmates_runtime::{RuntimeArgs, UsageError};

use crate::check::{
    self, dns::DnsSettings, http::HeaderExpectation, http::HttpSettings, http::StatusSet,
};
use crate::{Backoff, Config, Target};

/// How the interval grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackoffPolicy {
    /// The same interval every time (wait4x's default).
    Linear,
    /// The interval times --backoff-coefficient after every attempt, up to --max-interval.
    Exponential,
}

/// Waits until every TARGET answers, then exits 0 (an init container's job).
///
/// TARGET is one of: dns://NAME (A/AAAA through resolv.conf and its search list, as nslookup;
/// dns://_svc._tcp.NAME for SRV; dns://SERVER[:PORT]/NAME?type=T), tcp://HOST:PORT (or
/// HOST:PORT), http(s)://..., file:///PATH[?nonempty][&contains=TEXT],
/// redis://[USER:PASSWORD@]HOST[:PORT][/DB], postgres://[USER[:PASSWORD]@]HOST[:PORT][/DB],
/// mysql://[USER[:PASSWORD]@]HOST[:PORT][/DB].
///
/// Exit codes: 0 ready; 1 not ready when --timeout passed (or a signal arrived), with what was
/// not ready and its last error; 64 bad usage, naming the setting. After `--`, a command is run
/// in wait-for's place once ready.
#[derive(Debug, Parser)]
#[command(name = "wait-for", version, about, long_about = None)]
pub struct Cli {
    /// What to wait for. In WAIT_FOR_TARGETS, separated by spaces.
    #[arg(env = "WAIT_FOR_TARGETS", value_name = "TARGET", required = true, num_args = 1..)]
    pub targets: Vec<String>,

    /// Ready as soon as one target is, instead of all of them.
    #[arg(long, env = "WAIT_FOR_ANY")]
    pub any: bool,

    /// Give up after this long and exit 1, e.g. `30s`, `5m`; 0 waits for ever.
    #[arg(short = 't', long, env = "WAIT_FOR_TIMEOUT", value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Delay between attempts (the first attempt is immediate).
    #[arg(short = 'i', long, env = "WAIT_FOR_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,

    /// How the delay grows between attempts.
    #[arg(
        long,
        env = "WAIT_FOR_BACKOFF_POLICY",
        value_enum,
        default_value = "linear"
    )]
    pub backoff_policy: BackoffPolicy,

    /// Growth of the delay per attempt with --backoff-policy exponential.
    #[arg(
        long,
        alias = "backoff-exponential-coefficient",
        env = "WAIT_FOR_BACKOFF_COEFFICIENT",
        value_name = "FACTOR",
        default_value_t = 2.0
    )]
    pub backoff_coefficient: f64,

    /// Longest delay with --backoff-policy exponential.
    #[arg(long, alias = "backoff-exponential-max-interval", env = "WAIT_FOR_MAX_INTERVAL", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub max_interval: Duration,

    /// Fraction of each delay added or taken away at random, 0 to 1.
    #[arg(
        long,
        env = "WAIT_FOR_JITTER",
        value_name = "FRACTION",
        default_value_t = 0.1
    )]
    pub jitter: f64,

    /// Longest time one attempt may take.
    #[arg(long, alias = "connection-timeout", env = "WAIT_FOR_ATTEMPT_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub attempt_timeout: Duration,

    /// Wait until the targets stop answering instead (wait4x's --invert-check).
    #[arg(long, env = "WAIT_FOR_INVERT_CHECK")]
    pub invert_check: bool,

    /// Log only errors (the final one included).
    #[arg(short = 'q', long, env = "WAIT_FOR_QUIET")]
    pub quiet: bool,

    /// HTTP method.
    #[arg(
        long,
        env = "WAIT_FOR_METHOD",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,

    /// Statuses that count as ready: `200`, `200,204`, `2xx,301`, `200-399`.
    #[arg(
        long,
        alias = "expect-status-code",
        env = "WAIT_FOR_EXPECT_STATUS",
        value_name = "LIST",
        default_value = "2xx"
    )]
    pub expect_status: String,

    /// A regex the response body must match.
    #[arg(
        long,
        alias = "expect-body",
        env = "WAIT_FOR_EXPECT_BODY_REGEX",
        value_name = "REGEX"
    )]
    pub expect_body_regex: Option<String>,

    /// A string the response body must contain.
    #[arg(long, env = "WAIT_FOR_EXPECT_BODY_CONTAINS", value_name = "TEXT")]
    pub expect_body_contains: Option<String>,

    /// A response header that must be there, `Name`, or `Name: REGEX` (or `Name=REGEX`) for its
    /// value. Repeatable.
    #[arg(long, env = "WAIT_FOR_EXPECT_HEADER", value_name = "HEADER")]
    pub expect_header: Vec<String>,

    /// A header sent with the request, `Name: value`. Repeatable.
    #[arg(
        long,
        short = 'H',
        env = "WAIT_FOR_REQUEST_HEADER",
        value_name = "HEADER"
    )]
    pub request_header: Vec<String>,

    /// PEM CA bundle that https:// (and postgres:// with sslmode=verify-*) certificates are
    /// verified against, instead of the system roots.
    #[arg(long, alias = "cacert", env = "WAIT_FOR_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Accept any https:// certificate.
    #[arg(
        long,
        short = 'k',
        alias = "insecure-skip-tls-verify",
        env = "WAIT_FOR_INSECURE"
    )]
    pub insecure: bool,

    /// Accepted for wait4x command lines: redirects are never followed (a 3xx counts by its
    /// status).
    #[arg(long, env = "WAIT_FOR_NO_REDIRECT", hide = true)]
    pub no_redirect: bool,

    /// resolv.conf for dns:// targets: nameservers, search list, ndots.
    #[arg(
        long,
        env = "WAIT_FOR_RESOLV_CONF",
        value_name = "PATH",
        default_value = "/etc/resolv.conf"
    )]
    pub resolv_conf: PathBuf,

    /// Nameserver for dns:// targets instead of those of resolv.conf, `IP` or `IP:PORT` (the
    /// search list and ndots still come from resolv.conf).
    #[arg(long, env = "WAIT_FOR_DNS_SERVER", value_name = "ADDR")]
    pub dns_server: Option<String>,

    /// Command run in wait-for's place once ready (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

fn parse_header(flag: &'static str, s: &str) -> Result<(HeaderName, String), UsageError> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| UsageError::new(flag, format!("`{s}` is not `Name: value`")))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| UsageError {
        flag,
        reason: format!("`{}` is not a header name", name.trim()),
        source: Some(e.into()),
    })?;
    Ok((name, value.trim().to_owned()))
}

fn dns_server(s: &str) -> Result<SocketAddr, UsageError> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().map_err(|e| UsageError {
        flag: "--dns-server",
        reason: format!("`{s}` is not an address like 10.96.0.10, 127.0.0.1:5353 or [::1]:53"),
        source: Some(e.into()),
    })
}

impl TryFrom<&Cli> for Config {
    type Error = UsageError;

    fn try_from(cli: &Cli) -> Result<Self, UsageError> {
        config(cli)
    }
}

/// Turns the flags into a [`Config`] without I/O; the error names the setting. (TLS, which reads
/// `--ca-file`, is set up by `main`.)
pub fn config(cli: &Cli) -> Result<Config, UsageError> {
    let mut targets = Vec::new();
    for arg in &cli.targets {
        // WAIT_FOR_TARGETS holds several, separated by spaces.
        for one in arg.split_whitespace() {
            targets.push(Target::parse(one).map_err(|e| UsageError::caused("TARGET", e))?);
        }
    }
    if targets.is_empty() {
        return Err(UsageError::new("TARGET", "nothing to wait for"));
    }
    if cli.interval.is_zero() {
        return Err(UsageError::new("--interval", "must be more than 0"));
    }
    if cli.attempt_timeout.is_zero() {
        return Err(UsageError::new("--attempt-timeout", "must be more than 0"));
    }
    if !(cli.backoff_coefficient.is_finite() && cli.backoff_coefficient >= 1.0) {
        return Err(UsageError::new(
            "--backoff-coefficient",
            format!(
                "`{}` must be a number of at least 1",
                cli.backoff_coefficient
            ),
        ));
    }
    if !(0.0..=1.0).contains(&cli.jitter) {
        return Err(UsageError::new(
            "--jitter",
            format!("`{}` must be from 0 to 1", cli.jitter),
        ));
    }
    let method =
        hyper::Method::from_bytes(cli.method.to_ascii_uppercase().as_bytes()).map_err(|e| {
            UsageError {
                flag: "--method",
                reason: format!("`{}` is not an HTTP method", cli.method),
                source: Some(e.into()),
            }
        })?;
    let status = StatusSet::parse(&cli.expect_status)
        .map_err(|e| UsageError::caused("--expect-status", e))?;
    let body_regex = cli
        .expect_body_regex
        .as_deref()
        .map(regex_lite::Regex::new)
        .transpose()
        .map_err(|e| UsageError::caused("--expect-body-regex", e))?;
    let mut headers = Vec::new();
    for h in &cli.expect_header {
        // `Name`, `Name: regex` or wait4x's `Name=regex`.
        let split = h.find([':', '=']);
        let (name, value) = match split {
            Some(i) => (&h[..i], Some(h[i + 1..].trim())),
            None => (h.as_str(), None),
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| UsageError {
            flag: "--expect-header",
            reason: format!("`{}` is not a header name", name.trim()),
            source: Some(e.into()),
        })?;
        let value = value
            .filter(|v| !v.is_empty())
            .map(regex_lite::Regex::new)
            .transpose()
            .map_err(|e| UsageError::caused("--expect-header", e))?;
        headers.push(HeaderExpectation { name, value });
    }
    let mut request_headers = Vec::new();
    for h in &cli.request_header {
        let (name, value) = parse_header("--request-header", h)?;
        let value = HeaderValue::from_str(&value).map_err(|e| UsageError {
            flag: "--request-header",
            reason: format!("bad value in `{h}`"),
            source: Some(e.into()),
        })?;
        request_headers.push((name, value));
    }
    let server = cli.dns_server.as_deref().map(dns_server).transpose()?;
    let backoff = Backoff {
        interval: cli.interval,
        coefficient: match cli.backoff_policy {
            BackoffPolicy::Linear => 1.0,
            BackoffPolicy::Exponential => cli.backoff_coefficient,
        },
        max_interval: cli.max_interval,
        jitter: cli.jitter,
    };
    Ok(Config {
        targets,
        any: cli.any,
        timeout: (!cli.timeout.is_zero()).then_some(cli.timeout),
        attempt_timeout: cli.attempt_timeout,
        backoff,
        invert: cli.invert_check,
        env: check::Env {
            http: HttpSettings {
                method,
                status,
                body_contains: cli.expect_body_contains.clone(),
                body_regex,
                headers,
                request_headers,
            },
            tls: None,
            tls_unverified: None,
            dns: DnsSettings {
                resolv_conf: cli.resolv_conf.clone(),
                server,
            },
        },
    })
}

/// wait4x's subcommands, turned into URL schemes.
const WAIT4X_COMMANDS: &[&str] = &["tcp", "http", "dns", "mysql", "postgresql", "redis"];

/// A wait4x MySQL DSN, `user:password@tcp(host:port)/db?params`, as a mysql:// URL.
fn mysql_dsn(dsn: &str) -> String {
    if dsn.contains("://") {
        return dsn.to_owned();
    }
    let (userinfo, rest) = match dsn.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, dsn),
    };
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    let (addr, db) = match rest.split_once('/') {
        Some((a, d)) => (a, d),
        None => (rest, ""),
    };
    let host = addr
        .strip_prefix("tcp(")
        .and_then(|a| a.strip_suffix(')'))
        .unwrap_or(addr);
    let host = if host.is_empty() {
        "127.0.0.1:3306"
    } else {
        host
    };
    match userinfo {
        Some(u) => format!("mysql://{u}@{host}/{db}"),
        None => format!("mysql://{host}/{db}"),
    }
}

/// Rewrites other tools' command lines into wait-for's:
///
/// - wait4x: `wait4x tcp HOST:PORT...`, `http URL`, `dns NAME`, `mysql DSN`, `postgresql URL`,
///   `redis URL` become targets, and its 10 s default timeout applies unless `-t` is given;
/// - dockerize: `-wait URL` (repeatable), `-timeout D` and `-wait-retry-interval D`, with its
///   10 s default timeout;
/// - wait-for-it.sh: `HOST:PORT` (handled by [`Target::parse`]), `--host=H --port=P`, `-t N`,
///   `-s`/`--strict` (always strict here) and `-q`.
pub fn rewrite_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut it = args.into_iter();
    let Some(argv0) = it.next() else {
        return Vec::new();
    };
    let rest: Vec<OsString> = it.collect();
    let strs: Option<Vec<String>> = rest.iter().map(|a| a.to_str().map(str::to_owned)).collect();
    // Anything not UTF-8 is left for clap to reject with its own message.
    let Some(strs) = strs else {
        return std::iter::once(argv0).chain(rest).collect();
    };
    let mut out: Vec<String> = Vec::with_capacity(strs.len() + 2);
    let mut scheme: Option<&str> = None;
    let mut default_timeout: Option<&str> = None;
    let mut has_timeout = false;
    let mut host: Option<String> = None;
    let mut port: Option<String> = None;
    let mut i = 0;
    if let Some(first) = strs.first()
        && let Some(cmd) = WAIT4X_COMMANDS.iter().find(|c| **c == first.as_str())
    {
        scheme = Some(cmd);
        default_timeout = Some("10s");
        i = 1;
    }
    let mut dns_type: Option<String> = None;
    while i < strs.len() {
        let a = strs[i].as_str();
        if a == "--" {
            out.extend(strs[i..].iter().cloned());
            break;
        }
        let next = strs.get(i + 1).cloned();
        match a {
            "-wait" | "--wait" => {
                if let Some(n) = next {
                    out.push(n);
                    i += 1;
                }
                default_timeout.get_or_insert("10s");
            }
            "-timeout" => {
                out.push("--timeout".to_owned());
                has_timeout = true;
            }
            "-wait-retry-interval" => out.push("--interval".to_owned()),
            "-s" | "--strict" | "--no-color" => {}
            _ if a.starts_with("--host=") => host = Some(a["--host=".len()..].to_owned()),
            _ if a.starts_with("--port=") => port = Some(a["--port=".len()..].to_owned()),
            _ => {
                if a == "-t"
                    || a == "--timeout"
                    || a.starts_with("--timeout=")
                    || a.starts_with("-t=")
                {
                    has_timeout = true;
                }
                let positional = !a.starts_with('-');
                let is_value = i > 0 && takes_value(strs[i - 1].as_str());
                match scheme {
                    Some(s) if positional && !is_value => {
                        if s == "dns"
                            && crate::target::record_type(a).is_some()
                            && next.is_some()
                            && dns_type.is_none()
                        {
                            dns_type = Some(a.to_ascii_uppercase());
                        } else {
                            out.push(wait4x_target(s, a, dns_type.as_deref()));
                        }
                    }
                    _ => out.push(a.to_owned()),
                }
            }
        }
        i += 1;
    }
    if let (Some(h), Some(p)) = (host, port) {
        out.insert(0, format!("tcp://{h}:{p}"));
    }
    if let (Some(t), false) = (default_timeout, has_timeout) {
        out.insert(0, t.to_owned());
        out.insert(0, "--timeout".to_owned());
    }
    std::iter::once(argv0)
        .chain(out.into_iter().map(OsString::from))
        .collect()
}

/// Flags whose next argument is their value, so it is not taken for a target.
fn takes_value(flag: &str) -> bool {
    if flag.contains('=') || !flag.starts_with('-') {
        return false;
    }
    !matches!(
        flag,
        "--any"
            | "--invert-check"
            | "-q"
            | "--quiet"
            | "-k"
            | "--insecure"
            | "--insecure-skip-tls-verify"
            | "--no-redirect"
            | "--no-admin-server"
            | "-s"
            | "--strict"
            | "--no-color"
    )
}

fn wait4x_target(scheme: &str, arg: &str, dns_type: Option<&str>) -> String {
    if arg.contains("://") {
        return arg.to_owned();
    }
    match scheme {
        "mysql" => mysql_dsn(arg),
        "dns" => match dns_type {
            Some(t) => format!("dns://{arg}?type={t}"),
            None => format!("dns://{arg}"),
        },
        "postgresql" => format!("postgres://{arg}"),
        other => format!("{other}://{arg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    podmates_runtime::test_flags_documented!(Cli, include_str!("../README.md"));

    #[test]
    fn bad_settings_name_their_flag_and_keep_the_cause() {
        for (args, flag, caused) in [
            (&["--interval=0", "tcp://a:1"][..], "--interval", false),
            (&["ftp://x"][..], "TARGET", true),
            (&["--dns-server=nope", "dns://a"][..], "--dns-server", true),
            (
                &["--expect-status=6xx", "http://a"][..],
                "--expect-status",
                true,
            ),
        ] {
            let e = podmates_runtime::args::convert::<Cli, Config>(args).unwrap_err();
            assert_eq!(e.flag, flag, "{args:?}: {e}");
            assert_eq!(
                std::error::Error::source(&e).is_some(),
                caused,
                "{args:?}: {e}"
            );
        }
    }

    fn rw(args: &[&str]) -> Vec<String> {
        rewrite_args(
            std::iter::once("wait-for")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect(),
        )
        .into_iter()
        .skip(1)
        .map(|a| a.into_string().unwrap())
        .collect()
    }

    #[test]
    fn native_command_lines_are_left_alone() {
        assert_eq!(rw(&["dns://myservice"]), ["dns://myservice"]);
        assert_eq!(
            rw(&["--timeout", "30s", "tcp://db:5432", "--", "app", "-x"]),
            ["--timeout", "30s", "tcp://db:5432", "--", "app", "-x"]
        );
    }

    #[test]
    fn wait4x_command_lines() {
        assert_eq!(
            rw(&["tcp", "127.0.0.1:5432", "127.0.0.1:6379", "-t", "30s"]),
            ["tcp://127.0.0.1:5432", "tcp://127.0.0.1:6379", "-t", "30s"]
        );
        assert_eq!(
            rw(&["http", "https://x/health", "--expect-status-code", "200"]),
            [
                "--timeout",
                "10s",
                "https://x/health",
                "--expect-status-code",
                "200"
            ]
        );
        assert_eq!(
            rw(&["mysql", "user:pw@tcp(db:3306)/app?tls=skip-verify"]),
            ["--timeout", "10s", "mysql://user:pw@db:3306/app"]
        );
        assert_eq!(
            rw(&[
                "postgresql",
                "postgres://u:p@db:5432/app?sslmode=disable",
                "-i",
                "2s"
            ]),
            [
                "--timeout",
                "10s",
                "postgres://u:p@db:5432/app?sslmode=disable",
                "-i",
                "2s"
            ]
        );
        assert_eq!(
            rw(&["dns", "A", "example.com"]),
            ["--timeout", "10s", "dns://example.com?type=A"]
        );
        assert_eq!(
            rw(&["tcp", "db:1", "--", "echo", "tcp"]),
            ["--timeout", "10s", "tcp://db:1", "--", "echo", "tcp"]
        );
    }

    #[test]
    fn dockerize_and_wait_for_it_command_lines() {
        assert_eq!(
            rw(&[
                "-wait",
                "tcp://db:5432",
                "-wait",
                "http://web/health",
                "-timeout",
                "20s"
            ]),
            ["tcp://db:5432", "http://web/health", "--timeout", "20s"]
        );
        assert_eq!(
            rw(&["-wait", "file:///ready"]),
            ["--timeout", "10s", "file:///ready"]
        );
        assert_eq!(
            rw(&["--host=db", "--port=5432", "-t", "15", "-s", "--", "app"]),
            ["tcp://db:5432", "-t", "15", "--", "app"]
        );
    }

    #[test]
    fn mysql_dsns() {
        assert_eq!(
            mysql_dsn("root@tcp(127.0.0.1:3306)/"),
            "mysql://root@127.0.0.1:3306/"
        );
        assert_eq!(mysql_dsn("tcp(db)/x"), "mysql://db/x");
        assert_eq!(mysql_dsn("mysql://a@b/c"), "mysql://a@b/c");
    }
}
