//! Checking (and creating) a root directory before it is used.

use std::path::Path;

use crate::error::UnpackError;
use crate::layout::RootLayout;

/// Creates the root and its bookkeeping dirs if missing; refuses anything that is not a
/// writable directory. The returned layout holds an absolute root path.
pub fn prepare_root(root: &Path) -> Result<RootLayout, UnpackError> {
    match fs_err::metadata(root) {
        Ok(m) if !m.is_dir() => {
            return Err(UnpackError::BadRoot {
                path: root.to_path_buf(),
                reason: "exists but is not a directory; choose another --root".into(),
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs_err::create_dir_all(root).map_err(|e| bad(root, e))?;
        }
        Err(e) => return Err(bad(root, e)),
    }
    let layout = open_root(root)?;
    let mut created = false;
    for dir in [layout.envs_dir(), layout.meta_dir(), layout.tmp_dir()] {
        if !dir.is_dir() {
            fs_err::create_dir_all(&dir).map_err(|e| bad(&dir, e))?;
            created = true;
        }
    }
    if created {
        // Make the new bookkeeping dirs durable before anything is renamed into them.
        crate::durability::sync_dir(&layout.meta_dir())?;
        crate::durability::sync_dir(&layout.root)?;
    }
    Ok(layout)
}

/// Describes an existing root (nothing is created); errors if it is not a directory.
pub fn open_root(root: &Path) -> Result<RootLayout, UnpackError> {
    let abs = fs_err::canonicalize(root).map_err(|e| bad(root, e))?;
    if !abs.is_dir() {
        return Err(UnpackError::BadRoot {
            path: root.to_path_buf(),
            reason: "is not a directory".into(),
        });
    }
    let layout = RootLayout::new(&strip_verbatim(abs));
    crate::root_guard::check_root_structure(&layout)?;
    Ok(layout)
}

fn bad(path: &Path, e: std::io::Error) -> UnpackError {
    UnpackError::BadRoot {
        path: path.to_path_buf(),
        reason: format!("cannot be used: {e}"),
    }
}

/// `canonicalize` on Windows yields `\\?\C:\…`, which cmd scripts and junction targets
/// handle poorly; drop the prefix when it is a plain drive path.
fn strip_verbatim(p: std::path::PathBuf) -> std::path::PathBuf {
    if cfg!(windows) {
        if let Some(s) = p.to_str() {
            if let Some(rest) = s.strip_prefix(r"\\?\") {
                if rest.as_bytes().get(1) == Some(&b':') {
                    return rest.into();
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_missing_and_rejects_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        let layout = prepare_root(&root).unwrap();
        assert!(layout.root.is_absolute());
        assert!(layout.tmp_dir().is_dir() && layout.envs_dir().is_dir());
        let file = dir.path().join("f");
        fs_err::write(&file, "x").unwrap();
        let err = prepare_root(&file).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        assert!(open_root(&dir.path().join("missing")).is_err());
    }
}
