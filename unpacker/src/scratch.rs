//! Per-operation scratch directories under `ROOT/.envpack/tmp/`, removed when done.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::fs::Dir;

use crate::error::UnpackError;
use crate::root_dirs::{child_dir, RootDirs};

/// Distinguishes scratch dirs made by one process in the same nanosecond.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique directory in `ROOT/.envpack/tmp/`, held as a handle, deleted (with its contents)
/// on drop. Things are built in it and renamed into the root through handles (see
/// [`crate::root_dirs`]).
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    name: String,
    tmp: Dir,
    dir: Dir,
}

impl Scratch {
    /// Creates a fresh directory in the root's `.envpack/tmp/`.
    pub fn new(dirs: &RootDirs) -> Result<Self, UnpackError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{nanos}-{n}", std::process::id());
        let path = dirs.layout.tmp_dir().join(&name);
        let dir = child_dir(&dirs.tmp, &name, &path)?;
        let tmp = dirs.tmp.try_clone()?;
        Ok(Scratch {
            path,
            name,
            tmp,
            dir,
        })
    }

    /// The directory's path (for messages and for reading what was built in it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's handle.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = self.tmp.remove_dir_all(&self.name) {
            tracing::warn!("could not remove scratch dir {}: {e}", self.path.display());
        }
    }
}

/// Removes everything in `ROOT/.envpack/tmp/`; only call while holding the root lock, when
/// whatever is there was left by an interrupted run. Deletes through the handles only, and
/// cap-std's removal never follows a link, so nothing outside the root can be deleted here.
pub fn clean_leftovers(dirs: &RootDirs) -> std::io::Result<()> {
    let layout = &dirs.layout;
    // A record write killed before its rename leaves this behind; the record itself is intact.
    let record_tmp = "root.json.tmp";
    if dirs.meta.symlink_metadata(record_tmp).is_ok() {
        let shown = layout.meta_dir().join(record_tmp);
        tracing::info!(path = %shown.display(), "removing leftover of an interrupted record write");
        dirs.meta
            .remove_file(record_tmp)
            .map_err(|e| at(e, &shown))?;
    }
    let tmp = layout.tmp_dir();
    let dir = &dirs.tmp;
    for entry in dir.entries().map_err(|e| at(e, &tmp))? {
        let entry = entry.map_err(|e| at(e, &tmp))?;
        let name = entry.file_name();
        let shown = tmp.join(&name);
        tracing::info!(path = %shown.display(), "removing leftover of an interrupted unpack");
        let is_dir = entry.file_type().map_err(|e| at(e, &shown))?.is_dir();
        if is_dir {
            dir.remove_dir_all(&name)
        } else {
            dir.remove_file(&name).or_else(|e| {
                // A leftover junction reports as a non-dir and is removed like an empty dir.
                if cfg!(windows) {
                    dir.remove_dir(&name)
                } else {
                    Err(e)
                }
            })
        }
        .map_err(|e| at(e, &shown))?;
    }
    Ok(())
}

fn at(e: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("removing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::RootLayout;

    #[test]
    fn unique_removed_on_drop_and_leftovers_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(dir.path());
        let dirs = RootDirs::open(&layout).unwrap();
        let a = Scratch::new(&dirs).unwrap();
        let b = Scratch::new(&dirs).unwrap();
        assert_ne!(a.path(), b.path());
        let kept = a.path().to_path_buf();
        fs_err::write(kept.join("f"), "x").unwrap();
        drop(a);
        assert!(!kept.exists());
        fs_err::write(layout.tmp_dir().join("stray"), "x").unwrap();
        let record_tmp = layout.record_file().with_extension("json.tmp");
        fs_err::write(&record_tmp, "{").unwrap();
        std::mem::forget(b);
        clean_leftovers(&dirs).unwrap();
        assert_eq!(fs_err::read_dir(layout.tmp_dir()).unwrap().count(), 0);
        assert!(!record_tmp.exists());
    }
}
