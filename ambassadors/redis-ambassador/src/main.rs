use std::process::ExitCode;

use clap::Parser;
use podmates_runtime::{Binary, RuntimeArgs};
use redis_ambassador::client::Limits;
use redis_ambassador::{Config, config, run};

const NAME: &str = "redis-ambassador";

/// A twemproxy-compatible Redis sharding proxy: same nutcracker.yml, same key placement.
#[derive(Parser, Debug)]
#[command(name = NAME, version, about)]
struct Cli {
    /// The nutcracker configuration file (read unchanged; re-read on SIGHUP).
    #[arg(
        short = 'c',
        long,
        env = "REDIS_AMBASSADOR_CONF_FILE",
        default_value = "/etc/nutcracker/nutcracker.yml"
    )]
    conf_file: std::path::PathBuf,

    /// Check the configuration file and exit: 0 when valid, 1 (with the reason) when not.
    #[arg(short = 't', long, env = "REDIS_AMBASSADOR_TEST_CONF")]
    test_conf: bool,

    /// Port of the nutcracker stats JSON server; 0 disables it.
    #[arg(
        short = 's',
        long,
        env = "REDIS_AMBASSADOR_STATS_PORT",
        default_value_t = 22222
    )]
    stats_port: u16,

    /// Address of the nutcracker stats JSON server.
    #[arg(
        short = 'a',
        long,
        env = "REDIS_AMBASSADOR_STATS_ADDR",
        default_value = "0.0.0.0"
    )]
    stats_addr: String,

    /// Accepted for nutcracker compatibility: the stats are always current, there is no
    /// aggregation interval.
    #[arg(
        short = 'i',
        long,
        env = "REDIS_AMBASSADOR_STATS_INTERVAL",
        default_value_t = 30000
    )]
    stats_interval: u64,

    /// nutcracker's log level 0..11; mapped onto error/warn/info/debug/trace unless --log-level
    /// is given.
    #[arg(short = 'v', long, env = "REDIS_AMBASSADOR_VERBOSE")]
    verbose: Option<u8>,

    /// Accepted for nutcracker compatibility and ignored (buffers grow as needed).
    #[arg(short = 'm', long, env = "REDIS_AMBASSADOR_MBUF_SIZE")]
    mbuf_size: Option<u64>,

    /// Accepted for nutcracker compatibility: diagnostics always go to stderr.
    #[arg(short = 'o', long, env = "REDIS_AMBASSADOR_OUTPUT")]
    output: Option<String>,

    /// nutcracker's daemonize: accepted, and the proxy stays in the foreground (a container's
    /// main process must not fork away).
    #[arg(short = 'd', long, env = "REDIS_AMBASSADOR_DAEMONIZE")]
    daemonize: bool,

    /// Print the description of the nutcracker stats fields and exit.
    #[arg(short = 'D', long)]
    describe_stats: bool,

    /// Write the process id to this file (nutcracker's -p).
    #[arg(short = 'p', long, env = "REDIS_AMBASSADOR_PID_FILE")]
    pid_file: Option<std::path::PathBuf>,

    /// Largest request a client may send, in bytes; a larger one gets
    /// `-ERR Protocol error` and the client is closed.
    #[arg(long, env = "REDIS_AMBASSADOR_MAX_REQUEST_BYTES", default_value_t = 64 * 1024 * 1024)]
    max_request_bytes: usize,

    /// Most requests of one client in flight at once; the rest wait in the socket.
    #[arg(long, env = "REDIS_AMBASSADOR_MAX_PIPELINE", default_value_t = 1024)]
    max_pipeline: usize,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> ExitCode {
    let mut cli: Cli = podmates_runtime::parse_args(std::env::args_os());
    if cli.describe_stats {
        print!("{}", redis_ambassador::stats::DESCRIPTION);
        return ExitCode::SUCCESS;
    }
    let pools = match config::load(&cli.conf_file) {
        Ok(p) => p,
        Err(e) => {
            if cli.test_conf {
                eprintln!(
                    "{NAME}: configuration file '{}' is invalid: {e}",
                    cli.conf_file.display()
                );
                return ExitCode::from(1);
            }
            podmates_runtime::exit_usage(NAME, format_args!("--conf-file: {e}"));
        }
    };
    if cli.test_conf {
        eprintln!(
            "{NAME}: configuration file '{}' syntax is ok ({} pool{})",
            cli.conf_file.display(),
            pools.len(),
            if pools.len() == 1 { "" } else { "s" }
        );
        return ExitCode::SUCCESS;
    }
    if cli.max_pipeline == 0 {
        podmates_runtime::exit_usage(NAME, "--max-pipeline: must be at least 1");
    }
    if cli.max_request_bytes < 1024 {
        podmates_runtime::exit_usage(NAME, "--max-request-bytes: must be at least 1024");
    }
    if cli.runtime.log_level.is_none()
        && let Some(v) = cli.verbose
    {
        let level = match v {
            0..=3 => "error",
            4 => "warn",
            5 => "info",
            6..=7 => "debug",
            _ => "trace",
        };
        cli.runtime.log_level = Some(level.to_owned());
    }
    if let Some(p) = &cli.pid_file
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        podmates_runtime::exit_usage(NAME, format_args!("--pid-file: {}: {e}", p.display()));
    }
    if cli.daemonize {
        eprintln!(
            "{NAME}: -d/--daemonize accepted and ignored: in a container the proxy runs in the foreground"
        );
    }
    let config = Config {
        conf_file: cli.conf_file.clone(),
        pools,
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
    };
    let binary = Binary {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        default_admin_addr: "[::]:9104",
        worker_threads: None,
    };
    podmates_runtime::start(binary, &cli.runtime, move |ctx| run(config, ctx))
}
