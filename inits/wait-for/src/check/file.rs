//! `file:///path`: the file exists (optionally non-empty, or containing a string).

use std::io::Read as _;
use std::path::Path;

/// The most of a file read for `?contains=`: enough for any marker file, bounded memory.
const MAX_READ: u64 = 16 * 1024 * 1024;

/// One attempt. The file system is asked directly rather than through tokio's blocking pool: a
/// stat of a local volume takes microseconds, a hand-off to another thread costs more.
pub async fn check(path: &Path, nonempty: bool, contains: Option<&str>) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("{}: {e}", path.display()),
    })?;
    let kind = if meta.is_dir() { "directory" } else { "file" };
    if nonempty && meta.is_file() && meta.len() == 0 {
        return Err(format!("{} is empty", path.display()));
    }
    if let Some(needle) = contains {
        if meta.is_dir() {
            return Err(format!(
                "{} is a directory, not a file to search",
                path.display()
            ));
        }
        let mut buf = Vec::new();
        std::fs::File::open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .take(MAX_READ)
            .read_to_end(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let found = buf
            .windows(needle.len().max(1))
            .any(|w| w == needle.as_bytes());
        if !found {
            return Err(format!(
                "{} ({} bytes) does not contain `{needle}`",
                path.display(),
                buf.len()
            ));
        }
        return Ok(format!("{} contains `{needle}`", path.display()));
    }
    Ok(format!(
        "{kind} {} exists ({} bytes)",
        path.display(),
        meta.len()
    ))
}
