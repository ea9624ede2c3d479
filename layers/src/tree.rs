//! The model of an environment tree: entries, path rules, and scanning a directory.

use std::path::{Path, PathBuf};

use crate::digest::Sha256Digest;
use crate::error::{LayersError, Result};

/// What an entry is, with the data that defines its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Length in bytes.
        size: u64,
        /// Digest of the contents.
        sha256: Sha256Digest,
        /// Whether any execute bit is set (normalized to 0755).
        executable: bool,
    },
    /// A symbolic link with a relative target that stays inside the tree.
    Symlink {
        /// The link's target, as stored.
        target: String,
    },
}

impl std::fmt::Display for EntryKind {
    /// How messages describe an entry: "a directory", "a 11-byte file (sha256:…)", "a link to x".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryKind::Dir => f.write_str("a directory"),
            EntryKind::File {
                size,
                sha256,
                executable,
            } => {
                let exec = if *executable { "executable " } else { "" };
                write!(f, "a {size}-byte {exec}file ({sha256})")
            }
            EntryKind::Symlink { target } => {
                write!(f, "a link to {}", crate::error::shown_name(target))
            }
        }
    }
}

/// One entry of a tree: a relative '/'-separated path and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Relative, '/'-separated, no leading `./`, no trailing '/'.
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
}

impl TreeEntry {
    /// The normalized permission bits: dirs 0755, files 0755/0644, symlinks 0777.
    pub fn mode(&self) -> u32 {
        match self.kind {
            EntryKind::Dir => 0o755,
            EntryKind::File { executable, .. } => {
                if executable {
                    0o755
                } else {
                    0o644
                }
            }
            EntryKind::Symlink { .. } => 0o777,
        }
    }

    /// A regular file entry for `bytes` (size and sha256 computed from them).
    pub fn file_from_bytes(path: &str, bytes: &[u8], executable: bool) -> Self {
        TreeEntry {
            path: path.to_string(),
            kind: EntryKind::File {
                size: bytes.len() as u64,
                sha256: crate::digest::Sha256Digest::of_bytes(bytes),
                executable,
            },
        }
    }

    /// Whether this entry is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, EntryKind::Dir)
    }
}

/// Why a relative path is unacceptable, or `None` when it is fine.
pub(crate) fn rel_path_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        return Some("empty path");
    }
    if p.starts_with('/') {
        return Some("absolute path");
    }
    if p.contains('\\') {
        return Some("backslash in path");
    }
    if p.chars().any(|c| c.is_control()) {
        return Some("control character in path");
    }
    for (i, comp) in p.split('/').enumerate() {
        match comp {
            "" => return Some("empty path component"),
            "." => return Some("'.' path component"),
            ".." => return Some("'..' path component"),
            _ => {}
        }
        let b = comp.as_bytes();
        if i == 0 && b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            return Some("drive letter");
        }
    }
    None
}

/// Checks that `p` is a clean relative path (see [`TreeEntry::path`]).
pub fn validate_rel_path(p: &str) -> Result<()> {
    match rel_path_problem(p) {
        None => Ok(()),
        Some(reason) => Err(LayersError::InvalidPath {
            path: p.to_string(),
            reason,
        }),
    }
}

/// Why a symlink at `link_path` with `target` is unacceptable, or `None`.
/// Resolution is lexical: the target must stay inside the tree root.
pub(crate) fn link_target_problem(link_path: &str, target: &str) -> Option<&'static str> {
    if target.is_empty() {
        return Some("empty symlink target");
    }
    if target.starts_with('/') {
        return Some("absolute symlink target");
    }
    if target.contains('\\') {
        return Some("backslash in symlink target");
    }
    if target.chars().any(|c| c.is_control()) {
        return Some("control character in symlink target");
    }
    let b = target.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Some("drive letter in symlink target");
    }
    // Depth of the directory holding the link, counted from the root.
    let mut depth = link_path.split('/').count() as i64 - 1;
    for comp in target.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Some("symlink target escapes the root");
                }
            }
            _ => depth += 1,
        }
    }
    None
}

