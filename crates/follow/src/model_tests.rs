//! A model-based test of the reader (after vector's file-source `file_watcher` tests): random
//! sequences of what applications and logrotate do to log files are applied to real files in a
//! directory followed as `*.log`, with the reader driven step by step and its watcher live, and
//! to a model that says which lines must come out. Every line must come out exactly once, in the
//! order it was written per log. proptest shrinks a failure to a minimal sequence.
//!
//! Cases: `PODMATES_MODEL_CASES` (default 256).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tokio::sync::mpsc;

use super::{Reader, Scan};
use crate::{Batch, Config, Metrics, Shared};

/// Logs followed: `f0.log` .. `f2.log`, each with its own numbered lines.
const LOGS: usize = 3;

#[derive(Debug, Clone)]
enum Action {
    /// Lines appended through the application's descriptor; creates the file if it is absent
    /// (a late file, or one recreated after deletion).
    Append { log: usize, lines: u8 },
    /// The first half of the next line, without its newline: completed by the next write.
    Partial { log: usize },
    /// The reader catches up with everything so far.
    Step,
    /// logrotate `create`: renamed to a name the glob does not match, a few more lines written
    /// through the descriptor still open on it, then a new empty file under the name. Without a
    /// step before it, the file may never have been seen by the reader under its name.
    Rotate { log: usize, old_lines: u8 },
    /// logrotate `copytruncate`, once the reader has read everything (the only moment it loses
    /// nothing).
    CopyTruncate { log: usize },
    /// Truncated in place once read.
    Truncate { log: usize },
    /// Deleted once read; the next append recreates it.
    Delete { log: usize },
    /// The reader stops (reading everything to its end), saves its checkpoint and a new one
    /// starts from it.
    Restart,
}

fn action() -> impl Strategy<Value = Action> {
    let log = 0..LOGS;
    prop_oneof![
        6 => (log.clone(), 1u8..12).prop_map(|(log, lines)| Action::Append { log, lines }),
        2 => log.clone().prop_map(|log| Action::Partial { log }),
        3 => Just(Action::Step),
        3 => (log.clone(), 0u8..4).prop_map(|(log, old_lines)| Action::Rotate { log, old_lines }),
        1 => log.clone().prop_map(|log| Action::CopyTruncate { log }),
        1 => log.clone().prop_map(|log| Action::Truncate { log }),
        1 => log.clone().prop_map(|log| Action::Delete { log }),
        1 => Just(Action::Restart),
    ]
}

fn line(log: usize, n: u64) -> String {
    format!("f{log} {n:06} lorem ipsum dolor sit amet\n")
}

/// The real files, the reader, and what came out.
struct World {
    dir: tempfile::TempDir,
    cfg: Config,
    reader: Option<Reader>,
    rx: mpsc::Receiver<Batch>,
    shared: Arc<Shared>,
    /// Per log: the application's descriptor (`None`: the file does not exist), the rest of a
    /// half-written line, and the number of the next line.
    fds: Vec<Option<File>>,
    pending: Vec<Option<String>>,
    next: Vec<u64>,
    rotations: u64,
    /// Per log, the numbers of the lines that came out, in order.
    out: Vec<Vec<u64>>,
}

