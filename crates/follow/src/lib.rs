//! Follows log files named by path or glob, the way `tail -F` should: through rename rotation and
//! copytruncate, deletion and recreation, across restarts (with a checkpoint file), without losing
//! or duplicating a line, with bounded memory and near-zero idle CPU.
//!
//! Used by log-tail (files to stdout), log-normalize and the nginx exporter's access-log mode.
//!
//! # How it works
//!
//! One thread owns the open files. It sleeps until inotify (through `notify`, watching the files'
//! directories) reports a change, or until the periodic rescan (a safety net for missed events,
//! directories that do not exist yet, and inotify queue overflow). Then it:
//!
//! 1. re-expands the patterns: a file new to it is opened (from its start, or per [`StartFrom`]
//!    for files present at startup, or from its checkpoint); a followed file whose path is gone or
//!    now names another file is *retired*: it is read to its end through the descriptor that is
//!    still open, and closed once it is deleted or has not grown for [`Config::rotate_wait`];
//! 2. reads retired files to their end before the files that replaced them, so the last lines of
//!    a rotated file always come before the first lines of the new one;
//! 3. treats a file smaller than its read offset as truncated (copytruncate) and restarts at 0.
//!
//! Files are followed by inode, not only by name: the inotify thread opens a file the moment it
//! appears under a matching name, or is renamed away from one, so a file created and renamed
//! away before the reader came round to it (fast rotation, a reader blocked on a slow consumer)
//! is still read to its end, under the name it was written to. What stays out of reach is a file
//! created and deleted before the inotify thread handled its creation.
//!
//! Lines go through a bounded channel: when the consumer is slow (stdout blocked), reading pauses
//! and memory stays bounded by [`Config::channel_batches`] reads.
//!
//! # Delivery and checkpoints
//!
//! A line is *delivered* once the consumer has taken it and then called [`Follower::commit`] (for
//! log-tail: after flushing stdout). The checkpoint records, per file, its identity (device, inode
//! and a hash of its first 256 bytes, so a reused inode is not mistaken for the old file) and the
//! offset just past the last delivered line. It is written atomically (temporary file, fsync,
//! rename) every [`Config::checkpoint_interval`] and by [`Follower::finish`]. After a restart each
//! file resumes at its offset: at-least-once, with duplicates bounded by what was read but not yet
//! committed at a crash; after a clean shutdown, exactly once.
//!
//! # Shutdown
//!
//! When the [`CancellationToken`] given to [`Follower::start`] is cancelled, the follower reads
//! every file to its end, emits held partial lines as [`LineKind::Unterminated`], and closes the
//! channel: [`Follower::next`] then returns `None`. The consumer writes what it got, commits and
//! calls [`Follower::finish`], which saves the checkpoint.
//!
//! # Example
//!
//! ```no_run
//! use podmates_follow::{Config, Follower, StartFrom};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo(registry: &mut prometheus_client::registry::Registry) -> Result<(), podmates_follow::Error> {
//! let mut config = Config::new(["/var/log/app/*.log"]);
//! config.from = StartFrom::End;
//! config.checkpoint_file = Some("/var/log/app/.log-tail.checkpoint".into());
//!
//! let token = CancellationToken::new();
//! let mut follower = Follower::start(config, token.clone())?;
//! follower.metrics().register(registry.sub_registry_with_prefix("my_binary"));
//!
//! while let Some(line) = follower.next().await {
//!     println!("{}: {}", line.path.display(), String::from_utf8_lossy(&line.bytes));
//!     if follower.is_idle() {
//!         // Everything taken so far has been handed on: record it in the checkpoint.
//!         follower.commit();
//!     }
//! }
//! // `token` was cancelled: every file was read to its end. Save the final checkpoint.
//! follower.commit();
//! follower.finish().await?;
//! # Ok(())
//! # }
//! ```

mod checkpoint;
mod metrics;
mod reader;
mod split;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use metrics::Metrics;
/// Where an over-long line is cut: also used by readers of whole files (log-normalize's stdin
/// mode), so that their pieces are cut as the follower's are.
pub use split::utf8_cut;

