//! The `wait-for` command line.

use std::process::ExitCode;

use podmates_runtime::{Binary, exit_usage};
use wait_for::cli::{self, Cli};
use wait_for::{Config, check, run, tls};

const NAME: &str = "wait-for";

fn main() -> ExitCode {
    let args = cli::rewrite_args(std::env::args_os().collect());
    let mut cli: Cli = podmates_runtime::parse_args(args);
    let mut config = Config::try_from(&cli).unwrap_or_else(|e| exit_usage(NAME, e));
    if cli.quiet && cli.runtime.log_level.is_none() {
        cli.runtime.log_level = Some("error".to_owned());
    }
    // After telemetry, so that a warning about the system roots is seen.
    podmates_runtime::init_telemetry(NAME, &cli.runtime);
    let (verified, unverified) = config
        .targets
        .iter()
        .map(check::needs_tls)
        .fold((false, false), |a, b| (a.0 | b.0, a.1 | b.1));
    if verified {
        config.env.tls = Some(
            tls::verified(cli.ca_file.as_deref(), cli.insecure)
                .unwrap_or_else(|e| exit_usage(NAME, e)),
        );
    }
    if unverified {
        config.env.tls_unverified = Some(tls::unverified().unwrap_or_else(|e| exit_usage(NAME, e)));
    }
    let binary = Binary {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        // No admin server unless --admin-addr asks for one: an init container needs no port.
        default_admin_addr: "",
        // A handful of sockets at a time: one worker keeps the resident memory small.
        worker_threads: Some(1),
    };
    let code = podmates_runtime::start(binary, &cli.runtime, move |ctx| run(config, ctx));
    if code != ExitCode::SUCCESS || cli.command.is_empty() {
        return code;
    }
    // wait-for-it.sh / wait4x / dockerize: `-- COMMAND` runs in wait-for's place once ready.
    use std::os::unix::process::CommandExt as _;
    let err = std::process::Command::new(&cli.command[0])
        .args(&cli.command[1..])
        .exec();
    eprintln!(
        "{NAME}: error: cannot run {}: {err}",
        cli.command[0].to_string_lossy()
    );
    ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}
