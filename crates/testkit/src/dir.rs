//! A temporary directory removed on drop, std only (the testkit has no dependencies).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system's temp dir, removed with its contents when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `podmates-testkit-<pid>-<n>`, unique within this process.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new() -> std::io::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("podmates-testkit-{}-{n}", std::process::id()));
        // A directory left by an earlier process with the same pid would hold stale files.
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
