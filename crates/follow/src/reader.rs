//! The reader thread: owns the open files, the watcher and the line splitters.
//!
//! Plain blocking I/O on a thread of its own: reads of regular files never wait on the network,
//! and blocking on the bounded channel is exactly the backpressure wanted when stdout blocks.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::checkpoint::{self, Entry, FINGERPRINT_BYTES};
use crate::metrics::FileMetrics;
use crate::split::{Item, Splitter};
use crate::{Batch, Config, Error, Metrics, Shared, StartFrom};

/// How much one file may be read in one pass before the others get their turn.
const FILE_BUDGET: usize = 1024 * 1024;

/// A deleted file is closed once it has not grown for this long (or `rotate_wait`, if shorter):
/// long enough for a writer still holding it to finish its burst, short enough that its disk space
/// is released soon after.
const DELETED_WAIT: Duration = Duration::from_secs(1);

/// While a deleted file is open it is polled this often: inotify reports no more changes for a
/// file that left its directory.
const DELETED_POLL: Duration = Duration::from_millis(100);

/// How many closed files are remembered (see `Reader::gone`).
const MAX_GONE: usize = 4096;

/// How many files the watcher may hold open for the reader before it takes them (see
/// `Wake::opened`): bounds descriptors and memory when the reader is held up by a slow consumer
/// and files are created faster than it comes round. Past it, new files wait for the reader's
/// rescan, as without inotify.
const MAX_EARLY_OPENS: usize = 1024;

/// How many renamed files the watcher tracks by their new name (see `EarlyOpener::renamed`).
const MAX_RENAMED: usize = 4096;

/// How long a new file waits at most for the watcher to confirm it (see `Reader::confirm`): past
/// it (an event lost, a watch gone), it is read anyway.
const CONFIRM_TIMEOUT: Duration = Duration::from_millis(500);

/// Wakes the reader thread: set by the watcher's callback and by the shutdown task. Flags plus a
/// one-slot channel, so a storm of events costs no memory: they coalesce into "something changed".
#[derive(Debug)]
pub(crate) struct Wake {
    /// A file may have grown: poll the open files.
    dirty: AtomicBool,
    /// Files may have appeared, gone or been renamed: re-expand the patterns.
    rescan: AtomicBool,
    stop: AtomicBool,
    /// An inotify queue overflow or a watcher error: events may have been lost, so the next rescan
    /// opens what it finds at once instead of leaving new files to the watcher.
    lost_events: AtomicBool,
    /// Files the watcher opened the moment they appeared under a matching name (created, or
    /// renamed to it) or were renamed away from one, with the matching name, in the order of the
    /// events. Opening in the watcher's thread, not when the reader comes round to it, is what
    /// keeps a file that is created, written and renamed away within a moment (fast rotation,
    /// or a reader held up by a slow consumer) from never being read: the descriptor reads it
    /// whatever its name becomes.
    opened: std::sync::Mutex<Vec<Opened>>,
    /// How many files the watcher has queued in all (numbers them).
    pushed: AtomicU64,

    /// The directories watched, as given to the watcher (see `Reader::confirm`).
    watched_dirs: std::sync::Mutex<HashSet<PathBuf>>,
    /// How many times the watcher saw a watched directory opened.
    dir_opens_seen: AtomicU64,
    /// The count of `dir_opens_seen` the reader waits for; 0: none.
    dir_opens_wanted: AtomicU64,
    tx: SyncSender<()>,
}

/// A file the watcher opened.
#[derive(Debug)]
struct Opened {
    label: PathBuf,
    file: File,
    /// Its number in the order of queueing.
    seq: u64,
    /// Opened at a rename away from the matching name.
    renamed: bool,
}

/// Glob patterns as the watcher matches event paths against them.
#[derive(Debug, Clone)]
struct Matcher(Vec<glob::Pattern>);

impl Matcher {
    fn new(paths: &[String]) -> Self {
        Self(
            paths
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect(),
        )
    }

    fn matches(&self, path: &Path) -> bool {
        // As `glob::glob` expands: a `*` never crosses a `/`.
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        // notify joins names to the watched directory as given: `./app.log` for `app.log`.
        let rel = path
            .strip_prefix(".")
            .ok()
            .filter(|_| path.starts_with("."));
        self.0.iter().any(|p| {
            p.matches_path_with(path, opts) || rel.is_some_and(|r| p.matches_path_with(r, opts))
        })
    }
}

/// The watcher's side of following by inode: opens files as the events name them.
#[derive(Debug)]
struct EarlyOpener {
    matcher: Matcher,
    /// Files renamed away from a matching name (or renamed again after that), by their current
    /// name, with the matching name they had: a rename of one of them is followed too, so a
    /// file renamed twice before it could be opened (`app.log` to `app.log.1` to `app.log.2`)
    /// is still found.
    renamed: HashMap<PathBuf, PathBuf>,
}

impl EarlyOpener {
    /// Handles one event; returns whether a file was opened.
    fn on_event(&mut self, ev: &notify::Event, wake: &Wake) -> bool {
        use notify::event::{CreateKind, RemoveKind, RenameMode};
        match ev.kind {
            EventKind::Create(CreateKind::File | CreateKind::Any | CreateKind::Other) => {
                let mut any = false;
                for p in &ev.paths {
                    if self.matcher.matches(p) {
                        any |= wake.open_early(p, p, false);
                    }
                }
                any
            }
            // Moved in under a matching name (from another directory, or by a rename whose
            // other half follows as `Both`).
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                let mut any = false;
                for p in &ev.paths {
                    if self.matcher.matches(p) {
                        any |= wake.open_early(p, p, false);
                    }
                }
                any
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if ev.paths.len() == 2 => {
                let (from, to) = (&ev.paths[0], &ev.paths[1]);
                let label = self
                    .renamed
                    .remove(from)
                    .or_else(|| self.matcher.matches(from).then(|| from.clone()));
                match label {
                    // A matching name moved to another matching name was opened by the `To`.
                    Some(label) if !self.matcher.matches(to) => {
                        if self.renamed.len() >= MAX_RENAMED {
                            self.renamed.clear();
                        }
                        self.renamed.insert(to.clone(), label.clone());
                        wake.open_early(to, &label, true)
                    }
                    _ => false,
                }
            }
            EventKind::Remove(RemoveKind::File | RemoveKind::Any | RemoveKind::Other) => {
                for p in &ev.paths {
                    self.renamed.remove(p);
                }
                false
            }
            EventKind::Access(notify::event::AccessKind::Open(_)) => {
                let dirs = wake.watched_dirs.lock().unwrap_or_else(|e| e.into_inner());
                if ev.paths.iter().any(|p| dirs.contains(p)) {
                    drop(dirs);
                    let seen = wake.dir_opens_seen.fetch_add(1, Ordering::SeqCst) + 1;
                    let wanted = wake.dir_opens_wanted.load(Ordering::SeqCst);
                    if wanted != 0 && seen >= wanted {
                        // The reader's marker: wake it to read what it held back.
                        wake.rescan.store(true, Ordering::SeqCst);
                    }
                }
                false
            }
            _ => false,
        }
    }
}

