//! `git-sync`: parse the command line into a checked config, open what the runtime needs, run.

mod cli;

use std::ffi::OsString;
use std::process::ExitCode;

use podmates_runtime::args::{Verbosity, parse_listen_addr};
use podmates_runtime::{Binary, UsageError, exit_usage};

use cli::{Cli, NAME, deprecations, legacy_args};
use git_sync::config::Config;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let (extra, notes) = legacy_args(&argv, |k| std::env::var(k).ok());
    let args = argv
        .into_iter()
        // Upstream's `-?` is `-h`.
        .map(|a| {
            if a == "-?" {
                OsString::from("--help")
            } else {
                a
            }
        })
        .chain(extra.into_iter().map(OsString::from));
    // An unknown or malformed flag is a configuration error like any other: exit 64.
    let mut cli: Cli = podmates_runtime::parse_args(args);
    if cli.man {
        use clap::CommandFactory;
        println!("{}", Cli::command().render_long_help());
        return ExitCode::SUCCESS;
    }
    let config = Config::try_from(&cli).unwrap_or_else(|e| exit_usage(NAME, e));
    if let Some(bind) = &cli.http_bind
        && cli.runtime.admin_addr.is_none()
    {
        let addr = parse_listen_addr(bind)
            .unwrap_or_else(|e| exit_usage(NAME, UsageError::caused("--http-bind", e)));
        cli.runtime.admin_addr = Some(addr);
    }
    if cli.runtime.log_level.is_none()
        && std::env::var_os("RUST_LOG").is_none()
        && let Some(v) = cli.v_deprecated.or(cli.verbose)
    {
        cli.runtime.log_level = Some(Verbosity::KLOG.level(v).to_owned());
    }
    let binary = Binary {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        default_admin_addr: "[::]:9103",
        worker_threads: None,
    };
    let ignored: Vec<&str> = [
        cli.add_user.map(|_| "--add-user"),
        (!cli.http_metrics).then_some("--http-metrics=false"),
        cli.git
            .as_ref()
            .map(|_| "--git (git runs in-process, through libgit2)"),
        cli.http_pprof
            .map(|_| "--http-pprof (a Go profiler; this is not a Go program)"),
        cli.ssh.map(|_| "--ssh"),
    ]
    .into_iter()
    .flatten()
    .collect();
    // As upstream: with --group-write everything git-sync writes (the root's .git, .worktrees,
    // hooks' files) is group-writable from the start, not only the files chmod-ed afterwards.
    // Set before any thread exists: the umask is per process.
    let umask = if config.group_write { 0o002 } else { 0o022 };
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    let deprecated = deprecations(&cli);
    git_sync::git::configure_libgit2(config.sync_timeout);
    podmates_runtime::start(binary, &cli.runtime, move |ctx| async move {
        for n in notes.iter().chain(&deprecated) {
            tracing::warn!("{n}");
        }
        for f in &ignored {
            tracing::info!("{f} has no effect here and is ignored");
        }
        git_sync::run(config, ctx).await
    })
}