/// Checks a symlink's target (relative, lexically inside the root).
pub fn validate_link_target(link_path: &str, target: &str) -> Result<()> {
    match link_target_problem(link_path, target) {
        None => Ok(()),
        Some(reason) => Err(LayersError::InvalidPath {
            path: format!("{link_path} -> {target}"),
            reason,
        }),
    }
}

/// Converts a relative '/'-separated path into a native path under `root`.
pub(crate) fn native_path(root: &Path, rel: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(rel.split('/'));
    p
}

/// What a directory walk found before any hashing.
pub(crate) enum Found {
    Dir,
    File { size: u64, executable: bool },
    Symlink { target: String },
    Other { kind: &'static str },
}

/// Walks `root` (excluding itself) and returns every entry found, unsorted.
/// `skip_top` names top-level entries to leave out; bad names are reported through `on_bad_name`.
pub(crate) fn walk(
    root: &Path,
    skip_top: &[&str],
    on_bad_name: &mut dyn FnMut(String) -> Result<()>,
) -> Result<Vec<(String, Found)>> {
    let mut out = Vec::new();
    let mut stack: Vec<String> = vec![String::new()];
    while let Some(dir_rel) = stack.pop() {
        let dir_abs = if dir_rel.is_empty() {
            root.to_path_buf()
        } else {
            native_path(root, &dir_rel)
        };
        for item in fs_err::read_dir(&dir_abs)? {
            let item = item?;
            let name_os = item.file_name();
            let Some(name) = name_os.to_str() else {
                on_bad_name(format!("{}: non-UTF-8 name", item.path().display()))?;
                continue;
            };
            let rel = if dir_rel.is_empty() {
                name.to_string()
            } else {
                format!("{dir_rel}/{name}")
            };
            if dir_rel.is_empty() && skip_top.contains(&name) {
                continue;
            }
            if let Some(reason) = rel_path_problem(&rel) {
                on_bad_name(format!("\"{}\": {reason}", crate::shown_name(&rel)))?;
                continue;
            }
            let meta = fs_err::symlink_metadata(item.path())?;
            let ft = meta.file_type();
            let found = if ft.is_symlink() {
                let target = fs_err::read_link(item.path())?;
                match target.to_str() {
                    // Windows reports targets with '\'; the tree model is '/'-separated.
                    Some(t) if cfg!(windows) => Found::Symlink {
                        target: t.replace('\\', "/"),
                    },
                    Some(t) => Found::Symlink {
                        target: t.to_string(),
                    },
                    None => {
                        on_bad_name(format!("{rel}: non-UTF-8 symlink target"))?;
                        continue;
                    }
                }
            } else if ft.is_dir() {
                stack.push(rel.clone());
                Found::Dir
            } else if ft.is_file() {
                Found::File {
                    size: meta.len(),
                    executable: is_executable(&meta),
                }
            } else {
                Found::Other {
                    kind: other_kind(&ft),
                }
            };
            out.push((rel, found));
        }
    }
    Ok(out)
}

#[cfg(unix)]
pub(crate) fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
pub(crate) fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn other_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_socket() {
        "socket"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_block_device() || ft.is_char_device() {
        "device"
    } else {
        "unknown"
    }
}

#[cfg(not(unix))]
fn other_kind(_ft: &std::fs::FileType) -> &'static str {
    "unknown"
}

