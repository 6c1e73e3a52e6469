//! The nginx-exporter binary: parse the command line (`cli.rs`), convert it into checked
//! settings, open what they name (`open.rs`: listeners, secret files, TLS), run.

mod cli;
mod open;

use std::process::ExitCode;

use cli::{Cli, NAME, Settings, normalise_args};
use nginx_exporter::Exporter;
use podmates_runtime::{Binary, exit_usage};

fn main() -> ExitCode {
    let cli: Cli = podmates_runtime::parse_args(normalise_args(std::env::args()));
    let settings = Settings::try_from(&cli).unwrap_or_else(|e| exit_usage(NAME, e));
    let runtime = settings.runtime.clone();
    podmates_runtime::init_telemetry(NAME, &runtime);
    let config = open::open(settings).unwrap_or_else(|e| exit_usage(NAME, e));
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
        &runtime,
        move |ctx| nginx_exporter::run(exporter, config, ctx),
    )
}
