//! Publishing a checkout so that readers never see a missing or half-written tree.
//!
//! Symlink mode (upstream's contract): a new symlink with a unique temporary name is created next
//! to the link and `rename(2)`d over it, which POSIX makes atomic; the directory is then fsynced so
//! the switch survives a power cut. Upstream uses the fixed name `tmp-link`, so a crash between
//! `symlink` and `rename` leaves a file that makes every later publish fail; here each attempt
//! uses its own name and leftovers are removed at start.
//!
//! Copy mode: the files are written to a temporary directory beside the target, which is then
//! swapped with the published directory by `renameat2(RENAME_EXCHANGE)` in one step; the old tree
//! is removed afterwards.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{RenameFlags, renameat2};

/// The marker in temporary names: `.<link>.tmp-<pid>-<nanos>`.
const TMP_MARKER: &str = ".tmp-";

/// A fresh temporary name beside `path`, unique per process and call.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TMP_MARKER}{}-{nanos}", std::process::id()))
}

/// Whether `file_name` is a temporary made by [`temp_sibling`] for `link_name`, or upstream's
/// fixed `tmp-link`.
pub fn is_temp_for(file_name: &OsStr, link_name: &OsStr) -> bool {
    let f = file_name.to_string_lossy();
    let prefix = format!(".{}{TMP_MARKER}", link_name.to_string_lossy());
    f.starts_with(&prefix) || f == "tmp-link"
}

/// Removes temporaries a crashed run left beside `link`. Returns how many were removed.
pub fn clean_temporaries(link: &Path) -> io::Result<usize> {
    let (Some(dir), Some(name)) = (link.parent(), link.file_name()) else {
        return Ok(0);
    };
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in rd {
        let entry = entry?;
        if is_temp_for(&entry.file_name(), name) {
            remove_any(&entry.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Removes a file, symlink or directory tree; a missing path is not an error.
pub fn remove_any(path: &Path) -> io::Result<()> {
    let res = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match res {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// fsyncs a directory so that renames and creations in it are durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Points `link` at `target` atomically with a relative symlink.
pub fn publish_symlink(link: &Path, target: &Path) -> io::Result<()> {
    let dir = link
        .parent()
        .ok_or_else(|| io::Error::other("the link has no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let rel = relative_path(dir, target);
    let tmp = temp_sibling(link);
    std::os::unix::fs::symlink(&rel, &tmp)?;
    if let Err(e) = replace(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    fsync_dir(dir)
}

/// Moves the fully written directory `staged` to `link` atomically (copy mode).
pub fn publish_dir(link: &Path, staged: &Path) -> io::Result<()> {
    let dir = link
        .parent()
        .ok_or_else(|| io::Error::other("the link has no parent directory"))?;
    replace(staged, link)?;
    fsync_dir(dir)
}

/// Puts `from` in place of `to` in one step, whatever `to` is. `rename(2)` cannot put a symlink
/// over a directory or a directory over a non-empty one, so those cases exchange the two names and
/// then remove the old entry, now at `from`.
fn replace(from: &Path, to: &Path) -> io::Result<()> {
    let from_is_dir = std::fs::symlink_metadata(from)?.is_dir();
    match std::fs::symlink_metadata(to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(from, to),
        Err(e) => Err(e),
        Ok(m) if !m.is_dir() && !from_is_dir => std::fs::rename(from, to),
        Ok(_) => {
            let dir = to.parent().unwrap_or(Path::new("/"));
            let d = File::open(dir)?;
            let (Some(f), Some(t)) = (from.file_name(), to.file_name()) else {
                return Err(io::Error::other("paths without file names"));
            };
            if from.parent() != Some(dir) {
                return Err(io::Error::other(
                    "the staged entry must sit beside the target",
                ));
            }
            renameat2(&d, f, &d, t, RenameFlags::RENAME_EXCHANGE).map_err(io::Error::from)?;
            remove_any(from)
        }
    }
}

/// `target` relative to the directory `base` (both absolute), computed lexically.
pub fn relative_path(base: &Path, target: &Path) -> PathBuf {
    let b: Vec<Component<'_>> = base.components().collect();
    let t: Vec<Component<'_>> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Adds group write permission to `path` and everything below it (`--group-write`).
pub fn make_group_writable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o020 == 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o020))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            make_group_writable(&entry?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/git"), Path::new("/git/.worktrees/abc")),
            PathBuf::from(".worktrees/abc")
        );
        assert_eq!(
            relative_path(Path::new("/git/links"), Path::new("/git/.worktrees/abc")),
            PathBuf::from("../.worktrees/abc")
        );
    }

    #[test]
    fn symlink_publish_replaces_and_cleans() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join(".worktrees/a");
        let b = dir.path().join(".worktrees/b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let link = dir.path().join("site");
        publish_symlink(&link, &a).unwrap();
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            PathBuf::from(".worktrees/a")
        );
        // What a crash between symlink() and rename() leaves behind, ours and upstream's.
        std::os::unix::fs::symlink(".worktrees/a", temp_sibling(&link)).unwrap();
        std::os::unix::fs::symlink(".worktrees/a", dir.path().join("tmp-link")).unwrap();
        assert_eq!(clean_temporaries(&link).unwrap(), 2);
        publish_symlink(&link, &b).unwrap();
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            PathBuf::from(".worktrees/b")
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn directory_publish_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("site");
        for v in ["one", "two"] {
            let staged = temp_sibling(&link);
            std::fs::create_dir(&staged).unwrap();
            std::fs::write(staged.join("v"), v).unwrap();
            publish_dir(&link, &staged).unwrap();
            assert_eq!(std::fs::read_to_string(link.join("v")).unwrap(), v);
            assert!(!staged.exists());
        }
        // A symlink left by symlink mode is replaced by a directory too.
        std::fs::remove_dir_all(&link).unwrap();
        std::os::unix::fs::symlink("elsewhere", &link).unwrap();
        let staged = temp_sibling(&link);
        std::fs::create_dir(&staged).unwrap();
        publish_dir(&link, &staged).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_dir());
    }
}
