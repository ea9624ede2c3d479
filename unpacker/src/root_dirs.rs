//! Handles on a root's own directories, through which the unpacker places what it writes.
//!
//! [`crate::root_guard`] refuses a root whose structure holds a planted link, but a path that
//! was checked can still be swapped for a link before it is used. Each directory here is
//! opened relative to its parent's handle without following a link (`openat` with
//! `O_NOFOLLOW | O_DIRECTORY` on Unix), once, under the root lock; scratch trees are built
//! and renamed into place through these handles (`renameat`), so a later swap of
//! `ROOT/envs`, `ROOT/.envpack/tmp` or any other of them changes nothing the unpacker does.

use std::path::Path;

use cap_std::fs::Dir;

use crate::error::UnpackError;
use crate::layout::RootLayout;

/// The root's own directories, each opened without following a link.
#[derive(Debug)]
pub struct RootDirs {
    /// `ROOT` (the user may have named it through a link).
    pub root: Dir,
    /// `ROOT/.envpack`.
    pub meta: Dir,
    /// `ROOT/.envpack/tmp`.
    pub tmp: Dir,
    /// `ROOT/envs`.
    pub envs: Dir,
    /// `ROOT/state`.
    pub state: Dir,
    /// `ROOT/bin`.
    pub bin: Dir,
    /// The paths of the same directories, for messages.
    pub layout: RootLayout,
}

impl RootDirs {
    /// Opens the root's directories, creating the missing ones; call with the root lock held.
    pub fn open(layout: &RootLayout) -> Result<Self, UnpackError> {
        let root = Dir::open_ambient_dir(&layout.root, cap_std::ambient_authority())
            .map_err(|e| UnpackError::at(e, &layout.root))?;
        let meta = child_dir(&root, ".envpack", &layout.meta_dir())?;
        let tmp = child_dir(&meta, "tmp", &layout.tmp_dir())?;
        let envs = child_dir(&root, "envs", &layout.envs_dir())?;
        let state = child_dir(&root, "state", &layout.state_dir())?;
        let bin = child_dir(&root, "bin", &layout.bin_dir())?;
        Ok(RootDirs {
            root,
            meta,
            tmp,
            envs,
            state,
            bin,
            layout: layout.clone(),
        })
    }

    /// `ROOT/.envpack/artifacts`, created if missing.
    pub fn artifacts(&self) -> Result<Dir, UnpackError> {
        child_dir(
            &self.meta,
            "artifacts",
            &self.layout.meta_dir().join("artifacts"),
        )
    }
}

/// `parent/name` as a directory handle, created if missing; a link there is refused with
/// `shown` (its path) named.
pub fn child_dir(parent: &Dir, name: &str, shown: &Path) -> Result<Dir, UnpackError> {
    match parent.create_dir(name) {
        Ok(()) => sync_dir(parent).map_err(|e| UnpackError::at(e, shown))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(UnpackError::at(e, shown)),
    }
    open_child(parent, name).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists || is_link_refusal(&e) {
            UnpackError::BadRoot {
                path: shown.to_path_buf(),
                reason: "is a link or not a directory; links inside a root are refused because \
                         they could redirect its writes outside it. Remove it, then run again"
                    .into(),
            }
        } else {
            UnpackError::at(e, shown)
        }
    })
}

/// Opens the existing directory `parent/name` without following a link at `name`.
pub fn open_child(parent: &Dir, name: &str) -> std::io::Result<Dir> {
    #[cfg(unix)]
    {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(parent, name, flags, Mode::empty())?;
        Ok(Dir::from_std_file(std::fs::File::from(fd)))
    }
    #[cfg(not(unix))]
    {
        let meta = parent.symlink_metadata(name)?;
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return Err(std::io::Error::other("a link or not a directory"));
        }
        parent.open_dir(name)
    }
}

/// Opens the regular file `dir/name` for reading without following a link at `name`.
pub fn open_file_no_follow(dir: &Dir, name: &str) -> std::io::Result<std::fs::File> {
    #[cfg(unix)]
    let file = {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        std::fs::File::from(rustix::fs::openat(dir, name, flags, Mode::empty())?)
    };
    #[cfg(not(unix))]
    let file = {
        let meta = dir.symlink_metadata(name)?;
        if meta.file_type().is_symlink() {
            return Err(std::io::Error::other("a link"));
        }
        dir.open(name)?.into_std()
    };
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

fn is_link_refusal(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        // ELOOP for a link under O_NOFOLLOW, ENOTDIR for anything that is not a directory.
        use rustix::io::Errno;
        if matches!(Errno::from_io_error(e), Some(Errno::LOOP | Errno::NOTDIR)) {
            return true;
        }
    }
    e.kind() == std::io::ErrorKind::Other
}

/// Replaces `dir/name` atomically (temp file, fsync, rename, directory fsync); `shown` is the
/// directory's path for errors.
pub fn replace_file(dir: &Dir, name: &str, bytes: &[u8], shown: &Path) -> Result<(), UnpackError> {
    use std::io::Write as _;
    let tmp = format!("{name}.tmp");
    let path = shown.join(name);
    let io = |e: std::io::Error| {
        UnpackError::Io(std::io::Error::new(
            e.kind(),
            format!("writing {}: {e}", path.display()),
        ))
    };
    {
        let mut opts = cap_std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        let mut file = dir.open_with(&tmp, &opts).map_err(io)?;
        file.write_all(bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    dir.rename(&tmp, dir, name).map_err(io)?;
    sync_dir(dir)?;
    Ok(())
}

/// Flushes a directory's entries through its handle (a no-op where that is not possible).
pub fn sync_dir(dir: &Dir) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        // cap-std may hold directories as O_PATH handles, which cannot be fsynced.
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, ".", flags, Mode::empty())?;
        rustix::fs::fsync(&fd)?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn creates_opens_and_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs_err::create_dir_all(&root).unwrap();
        let layout = RootLayout::new(&root);
        let dirs = RootDirs::open(&layout).unwrap();
        for d in [".envpack/tmp", "envs", "state", "bin"] {
            assert!(root.join(d).is_dir(), "{d}");
        }
        dirs.artifacts().unwrap();
        assert!(root.join(".envpack/artifacts").is_dir());
        // A link swapped in after the check is refused by the handle open itself.
        fs_err::remove_dir(root.join("bin")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("bin")).unwrap();
        let err = RootDirs::open(&layout).unwrap_err().to_string();
        assert!(err.contains("bin") && err.contains("is a link"), "{err}");
    }
}
