//! The checkpoint file: per followed file its identity and the offset up to which its lines were
//! delivered, written atomically so a crash leaves either the old or the new file, never half.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many leading bytes of a file identify it together with device and inode. A file shorter
/// than this is fingerprinted by what it has, and the length is stored alongside, so small and
/// empty files are still followed (the trap of fingerprinting only files of a minimum size).
pub(crate) const FINGERPRINT_BYTES: u64 = 256;

/// Identity of a file that survives a restart: device and inode, which the filesystem reuses, plus
/// a hash of the first bytes, which a reused inode will not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// How many leading bytes `fp` covers.
    pub(crate) fp_len: u64,
    /// FNV-1a over the first `fp_len` bytes.
    pub(crate) fp: u64,
}

/// One followed file in the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The path it was followed under (informational: files are matched by identity).
    pub(crate) path: String,
    #[serde(flatten)]
    pub(crate) id: Identity,
    /// Resume point: everything before it was delivered.
    pub(crate) offset: u64,
}

/// The file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub(crate) version: u32,
    pub(crate) files: Vec<Entry>,
}

const VERSION: u32 = 1;

/// FNV-1a, 64 bit: stable across builds and platforms (std's hasher promises neither), and more
/// than enough to tell two log files' first bytes apart.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_extend(0xcbf2_9ce4_8422_2325, bytes)
}

/// Continues the FNV-1a hash `h` of some bytes over the bytes that follow them.
pub(crate) fn fnv1a_extend(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Fingerprints the first bytes of an open file without moving its read position.
pub(crate) fn fingerprint(file: &File, dev: u64, ino: u64) -> io::Result<Identity> {
    let mut buf = [0u8; FINGERPRINT_BYTES as usize];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Identity {
        dev,
        ino,
        fp_len: n as u64,
        fp: fnv1a(&buf[..n]),
    })
}

/// Whether the open `file` is the file `id` describes: same device and inode, and its first
/// `id.fp_len` bytes hash the same.
///
/// Runs on every pass over the files (the rewrite check), so the bytes are read into the stack; a
/// length over [`FINGERPRINT_BYTES`] (only a hand-edited checkpoint has one) matches nothing.
pub(crate) fn matches(file: &File, id: &Identity) -> bool {
    if id.fp_len > FINGERPRINT_BYTES {
        return false;
    }
    let mut whole = [0u8; FINGERPRINT_BYTES as usize];
    let buf = &mut whole[..id.fp_len as usize];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => return false,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    fnv1a(buf) == id.fp
}

/// Errors loading a checkpoint. Never fatal: the follower logs it and starts without.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("not a valid checkpoint: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("unsupported checkpoint version {0}")]
    Version(u32),
}

/// Checkpoint entries by (device, inode).
pub(crate) type ByInode = HashMap<(u64, u64), Entry>;

/// Loads the checkpoint at `path`: `Ok(None)` when there is none yet.
pub(crate) fn load(path: &Path) -> Result<Option<ByInode>, LoadError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let cp: Checkpoint = serde_json::from_slice(&data)?;
    if cp.version != VERSION {
        return Err(LoadError::Version(cp.version));
    }
    Ok(Some(
        cp.files
            .into_iter()
            .map(|e| ((e.id.dev, e.id.ino), e))
            .collect(),
    ))
}

/// Writes the checkpoint atomically: a temporary file beside it, fsync, rename over the old one,
/// fsync of the directory so the rename itself survives a power cut.
pub(crate) fn save(path: &Path, files: Vec<Entry>) -> io::Result<()> {
    let cp = Checkpoint {
        version: VERSION,
        files,
    };
    let data = serde_json::to_vec(&cp).map_err(io::Error::other)?;
    let tmp = tmp_path(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(&data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Some filesystems refuse fsync on a directory; the rename happened, so that is no failure.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cp.json");
        assert!(load(&p).unwrap().is_none());
        let e = Entry {
            path: "/a.log".to_owned(),
            id: Identity {
                dev: 1,
                ino: 2,
                fp_len: 3,
                fp: 4,
            },
            offset: 5,
        };
        save(&p, vec![e.clone()]).unwrap();
        let m = load(&p).unwrap().unwrap();
        assert_eq!(m[&(1, 2)], e);
        assert!(!tmp_path(&p).exists());
        std::fs::write(&p, b"{\"version\":1,\"files\":[{\"pa").unwrap();
        assert!(matches!(load(&p), Err(LoadError::Corrupt(_))));
        std::fs::write(&p, b"{\"version\":9,\"files\":[]}").unwrap();
        assert!(matches!(load(&p), Err(LoadError::Version(9))));
    }

    #[test]
    fn fingerprint_tells_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"first line\n").unwrap();
        let f = File::open(&p).unwrap();
        let id = fingerprint(&f, 1, 2).unwrap();
        assert_eq!(id.fp_len, 11);
        assert!(matches(&f, &id));
        // The file grew: its first bytes are unchanged, so it is the same file.
        std::fs::write(&p, b"first line\nsecond\n").unwrap();
        assert!(matches(&f, &id));
        // Rewritten with other content (what a reused inode looks like).
        std::fs::write(&p, b"other line\n").unwrap();
        assert!(!matches(&f, &id));
        // Shorter than the fingerprint.
        std::fs::write(&p, b"fir").unwrap();
        assert!(!matches(&f, &id));
    }
}
