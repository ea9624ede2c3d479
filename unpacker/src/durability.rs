//! Flushing files and directories to stable storage before they become visible.

use std::path::Path;

/// Flushes a directory's entries (names) to disk; a no-op where directories can't be opened
/// (Windows: a directory handle can't be flushed, and NTFS journals its metadata).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        fs_err::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// Flushes one regular file's data and metadata to disk.
pub fn sync_file(path: &Path) -> std::io::Result<()> {
    // FlushFileBuffers (what `sync_all` calls on Windows) needs a handle with write access: a
    // read-only handle fails with "Access denied" (os error 5). Opening for writing without
    // truncating changes nothing in the file.
    #[cfg(windows)]
    let file = fs_err::OpenOptions::new().write(true).open(path)?;
    #[cfg(not(windows))]
    let file = fs_err::File::open(path)?;
    file.sync_all()
}

/// Flushes every regular file and directory below (and including) `root`.
///
/// On Linux one `syncfs` on the tree's filesystem does it: a single call instead of one fsync
/// per file, which is most of an unpack's system time for a tree of thousands of small files.
#[cfg(target_os = "linux")]
pub fn sync_tree(root: &Path) -> std::io::Result<()> {
    let dir = fs_err::File::open(root)?;
    rustix::fs::syncfs(&dir).map_err(|e| {
        std::io::Error::new(
            std::io::Error::from(e).kind(),
            format!("syncing the filesystem of {}: {e}", root.display()),
        )
    })
}

/// Flushes every regular file and directory below (and including) `root`.
#[cfg(not(target_os = "linux"))]
pub fn sync_tree(root: &Path) -> std::io::Result<()> {
    use rayon::prelude::*;
    use std::path::PathBuf;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.par_iter().try_for_each(|f| sync_file(f))?;
    // Children first, so each directory's entry list is flushed after its contents.
    dirs.iter().rev().try_for_each(|d| sync_dir(d))
}