/// The line splitter driven without files, for the fuzz targets in `fuzz/`: they are a crate of
/// their own and reach only public items, and the splitter itself stays private. Not API.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;
    use std::sync::Arc;

    use bytes::Bytes;

    use crate::{Line, LongLines, split};

    /// Splits `chunks`, read one after the other from offset 0, into lines of at most `max` bytes
    /// (in runs when `runs`, expanded here), then flushes what is held when `flush`. Returns the
    /// lines and the splitter's resume point (`consumed`).
    pub fn split(
        chunks: &[&[u8]],
        max: usize,
        policy: LongLines,
        runs: bool,
        flush: bool,
    ) -> (Vec<Line>, u64) {
        let path: Arc<Path> = Arc::from(Path::new("/fuzz.log"));
        let mut s = split::Splitter::new(max, policy, 0, runs);
        let mut items = Vec::new();
        let mut off = 0u64;
        for c in chunks {
            s.push(&Bytes::copy_from_slice(c), off, &path, &mut items);
            off += c.len() as u64;
        }
        if flush {
            s.flush(&path, &mut items);
        }
        let mut lines = Vec::new();
        for item in items {
            split::expand(item, &path, &mut lines);
        }
        (lines, s.consumed())
    }
}

/// Where to begin a file found at startup that the checkpoint does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// From its first byte (what `tail -n+1 -F` does).
    #[default]
    Start,
    /// From its current end: only lines written from now on.
    End,
}

/// What to do with a line longer than [`Config::max_line_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LongLines {
    /// Emit it in pieces of at most `max_line_bytes` ([`LineKind::Split`] pieces, then a
    /// [`LineKind::Complete`] last piece).
    #[default]
    Split,
    /// Emit its first `max_line_bytes` as [`LineKind::Truncated`] and drop the rest up to the
    /// newline.
    Truncate,
}

/// How a [`Line`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineKind {
    /// Ended by a newline (which is not part of [`Line::bytes`]).
    Complete,
    /// A piece of an over-long line; more pieces of the same line follow.
    Split,
    /// The head of an over-long line whose rest was dropped.
    Truncated,
    /// The file ended without a newline and will not be read further: emitted at shutdown or when
    /// a rotated or deleted file is closed.
    Unterminated,
}

/// One line read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Line {
    /// The path the file was followed under. A rotated file keeps the name it had, so its last
    /// lines are attributed to the log they were written to.
    pub path: Arc<Path>,
    /// The line's bytes without the newline, exactly as in the file (not necessarily UTF-8). Never
    /// longer than [`Config::max_line_bytes`]; never ends inside a UTF-8 sequence when split.
    pub bytes: Bytes,
    /// Byte offset of the line's first byte in the file.
    pub offset: u64,
    /// How the line ended.
    pub kind: LineKind,
}

/// The follower's settings. Build with [`Config::new`] and adjust the fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Files or glob patterns (`/var/log/app/*.log`). A pattern matching nothing yet is fine: files
    /// appearing later are picked up.
    pub paths: Vec<String>,
    /// Where to begin files present at startup that the checkpoint does not know. Files that
    /// appear later are always read from their start.
    pub from: StartFrom,
    /// Where to keep offsets across restarts; `None`: no checkpoint.
    pub checkpoint_file: Option<PathBuf>,
    /// How often the checkpoint is saved (only when something changed). Default 5 s.
    pub checkpoint_interval: Duration,
    /// Longest line emitted in one piece. Default 1 MiB.
    pub max_line_bytes: usize,
    /// What to do with longer lines. Default [`LongLines::Split`].
    pub long_lines: LongLines,
    /// How often the patterns are re-expanded and every file polled even without an inotify
    /// event. Default 1 s.
    pub rescan_interval: Duration,
    /// How long a rotated (renamed, not deleted) file is kept open after it stopped growing, for a
    /// writer that has not reopened its log yet. Default 5 s.
    pub rotate_wait: Duration,
    /// Size of one read. Default 128 KiB.
    pub read_buffer_bytes: usize,
    /// Capacity of the channel to the consumer, in reads. Bounds memory when the consumer is slow:
    /// about `channel_batches * read_buffer_bytes`. Default 16.
    pub channel_batches: usize,
    /// Hand consecutive whole lines over as one slice, for consumers that write lines out as
    /// they are ([`Follower::next_raw`]): saves per-line work. [`Follower::next`] and
    /// [`Follower::next_batch`] work either way. Default false.
    pub raw_runs: bool,
}