impl Wake {
    fn ring(&self) {
        match self.tx.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// Asks the reader to drain every file and stop.
    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.ring();
    }

    /// Opens `path` for the reader, to be followed under the name `label`. A file gone already
    /// (created and deleted or renamed again between two events) is left to the events that
    /// follow, or lost: the remaining window.
    fn open_early(&self, path: &Path, label: &Path, renamed: bool) -> bool {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if opened.len() >= MAX_EARLY_OPENS {
            return false;
        }
        match File::open(path) {
            Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => {
                let seq = self.pushed.fetch_add(1, Ordering::SeqCst);
                opened.push(Opened {
                    label: label.to_path_buf(),
                    file: f,
                    seq,
                    renamed,
                });
                true
            }
            _ => false,
        }
    }
}

/// An opening of a watched directory by the reader, awaited in the watcher's event stream: once
/// the watcher has handled it, it has handled (and opened the files of) every event before it.
#[derive(Debug)]
struct Marker {
    /// The count of `Wake::dir_opens_seen` that includes it.
    want: u64,
    at: Instant,
    /// The files it confirms: those the watcher had queued when it was made (`Opened::seq`
    /// below it). Not those queued after: the watcher opens a file when it handles the event,
    /// and a file it opened after the marker was made may be newer than files whose events come
    /// after the marker.
    upto: u64,
    /// And the files the reader had already opened: ids below this.
    next_id: u64,
    /// Whether it confirms anything (else it only waits for the reader's earlier openings).
    files: Vec<u64>,
}

/// Why the patterns are expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// At startup: files present are opened per [`StartFrom`].
    Initial,
    /// While following.
    Event,
    /// At shutdown: every file there is gets read.
    Final,
}

/// One path pattern.
#[derive(Debug)]
struct Pattern {
    text: String,
    /// Whether it contains glob metacharacters.
    is_glob: bool,
    /// The deepest directory that has no metacharacter: watched so new files and subdirectories
    /// are seen.
    base: PathBuf,
}

/// An open file.
#[derive(Debug)]
struct Tailed {
    /// Key into [`Shared`] and [`Batch::file`].
    id: u64,
    path: Arc<Path>,
    /// The path as the metric label and the checkpoint's informational name.
    label: String,
    file: File,
    dev: u64,
    ino: u64,
    /// Read position (the file's cursor).
    pos: u64,
    split: Splitter,
    /// Set when the path no longer names this file: drain, then close.
    retired: Option<Instant>,
    /// A live file opened while following, not read until the watcher has caught up with the
    /// moment it was opened (see `Reader::confirm`).
    unconfirmed: bool,
    /// The watcher has seen it renamed away from its name. A rotated file whose rename the
    /// watcher has not handled yet is read after those whose rename it has: it is the newest.
    rename_seen: bool,
    last_growth: Instant,
    /// Bytes the current fingerprint covers: extended by what is read while below
    /// [`FINGERPRINT_BYTES`].
    fp_len: u64,
    /// The fingerprint itself: a file whose first bytes no longer match was truncated and
    /// written again, even if it is now as long as the offset read (copytruncate racing a writer).
    fp: u64,
    metrics: FileMetrics,
}

pub(crate) struct Reader {
    cfg: Config,
    patterns: Vec<Pattern>,
    files: Vec<Tailed>,
    next_id: u64,
    tx: mpsc::Sender<Batch>,
    shared: Arc<Shared>,
    metrics: Metrics,
    wake: Arc<Wake>,
    wake_rx: Receiver<()>,
    /// Kept alive for its inotify thread; `None` when inotify is unavailable (polling only).
    watcher: Option<RecommendedWatcher>,
    /// Directories watched, with the (dev, inode) they had, to re-watch a recreated directory.
    watched: HashMap<PathBuf, (u64, u64)>,
    /// Entries of the checkpoint loaded at startup, by (dev, inode), used on the first open.
    restored: checkpoint::ByInode,
    /// Files closed after rotation, by (dev, inode): if one shows up again under a name that
    /// matches (a glob like `*.log*` also matches `app.log.1`), it resumes where it was closed
    /// instead of being read again.
    gone: checkpoint::ByInode,
    /// Files the last rescans found by globbing in a watched directory but left to the watcher,
    /// with when each was first seen (see `rescan`).
    unclaimed: HashMap<(u64, u64), Instant>,
    /// Whether new live files wait for the watcher's confirmation: with a watcher and patterns
    /// whose only wildcards are in the file name, so that every opening of a watched directory
    /// by this thread is known (see `confirm`).
    confirming: bool,
    /// Openings of watched directories by this thread (globbing, checkpoint fsync, markers).
    dir_opens_caused: u64,
    /// The marker awaited: the count of openings it completes and when it was made.
    marker: Option<Marker>,
    /// In the final scan: every file is read at once.
    final_scan: bool,
    /// The consumer went away: stop reading.
    closed: bool,
    /// Read buffer (see `read`).
    buf: BytesMut,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("files", &self.files.len())
            .finish_non_exhaustive()
    }
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn base_dir(pattern: &str) -> PathBuf {
    let mut base = PathBuf::new();
    let p = Path::new(pattern);
    let comps: Vec<_> = p.components().collect();
    for (i, c) in comps.iter().enumerate() {
        let s = c.as_os_str().to_string_lossy();
        // The last component names files, never a directory to watch.
        if is_glob(&s) || i + 1 == comps.len() {
            break;
        }
        base.push(c);
    }
    if base.as_os_str().is_empty() {
        base.push(".");
    }
    base
}

