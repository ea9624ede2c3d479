//! Per-operation scratch directories under `ROOT/.envpack/tmp/`, removed when done.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::layout::RootLayout;

/// Distinguishes scratch dirs made by one process in the same nanosecond.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique directory that is deleted (with its contents) on drop.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates a fresh directory in `ROOT/.envpack/tmp/`.
    pub fn new(layout: &RootLayout) -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = layout
            .tmp_dir()
            .join(format!("{}-{nanos}-{n}", std::process::id()));
        fs_err::create_dir_all(&path)?;
        Ok(Scratch { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = fs_err::remove_dir_all(&self.path) {
            tracing::warn!("could not remove scratch dir: {e}");
        }
    }
}

/// Removes everything in `ROOT/.envpack/tmp/`; only call while holding the root lock, when
/// whatever is there was left by an interrupted run.
pub fn clean_leftovers(layout: &RootLayout) -> std::io::Result<()> {
    // A record write killed before its rename leaves this behind; the record itself is intact.
    let record_tmp = layout.record_file().with_extension("json.tmp");
    if fs_err::symlink_metadata(&record_tmp).is_ok() {
        tracing::info!(path = %record_tmp.display(), "removing leftover of an interrupted record write");
        remove_non_dir(&record_tmp)?;
    }
    let tmp = layout.tmp_dir();
    fs_err::create_dir_all(&tmp)?;
    // Through a handle that refuses a link at `tmp`, and cap-std's removal never follows a
    // link inside it, so nothing outside the root can be deleted from here.
    let dir = crate::root_guard::open_dir_no_follow(&tmp)?;
    let at = |e: std::io::Error, name: &std::ffi::OsStr| {
        std::io::Error::new(
            e.kind(),
            format!("removing {}: {e}", tmp.join(name).display()),
        )
    };
    for entry in dir.entries().map_err(|e| at(e, "".as_ref()))? {
        let entry = entry.map_err(|e| at(e, "".as_ref()))?;
        let name = entry.file_name();
        tracing::info!(path = %tmp.join(&name).display(), "removing leftover of an interrupted unpack");
        let is_dir = entry.file_type().map_err(|e| at(e, &name))?.is_dir();
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
        .map_err(|e| at(e, &name))?;
    }
    Ok(())
}

#[cfg(windows)]
fn remove_non_dir(path: &Path) -> std::io::Result<()> {
    // A leftover junction reports as a non-dir and is removed like an empty dir.
    fs_err::remove_file(path).or_else(|_| fs_err::remove_dir(path))
}

#[cfg(not(windows))]
fn remove_non_dir(path: &Path) -> std::io::Result<()> {
    fs_err::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_removed_on_drop_and_leftovers_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(dir.path());
        let a = Scratch::new(&layout).unwrap();
        let b = Scratch::new(&layout).unwrap();
        assert_ne!(a.path(), b.path());
        let kept = a.path().to_path_buf();
        fs_err::write(kept.join("f"), "x").unwrap();
        drop(a);
        assert!(!kept.exists());
        fs_err::write(layout.tmp_dir().join("stray"), "x").unwrap();
        let record_tmp = layout.record_file().with_extension("json.tmp");
        fs_err::write(&record_tmp, "{").unwrap();
        std::mem::forget(b);
        clean_leftovers(&layout).unwrap();
        assert_eq!(fs_err::read_dir(layout.tmp_dir()).unwrap().count(), 0);
        assert!(!record_tmp.exists());
    }
}