impl Config {
    /// Settings with defaults for the given files or globs.
    pub fn new<I, S>(paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            paths: paths.into_iter().map(Into::into).collect(),
            from: StartFrom::Start,
            checkpoint_file: None,
            checkpoint_interval: Duration::from_secs(5),
            max_line_bytes: 1024 * 1024,
            long_lines: LongLines::Split,
            rescan_interval: Duration::from_secs(1),
            rotate_wait: Duration::from_secs(5),
            read_buffer_bytes: 128 * 1024,
            channel_batches: 16,
            raw_runs: false,
        }
    }

    /// Checks the settings; the error names the bad one.
    pub fn validate(&self) -> Result<(), Error> {
        if self.paths.is_empty() {
            return Err(Error::Config {
                setting: "paths",
                reason: "at least one file or glob is required".to_owned(),
            });
        }
        for p in &self.paths {
            if p.is_empty() {
                return Err(Error::Config {
                    setting: "paths",
                    reason: "empty path".to_owned(),
                });
            }
            glob::Pattern::new(p).map_err(|source| Error::Pattern {
                pattern: p.clone(),
                source,
            })?;
        }
        let positive = |setting: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::Config {
                    setting,
                    reason: "must be greater than zero".to_owned(),
                })
            }
        };
        positive("max_line_bytes", self.max_line_bytes > 0)?;
        positive("checkpoint_interval", !self.checkpoint_interval.is_zero())?;
        positive("rescan_interval", !self.rescan_interval.is_zero())?;
        positive("read_buffer_bytes", self.read_buffer_bytes > 0)?;
        positive("channel_batches", self.channel_batches > 0)?;
        Ok(())
    }
}

/// Errors of the follower.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid.
    #[error("{setting}: {reason}")]
    Config {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A path is not a valid glob pattern.
    #[error("path `{pattern}`: {source}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// Why it does not parse.
        #[source]
        source: glob::PatternError,
    },
    /// The inotify watcher could not be created.
    #[error("file watcher: {0}")]
    Watch(#[from] notify::Error),
    /// The checkpoint could not be written.
    #[error("checkpoint {path}: {source}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The reader thread could not be started or died.
    #[error("reader thread: {0}")]
    Thread(String),
    /// [`Follower::start`] was called outside a tokio runtime.
    #[error("Follower::start must be called within a tokio runtime")]
    NoRuntime,
}

/// A batch of lines from one file, as read in one go.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The file's id (see [`Shared`]).
    pub(crate) file: u64,
    /// The file's resume point once every line of the batch is delivered.
    pub(crate) end: u64,
    /// The path the file is followed under.
    pub(crate) path: Arc<Path>,
    pub(crate) items: Vec<split::Item>,
}

impl Batch {
    fn into_lines(self) -> Vec<Line> {
        let mut out = Vec::with_capacity(self.items.iter().map(split::Item::lines).sum());
        for item in self.items {
            split::expand(item, &self.path, &mut out);
        }
        out
    }
}

/// Lines of one file in raw form, from [`Follower::next_raw`]: `parts` written one after the
/// other are the lines, each followed by a newline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawLines {
    /// The path the file is followed under.
    pub path: Arc<Path>,
    /// The bytes to write, in order.
    pub parts: Vec<Bytes>,
    /// How many lines (or pieces of over-long lines) they hold.
    pub lines: usize,
}

/// What the reader thread and the consumer share for checkpoints: per open file its identity and
/// the offset up to which the consumer has committed.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) files: Mutex<HashMap<u64, checkpoint::Entry>>,
    /// Set whenever a commit or a file change makes the saved checkpoint stale.
    pub(crate) changed: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, checkpoint::Entry>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the checkpoint file from the current state.
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        self.changed
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let entries: Vec<checkpoint::Entry> = self.lock().values().cloned().collect();
        checkpoint::save(path, entries)
    }
}

