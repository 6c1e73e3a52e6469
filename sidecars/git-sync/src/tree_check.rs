//! What a commit may contain before any of it is written to disk.
//!
//! A tree object is just bytes a server sends: `git hash-object --literally -t tree` makes one with
//! entries named `..`, `../../x` or `/etc/x`, and a tree with two entries of one name (a symlink
//! `a -> /elsewhere` and a directory `a/` with files, which would be written *through* the link).
//! git refuses such trees on checkout (`verify_path` in git's read-cache.c, with `core.protectHFS`
//! and `core.protectNTFS`); libgit2 only checks when it builds the index, which git-sync's own
//! tree writer does after the files are written. So every tree of a commit is checked here first,
//! and a commit with one bad name is refused whole: nothing of it is written.

use std::collections::HashSet;

use git2::{ObjectType, Oid, Repository};

/// Why a commit was refused: the offending path (as far as it could be built) and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeTree {
    /// The entry's path in the commit, with bytes that are not UTF-8 replaced.
    pub path: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

impl std::fmt::Display for UnsafeTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid path '{}': {}", self.path, self.reason)
    }
}

/// Mode of a symbolic link in a tree.
const SYMLINK: i32 = 0o120000;

/// Checks one tree entry's name (not a path: a name has no `/`).
pub fn check_name(name: &[u8], mode: i32) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name == b"." || name == b".." {
        return Err("`.` and `..` are not names");
    }
    if name.contains(&b'/') {
        return Err("a name may not contain `/` (or be an absolute path)");
    }
    if name.contains(&0) {
        return Err("a name may not contain NUL");
    }
    if is_hfs_dot(name, b"git") || is_ntfs_dot(name, b"git", b"git~1") {
        return Err("`.git` (or a name a file system takes for it) is reserved");
    }
    if mode == SYMLINK
        && (is_hfs_dot(name, b"gitmodules") || is_ntfs_dot(name, b"gitmodules", b"gitmod~1"))
    {
        return Err("`.gitmodules` may not be a symbolic link");
    }
    Ok(())
}

/// Walks every tree of `tree_id` (iteratively: a crafted repository can nest deeper than a stack)
/// and checks each entry's name, and that no tree holds two entries of one name. Each distinct
/// tree object is checked once: its names do not depend on where it is mounted, and a crafted
/// tree that mounts one subtree many times at every level would otherwise take exponential time.
pub fn check_tree(repo: &Repository, tree_id: Oid) -> Result<(), CheckError> {
    let mut stack: Vec<(String, Oid)> = vec![(String::new(), tree_id)];
    let mut checked: HashSet<Oid> = HashSet::new();
    while let Some((prefix, id)) = stack.pop() {
        if !checked.insert(id) {
            continue;
        }
        let tree = repo.find_tree(id).map_err(CheckError::Git)?;
        let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(tree.len());
        for entry in tree.iter() {
            let name = entry.name_bytes();
            let path = format!("{prefix}{}", String::from_utf8_lossy(name));
            let bad = |reason| {
                CheckError::Unsafe(UnsafeTree {
                    path: path.clone(),
                    reason,
                })
            };
            check_name(name, entry.filemode()).map_err(bad)?;
            if !seen.insert(name.to_vec()) {
                return Err(bad("two entries of one name in a tree"));
            }
            if entry.kind() == Some(ObjectType::Tree) {
                stack.push((format!("{path}/"), entry.id()));
            }
        }
    }
    Ok(())
}

/// Why [`check_tree`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A tree could not be read.
    #[error("cannot read a tree: {0}")]
    Git(#[source] git2::Error),
    /// An entry breaks a rule.
    #[error("{0}")]
    Unsafe(UnsafeTree),
}

/// `.<word>` as HFS+ compares names: case-insensitive, with the code points it ignores
/// (zero-width joiners and marks, git's `next_hfs_char`) removed.
fn is_hfs_dot(name: &[u8], word: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(name) else {
        return false;
    };
    let mut chars = s.chars().filter(|c| !hfs_ignorable(*c));
    if chars.next() != Some('.') {
        return false;
    }
    let rest: Vec<char> = chars.collect();
    rest.len() == word.len()
        && rest
            .iter()
            .zip(word)
            .all(|(c, w)| c.to_ascii_lowercase() == char::from(*w))
}

fn hfs_ignorable(c: char) -> bool {
    matches!(c,
        '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

/// `.<word>` or its 8.3 short name as NTFS takes them: case-insensitive, with trailing spaces and
/// dots ignored, and anything after a `:` (an alternate data stream) too.
fn is_ntfs_dot(name: &[u8], word: &[u8], short: &[u8]) -> bool {
    let base = match name.iter().position(|&b| b == b':') {
        Some(i) => &name[..i],
        None => name,
    };
    let trimmed = {
        let mut end = base.len();
        while end > 0 && matches!(base[end - 1], b' ' | b'.') {
            end -= 1;
        }
        &base[..end]
    };
    let eq = |a: &[u8], b: &[u8]| a.eq_ignore_ascii_case(b);
    (trimmed.first() == Some(&b'.') && eq(&trimmed[1..], word)) || eq(trimmed, short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_git_refuses_are_refused() {
        for bad in [
            &b""[..],
            b".",
            b"..",
            b"../x",
            b"a/b",
            b"/etc/passwd",
            b"x\0y",
            b".git",
            b".GIT",
            b".Git",
            b".git.",
            b".git ",
            b".git. . ",
            b".git::$INDEX_ALLOCATION",
            b"git~1",
            b"GIT~1",
            ".g\u{200c}it".as_bytes(),
            "\u{feff}.git".as_bytes(),
        ] {
            assert!(
                check_name(bad, 0o100644).is_err(),
                "{:?} was accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for good in [
            &b"a"[..],
            b"...",
            b".gitignore",
            b".github",
            b".gitmodules",
            b"git",
            b"gitx",
            b".git-blame-ignore-revs",
            b"x..y",
            b"back\\slash",
            "caf\u{e9}".as_bytes(),
        ] {
            assert_eq!(check_name(good, 0o100644), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn a_symlinked_gitmodules_is_refused_but_a_file_is_not() {
        assert!(check_name(b".gitmodules", SYMLINK).is_err());
        assert!(check_name(b".GitModules", SYMLINK).is_err());
        assert!(check_name(b"gitmod~1", SYMLINK).is_err());
        assert!(check_name(b".gitmodules", 0o100644).is_ok());
        assert!(check_name(b"link", SYMLINK).is_ok());
    }
}
