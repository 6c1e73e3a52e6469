//! The `log-tail` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use log_tail::{Config, Output, run};
use podmates_follow::{LongLines, StartFrom};
use podmates_runtime::args::parse_duration;
use podmates_runtime::{Binary, RuntimeArgs, exit_usage};

const NAME: &str = "log-tail";

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputArg {
    /// The line as written.
    Raw,
    /// `<file>: <line>`.
    Prefixed,
    /// `{"file":..,"line":..,"offset":..}` per line.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FromArg {
    /// From the first byte.
    Start,
    /// Only lines written from now on.
    End,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LongLinesArg {
    /// Emit over-long lines in pieces of --max-line-bytes.
    Split,
    /// Keep the first --max-line-bytes, drop the rest.
    Truncate,
}

/// Streams log files to stdout through rotation, truncation and restarts.
///
/// Replaces the `busybox tail -n+1 -F` streaming sidecar: globs, one container for many files,
/// no line lost at rename rotation, checkpoints across restarts, nothing but lines on stdout.
#[derive(Debug, Parser)]
#[command(name = NAME, version, about, long_about = None)]
struct Cli {
    /// Files or glob patterns to follow, e.g. `/var/log/app/*.log`. In LOG_TAIL_PATHS, separated
    /// by commas.
    #[arg(env = "LOG_TAIL_PATHS", value_name = "PATH", required = true, num_args = 1.., value_delimiter = ',')]
    paths: Vec<String>,

    /// How lines are written to stdout.
    #[arg(long, env = "LOG_TAIL_OUTPUT", value_enum, default_value = "raw")]
    output: OutputArg,

    /// Where to begin files found at startup that the checkpoint does not know.
    #[arg(long, env = "LOG_TAIL_FROM", value_enum, default_value = "start")]
    from: FromArg,

    /// Where to keep read offsets across restarts (put it on the shared volume). Without it a
    /// restart begins again per --from.
    #[arg(long, env = "LOG_TAIL_CHECKPOINT_FILE", value_name = "PATH")]
    checkpoint_file: Option<PathBuf>,

    /// How often the checkpoint is saved; it is also saved at shutdown.
    #[arg(long, env = "LOG_TAIL_CHECKPOINT_INTERVAL", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    checkpoint_interval: Duration,

    /// Longest line written in one piece, in bytes.
    #[arg(long, env = "LOG_TAIL_MAX_LINE_BYTES", value_name = "BYTES", default_value_t = 1024 * 1024)]
    max_line_bytes: usize,

    /// What to do with lines longer than --max-line-bytes.
    #[arg(long, env = "LOG_TAIL_LONG_LINES", value_enum, default_value = "split")]
    long_lines: LongLinesArg,

    /// How often the patterns are re-expanded and files polled without an inotify event.
    #[arg(long, env = "LOG_TAIL_RESCAN_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    rescan_interval: Duration,

    /// How long a rotated (renamed) file stays open after it stopped growing, for a writer that
    /// has not reopened its log yet.
    #[arg(long, env = "LOG_TAIL_ROTATE_WAIT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    rotate_wait: Duration,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn config(cli: &Cli) -> Config {
    let mut follow = podmates_follow::Config::new(cli.paths.iter().cloned());
    follow.from = match cli.from {
        FromArg::Start => StartFrom::Start,
        FromArg::End => StartFrom::End,
    };
    follow.checkpoint_file = cli.checkpoint_file.clone();
    follow.checkpoint_interval = cli.checkpoint_interval;
    follow.max_line_bytes = cli.max_line_bytes;
    follow.long_lines = match cli.long_lines {
        LongLinesArg::Split => LongLines::Split,
        LongLinesArg::Truncate => LongLines::Truncate,
    };
    follow.rescan_interval = cli.rescan_interval;
    follow.rotate_wait = cli.rotate_wait;
    match follow.validate() {
        Ok(()) => {}
        Err(podmates_follow::Error::Config { setting, reason }) => {
            let flag = match setting {
                "max_line_bytes" => "--max-line-bytes",
                "checkpoint_interval" => "--checkpoint-interval",
                "rescan_interval" => "--rescan-interval",
                _ => "PATH",
            };
            exit_usage(NAME, format_args!("{flag}: {reason}"));
        }
        Err(e) => exit_usage(NAME, format_args!("PATH: {e}")),
    }
    if let Some(cp) = &cli.checkpoint_file
        && cp.is_dir()
    {
        exit_usage(
            NAME,
            format_args!("--checkpoint-file: {} is a directory", cp.display()),
        );
    }
    Config {
        follow,
        output: match cli.output {
            OutputArg::Raw => Output::Raw,
            OutputArg::Prefixed => Output::Prefixed,
            OutputArg::Json => Output::Json,
        },
    }
}

fn main() -> ExitCode {
    let cli: Cli = podmates_runtime::parse_args(std::env::args_os());
    let config = config(&cli);
    let binary = Binary {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        default_admin_addr: "[::]:9101",
        worker_threads: None,
    };
    podmates_runtime::start(binary, &cli.runtime, move |ctx| run(config, ctx))
}
