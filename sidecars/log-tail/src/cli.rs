//! The `log-tail` command line: flags (each also an environment variable) into a checked
//! [`Config`], without I/O.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use log_tail::{Config, Output};
use podmates_follow::{LongLines, StartFrom};
use podmates_runtime::args::parse_duration;
use podmates_runtime::{RuntimeArgs, UsageError};

pub(crate) const NAME: &str = "log-tail";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OutputArg {
    /// The line as written.
    Raw,
    /// `<file>: <line>`.
    Prefixed,
    /// `{"file":..,"line":..,"offset":..}` per line.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FromArg {
    /// From the first byte.
    Start,
    /// Only lines written from now on.
    End,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LongLinesArg {
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
pub(crate) struct Cli {
    /// Files or glob patterns to follow, e.g. `/var/log/app/*.log`. In LOG_TAIL_PATHS, separated
    /// by commas.
    #[arg(env = "LOG_TAIL_PATHS", value_name = "PATH", required = true, num_args = 1.., value_delimiter = ',')]
    pub(crate) paths: Vec<String>,

    /// How lines are written to stdout.
    #[arg(long, env = "LOG_TAIL_OUTPUT", value_enum, default_value = "raw")]
    pub(crate) output: OutputArg,

    /// Where to begin files found at startup that the checkpoint does not know.
    #[arg(long, env = "LOG_TAIL_FROM", value_enum, default_value = "start")]
    pub(crate) from: FromArg,

    /// Where to keep read offsets across restarts (put it on the shared volume). Without it a
    /// restart begins again per --from.
    #[arg(long, env = "LOG_TAIL_CHECKPOINT_FILE", value_name = "PATH")]
    pub(crate) checkpoint_file: Option<PathBuf>,

    /// How often the checkpoint is saved; it is also saved at shutdown.
    #[arg(long, env = "LOG_TAIL_CHECKPOINT_INTERVAL", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) checkpoint_interval: Duration,

    /// Longest line written in one piece, in bytes.
    #[arg(long, env = "LOG_TAIL_MAX_LINE_BYTES", value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub(crate) max_line_bytes: usize,

    /// What to do with lines longer than --max-line-bytes.
    #[arg(long, env = "LOG_TAIL_LONG_LINES", value_enum, default_value = "split")]
    pub(crate) long_lines: LongLinesArg,

    /// How often the patterns are re-expanded and files polled without an inotify event.
    #[arg(long, env = "LOG_TAIL_RESCAN_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub(crate) rescan_interval: Duration,

    /// How long a rotated (renamed) file stays open after it stopped growing, for a writer that
    /// has not reopened its log yet.
    #[arg(long, env = "LOG_TAIL_ROTATE_WAIT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) rotate_wait: Duration,

    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
}

impl TryFrom<&Cli> for Config {
    type Error = UsageError;

    fn try_from(cli: &Cli) -> Result<Self, UsageError> {
        // Each flag is checked here under its own name; what the follower's own validation still
        // refuses can then only be the paths.
        let positive = |flag: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(UsageError::new(flag, "must be greater than zero"))
            }
        };
        positive("--max-line-bytes", cli.max_line_bytes > 0)?;
        positive("--checkpoint-interval", !cli.checkpoint_interval.is_zero())?;
        positive("--rescan-interval", !cli.rescan_interval.is_zero())?;
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
        follow.validate().map_err(|e| match e {
            podmates_follow::Error::Config { reason, .. } => UsageError::new("PATH", reason),
            e => UsageError::caused("PATH", e),
        })?;
        Ok(Config {
            follow,
            output: match cli.output {
                OutputArg::Raw => Output::Raw,
                OutputArg::Prefixed => Output::Prefixed,
                OutputArg::Json => Output::Json,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    podmates_runtime::test_flags_documented!(Cli, include_str!("../README.md"));

    fn convert(args: &[&str]) -> Result<Config, UsageError> {
        podmates_runtime::args::convert::<Cli, _>(args)
    }

    #[test]
    fn bad_settings_name_their_flag() {
        for (args, flag) in [
            (&["--max-line-bytes=0", "/l"][..], "--max-line-bytes"),
            (
                &["--checkpoint-interval=0s", "/l"][..],
                "--checkpoint-interval",
            ),
            (&["--rescan-interval=0", "/l"][..], "--rescan-interval"),
            (&["/l/[x.log"][..], "PATH"),
        ] {
            let e = convert(args).unwrap_err();
            assert_eq!(e.flag, flag, "{args:?}: {e}");
            assert!(e.to_string().starts_with(&format!("{flag}: ")), "{e}");
        }
        // A bad glob keeps the pattern error as its cause.
        let e = convert(&["/l/[x.log"]).unwrap_err();
        assert!(std::error::Error::source(&e).is_some(), "{e}");
    }

    #[test]
    fn flags_reach_the_config() {
        let c = convert(&[
            "--from=end",
            "--output=json",
            "--long-lines=truncate",
            "--max-line-bytes=10",
            "--rotate-wait=2s",
            "/a.log",
            "/b/*.log",
        ])
        .unwrap();
        assert_eq!(c.follow.paths, ["/a.log", "/b/*.log"]);
        assert_eq!(c.follow.from, StartFrom::End);
        assert_eq!(c.follow.long_lines, LongLines::Truncate);
        assert_eq!(c.follow.max_line_bytes, 10);
        assert_eq!(c.follow.rotate_wait, Duration::from_secs(2));
        assert_eq!(c.output, Output::Json);
    }
}
