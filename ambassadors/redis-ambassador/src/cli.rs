//! The `redis-ambassador` command line: nutcracker's flags (each also an environment variable)
//! and podmates' common flags, turned into checked [`Settings`] without I/O; the configuration
//! file itself is read by `main`.

use std::path::PathBuf;

use clap::Parser;
use podmates_runtime::args::Verbosity;
use podmates_runtime::{RuntimeArgs, UsageError};
use redis_ambassador::Config;
use redis_ambassador::client::Limits;
use redis_ambassador::config::PoolConfig;

pub(crate) const NAME: &str = "redis-ambassador";

/// A twemproxy-compatible Redis sharding proxy: same nutcracker.yml, same key placement.
#[derive(Parser, Debug)]
#[command(name = NAME, version, about)]
pub(crate) struct Cli {
    /// The nutcracker configuration file (read unchanged; re-read on SIGHUP).
    #[arg(
        short = 'c',
        long,
        env = "REDIS_AMBASSADOR_CONF_FILE",
        default_value = "/etc/nutcracker/nutcracker.yml"
    )]
    pub(crate) conf_file: std::path::PathBuf,

    /// Check the configuration file and exit: 0 when valid, 1 (with the reason) when not.
    #[arg(short = 't', long, env = "REDIS_AMBASSADOR_TEST_CONF")]
    pub(crate) test_conf: bool,

    /// Port of the nutcracker stats JSON server; 0 disables it.
    #[arg(
        short = 's',
        long,
        env = "REDIS_AMBASSADOR_STATS_PORT",
        default_value_t = 22222
    )]
    pub(crate) stats_port: u16,

    /// Address of the nutcracker stats JSON server.
    #[arg(
        short = 'a',
        long,
        env = "REDIS_AMBASSADOR_STATS_ADDR",
        default_value = "0.0.0.0"
    )]
    pub(crate) stats_addr: String,

    /// Accepted for nutcracker compatibility: the stats are always current, there is no
    /// aggregation interval.
    #[arg(
        short = 'i',
        long,
        env = "REDIS_AMBASSADOR_STATS_INTERVAL",
        default_value_t = 30000
    )]
    pub(crate) stats_interval: u64,

    /// nutcracker's log level 0..11; mapped onto error/warn/info/debug/trace unless --log-level
    /// is given.
    #[arg(short = 'v', long, env = "REDIS_AMBASSADOR_VERBOSE")]
    pub(crate) verbose: Option<u8>,

    /// Accepted for nutcracker compatibility and ignored (buffers grow as needed).
    #[arg(short = 'm', long, env = "REDIS_AMBASSADOR_MBUF_SIZE")]
    pub(crate) mbuf_size: Option<u64>,

    /// Accepted for nutcracker compatibility: diagnostics always go to stderr.
    #[arg(short = 'o', long, env = "REDIS_AMBASSADOR_OUTPUT")]
    pub(crate) output: Option<String>,

    /// nutcracker's daemonize: accepted, and the proxy stays in the foreground (a container's
    /// main process must not fork away).
    #[arg(short = 'd', long, env = "REDIS_AMBASSADOR_DAEMONIZE")]
    pub(crate) daemonize: bool,

    /// Print the description of the nutcracker stats fields and exit.
    #[arg(short = 'D', long)]
    pub(crate) describe_stats: bool,

    /// Write the process id to this file (nutcracker's -p).
    #[arg(short = 'p', long, env = "REDIS_AMBASSADOR_PID_FILE")]
    pub(crate) pid_file: Option<std::path::PathBuf>,

    /// Largest request a client may send, in bytes; a larger one gets
    /// `-ERR Protocol error` and the client is closed.
    #[arg(long, env = "REDIS_AMBASSADOR_MAX_REQUEST_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub(crate) max_request_bytes: usize,

    /// Most requests of one client in flight at once; the rest wait in the socket.
    #[arg(long, env = "REDIS_AMBASSADOR_MAX_PIPELINE", default_value_t = 1024)]
    pub(crate) max_pipeline: usize,

    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
}

