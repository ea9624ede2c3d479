//! An exclusive lock on a root so concurrent unpacks and rollbacks serialize.

use crate::layout::RootLayout;

/// Holds `ROOT/.envpack/lock` locked until dropped.
#[derive(Debug)]
pub struct RootLock {
    _file: fs_err::File,
}

impl RootLock {
    /// Blocks until this process holds the root's lock; `ROOT/.envpack` must exist.
    pub fn acquire(layout: &RootLayout) -> std::io::Result<Self> {
        let path = layout.lock_file();
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        tracing::debug!(path = %path.display(), "waiting for root lock");
        file.lock()?;
        Ok(RootLock { _file: file })
    }
}
