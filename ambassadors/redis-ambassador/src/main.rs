//! `redis-ambassador`: parse the command line, convert it into checked settings, open (the
//! configuration file, the pid file) and run.

mod cli;

use std::process::ExitCode;

use cli::{Cli, NAME, Settings};
use podmates_runtime::{Binary, UsageError, exit_usage};
use redis_ambassador::{config, run};

fn main() -> ExitCode {
    let cli: Cli = podmates_runtime::parse_args(std::env::args_os());
    if cli.describe_stats {
        print!("{}", redis_ambassador::stats::DESCRIPTION);
        return ExitCode::SUCCESS;
    }
    if cli.test_conf {
        return test_conf(&cli.conf_file);
    }
    let settings = Settings::try_from(&cli).unwrap_or_else(|e| exit_usage(NAME, e));
    podmates_runtime::init_telemetry(NAME, &settings.runtime);
    let pools = config::load(&settings.conf_file)
        .unwrap_or_else(|e| exit_usage(NAME, UsageError::caused("--conf-file", e)));
    if let Some(p) = &settings.pid_file
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        exit_usage(NAME, format_args!("--pid-file: {}: {e}", p.display()));
    }
    if cli.daemonize {
        eprintln!(
            "{NAME}: -d/--daemonize accepted and ignored: in a container the proxy runs in the foreground"
        );
    }
    let runtime = settings.runtime.clone();
    let config = settings.into_config(pools);
    let binary = Binary {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        default_admin_addr: "[::]:9104",
        worker_threads: None,
    };
    podmates_runtime::start(binary, &runtime, move |ctx| run(config, ctx))
}

/// nutcracker's `-t`: 0 and a summary when the file is valid, 1 and the reason when not.
fn test_conf(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(pools) => {
            eprintln!(
                "{NAME}: configuration file '{}' syntax is ok ({} pool{})",
                path.display(),
                pools.len(),
                if pools.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "{NAME}: configuration file '{}' is invalid: {e}",
                path.display()
            );
            ExitCode::from(1)
        }
    }
}