/// Follows the configured files; yields their lines in order per file.
///
/// Created by [`Follower::start`]; read with [`Follower::next`] or [`Follower::next_batch`] until
/// `None`, then [`Follower::finish`].
#[derive(Debug)]
pub struct Follower {
    rx: mpsc::Receiver<Batch>,
    /// Lines of the batch being handed out by [`Follower::next`], and that batch's file and end.
    current: std::vec::IntoIter<Line>,
    current_end: Option<(u64, u64)>,
    /// Resume points of lines handed out but not committed yet.
    taken: HashMap<u64, u64>,
    shared: Arc<Shared>,
    metrics: Metrics,
    checkpoint_file: Option<PathBuf>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Follower {
    /// Starts following: expands the patterns, loads the checkpoint (a corrupt one is logged and
    /// ignored), starts the watcher, opens the files that exist (with `StartFrom::End`, every line
    /// written after this returns is read) and starts the reader thread. Must be called within a
    /// tokio runtime.
    /// Stops (after reading everything to its end) when `shutdown` is cancelled.
    pub fn start(config: Config, shutdown: CancellationToken) -> Result<Self, Error> {
        config.validate()?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let metrics = Metrics::default();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel(config.channel_batches);
        let checkpoint_file = config.checkpoint_file.clone();
        let (mut reader, wake) = reader::Reader::new(config, tx, shared.clone(), metrics.clone())?;
        reader.scan_initial();
        let thread = std::thread::Builder::new()
            .name("follow".to_owned())
            .spawn(move || reader.run())
            .map_err(|e| Error::Thread(e.to_string()))?;
        handle.spawn(async move {
            shutdown.cancelled().await;
            wake.shutdown();
        });
        Ok(Self {
            rx,
            current: Vec::new().into_iter(),
            current_end: None,
            taken: HashMap::new(),
            shared,
            metrics,
            checkpoint_file,
            thread: Some(thread),
        })
    }

    /// The follower's metrics, to register into a registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The next line, waiting for one. `None` once shutdown has drained every file.
    pub async fn next(&mut self) -> Option<Line> {
        loop {
            if let Some(line) = self.current.next() {
                if self.current.len() == 0 {
                    self.mark_taken();
                }
                return Some(line);
            }
            let batch = self.rx.recv().await?;
            self.current_end = Some((batch.file, batch.end));
            self.current = batch.into_lines().into_iter();
        }
    }

    /// The next lines read in one go from one file (at least one), waiting for them. `None` once
    /// shutdown has drained every file. Cheaper per line than [`Follower::next`].
    pub async fn next_batch(&mut self) -> Option<Vec<Line>> {
        if self.current.len() > 0 {
            let rest: Vec<Line> = std::mem::take(&mut self.current).collect();
            self.mark_taken();
            return Some(rest);
        }
        loop {
            let batch = self.rx.recv().await?;
            self.taken.insert(batch.file, batch.end);
            let lines = batch.into_lines();
            if !lines.is_empty() {
                return Some(lines);
            }
        }
    }

    /// The next lines of one file in raw form (at least one line), waiting for them. `None` once
    /// shutdown has drained every file. With [`Config::raw_runs`] the cheapest way to copy lines
    /// out unchanged: runs of whole lines come as one slice of the file's bytes.
    pub async fn next_raw(&mut self) -> Option<RawLines> {
        let newline = Bytes::from_static(b"\n");
        if self.current.len() > 0 {
            let rest: Vec<Line> = std::mem::take(&mut self.current).collect();
            self.mark_taken();
            let path = rest[0].path.clone();
            let lines = rest.len();
            let mut parts = Vec::with_capacity(lines * 2);
            for l in rest {
                parts.push(l.bytes);
                parts.push(newline.clone());
            }
            return Some(RawLines { path, parts, lines });
        }
        loop {
            let batch = self.rx.recv().await?;
            self.taken.insert(batch.file, batch.end);
            let mut parts = Vec::with_capacity(batch.items.len());
            let mut lines = 0;
            for item in batch.items {
                lines += item.lines();
                match item {
                    split::Item::Line(l) => {
                        parts.push(l.bytes);
                        parts.push(newline.clone());
                    }
                    split::Item::Run { bytes, .. } => parts.push(bytes),
                }
            }
            if lines > 0 {
                return Some(RawLines {
                    path: batch.path,
                    parts,
                    lines,
                });
            }
        }
    }

    /// Whether no line is ready right now: a good moment to flush output and [`commit`].
    ///
    /// [`commit`]: Follower::commit
    pub fn is_idle(&self) -> bool {
        self.current.len() == 0 && self.rx.is_empty()
    }

    /// Records every line taken so far as delivered: the next checkpoint resumes after them.
    pub fn commit(&mut self) {
        if self.taken.is_empty() {
            return;
        }
        let mut files = self.shared.lock();
        for (id, end) in self.taken.drain() {
            if let Some(e) = files.get_mut(&id) {
                e.offset = end;
            }
        }
        drop(files);
        self.shared
            .changed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits for the reader thread to finish (after shutdown drained every file) and saves the
    /// checkpoint with what was committed. Call after [`Follower::next`] returned `None`.
    pub async fn finish(mut self) -> Result<(), Error> {
        // The reader may still be blocked on the channel if the consumer stopped early: dropping
        // the receiver releases it.
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            tokio::task::spawn_blocking(move || t.join())
                .await
                .map_err(|e| Error::Thread(e.to_string()))?
                .map_err(|_| Error::Thread("reader thread panicked".to_owned()))?;
        }
        if let Some(path) = &self.checkpoint_file {
            self.shared.save(path).map_err(|source| {
                self.metrics.checkpoint_errors.inc();
                Error::Checkpoint {
                    path: path.clone(),
                    source,
                }
            })?;
            self.metrics.checkpoint_saves.inc();
        }
        Ok(())
    }

    fn mark_taken(&mut self) {
        if let Some((file, end)) = self.current_end.take() {
            self.taken.insert(file, end);
        }
    }
}