impl Reader {
    pub(crate) fn new(
        cfg: Config,
        tx: mpsc::Sender<Batch>,
        shared: Arc<Shared>,
        metrics: Metrics,
    ) -> Result<(Self, Arc<Wake>), Error> {
        let patterns: Vec<Pattern> = cfg
            .paths
            .iter()
            .map(|p| Pattern {
                text: p.clone(),
                is_glob: is_glob(p),
                base: base_dir(p),
            })
            .collect();
        let (wake_tx, wake_rx) = sync_channel(1);
        let wake = Arc::new(Wake {
            dirty: AtomicBool::new(false),
            rescan: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            lost_events: AtomicBool::new(false),
            opened: std::sync::Mutex::new(Vec::new()),
            pushed: AtomicU64::new(0),
            watched_dirs: std::sync::Mutex::new(HashSet::new()),
            dir_opens_seen: AtomicU64::new(0),
            dir_opens_wanted: AtomicU64::new(0),
            tx: wake_tx,
        });
        let w = wake.clone();
        let mut early = EarlyOpener {
            matcher: Matcher::new(&cfg.paths),
            renamed: HashMap::new(),
        };
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            match res {
                Ok(ev) => {
                    let grew = matches!(
                        ev.kind,
                        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Metadata(_))
                            | EventKind::Access(_)
                    );
                    if ev.need_rescan() {
                        w.lost_events.store(true, Ordering::SeqCst);
                    }
                    early.on_event(&ev, &w);
                    if ev.need_rescan() || !grew {
                        w.rescan.store(true, Ordering::SeqCst);
                    }
                }
                Err(_) => {
                    w.lost_events.store(true, Ordering::SeqCst);
                    w.rescan.store(true, Ordering::SeqCst);
                }
            }
            w.dirty.store(true, Ordering::SeqCst);
            w.ring();
        })?;
        let restored = match &cfg.checkpoint_file {
            None => HashMap::new(),
            Some(path) => match checkpoint::load(path) {
                Ok(Some(m)) => {
                    tracing::info!(checkpoint = %path.display(), files = m.len(), "resuming from checkpoint");
                    m
                }
                Ok(None) => HashMap::new(),
                Err(e) => {
                    metrics.checkpoint_errors.inc();
                    tracing::warn!(checkpoint = %path.display(), error = %e, "ignoring unreadable checkpoint; starting without it");
                    HashMap::new()
                }
            },
        };
        // Confirmation counts the reader's own openings of watched directories: known when
        // globbing lists only the pattern's own directory.
        let patterns_confirmable = patterns.iter().all(|p: &Pattern| {
            !p.is_glob || Path::new(&p.text).parent().is_some_and(|d| d == p.base)
        });
        let reader = Self {
            cfg,
            patterns,
            files: Vec::new(),
            next_id: 0,
            tx,
            shared,
            metrics,
            wake: wake.clone(),
            wake_rx,
            watcher: Some(watcher),
            watched: HashMap::new(),
            restored,
            gone: HashMap::new(),
            unclaimed: HashMap::new(),
            confirming: patterns_confirmable,
            dir_opens_caused: 0,
            marker: None,
            final_scan: false,
            closed: false,
            buf: BytesMut::new(),
        };
        Ok((reader, wake))
    }

    /// The first scan: opens what exists and, with `StartFrom::End`, fixes each file's start at its
    /// current size. Called by `Follower::start` before it returns, so a line written after start
    /// returned is never taken for one from before (the caller may report ready, and traffic may
    /// follow, before the reader thread is first scheduled).
    pub(crate) fn scan_initial(&mut self) {
        self.rescan(Scan::Initial);
    }

    /// The thread's body: follow until shutdown, then drain.
    pub(crate) fn run(mut self) {
        // A first read that stopped on its budget (a backlog: the sidecar started after the
        // application, or a pod restart) goes on at once: no inotify event will come for bytes
        // that are already there, and waiting for the rescan timer would stall the backlog.
        let mut hot = self.poll(false);
        let mut last_rescan = Instant::now();
        let mut last_save = Instant::now();
        while !self.closed {
            let timeout = if hot {
                Duration::ZERO
            } else if self.marker.is_some() {
                CONFIRM_TIMEOUT / 10
            } else if self.files.iter().any(|f| f.retired.is_some()) {
                DELETED_POLL.min(self.cfg.rescan_interval)
            } else {
                self.cfg
                    .rescan_interval
                    .saturating_sub(last_rescan.elapsed())
            };
            match self.wake_rx.recv_timeout(timeout) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.wake.stop.load(Ordering::SeqCst) {
                break;
            }
            if self.tx.is_closed() {
                // The consumer dropped the follower without a shutdown: nobody to read for.
                self.closed = true;
                break;
            }
            let mut rescanned = false;
            if self.wake.rescan.swap(false, Ordering::SeqCst)
                || last_rescan.elapsed() >= self.cfg.rescan_interval
                || self
                    .marker
                    .as_ref()
                    .is_some_and(|m| m.at.elapsed() >= CONFIRM_TIMEOUT)
            {
                self.rescan(Scan::Event);
                last_rescan = Instant::now();
                rescanned = true;
            }
            let draining = self.files.iter().any(|f| f.retired.is_some());
            if self.wake.dirty.swap(false, Ordering::SeqCst) || hot || rescanned || draining {
                hot = self.poll(false);
            }
            if last_save.elapsed() >= self.cfg.checkpoint_interval {
                self.save_checkpoint();
                last_save = Instant::now();
            }
        }
        // Shutdown: pick up files that appeared since the last scan, read everything to its end,
        // and emit what is held of unterminated lines.
        if !self.closed {
            self.drain();
        }
        // Dropping the sender (with self) closes the channel: the consumer's next() returns None.
        tracing::debug!(files = self.files.len(), "follower drained");
    }

    /// The end of following: picks up every file there is, reads each to its end and emits what
    /// is held of unterminated lines.
    pub(crate) fn drain(&mut self) {
        self.rescan(Scan::Final);
        while self.poll(true) && !self.closed {}
        for i in 0..self.files.len() {
            self.flush_partial(i);
        }
    }

    pub(crate) fn save_checkpoint(&mut self) {
        let Some(path) = self.cfg.checkpoint_file.clone() else {
            return;
        };
        if !self.shared.changed.load(Ordering::Relaxed) {
            return;
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if self.watched.contains_key(&dir) {
            // The save opens the directory to fsync it.
            self.dir_opens_caused += 1;
        }
        match self.shared.save(&path) {
            Ok(()) => {
                self.metrics.checkpoint_saves.inc();
            }
            Err(e) => {
                self.metrics.checkpoint_errors.inc();
                tracing::warn!(checkpoint = %path.display(), error = %e, "cannot save checkpoint");
            }
        }
    }

    /// Expands the patterns, opens new files, retires files whose path now names something else,
    /// and (re)watches directories.
    ///
    /// Files the watcher opened come first, in the order of their events. A file the glob finds
    /// in a directory that was already watched is left to the watcher for a rescan interval: the
    /// watcher may still be behind by a few events, and opening a newer file of a fast rotation
    /// before the older ones the watcher holds would read them out of order. After that (the
    /// watcher could not open it), after lost events, at startup and at the end, the glob opens
    /// what it finds at once.
    fn rescan(&mut self, scan: Scan) {
        let initial = scan == Scan::Initial;
        self.final_scan = scan == Scan::Final;
        let lost = self.wake.lost_events.swap(false, Ordering::SeqCst);
        // Checked before taking the watcher's files: once the marker is handled, every file the
        // watcher opened before it is in the queue.
        let reached = self
            .marker
            .as_ref()
            .is_some_and(|m| self.wake.dir_opens_seen.load(Ordering::SeqCst) >= m.want);
        let confirmed = self
            .marker
            .take_if(|m| self.final_scan || lost || reached || m.at.elapsed() >= CONFIRM_TIMEOUT);
        // Files still waiting for a marker take nothing new. A marker reached takes the whole
        // queue, but only what was queued before it was made is confirmed, and what was queued
        // since at a rename: a file opened since at a creation event was opened by the name the
        // event gave, which may by then name a newer file than the older ones whose renames the
        // watcher has not handled yet; it waits for the next marker. Leaving the renamed ones in
        // the queue instead would let an older file come out after a newer one confirmed here.
        let waiting = self.files.iter().any(|f| f.unconfirmed) || self.marker.is_some();
        let (take, confirm_below) = match &confirmed {
            Some(m) if reached && !m.files.is_empty() && !self.final_scan && !lost => {
                (u64::MAX, m.upto)
            }
            Some(_) => (u64::MAX, u64::MAX),
            None if waiting => (0, 0),
            None => (u64::MAX, u64::MAX),
        };
        let attached_from = self.next_id;
        let held = self.attach_opened(take, confirm_below);
        if let Some(m) = confirmed {
            self.wake.dir_opens_wanted.store(0, Ordering::SeqCst);
            let seen = self.wake.dir_opens_seen.load(Ordering::SeqCst);
            if seen < m.want {
                // Timed out (an event lost, or merged by inotify into an identical one before
                // it): start again from what the watcher saw.
                self.dir_opens_caused = seen;
            }
            if !m.files.is_empty() || self.final_scan {
                // Everything queued before the marker was made is here now: it can be read,
                // with what was open then. Not files the glob opened since.
                let all = self.final_scan || confirm_below == u64::MAX;
                for f in &mut self.files {
                    if (all || f.id < m.next_id || f.id >= attached_from) && !held.contains(&f.id) {
                        f.unconfirmed = false;
                    }
                }
            }
        }
        let trust_watcher = scan == Scan::Event && !lost && self.watcher.is_some();
        let watched_before: HashSet<PathBuf> = if trust_watcher {
            self.watched.keys().cloned().collect()
        } else {
            HashSet::new()
        };
        // Files the watcher opened wait for a marker; issued before globbing, so the glob (only a
        // safety net here) does not delay it.
        self.issue_marker();
        let mut unclaimed = HashMap::new();
        let mut found: Vec<PathBuf> = Vec::new();
        let mut dirs: HashSet<PathBuf> = HashSet::new();
        let mut settled = self.dir_opens_settled();
        for p in &self.patterns {
            dirs.insert(p.base.clone());
            if p.is_glob {
                if self.watched.contains_key(&p.base) {
                    if trust_watcher && self.confirming && !settled {
                        // Only a safety net here: skipped while an opening of ours is not
                        // handled yet, as inotify would merge the two into one event.
                        continue;
                    }
                    // Globbing lists the base directory: an opening the watcher counts.
                    self.dir_opens_caused += 1;
                    settled = false;
                }
                match glob::glob(&p.text) {
                    Ok(paths) => found.extend(paths.flatten()),
                    Err(e) => tracing::warn!(pattern = %p.text, error = %e, "bad pattern"),
                }
            } else {
                found.push(PathBuf::from(&p.text));
            }
        }
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut present: HashSet<(u64, u64)> = HashSet::new();
        for path in found {
            if !seen.insert(path.clone()) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let key = (meta.dev(), meta.ino());
            present.insert(key);
            if self.files.iter().any(|f| f.dev == key.0 && f.ino == key.1) {
                dirs.insert(parent);
                continue;
            }
            if watched_before.contains(&parent) {
                let first = self
                    .unclaimed
                    .get(&key)
                    .copied()
                    .unwrap_or_else(Instant::now);
                if first.elapsed() < self.cfg.rescan_interval {
                    unclaimed.insert(key, first);
                    dirs.insert(parent);
                    continue;
                }
            }
            dirs.insert(parent);
            // A file this path did not name before. If we follow another file under the same
            // path, that one was rotated or replaced: retire it (it is drained first, then closed).
            self.retire_path(&path);
            self.open(&path, initial);
        }
        self.unclaimed = unclaimed;
        // Followed files whose path is gone (renamed away, deleted) or names another file.
        let now = Instant::now();
        for f in &mut self.files {
            if f.retired.is_some() {
                continue;
            }
            let same = std::fs::metadata(&f.path)
                .map(|m| m.dev() == f.dev && m.ino() == f.ino)
                .unwrap_or(false);
            if !same {
                f.retired = Some(now);
                f.last_growth = now;
                self.metrics.rotations.inc();
                tracing::debug!(path = %f.path.display(), "file rotated away; draining it");
            }
        }
        self.watch_dirs(dirs);
        self.issue_marker();
    }

    /// New live files are read once the watcher has caught up with the moment they were opened:
    /// a watcher behind by a whole fast rotation opens, at the creation event of one `app.log`,
    /// the `app.log` of a later one, and the older files only at their rename events after it.
    /// Reading the newer file first would put its lines before theirs. So the reader opens a
    /// watched directory (an event the watcher counts) and reads the new files once the watcher
    /// has counted it, by when it has opened every file renamed before.
    /// Whether the watcher has handled every opening of a watched directory by this thread; then
    /// the next one cannot be merged with one of them. Openings by others only ever make the
    /// watcher count more: taken as handled.
    fn dir_opens_settled(&mut self) -> bool {
        let seen = self.wake.dir_opens_seen.load(Ordering::SeqCst);
        self.dir_opens_caused = self.dir_opens_caused.max(seen);
        seen >= self.dir_opens_caused
    }

    fn issue_marker(&mut self) {
        if self.marker.is_some() || !self.files.iter().any(|f| f.unconfirmed) {
            return;
        }
        if !self.dir_opens_settled() {
            // An opening of ours is not handled yet, and a marker now could be merged with it
            // into one event: wait for it first (the watcher wakes the reader), then mark.
            let want = self.dir_opens_caused;
            self.wake.dir_opens_wanted.store(want, Ordering::SeqCst);
            if self.wake.dir_opens_seen.load(Ordering::SeqCst) < want {
                self.marker = Some(Marker {
                    want,
                    at: Instant::now(),
                    upto: 0,
                    next_id: 0,
                    files: Vec::new(),
                });
                return;
            }
        }
        let waiting: Vec<u64> = self
            .files
            .iter()
            .filter(|f| f.unconfirmed)
            .map(|f| f.id)
            .collect();
        let Some(dir) = self.watched.keys().next().cloned() else {
            for f in &mut self.files {
                f.unconfirmed = false;
            }
            return;
        };
        let want = self.dir_opens_caused + 1;
        let upto = self.wake.pushed.load(Ordering::SeqCst);
        self.wake.dir_opens_wanted.store(want, Ordering::SeqCst);
        if File::open(&dir).is_err() {
            self.wake.dir_opens_wanted.store(0, Ordering::SeqCst);
            for f in &mut self.files {
                f.unconfirmed = false;
            }
            return;
        }
        self.dir_opens_caused = want;
        self.marker = Some(Marker {
            want,
            at: Instant::now(),
            upto,
            next_id: self.next_id,
            files: waiting,
        });
    }

    fn retire_path(&mut self, path: &Path) {
        let now = Instant::now();
        for f in &mut self.files {
            if f.retired.is_none() && *f.path == *path {
                f.retired = Some(now);
                f.last_growth = now;
                self.metrics.rotations.inc();
                tracing::debug!(path = %path.display(), "path names a new file; draining the old one");
            }
        }
    }

    fn watch_dirs(&mut self, dirs: HashSet<PathBuf>) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        for dir in dirs {
            let Ok(meta) = std::fs::metadata(&dir) else {
                self.watched.remove(&dir);
                continue;
            };
            let key = (meta.dev(), meta.ino());
            if self.watched.get(&dir) == Some(&key) {
                continue;
            }
            if self.watched.contains_key(&dir) {
                let _ = watcher.unwatch(&dir);
            }
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.wake
                        .watched_dirs
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(dir.clone());
                    self.watched.insert(dir, key);
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; relying on the periodic rescan");
                }
            }
        }
    }

    /// Takes the files the watcher opened, in the order it opened them. One already followed, or
    /// closed before and unchanged since (a rotated file renamed once more), is dropped.
    ///
    /// Files of one name are read in the order of the files vector (rotated files first, then
    /// the live one), which for files the watcher opened is the order of their last event.
    /// Only files queued before `take` (in queueing order) are taken. Returns the ids of the
    /// files taken that a marker cannot confirm yet: opened at a creation event queued at or
    /// after `confirm_below`, and not seen renamed since.
    fn attach_opened(&mut self, take: u64, confirm_below: u64) -> Vec<u64> {
        let opened: Vec<Opened> = {
            let mut q = self.wake.opened.lock().unwrap_or_else(|e| e.into_inner());
            let n = q.iter().take_while(|o| o.seq < take).count();
            q.drain(..n).collect()
        };
        let first_new = self.next_id;
        let mut held: Vec<u64> = Vec::new();
        for Opened {
            label,
            file,
            renamed,
            seq,
        } in opened
        {
            let hold = !renamed && seq >= confirm_below;
            let Ok(meta) = file.metadata() else {
                continue;
            };
            let key = (meta.dev(), meta.ino());
            if let Some(i) = self.files.iter().position(|f| (f.dev, f.ino) == key) {
                // Opened again at a later event: a file not read yet moves to where that event
                // puts it. Its rename came after the renames of the files opened before it here,
                // so it is the newer one (opened at first, by a watcher behind, under the name
                // of an older one).
                self.files[i].rename_seen |= renamed;
                let id = self.files[i].id;
                if renamed {
                    // Its place is final now: the rename is an event in order with the others.
                    held.retain(|&h| h != id);
                } else if hold && self.files[i].unconfirmed && !held.contains(&id) {
                    held.push(id);
                }
                if self.files[i].unconfirmed || id >= first_new {
                    let f = self.files.remove(i);
                    self.files.push(f);
                }
                continue;
            }
            if let Some(e) = self.gone.get(&key)
                && e.offset >= meta.len()
                && checkpoint::matches(&file, &e.id)
            {
                continue;
            }
            tracing::debug!(path = %label.display(), "opened on its inotify event");
            let before = self.next_id;
            self.follow(file, &label, false);
            if self.next_id == before {
                continue;
            }
            if renamed && let Some(f) = self.files.last_mut() {
                f.rename_seen = true;
            } else if hold {
                held.push(before);
            }
        }
        held
    }

    fn open(&mut self, path: &Path, initial: bool) {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open");
                return;
            }
        };
        self.follow(file, path, initial);
    }

    /// Follows the open `file` under the name `path`.
    fn follow(&mut self, mut file: File, path: &Path, initial: bool) {
        let Ok(meta) = file.metadata() else {
            return;
        };
        let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
        let Ok(ident) = checkpoint::fingerprint(&file, dev, ino) else {
            return;
        };
        let label = path.to_string_lossy().into_owned();
        let mut start = 0;
        let known = self
            .gone
            .remove(&(dev, ino))
            .or_else(|| self.restored.remove(&(dev, ino)));
        match known {
            Some(e) if checkpoint::matches(&file, &e.id) && e.offset <= size => {
                start = e.offset;
            }
            Some(e) if checkpoint::matches(&file, &e.id) => {
                // Truncated while we were down.
                tracing::info!(path = %label, offset = e.offset, size, "file shrank since the checkpoint; reading from its start");
                self.metrics.truncations.inc();
            }
            restored => {
                if restored.is_some() {
                    tracing::info!(path = %label, "inode reused by another file since the checkpoint; reading from its start");
                }
                if initial && self.cfg.from == StartFrom::End {
                    start = size;
                }
            }
        }
        if start > 0
            && let Err(e) = file.seek(SeekFrom::Start(start))
        {
            tracing::warn!(path = %label, error = %e, "cannot seek");
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.shared.lock().insert(
            id,
            Entry {
                path: label.clone(),
                id: ident,
                offset: start,
            },
        );
        self.shared.changed.store(true, Ordering::Relaxed);
        let now = Instant::now();
        tracing::debug!(path = %label, offset = start, "following");
        let unconfirmed = self.confirming && !initial && !self.final_scan;
        self.files.push(Tailed {
            unconfirmed,
            rename_seen: false,
            id,
            path: Arc::from(path),
            metrics: self.metrics.file(&label),
            label,
            file,
            dev,
            ino,
            pos: start,
            split: Splitter::new(
                self.cfg.max_line_bytes,
                self.cfg.long_lines,
                start,
                self.cfg.raw_runs,
            ),
            retired: None,
            last_growth: now,
            fp_len: ident.fp_len,
            fp: ident.fp,
        });
        self.metrics.files_watched.set(self.files.len() as i64);
    }

    /// One pass over the open files. Returns whether to poll again right away: a file had more
    /// than its budget, or (outside shutdown) had a full read buffer of new data and may have
    /// more by now.
    ///
    /// Order matters for rotation: the sizes of the live files are taken first, then retired files
    /// are read to their end, then live files up to the sizes taken. A writer that wrote its last
    /// line to the old file before its first line to the new one then has that last line read
    /// first, whatever the timing.
    fn poll(&mut self, unlimited: bool) -> bool {
        let budget = if unlimited { usize::MAX } else { FILE_BUDGET };
        let sizes: Vec<Option<u64>> = self
            .files
            .iter()
            .map(|f| {
                if f.retired.is_none() && !f.unconfirmed {
                    f.file.metadata().ok().map(|m| m.len())
                } else {
                    None
                }
            })
            .collect();
        let mut more = false;
        let mut retired: Vec<usize> = (0..self.files.len())
            .filter(|&i| self.files[i].retired.is_some() && !self.files[i].unconfirmed)
            .collect();
        // Rotated files whose rename the watcher handled first, in the order of their events.
        retired.sort_by_key(|&i| !self.files[i].rename_seen);
        for i in retired {
            // A file truncated and then renamed away before this pass was truncated all the
            // same.
            if let Ok(m) = self.files[i].file.metadata()
                && !self.check_truncated(i, m.len())
            {
                continue;
            }
            // Retired files are finite: read them to their end regardless of the budget.
            self.read(i, None, usize::MAX);
        }
        for (i, size) in sizes.into_iter().enumerate() {
            let Some(size) = size else { continue };
            if !self.check_truncated(i, size) {
                continue;
            }
            let f = &mut self.files[i];
            // A file that had a full read buffer of new data is looked at again right away
            // instead of after the next inotify event: a writer streaming fast is followed
            // without a wake-up per write, while a trickle of lines still sleeps between events.
            // Not at shutdown, where one pass up to the sizes taken is the end.
            if size - f.pos >= self.cfg.read_buffer_bytes as u64 && !unlimited {
                more = true;
            }
            if self.read(i, Some(size), budget) {
                more = true;
            }
            // What is left of what was there at the start of the pass: zero once caught up.
            let f = &self.files[i];
            f.metrics.lag.set(size.saturating_sub(f.pos) as i64);
        }
        self.close_finished();
        more && !self.closed
    }

    /// Detects that file `i`, now `size` bytes long, was truncated, and restarts it at 0. Returns
    /// false when it cannot be read on (a failed seek).
    fn check_truncated(&mut self, i: usize, size: u64) -> bool {
        {
            let f = &mut self.files[i];
            // Truncated and already written again up to or past the offset (a copytruncate whose
            // writer went on before this pass): the size alone cannot tell, the first bytes can.
            // One read of at most FINGERPRINT_BYTES per file and pass.
            let rewritten = size >= f.pos
                && f.pos > 0
                && f.fp_len > 0
                && !checkpoint::matches(
                    &f.file,
                    &checkpoint::Identity {
                        dev: f.dev,
                        ino: f.ino,
                        fp_len: f.fp_len,
                        fp: f.fp,
                    },
                );
            if size < f.pos || rewritten {
                tracing::info!(path = %f.label, offset = f.pos, size, rewritten, "file truncated; reading from its start");
                self.metrics.truncations.inc();
                if let Err(e) = f.file.seek(SeekFrom::Start(0)) {
                    tracing::warn!(path = %f.label, error = %e, "cannot seek");
                    return false;
                }
                f.pos = 0;
                f.split.reset(0);
                f.fp_len = 0;
                f.fp = checkpoint::fnv1a(&[]);
            }
        }
        true
    }

    /// Reads file `i` up to `limit` (or its end) and at most about `budget` bytes; sends the lines.
    /// Returns whether it stopped on the budget with more to read.
    fn read(&mut self, i: usize, limit: Option<u64>, budget: usize) -> bool {
        let chunk_size = self.cfg.read_buffer_bytes;
        let mut total = 0usize;
        let mut lines: Vec<Item> = Vec::new();
        loop {
            if self.closed {
                return false;
            }
            let f = &mut self.files[i];
            let want = match limit {
                Some(l) => (l.saturating_sub(f.pos)).min(chunk_size as u64) as usize,
                None => chunk_size,
            };
            if want == 0 {
                return false;
            }
            if total >= budget {
                return true;
            }
            // One buffer, refilled: once the consumer has dropped the lines of earlier reads,
            // `reserve` takes the same memory back instead of faulting in fresh pages.
            let buf = &mut self.buf;
            if buf.capacity() < want {
                buf.reserve(want.max(chunk_size));
            }
            buf.resize(want, 0);
            let n = match f.file.read(&mut buf[..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(path = %f.label, error = %e, "read failed");
                    return false;
                }
            };
            buf.truncate(n);
            if n == 0 {
                return false;
            }
            let chunk = buf.split().freeze();
            // A fresh `Arc` of the path per batch: the consumer drops the lines of one batch on
            // its thread while this thread builds the next, and a shared reference count would
            // bounce one cache line between the two for every line.
            let path: Arc<Path> = Arc::from(&*f.path);
            let off = f.pos;
            // The fingerprint follows the bytes as they were read, not the file as it is later:
            // by then a truncate-and-rewrite may have replaced them, and its bytes would become
            // the reference. A read from the start rebuilds it (the file may have been rewritten
            // between being opened and this read); a read right after the bytes it covers, while
            // it covers fewer than FINGERPRINT_BYTES, extends it.
            if off == 0 || (f.fp_len < FINGERPRINT_BYTES && off == f.fp_len) {
                let take = (FINGERPRINT_BYTES - off).min(n as u64) as usize;
                let (base, len) = if off == 0 {
                    (checkpoint::fnv1a(&[]), 0)
                } else {
                    (f.fp, f.fp_len)
                };
                f.fp = checkpoint::fnv1a_extend(base, &chunk[..take]);
                f.fp_len = len + take as u64;
                if let Some(e) = self.shared.lock().get_mut(&f.id) {
                    e.id.fp_len = f.fp_len;
                    e.id.fp = f.fp;
                }
                self.shared.changed.store(true, Ordering::Relaxed);
            }
            f.pos += n as u64;
            f.last_growth = Instant::now();
            total += n;
            f.split.push(&chunk, off, &path, &mut lines);
            f.metrics.bytes.inc_by(n as u64);
            if !lines.is_empty() {
                let count: usize = lines.iter().map(Item::lines).sum();
                f.metrics.lines.inc_by(count as u64);
                let batch = Batch {
                    file: f.id,
                    end: f.split.consumed(),
                    path,
                    items: std::mem::take(&mut lines),
                };
                self.send(batch);
            }
        }
    }

    fn send(&mut self, batch: Batch) {
        // Blocks while the channel is full: the consumer is behind, so reading pauses.
        if self.tx.blocking_send(batch).is_err() {
            self.closed = true;
        }
    }

    fn flush_partial(&mut self, i: usize) {
        let f = &mut self.files[i];
        let mut lines = Vec::new();
        f.split.flush(&f.path, &mut lines);
        if lines.is_empty() {
            return;
        }
        f.metrics.lines.inc_by(lines.len() as u64);
        let batch = Batch {
            file: f.id,
            end: f.split.consumed(),
            path: f.path.clone(),
            items: lines,
        };
        self.send(batch);
    }

    /// Closes retired files that are deleted (never keep a deleted file open) or have not grown
    /// for `rotate_wait`.
    fn close_finished(&mut self) {
        let mut i = 0;
        while i < self.files.len() {
            let f = &self.files[i];
            let done = match f.retired {
                _ if f.unconfirmed => false,
                None => false,
                Some(_) => {
                    let idle = f.last_growth.elapsed();
                    let deleted = f.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true);
                    if deleted && idle >= DELETED_WAIT.min(self.cfg.rotate_wait) {
                        self.metrics.deletions.inc();
                        true
                    } else {
                        idle >= self.cfg.rotate_wait
                    }
                }
            };
            if done {
                self.flush_partial(i);
                let f = self.files.remove(i);
                tracing::debug!(path = %f.label, offset = f.pos, "closed");
                let entry = self.shared.lock().remove(&f.id);
                if let Some(mut e) = entry {
                    if self.gone.len() >= MAX_GONE {
                        self.gone.clear();
                    }
                    if let Ok(id) = checkpoint::fingerprint(&f.file, f.dev, f.ino) {
                        e.id = id;
                    }
                    e.offset = f.split.consumed();
                    self.gone.insert((f.dev, f.ino), e);
                }
                self.shared.changed.store(true, Ordering::Relaxed);
                if !self.files.iter().any(|o| o.label == f.label) {
                    self.metrics.forget(&f.label);
                }
                self.metrics.files_watched.set(self.files.len() as i64);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod model_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_dirs() {
        assert_eq!(
            base_dir("/var/log/app/*.log"),
            PathBuf::from("/var/log/app")
        );
        assert_eq!(base_dir("/var/log/*/x.log"), PathBuf::from("/var/log"));
        assert_eq!(base_dir("/var/log/app.log"), PathBuf::from("/var/log"));
        assert_eq!(base_dir("app.log"), PathBuf::from("."));
        assert!(is_glob("a/*.log"));
        assert!(!is_glob("a/b.log"));
    }

    fn lines_of(rx: &mut mpsc::Receiver<Batch>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(b) = rx.try_recv() {
            out.extend(
                b.into_lines()
                    .into_iter()
                    .map(|l| String::from_utf8_lossy(&l.bytes).into_owned()),
            );
        }
        out
    }

    /// The events a simulated watcher has not handled yet, in the order they happened, with the
    /// reader's own openings of the directory among them.
    struct BehindWatcher {
        early: EarlyOpener,
        wake: Arc<Wake>,
        dir: PathBuf,
        events: std::collections::VecDeque<notify::Event>,
        opens_pushed: u64,
    }

    impl BehindWatcher {
        fn happened(&mut self, kind: EventKind, paths: &[&Path]) {
            let mut ev = notify::Event::new(kind);
            for p in paths {
                ev = ev.add_path(p.to_path_buf());
            }
            self.events.push_back(ev);
        }

        /// Records the reader's openings of the directory since the last call.
        fn reader_acted(&mut self, r: &Reader) {
            while self.opens_pushed < r.dir_opens_caused {
                self.opens_pushed += 1;
                let dir = self.dir.clone();
                self.happened(
                    EventKind::Access(notify::event::AccessKind::Open(
                        notify::event::AccessMode::Any,
                    )),
                    &[&dir],
                );
            }
        }

        fn handle(&mut self, n: usize) {
            for _ in 0..n.min(self.events.len()) {
                let ev = self.events.pop_front().unwrap();
                self.early.on_event(&ev, &self.wake);
            }
        }
    }

    /// A watcher behind by several fast rotations opens, at the creation event of an early
    /// `app.log`, the `app.log` of a later one. The files renamed in between are queued after
    /// the marker the reader set, and must still come out before that newer file. Driven step by
    /// step, the watcher's events handled by hand, so the interleaving is certain.
    #[test]
    fn rotated_files_queued_after_a_marker_come_out_before_a_newer_file_opened_early() {
        use notify::event::{CreateKind, RenameMode};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let app = d.join("app.log");
        std::fs::write(&app, "").unwrap();
        let cfg = Config::new([format!("{}/*.log", d.display())]);
        let (tx, mut rx) = mpsc::channel(64);
        let (mut r, wake) = Reader::new(
            cfg.clone(),
            tx,
            Arc::new(Shared::default()),
            Metrics::default(),
        )
        .unwrap();
        // A real watch (so the reader trusts a watcher) whose events go nowhere: they are fed
        // to the opener below, late.
        r.watcher =
            Some(notify::recommended_watcher(|_: notify::Result<notify::Event>| {}).unwrap());
        let mut w = BehindWatcher {
            early: EarlyOpener {
                matcher: Matcher::new(&cfg.paths),
                renamed: HashMap::new(),
            },
            wake,
            dir: d.clone(),
            events: Default::default(),
            opens_pushed: 0,
        };
        r.scan_initial();
        w.reader_acted(&r);
        w.handle(usize::MAX);
        // Four segments written and rotated (app.log -> app.log.K) before the watcher handles
        // more than the first rename and the next creation.
        for k in 0..4u32 {
            let mut f = std::fs::OpenOptions::new().append(true).open(&app).unwrap();
            std::io::Write::write_all(&mut f, format!("app {k}\n").as_bytes()).unwrap();
            if k == 3 {
                break;
            }
            let to = d.join(format!("app.log.{k}"));
            std::fs::rename(&app, &to).unwrap();
            w.happened(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &[&app, &to],
            );
            std::fs::write(&app, "").unwrap();
            w.happened(EventKind::Create(CreateKind::File), &[&app]);
        }
        w.handle(2);
        let mut out = Vec::new();
        for _ in 0..2 {
            r.rescan(Scan::Event);
            w.reader_acted(&r);
            r.poll(false);
            out.extend(lines_of(&mut rx));
        }
        // The watcher catches up: the other renames and creations, then the reader's marker.
        w.handle(usize::MAX);
        for _ in 0..6 {
            r.rescan(Scan::Event);
            w.reader_acted(&r);
            w.handle(usize::MAX);
            r.poll(false);
            out.extend(lines_of(&mut rx));
        }
        assert_eq!(out, ["app 0", "app 1", "app 2", "app 3"]);
    }

    /// A file rewritten between being opened and first read is fingerprinted by what was read:
    /// growing on afterwards is not mistaken for a rewrite (which would read it all again).
    /// Driven step by step, without the thread, so the order is certain.
    #[test]
    fn a_file_rewritten_before_its_first_read_is_fingerprinted_by_what_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, "old\n").unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let metrics = Metrics::default();
        let cfg = Config::new([log.display().to_string()]);
        let (mut r, _wake) =
            Reader::new(cfg, tx, Arc::new(Shared::default()), metrics.clone()).unwrap();
        r.scan_initial();
        // Truncated and written again, longer, before the first read.
        std::fs::write(&log, "new and longer\n").unwrap();
        r.poll(false);
        assert_eq!(lines_of(&mut rx), ["new and longer"]);
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, b"next\n").unwrap();
        r.poll(false);
        assert_eq!(lines_of(&mut rx), ["next"]);
        assert_eq!(metrics.truncations(), 0);
        // A real rewrite to past the offset is still seen.
        std::fs::write(&log, "rewritten to well past the old length\n").unwrap();
        r.poll(false);
        assert_eq!(lines_of(&mut rx), ["rewritten to well past the old length"]);
        assert_eq!(metrics.truncations(), 1);
    }
}
