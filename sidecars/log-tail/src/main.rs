//! `log-tail`: parse the command line, convert it into a checked config, open, run.

mod cli;

use std::process::ExitCode;

use cli::{Cli, NAME};
use log_tail::{Config, run};
use podmates_runtime::{Binary, exit_usage};

fn main() -> ExitCode {
    let cli: Cli = podmates_runtime::parse_args(std::env::args_os());
    let config = Config::try_from(&cli).unwrap_or_else(|e| exit_usage(NAME, e));
    podmates_runtime::init_telemetry(NAME, &cli.runtime);
    // The files themselves are opened by the follower in `run`; a checkpoint path that names a
    // directory can never be written, so it is refused before anything starts.
    if let Some(cp) = &config.follow.checkpoint_file
        && cp.is_dir()
    {
        exit_usage(
            NAME,
            format_args!("--checkpoint-file: {} is a directory", cp.display()),
        );
    }
    let binary = Binary {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        default_admin_addr: "[::]:9101",
        worker_threads: None,
    };
    podmates_runtime::start(binary, &cli.runtime, move |ctx| run(config, ctx))
}
