//! log-tail: streams log files from a shared volume to stdout, so `kubectl logs` shows them.
//!
//! The following itself (globs, rotation, truncation, checkpoints) is [`podmates_follow`]; this
//! crate formats the lines and writes them to stdout, which carries nothing else.
//!
//! Output goes through one buffer that is flushed whenever no line is waiting: under load lines
//! leave in large writes, and a lone line leaves at once. A checkpoint only ever records lines that
//! were flushed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;

use podmates_follow::{Follower, Line, LineKind};
use podmates_runtime::Context;
use prometheus_client::metrics::counter::Counter;

/// How each line is written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The line as written to the file.
    #[default]
    Raw,
    /// `<file>: <line>`.
    Prefixed,
    /// One JSON object per line: `{"file":..,"line":..,"offset":..}`, plus `"split":true` or
    /// `"truncated":true` for pieces of over-long lines.
    Json,
}

/// log-tail's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to follow and how.
    pub follow: podmates_follow::Config,
    /// How lines are written.
    pub output: Output,
}

/// Why log-tail stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The follower could not start or save its checkpoint.
    #[error(transparent)]
    Follow(#[from] podmates_follow::Error),
    /// stdout could not be written (closed pipe, full disk).
    #[error("writing to stdout: {0}")]
    Stdout(#[source] io::Error),
    /// The writer task died.
    #[error("writer task: {0}")]
    Task(String),
}

/// Size of the stdout buffer: large writes under load, bounded memory.
const STDOUT_BUFFER: usize = 64 * 1024;

/// Follows the files and writes their lines to stdout until shutdown, then drains and saves the
/// checkpoint.
pub async fn run(config: Config, ctx: Context) -> Result<(), Error> {
    let mut follow = config.follow;
    // Raw output copies lines out unchanged: let the follower hand over runs of whole lines.
    follow.raw_runs = config.output == Output::Raw;
    let follower = Follower::start(follow, ctx.shutdown.token())?;
    let written = Counter::default();
    ctx.admin.with_registry(|r| {
        let r = r.sub_registry_with_prefix("log_tail");
        follower.metrics().register(r);
        r.register("output_lines", "Lines written to stdout", written.clone());
    });
    ctx.admin.readiness().set(true);
    let stdout = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(Error::Stdout)?;
    let out = BufWriter::with_capacity(STDOUT_BUFFER, File::from(stdout));
    let handle = tokio::runtime::Handle::current();
    // Writing to stdout blocks when the reader of the pipe is slow: that belongs on a blocking
    // thread, and the blocking is what pauses the follower (its channel fills up).
    tokio::task::spawn_blocking(move || write_loop(follower, out, config.output, written, &handle))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

fn write_loop(
    mut follower: Follower,
    mut out: BufWriter<File>,
    format: Output,
    written: Counter,
    handle: &tokio::runtime::Handle,
) -> Result<(), Error> {
    let mut scratch = Vec::with_capacity(256);
    loop {
        if follower.is_idle() {
            out.flush().map_err(Error::Stdout)?;
            follower.commit();
        }
        if format == Output::Raw {
            let Some(raw) = handle.block_on(follower.next_raw()) else {
                break;
            };
            for part in &raw.parts {
                out.write_all(part).map_err(Error::Stdout)?;
            }
            written.inc_by(raw.lines as u64);
            continue;
        }
        let Some(batch) = handle.block_on(follower.next_batch()) else {
            break;
        };
        for line in &batch {
            write_line(&mut out, &mut scratch, format, line).map_err(Error::Stdout)?;
        }
        written.inc_by(batch.len() as u64);
    }
    out.flush().map_err(Error::Stdout)?;
    follower.commit();
    handle.block_on(follower.finish())?;
    Ok(())
}

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    file: std::borrow::Cow<'a, str>,
    line: std::borrow::Cow<'a, str>,
    offset: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    split: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// Writes one line in the chosen format, newline included.
pub fn write_line<W: Write>(
    out: &mut W,
    scratch: &mut Vec<u8>,
    format: Output,
    line: &Line,
) -> io::Result<()> {
    match format {
        Output::Raw => {
            out.write_all(&line.bytes)?;
        }
        Output::Prefixed => {
            out.write_all(line.path.as_os_str().as_encoded_bytes())?;
            out.write_all(b": ")?;
            out.write_all(&line.bytes)?;
        }
        Output::Json => {
            scratch.clear();
            let obj = JsonLine {
                file: line.path.to_string_lossy(),
                line: String::from_utf8_lossy(&line.bytes),
                offset: line.offset,
                split: line.kind == LineKind::Split,
                truncated: line.kind == LineKind::Truncated,
            };
            serde_json::to_writer(&mut *scratch, &obj).map_err(io::Error::other)?;
            out.write_all(scratch)?;
        }
    }
    out.write_all(b"\n")
}
