//! Follower metrics, registered by the binary into its admin registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `file` label: the path a file is followed under (a rotated file keeps the name it had).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FileLabel {
    pub(crate) file: String,
}

/// What the follower counts. Cheap to clone (every metric is shared).
///
/// Register it with [`Metrics::register`], usually under the binary's prefix:
/// `metrics.register(registry.sub_registry_with_prefix("log_tail"))` gives
/// `log_tail_lines_total{file="..."}` and so on.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub(crate) lines: Family<FileLabel, Counter>,
    pub(crate) bytes: Family<FileLabel, Counter>,
    pub(crate) lag: Family<FileLabel, Gauge>,
    pub(crate) files_watched: Gauge,
    pub(crate) rotations: Counter,
    pub(crate) truncations: Counter,
    pub(crate) deletions: Counter,
    pub(crate) checkpoint_saves: Counter,
    pub(crate) checkpoint_errors: Counter,
}

impl Metrics {
    /// Registers every metric into `registry` (names without a prefix; pass a sub-registry).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "lines",
            "Lines read, per file (pieces of split long lines count one each)",
            self.lines.clone(),
        );
        registry.register("bytes", "Bytes read, per file", self.bytes.clone());
        registry.register(
            "lag_bytes",
            "Bytes of a file not read yet, per open file, as of its last poll (0 when caught up)",
            self.lag.clone(),
        );
        registry.register(
            "files_watched",
            "Files currently open, including rotated files still being drained",
            self.files_watched.clone(),
        );
        registry.register(
            "rotations",
            "Files whose path was renamed away or now names another file (rename rotation, recreation)",
            self.rotations.clone(),
        );
        registry.register(
            "truncations",
            "Files that shrank below the read offset (copytruncate); reading restarted at 0",
            self.truncations.clone(),
        );
        registry.register(
            "deletions",
            "Files deleted while open: read to their end, then closed",
            self.deletions.clone(),
        );
        registry.register(
            "checkpoint_saves",
            "Checkpoint files written",
            self.checkpoint_saves.clone(),
        );
        registry.register(
            "checkpoint_errors",
            "Checkpoint files that could not be written or read",
            self.checkpoint_errors.clone(),
        );
    }

    /// Lines read from the file followed under `path` so far.
    pub fn lines(&self, path: &str) -> u64 {
        self.lines
            .get_or_create(&FileLabel {
                file: path.to_owned(),
            })
            .get()
    }

    /// Rotations seen so far.
    pub fn rotations(&self) -> u64 {
        self.rotations.get()
    }

    /// Truncations seen so far.
    pub fn truncations(&self) -> u64 {
        self.truncations.get()
    }

    /// Files open right now.
    pub fn files_watched(&self) -> i64 {
        self.files_watched.get()
    }

    pub(crate) fn file(&self, path: &str) -> FileMetrics {
        let label = FileLabel {
            file: path.to_owned(),
        };
        FileMetrics {
            lines: self.lines.get_or_create(&label).clone(),
            bytes: self.bytes.get_or_create(&label).clone(),
            lag: self.lag.get_or_create(&label).clone(),
        }
    }

    /// Drops the per-file gauge of a closed file so that gone files do not linger as series.
    pub(crate) fn forget(&self, path: &str) {
        self.lag.remove(&FileLabel {
            file: path.to_owned(),
        });
    }
}

/// One file's metrics, looked up once when the file is opened so that the hot path touches only
/// atomics, never the family's lock.
#[derive(Debug, Clone)]
pub(crate) struct FileMetrics {
    pub(crate) lines: Counter,
    pub(crate) bytes: Counter,
    pub(crate) lag: Gauge,
}