/// Walks `root` (not including it), hashes every file in parallel, and returns the entries
/// sorted by the byte order of their paths.
pub fn scan_tree(root: &Path) -> Result<Vec<TreeEntry>> {
    let mut fail = |msg: String| -> Result<()> { Err(LayersError::format("tree entry name", msg)) };
    let found = walk(root, &[], &mut fail)?;
    let entries: Vec<Result<TreeEntry>> = {
        use rayon::prelude::*;
        found
            .into_par_iter()
            .map(|(path, f)| {
                let kind = match f {
                    Found::Dir => EntryKind::Dir,
                    Found::Symlink { target } => {
                        validate_link_target(&path, &target)?;
                        EntryKind::Symlink { target }
                    }
                    Found::File { executable, .. } => {
                        let (sha256, size) = Sha256Digest::of_file(&native_path(root, &path))?;
                        EntryKind::File {
                            size,
                            sha256,
                            executable,
                        }
                    }
                    Found::Other { kind } => {
                        return Err(LayersError::UnsupportedFileType {
                            path: native_path(root, &path).display().to_string(),
                            kind,
                        })
                    }
                };
                Ok(TreeEntry { path, kind })
            })
            .collect()
    };
    let mut entries = entries.into_iter().collect::<Result<Vec<_>>>()?;
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_path_table() {
        let cases: &[(&str, bool)] = &[
            ("a", true),
            ("a/b.txt", true),
            ("python/lib/é", true),
            ("...", true),
            ("a..b/c", true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/../b", false),
            ("./a", false),
            ("a/./b", false),
            ("/abs", false),
            ("a//b", false),
            ("a/", false),
            ("a\\b", false),
            ("C:", false),
            ("c:/x", false),
            ("a\nb", false),
            ("a\0b", false),
            ("a\tb", false),
            ("x/C:", true),
        ];
        for (p, ok) in cases {
            assert_eq!(validate_rel_path(p).is_ok(), *ok, "{p:?}");
        }
    }

    #[test]
    fn link_target_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("bin/python3", "python3.11", true),
            ("bin/python3", "../lib/x", true),
            ("a/b/c", "../../x", true),
            ("a/b/c", "../../../x", false),
            ("top", "../x", false),
            ("top", "x/../../y", false),
            ("top", "x/../y", true),
            ("a/l", "/etc/passwd", false),
            ("a/l", "", false),
            ("a/l", "..\\x", false),
            ("a/l", "C:/x", false),
            ("a/l", ".", true),
        ];
        for (link, target, ok) in cases {
            assert_eq!(
                validate_link_target(link, target).is_ok(),
                *ok,
                "{link} -> {target}"
            );
        }
    }

    #[test]
    fn mode_normalization() {
        let file = |executable| TreeEntry {
            path: "f".into(),
            kind: EntryKind::File {
                size: 0,
                sha256: Sha256Digest::of_bytes(b""),
                executable,
            },
        };
        assert_eq!(file(true).mode(), 0o755);
        assert_eq!(file(false).mode(), 0o644);
        let d = TreeEntry {
            path: "d".into(),
            kind: EntryKind::Dir,
        };
        assert_eq!(d.mode(), 0o755);
    }

    #[cfg(unix)]
    #[test]
    fn scan_sorted_hashed_and_rejects_bad_links() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs_err::create_dir_all(r.join("b/c")).unwrap();
        fs_err::write(r.join("b/c/x"), b"hello").unwrap();
        fs_err::write(r.join("a-"), b"").unwrap();
        fs_err::set_permissions(r.join("a-"), std::fs::Permissions::from_mode(0o700)).unwrap();
        symlink("c/x", r.join("b/l")).unwrap();
        let e = scan_tree(r).unwrap();
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a-", "b", "b/c", "b/c/x", "b/l"]);
        assert_eq!(
            e[3].kind,
            EntryKind::File {
                size: 5,
                sha256: Sha256Digest::of_bytes(b"hello"),
                executable: false
            }
        );
        assert_eq!(e[0].mode(), 0o755);
        assert_eq!(
            e[4].kind,
            EntryKind::Symlink {
                target: "c/x".into()
            }
        );

        symlink("../../outside", r.join("b/esc")).unwrap();
        assert!(scan_tree(r).is_err());
        fs_err::remove_file(r.join("b/esc")).unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        assert!(scan_tree(r).is_err());
        fs_err::remove_file(r.join("abs")).unwrap();
        fs_err::write(r.join("back\\slash"), b"").unwrap();
        assert!(scan_tree(r).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn scan_rejects_fifo() {
        let t = tempfile::tempdir().unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(t.path().join("p"))
            .status();
        if st.map(|s| s.success()).unwrap_or(false) {
            let err = scan_tree(t.path()).unwrap_err();
            assert!(matches!(
                err,
                LayersError::UnsupportedFileType { kind: "fifo", .. }
            ));
        }
    }
}
