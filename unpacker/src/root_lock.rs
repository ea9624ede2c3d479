//! An exclusive lock on a root so concurrent unpacks and rollbacks serialize.

use crate::layout::RootLayout;

/// Holds `ROOT/.envpack/lock` locked until dropped.
#[derive(Debug)]
pub struct RootLock {
    _file: fs_err::File,
}

impl RootLock {
    /// Blocks until this process holds the root's lock; `ROOT/.envpack` must exist.
    pub fn acquire(layout: &RootLayout) -> Result<Self, crate::error::UnpackError> {
        let path = layout.lock_file();
        let file = crate::root_guard::no_follow(&mut fs_err::OpenOptions::new())
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        tracing::debug!(path = %path.display(), "waiting for root lock");
        file.lock()?;
        // Checked again now that no other unpacker can be changing the root.
        crate::root_guard::check_root_structure(layout)?;
        Ok(RootLock { _file: file })
    }
}
