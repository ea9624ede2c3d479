//! Comparing a tree on disk with its manifest.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rayon::prelude::*;

use crate::digest::Sha256Digest;
use crate::error::Result;
use crate::manifest::Manifest;
use crate::tree::{native_path, walk, EntryKind, Found};

/// One way a tree differs from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Listed in the manifest, absent on disk.
    Missing {
        /// Entry path.
        path: String,
    },
    /// On disk, not listed in the manifest (or with a name no manifest can hold).
    Extra {
        /// Entry path.
        path: String,
    },
    /// A file whose size or content changed.
    Modified {
        /// Entry path.
        path: String,
    },
    /// A different kind of entry (file, directory, symlink, other).
    TypeChanged {
        /// Entry path.
        path: String,
    },
    /// A file whose execute bit changed.
    ModeChanged {
        /// Entry path.
        path: String,
        /// Mode from the manifest.
        expected: u32,
        /// Normalized mode found on disk.
        actual: u32,
    },
    /// A symlink pointing elsewhere.
    LinkChanged {
        /// Entry path.
        path: String,
        /// Target from the manifest.
        expected: String,
        /// Target found on disk.
        actual: String,
    },
}

impl Difference {
    /// The path the difference is about.
    pub fn path(&self) -> &str {
        match self {
            Difference::Missing { path }
            | Difference::Extra { path }
            | Difference::Modified { path }
            | Difference::TypeChanged { path }
            | Difference::ModeChanged { path, .. }
            | Difference::LinkChanged { path, .. } => path,
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Missing { path } => write!(f, "missing: {path}"),
            Difference::Extra { path } => write!(f, "extra: {path}"),
            Difference::Modified { path } => write!(f, "modified: {path}"),
            Difference::TypeChanged { path } => write!(f, "type changed: {path}"),
            Difference::ModeChanged {
                path,
                expected,
                actual,
            } => write!(
                f,
                "mode changed: {path} (expected {expected:04o}, found {actual:04o})"
            ),
            Difference::LinkChanged {
                path,
                expected,
                actual,
            } => write!(
                f,
                "link changed: {path} (expected -> {expected}, found -> {actual})"
            ),
        }
    }
}

/// Compares the tree at `root` with `manifest`, re-hashing every file in parallel.
/// `ignore` lists top-level names to skip on both sides. Differences are sorted by path.
pub fn verify_tree(root: &Path, manifest: &Manifest, ignore: &[&str]) -> Result<Vec<Difference>> {
    let mut diffs: Vec<Difference> = Vec::new();
    let mut bad_names: Vec<String> = Vec::new();
    let mut on_bad = |msg: String| -> Result<()> {
        bad_names.push(msg);
        Ok(())
    };
    let mut disk: BTreeMap<String, Found> = walk(root, ignore, &mut on_bad)?.into_iter().collect();
    diffs.extend(bad_names.into_iter().map(|path| Difference::Extra { path }));
    let top_ignored = |p: &str| ignore.contains(&p.split('/').next().unwrap_or(p));
    let mut to_hash: Vec<(&str, Sha256Digest)> = Vec::new();
    for e in &manifest.entries {
        if top_ignored(&e.path) {
            continue;
        }
        let path = e.path.clone();
        let Some(found) = disk.remove(&e.path) else {
            diffs.push(Difference::Missing { path });
            continue;
        };
        match (&e.kind, found) {
            (EntryKind::Dir, Found::Dir) => {}
            (EntryKind::Symlink { target }, Found::Symlink { target: actual }) => {
                if *target != actual {
                    diffs.push(Difference::LinkChanged {
                        path,
                        expected: target.clone(),
                        actual,
                    });
                }
            }
            (
                EntryKind::File {
                    size,
                    sha256,
                    executable,
                },
                Found::File {
                    size: actual_size,
                    executable: actual_exec,
                },
            ) => {
                if cfg!(unix) && *executable != actual_exec {
                    diffs.push(Difference::ModeChanged {
                        path: path.clone(),
                        expected: e.mode(),
                        actual: if actual_exec { 0o755 } else { 0o644 },
                    });
                }
                if *size != actual_size {
                    diffs.push(Difference::Modified { path });
                } else {
                    to_hash.push((&e.path, *sha256));
                }
            }
            _ => diffs.push(Difference::TypeChanged { path }),
        }
    }
    diffs.extend(disk.into_keys().map(|path| Difference::Extra { path }));
    let hashed: Vec<Result<Option<Difference>>> = to_hash
        .into_par_iter()
        .map(|(path, want)| {
            let (got, _) = Sha256Digest::of_file(&native_path(root, path))?;
            Ok((got != want).then(|| Difference::Modified {
                path: path.to_string(),
            }))
        })
        .collect();
    for h in hashed {
        diffs.extend(h?);
    }
    diffs.sort_by(|a, b| a.path().as_bytes().cmp(b.path().as_bytes()));
    Ok(diffs)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::tree::scan_tree;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn reports_each_kind_of_difference() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs_err::create_dir_all(r.join("bin")).unwrap();
        fs_err::create_dir_all(r.join("lib")).unwrap();
        fs_err::write(r.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        fs_err::set_permissions(r.join("bin/tool"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        fs_err::write(r.join("lib/a.py"), b"a = 1\n").unwrap();
        fs_err::write(r.join("lib/b.py"), b"b = 1\n").unwrap();
        fs_err::write(r.join("lib/gone"), b"").unwrap();
        fs_err::write(r.join("lib/kind"), b"").unwrap();
        symlink("a.py", r.join("lib/link")).unwrap();
        let manifest = Manifest::from_entries(scan_tree(r).unwrap());
        fs_err::write(r.join("manifest"), manifest.to_bytes()).unwrap();
        assert_eq!(verify_tree(r, &manifest, &["manifest"]).unwrap(), []);

        fs_err::write(r.join("lib/a.py"), b"a = 2\n").unwrap(); // same size, new content
        fs_err::write(r.join("lib/b.py"), b"b = 10\n").unwrap(); // new size
        fs_err::remove_file(r.join("lib/gone")).unwrap();
        fs_err::write(r.join("lib/new"), b"").unwrap();
        fs_err::set_permissions(r.join("bin/tool"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        fs_err::remove_file(r.join("lib/kind")).unwrap();
        fs_err::create_dir(r.join("lib/kind")).unwrap();
        fs_err::remove_file(r.join("lib/link")).unwrap();
        symlink("b.py", r.join("lib/link")).unwrap();
        fs_err::create_dir(r.join("cache")).unwrap();

        let diffs = verify_tree(r, &manifest, &["manifest", "cache"]).unwrap();
        let lines: Vec<String> = diffs.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines,
            [
                "mode changed: bin/tool (expected 0755, found 0644)",
                "modified: lib/a.py",
                "modified: lib/b.py",
                "missing: lib/gone",
                "type changed: lib/kind",
                "link changed: lib/link (expected -> a.py, found -> b.py)",
                "extra: lib/new",
            ]
        );
        // Without ignores, the unlisted top-level entries show up as extra.
        let diffs = verify_tree(r, &manifest, &[]).unwrap();
        assert!(diffs.contains(&Difference::Extra {
            path: "manifest".into()
        }));
        assert!(diffs.contains(&Difference::Extra {
            path: "cache".into()
        }));
    }

    #[test]
    fn missing_root_is_an_error() {
        assert!(verify_tree(Path::new("/nonexistent/envpack"), &Manifest::default(), &[]).is_err());
    }
}
