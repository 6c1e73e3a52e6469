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

fn parse_admin_addr(s: &str) -> Result<SocketAddr, ListenAddrError> {
    parse_listen_addr(s)
}

/// A flag's value that cannot be used: the one error type every binary's `cli.rs` returns when it
/// turns its flags into a config. Displayed as `--flag: reason`, the form [`crate::exit_usage`]
/// prints; `source`, when there is one, is the error the reason was written from (its text is
/// already in the reason, so a report that prints the chain may print it twice).
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {reason}")]
pub struct UsageError {
    /// The setting as the user wrote it: `--max-pipeline`, `PATH`, `--a / --b`.
    pub flag: &'static str,
    /// What is wrong with it.
    pub reason: String,
    /// The parse or validation error behind the reason.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl UsageError {
    /// A usage error with no error behind it.
    pub fn new(flag: &'static str, reason: impl Into<String>) -> Self {
        Self {
            flag,
            reason: reason.into(),
            source: None,
        }
    }

    /// A usage error whose reason is `source`'s message, keeping `source` as its cause.
    pub fn caused(
        flag: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        let source = source.into();
        Self {
            flag,
            reason: source.to_string(),
            source: Some(source),
        }
    }
}

/// A value that is not one of Go's (and kingpin's, pflag's) boolean spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a boolean (true or false)")]
pub struct BoolError(pub String);

/// Go-style booleans, for flags taking `--flag`, `--flag=true`, `--flag=false` and environment
/// values: `1 t true y yes on` and `0 f false n no off`, in any case (Go's `strconv.ParseBool`
/// and the yes/no forms shell users write); an empty value is true, as a bare `--flag=` is.
/// Use with `num_args = 0..=1, default_missing_value = "true"`.
pub fn parse_go_bool(s: &str) -> Result<bool, BoolError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "1" | "t" | "true" | "y" | "yes" | "on" => Ok(true),
        "0" | "f" | "false" | "n" | "no" | "off" => Ok(false),
        other => Err(BoolError(other.to_owned())),
    }
}

/// How a tool's numeric verbosity (`-v N`) maps onto log levels: the lowest verbosity that
/// turns on warn, info, debug and trace; below the first, errors only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbosity {
    /// Lowest verbosity logging warnings.
    pub warn: u8,
    /// Lowest verbosity logging info.
    pub info: u8,
    /// Lowest verbosity logging debug.
    pub debug: u8,
    /// Lowest verbosity logging trace.
    pub trace: u8,
}

impl Verbosity {
    /// klog's `-v` (kubernetes/git-sync): 0-1 info, 2-4 debug, 5 and more trace.
    pub const KLOG: Self = Self {
        warn: 0,
        info: 0,
        debug: 2,
        trace: 5,
    };

    /// nutcracker's `-v` (0..11): up to 3 errors, 4 warn, 5 info, 6-7 debug, 8 and more trace.
    pub const NUTCRACKER: Self = Self {
        warn: 4,
        info: 5,
        debug: 6,
        trace: 8,
    };

    /// The `--log-level` that verbosity `v` stands for.
    pub fn level(self, v: u8) -> &'static str {
        if v >= self.trace {
            "trace"
        } else if v >= self.debug {
            "debug"
        } else if v >= self.info {
            "info"
        } else if v >= self.warn {
            "warn"
        } else {
            "error"
        }
    }
}

/// A secret file (password, token) that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct SecretError {
    /// The file.
    pub path: std::path::PathBuf,
    /// Why it cannot be read.
    #[source]
    pub source: std::io::Error,
}

/// Reads a secret mounted as a file (a Kubernetes Secret volume, `echo token > file`): its content
/// without the trailing newlines editors and `echo` add, which no password or token contains.
pub fn read_secret(path: &std::path::Path) -> Result<String, SecretError> {
    let s = std::fs::read_to_string(path).map_err(|source| SecretError {
        path: path.to_owned(),
        source,
    })?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

/// A listen address that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an address like :PORT, [::]:PORT or 0.0.0.0:PORT ({reason})")]
pub struct ListenAddrError {
    /// The value given.
    pub input: String,
    /// Why it is not an address.
    pub reason: String,
}

/// Parses a listen address of IP and port, `:PORT` meaning every interface as Go tools write it:
/// `[::]:PORT`, which [`crate::net::bind_tcp`] makes dual-stack (IPv6 and IPv4).
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, ListenAddrError> {
    let s = s.trim();
    let full = match s.strip_prefix(':') {
        Some(port) => format!("[::]:{port}"),
        None => s.to_owned(),
    };
    full.parse()
        .map_err(|e: std::net::AddrParseError| ListenAddrError {
            input: s.to_owned(),
            reason: e.to_string(),
        })
}

/// A listen address as Go exporters take it: `:PORT` (every interface, dual-stack), `IP:PORT`,
/// or `HOST:PORT`, whose name is resolved only when it is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// An IP address and port (`:PORT` is `[::]:PORT`).
    Ip(SocketAddr),
    /// A host name and port, resolved by [`ListenAddr::bind`].
    Host(String, u16),
}

