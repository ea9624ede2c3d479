//! Recursive copy of a small directory tree (used to seed writable state from a template).

use std::path::Path;

/// Copies `src` to `dst` (which must not exist): directories, files and symlinks as links.
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    fs_err::create_dir(dst)?;
    for entry in fs_err::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&from, &to)?;
        } else if kind.is_symlink() {
            copy_link(&from, &to)?;
        } else {
            fs_err::copy(&from, &to)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn copy_link(from: &Path, to: &Path) -> std::io::Result<()> {
    fs_err::os::unix::fs::symlink(fs_err::read_link(from)?, to)
}

#[cfg(windows)]
fn copy_link(from: &Path, to: &Path) -> std::io::Result<()> {
    // Link creation may need privileges on Windows; a copy of the target works everywhere.
    if fs_err::metadata(from)?.is_dir() {
        copy_tree(from, to)
    } else {
        fs_err::copy(from, to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs_err::create_dir_all(src.join("profiles/sub")).unwrap();
        fs_err::write(src.join("global.conf"), "a=1\n").unwrap();
        fs_err::write(src.join("profiles/sub/default"), "[settings]\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("global.conf", src.join("link")).unwrap();
        let dst = dir.path().join("dst");
        copy_tree(&src, &dst).unwrap();
        assert_eq!(
            fs_err::read_to_string(dst.join("global.conf")).unwrap(),
            "a=1\n"
        );
        assert_eq!(
            fs_err::read_to_string(dst.join("profiles/sub/default")).unwrap(),
            "[settings]\n"
        );
        #[cfg(unix)]
        assert_eq!(
            fs_err::read_link(dst.join("link")).unwrap(),
            Path::new("global.conf")
        );
        assert!(
            copy_tree(&src, &dst).is_err(),
            "existing destination must be refused"
        );
    }
}
