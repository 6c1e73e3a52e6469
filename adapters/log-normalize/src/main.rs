//! `log-normalize [OPTIONS] [PATH]...`: see the crate docs and README.md. Parses the command
//! line, converts it into a checked config, and runs (the inputs are opened by `run`).

mod cli;

use std::process::ExitCode;

use cli::{Cli, NAME};
use log_normalize::{Config, run};
use podmates_runtime::{Binary, exit_usage};

fn main() -> ExitCode {
    let cli: Cli = podmates_runtime::parse_args(std::env::args_os());
    let config = Config::try_from(&cli).unwrap_or_else(|e| exit_usage(NAME, e));
    podmates_runtime::start(
        Binary {
            name: NAME,
            version: env!("CARGO_PKG_VERSION"),
            default_admin_addr: "[::]:9102",
            worker_threads: None,
        },
        &cli.runtime,
        move |ctx| run(config, ctx),
    )
}