impl std::str::FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(a) = parse_listen_addr(s) {
            return Ok(Self::Ip(a));
        }
        let s = s.trim();
        let bad = |reason: &str| ListenAddrError {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let port = port.parse().map_err(|_| bad("bad port"))?;
        if host.is_empty()
            || host.contains([':', '[', ']', '/'])
            || host.contains(char::is_whitespace)
        {
            return Err(bad("bad host"));
        }
        Ok(Self::Host(host.to_owned(), port))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "{a}"),
            Self::Host(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// A listen address that cannot be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The host name does not resolve.
    #[error("`{addr}` does not resolve ({source})")]
    Resolve {
        /// The address given.
        addr: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The host name resolves to no address.
    #[error("`{0}` resolves to no address")]
    NoAddress(String),
    /// The socket cannot be bound (port taken, address not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address bound.
        addr: SocketAddr,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

impl ListenAddr {
    /// Binds the address with [`crate::net::bind_tcp`]; a host name is resolved first and its
    /// first address bound.
    pub fn bind(&self) -> Result<std::net::TcpListener, BindError> {
        let addr = match self {
            Self::Ip(a) => *a,
            Self::Host(h, p) => {
                use std::net::ToSocketAddrs as _;
                (h.as_str(), *p)
                    .to_socket_addrs()
                    .map_err(|source| BindError::Resolve {
                        addr: self.to_string(),
                        source,
                    })?
                    .next()
                    .ok_or_else(|| BindError::NoAddress(self.to_string()))?
            }
        };
        crate::net::bind_tcp(addr).map_err(|source| BindError::Bind { addr, source })
    }
}

/// The long flags a user sees in `--help` (hidden ones left out), for the test that each is in
/// the binary's README.
pub fn visible_long_flags(cmd: &clap::Command) -> Vec<&str> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .collect()
}

/// Parses `args` (the program name left out) with the clap parser `C` and converts the result
/// with `T::try_from`, as a binary's `main` does: what the unit tests of its `cli.rs` check
/// conversions with. Panics when clap itself rejects the arguments.
pub fn convert<C, T>(args: &[&str]) -> Result<T, UsageError>
where
    C: clap::Parser,
    T: for<'a> TryFrom<&'a C, Error = UsageError>,
{
    let cli = C::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    T::try_from(&cli)
}

/// Defines the unit test `every_long_flag_is_in_the_readme`: every long flag of the clap parser
/// `$cli` that `--help` shows appears in `$readme` (the binary's README, by `include_str!`). The
/// crate needs `podmates-testkit` as a dev-dependency.
#[macro_export]
macro_rules! test_flags_documented {
    ($cli:ty, $readme:expr) => {
        /// Every flag a user can see in `--help` is in the README.
        #[test]
        fn every_long_flag_is_in_the_readme() {
            let cmd = <$cli as ::clap::CommandFactory>::command();
            let longs = $crate::args::visible_long_flags(&cmd);
            ::podmates_testkit::assert_documented(longs, $readme);
        }
    };
}

/// A duration that cannot be parsed; the message quotes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing given.
    #[error("empty duration")]
    Empty,
    /// Too large, negative or not a number.
    #[error("`{input}`: {reason}")]
    OutOfRange {
        /// The value given.
        input: String,
        /// Why.
        reason: String,
    },
    /// A number without a unit after it.
    #[error("`{0}`: missing unit (use ms, s, m or h)")]
    MissingUnit(String),
    /// A unit without a number before it.
    #[error("`{0}`: expected a number before the unit")]
    MissingNumber(String),
    /// Not a number.
    #[error("`{input}`: bad number `{number}`")]
    BadNumber {
        /// The value given.
        input: String,
        /// The part that is not a number.
        number: String,
    },
    /// A unit that is none of ns, us, ms, s, m, h.
    #[error("`{input}`: unknown unit `{unit}` (use ms, s, m or h)")]
    UnknownUnit {
        /// The value given.
        input: String,
        /// The unit.
        unit: String,
    },
}