/// The command line, checked: everything of the [`Config`] but the pools, which come from
/// `conf_file`.
#[derive(Debug)]
pub(crate) struct Settings {
    /// `--conf-file`.
    pub(crate) conf_file: PathBuf,
    /// `--stats-addr` and `--stats-port`, as one address; `None` with port 0.
    pub(crate) stats_addr: Option<String>,
    /// `--max-request-bytes`, `--max-pipeline`.
    pub(crate) limits: Limits,
    /// `--pid-file`.
    pub(crate) pid_file: Option<PathBuf>,
    /// The runtime's flags, with `--verbose` as the log level unless `--log-level` is given.
    pub(crate) runtime: RuntimeArgs,
}

impl TryFrom<&Cli> for Settings {
    type Error = UsageError;

    fn try_from(cli: &Cli) -> Result<Self, UsageError> {
        if cli.max_pipeline == 0 {
            return Err(UsageError::new("--max-pipeline", "must be at least 1"));
        }
        if cli.max_request_bytes < 1024 {
            return Err(UsageError::new(
                "--max-request-bytes",
                "must be at least 1024",
            ));
        }
        let mut runtime = cli.runtime.clone();
        if runtime.log_level.is_none()
            && let Some(v) = cli.verbose
        {
            runtime.log_level = Some(Verbosity::NUTCRACKER.level(v).to_owned());
        }
        Ok(Settings {
            conf_file: cli.conf_file.clone(),
            stats_addr: (cli.stats_port != 0).then(|| {
                if cli.stats_addr.contains(':') && !cli.stats_addr.starts_with('[') {
                    format!("[{}]:{}", cli.stats_addr, cli.stats_port)
                } else {
                    format!("{}:{}", cli.stats_addr, cli.stats_port)
                }
            }),
            limits: Limits {
                max_request_bytes: cli.max_request_bytes,
                max_pipeline: cli.max_pipeline,
            },
            pid_file: cli.pid_file.clone(),
            runtime,
        })
    }
}

impl Settings {
    /// The proxy's config, with the pools read from `conf_file`.
    pub(crate) fn into_config(self, pools: Vec<PoolConfig>) -> Config {
        Config {
            conf_file: self.conf_file,
            pools,
            stats_addr: self.stats_addr,
            limits: self.limits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podmates_runtime::args::convert;

    podmates_runtime::test_flags_documented!(Cli, include_str!("../README.md"));

    #[test]
    fn limits_are_checked_naming_the_flag() {
        let e = convert::<Cli, Settings>(&["--max-pipeline=0"]).unwrap_err();
        assert_eq!(e.to_string(), "--max-pipeline: must be at least 1");
        let e = convert::<Cli, Settings>(&["--max-request-bytes=1023"]).unwrap_err();
        assert_eq!(e.flag, "--max-request-bytes");
        assert!(
            convert::<Cli, Settings>(&["--max-request-bytes=1024", "--max-pipeline=1"]).is_ok()
        );
    }

    #[test]
    fn stats_address_and_verbosity() {
        let s = convert::<Cli, Settings>(&[]).unwrap();
        assert_eq!(s.stats_addr.as_deref(), Some("0.0.0.0:22222"));
        let s = convert::<Cli, Settings>(&["-a", "::1", "-s", "7"]).unwrap();
        assert_eq!(s.stats_addr.as_deref(), Some("[::1]:7"));
        assert_eq!(
            convert::<Cli, Settings>(&["-s", "0"]).unwrap().stats_addr,
            None
        );
        let s = convert::<Cli, Settings>(&["-v", "6"]).unwrap();
        assert_eq!(s.runtime.log_level.as_deref(), Some("debug"));
        let s = convert::<Cli, Settings>(&["-v", "6", "--log-level", "warn"]).unwrap();
        assert_eq!(s.runtime.log_level.as_deref(), Some("warn"));
    }
}