impl World {
    fn new(initial: u8) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::new([format!("{}/*.log", dir.path().display())]);
        cfg.checkpoint_file = Some(dir.path().join("checkpoint.json"));
        // Rotated files stay open for the whole case: closing them is a matter of time, which a
        // step-by-step test does not model.
        cfg.rotate_wait = Duration::from_secs(3600);
        // Small reads, so lines cross read boundaries.
        cfg.read_buffer_bytes = 100;
        let mut w = World {
            dir,
            cfg,
            reader: None,
            rx: mpsc::channel(1).1,
            shared: Arc::new(Shared::default()),
            fds: (0..LOGS).map(|_| None).collect(),
            pending: vec![None; LOGS],
            next: vec![0; LOGS],
            rotations: 0,
            out: vec![Vec::new(); LOGS],
        };
        // Lines that exist before the reader starts.
        if initial > 0 {
            w.append(0, initial);
        }
        w.start();
        w
    }

    fn path(&self, log: usize) -> PathBuf {
        self.dir.path().join(format!("f{log}.log"))
    }

    fn start(&mut self) {
        let (tx, rx) = mpsc::channel(1 << 20);
        self.shared = Arc::new(Shared::default());
        let (mut r, _wake) = Reader::new(
            self.cfg.clone(),
            tx,
            self.shared.clone(),
            Metrics::default(),
        )
        .unwrap();
        r.scan_initial();
        self.reader = Some(r);
        self.rx = rx;
    }

    fn fd(&mut self, log: usize) -> &mut File {
        if self.fds[log].is_none() {
            self.fds[log] = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path(log))
                    .unwrap(),
            );
        }
        self.fds[log].as_mut().unwrap()
    }

    fn append(&mut self, log: usize, lines: u8) {
        let mut text = self.pending[log].take().unwrap_or_default();
        for _ in 0..lines {
            text.push_str(&line(log, self.next[log]));
            self.next[log] += 1;
        }
        self.fd(log).write_all(text.as_bytes()).unwrap();
    }

    fn partial(&mut self, log: usize) {
        if self.pending[log].is_some() {
            return;
        }
        let l = line(log, self.next[log]);
        self.next[log] += 1;
        let (head, rest) = l.split_at(12);
        self.fd(log).write_all(head.as_bytes()).unwrap();
        self.pending[log] = Some(rest.to_owned());
    }

    /// Completes a half-written line, as an application does before its log is rotated.
    fn complete(&mut self, log: usize) {
        if let Some(rest) = self.pending[log].take() {
            self.fd(log).write_all(rest.as_bytes()).unwrap();
        }
    }

    /// Waits until the watcher has handled every event so far: opens the directory (an event it
    /// counts) once its earlier ones are handled, and waits for the count.
    fn sync(&mut self) {
        let dir = self.dir.path().to_path_buf();
        let r = self.reader.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !r.dir_opens_settled() {
            assert!(Instant::now() < deadline, "watcher never caught up");
            std::thread::sleep(Duration::from_micros(200));
        }
        let want = r.dir_opens_caused + 1;
        drop(File::open(&dir).unwrap());
        r.dir_opens_caused = want;
        while r
            .wake
            .dir_opens_seen
            .load(std::sync::atomic::Ordering::SeqCst)
            < want
        {
            assert!(Instant::now() < deadline, "watcher never saw the marker");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn step(&mut self) {
        self.sync();
        let r = self.reader.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            r.rescan(Scan::Event);
            while r.poll(false) {}
            if r.marker.is_none() && !r.files.iter().any(|f| f.unconfirmed) {
                break;
            }
            assert!(Instant::now() < deadline, "new files never confirmed");
            std::thread::sleep(Duration::from_micros(200));
        }
        self.collect();
    }

    /// Takes what the reader sent and commits it, as the consumer does.
    fn collect(&mut self) {
        while let Ok(b) = self.rx.try_recv() {
            if let Some(e) = self.shared.lock().get_mut(&b.file) {
                e.offset = b.end;
            }
            for l in b.into_lines() {
                let text = std::str::from_utf8(&l.bytes).unwrap();
                let log: usize = text[1..2].parse().unwrap();
                let n: u64 = text[3..9].parse().unwrap();
                self.out[log].push(n);
            }
        }
    }

    fn apply(&mut self, a: &Action) {
        match *a {
            Action::Append { log, lines } => self.append(log, lines),
            Action::Partial { log } => self.partial(log),
            Action::Step => self.step(),
            Action::Rotate { log, old_lines } => {
                self.complete(log);
                if self.fds[log].is_none() {
                    return;
                }
                self.rotations += 1;
                let rotated = self
                    .dir
                    .path()
                    .join(format!("f{log}.log.{}", self.rotations));
                std::fs::rename(self.path(log), rotated).unwrap();
                self.append(log, old_lines);
                self.fds[log] = None;
                self.fd(log);
            }
            Action::CopyTruncate { log } | Action::Truncate { log } => {
                self.complete(log);
                if self.fds[log].is_none() {
                    return;
                }
                self.step();
                if matches!(a, Action::CopyTruncate { .. }) {
                    self.rotations += 1;
                    std::fs::copy(
                        self.path(log),
                        self.dir
                            .path()
                            .join(format!("f{log}.log.{}", self.rotations)),
                    )
                    .unwrap();
                }
                self.fd(log).set_len(0).unwrap();
            }
            Action::Delete { log } => {
                self.complete(log);
                if self.fds[log].is_none() {
                    return;
                }
                self.step();
                std::fs::remove_file(self.path(log)).unwrap();
                self.fds[log] = None;
            }
            Action::Restart => {
                for log in 0..LOGS {
                    self.complete(log);
                }
                self.sync();
                let mut r = self.reader.take().unwrap();
                r.drain();
                drop(r);
                self.collect();
                self.shared
                    .save(self.cfg.checkpoint_file.as_deref().unwrap())
                    .unwrap();
                self.start();
            }
        }
    }

    /// The end: every line written is out, once, in order.
    fn finish(mut self) -> Result<(), TestCaseError> {
        for log in 0..LOGS {
            self.complete(log);
        }
        self.step();
        let mut r = self.reader.take().unwrap();
        r.drain();
        drop(r);
        self.collect();
        for log in 0..LOGS {
            let want: Vec<u64> = (0..self.next[log]).collect();
            prop_assert_eq!(&self.out[log], &want, "lines of f{}.log", log);
        }
        Ok(())
    }
}

fn cases() -> u32 {
    std::env::var("PODMATES_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_line_exactly_once_and_in_order(
        initial in 0u8..30,
        actions in proptest::collection::vec(action(), 1..40),
    ) {
        let mut w = World::new(initial);
        for a in &actions {
            w.apply(a);
        }
        w.finish()?;
    }
}

/// A file that was created, written and renamed away before the reader looked at the directory
/// is read, through the descriptor the watcher opened at its creation.
#[test]
fn a_file_renamed_away_before_the_reader_came_round_is_read() {
    let mut w = World::new(0);
    w.apply(&Action::Append { log: 1, lines: 5 });
    w.apply(&Action::Rotate {
        log: 1,
        old_lines: 2,
    });
    w.apply(&Action::Append { log: 1, lines: 3 });
    w.finish().unwrap();
}

/// Two rotations of a file before the reader looked, then a restart: the watcher, behind, may
/// open the second file at the first one's creation event; the files still come in the order of
/// their renames (a case proptest found).
#[test]
fn two_rotations_unseen_then_a_restart_keep_their_order() {
    for _ in 0..20 {
        let mut w = World::new(10);
        w.apply(&Action::Append { log: 1, lines: 3 });
        w.apply(&Action::Rotate {
            log: 1,
            old_lines: 3,
        });
        w.apply(&Action::Rotate {
            log: 1,
            old_lines: 3,
        });
        w.apply(&Action::Restart);
        w.apply(&Action::Append { log: 1, lines: 5 });
        w.finish().unwrap();
    }
}