/// Parses durations written the way Go and Kubernetes users write them: `500ms`, `10s`, `1m30s`,
/// `2h`, `1.5s`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let orig = s;
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let range = |e: std::time::TryFromFloatSecsError| DurationError::OutOfRange {
        input: orig.to_owned(),
        reason: e.to_string(),
    };
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(range);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::MissingUnit(orig.to_owned()))?;
        if num_end == 0 {
            return Err(DurationError::MissingNumber(orig.to_owned()));
        }
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| DurationError::BadNumber {
                input: orig.to_owned(),
                number: rest[..num_end].to_owned(),
            })?;
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
            u => {
                return Err(DurationError::UnknownUnit {
                    input: orig.to_owned(),
                    unit: u.to_owned(),
                });
            }
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(range)
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
        assert!(
            parse_duration("10x")
                .unwrap_err()
                .to_string()
                .contains("unknown unit")
        );
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
        assert!(
            parse_admin_addr("nope")
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }

    #[test]
    fn usage_errors_name_the_flag_and_keep_the_cause() {
        let e = UsageError::caused("--period", parse_duration("10x").unwrap_err());
        assert_eq!(
            e.to_string(),
            "--period: `10x`: unknown unit `x` (use ms, s, m or h)"
        );
        let cause = std::error::Error::source(&e).expect("the duration error");
        assert!(cause.to_string().starts_with("`10x`"));
        assert_eq!(
            UsageError::new("PATH", "nothing to read").to_string(),
            "PATH: nothing to read"
        );
    }

    #[test]
    fn go_booleans() {
        for t in ["", "1", "t", "T", "true", "TRUE", "True", "y", "yes", "on"] {
            assert_eq!(parse_go_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "false", "FALSE", "n", "no", "off"] {
            assert_eq!(parse_go_bool(f), Ok(false), "{f}");
        }
        assert!(
            parse_go_bool("maybe")
                .unwrap_err()
                .to_string()
                .contains("`maybe`")
        );
    }

    #[test]
    fn verbosity_scales() {
        let klog: Vec<_> = (0..7).map(|v| Verbosity::KLOG.level(v)).collect();
        assert_eq!(
            klog,
            ["info", "info", "debug", "debug", "debug", "trace", "trace"]
        );
        let nc: Vec<_> = (0..10).map(|v| Verbosity::NUTCRACKER.level(v)).collect();
        assert_eq!(
            nc,
            [
                "error", "error", "error", "error", "warn", "info", "debug", "debug", "trace",
                "trace"
            ]
        );
    }

    #[test]
    fn secrets_lose_their_trailing_newlines_only() {
        let dir = std::env::temp_dir().join(format!("podmates-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, " s3cr\net \r\n\n").unwrap();
        assert_eq!(read_secret(&f).unwrap(), " s3cr\net ");
        std::fs::remove_file(&f).unwrap();
        let e = read_secret(&f).unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with(&f.display().to_string()), "{e}");
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn listen_addresses() {
        let ip = |s: &str| ListenAddr::Ip(s.parse().unwrap());
        assert_eq!(":9113".parse::<ListenAddr>().unwrap(), ip("[::]:9113"));
        assert_eq!(
            " 127.0.0.1:1".parse::<ListenAddr>().unwrap(),
            ip("127.0.0.1:1")
        );
        assert_eq!("[::1]:2".parse::<ListenAddr>().unwrap(), ip("[::1]:2"));
        assert_eq!(
            "localhost:3".parse::<ListenAddr>().unwrap(),
            ListenAddr::Host("localhost".to_owned(), 3)
        );
        for bad in ["nowhere", ":x", ":", "a:b:1", "[::1:2", "h:70000", ""] {
            let e = bad.parse::<ListenAddr>().unwrap_err();
            assert!(e.to_string().contains(bad.trim()), "{bad}: {e}");
        }
        let l = ListenAddr::Host("localhost".to_owned(), 0).bind().unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
        let taken = l.local_addr().unwrap();
        let e = ListenAddr::Ip(taken).bind().unwrap_err();
        assert!(matches!(e, BindError::Bind { .. }), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
