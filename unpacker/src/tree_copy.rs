//! Recursive copy of a small directory tree between directory handles (used to seed writable
//! state from a template). Nothing is followed: directories are opened without following a
//! link, links are copied as links, and every path stays relative to its handle.

use std::path::Path;

use cap_std::fs::Dir;

use crate::root_dirs::{open_child, open_file_no_follow};

/// Copies the tree of `src` to the new directory `dst_parent/name` (which must not exist):
/// directories, regular files with their mode, and links as links. `shown` is `src`'s path
/// for messages.
pub fn copy_tree(src: &Dir, dst_parent: &Dir, name: &str, shown: &Path) -> std::io::Result<()> {
    let at = |e: std::io::Error, p: &Path| {
        std::io::Error::new(e.kind(), format!("copying {}: {e}", p.display()))
    };
    dst_parent.create_dir(name).map_err(|e| at(e, shown))?;
    let dst = open_child(dst_parent, name).map_err(|e| at(e, shown))?;
    for entry in src.entries().map_err(|e| at(e, shown))? {
        let entry = entry.map_err(|e| at(e, shown))?;
        let file_name = entry.file_name();
        let Some(child) = file_name.to_str() else {
            return Err(at(std::io::Error::other("non-UTF-8 name"), shown));
        };
        let from = shown.join(child);
        let kind = entry.file_type().map_err(|e| at(e, &from))?;
        if kind.is_dir() {
            let sub = open_child(src, child).map_err(|e| at(e, &from))?;
            copy_tree(&sub, &dst, child, &from)?;
        } else if kind.is_symlink() {
            copy_link(src, &dst, child).map_err(|e| at(e, &from))?;
        } else {
            copy_file(src, &dst, child).map_err(|e| at(e, &from))?;
        }
    }
    Ok(())
}

fn copy_file(src: &Dir, dst: &Dir, name: &str) -> std::io::Result<()> {
    let mut from = open_file_no_follow(src, name)?;
    let perm = from.metadata()?.permissions();
    let mut to = dst.create(name)?;
    std::io::copy(&mut from, &mut to)?;
    to.set_permissions(cap_std::fs::Permissions::from_std(perm))?;
    Ok(())
}

#[cfg(unix)]
fn copy_link(src: &Dir, dst: &Dir, name: &str) -> std::io::Result<()> {
    // The link's target was checked to stay inside the template before the copy.
    dst.symlink_contents(src.read_link_contents(name)?, name)
}

#[cfg(windows)]
fn copy_link(src: &Dir, dst: &Dir, name: &str) -> std::io::Result<()> {
    // Link creation may need privileges on Windows; a copy of the target works everywhere.
    // cap-std resolves the link inside `src` only.
    if src.metadata(name)?.is_dir() {
        let sub = src.open_dir(name)?;
        copy_tree(&sub, dst, name, Path::new(name))
    } else {
        let mut from = src.open(name)?;
        let mut to = dst.create(name)?;
        std::io::copy(&mut from, &mut to).map(|_| ())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn open(p: &Path) -> Dir {
        Dir::open_ambient_dir(p, cap_std::ambient_authority()).unwrap()
    }

    #[test]
    fn copies_files_dirs_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs_err::create_dir_all(src.join("profiles/sub")).unwrap();
        fs_err::write(src.join("global.conf"), "a=1\n").unwrap();
        fs_err::write(src.join("profiles/sub/default"), "[settings]\n").unwrap();
        std::os::unix::fs::symlink("global.conf", src.join("link")).unwrap();
        let root = open(dir.path());
        copy_tree(&open(&src), &root, "dst", &src).unwrap();
        let dst = dir.path().join("dst");
        assert_eq!(
            fs_err::read_to_string(dst.join("global.conf")).unwrap(),
            "a=1\n"
        );
        assert_eq!(
            fs_err::read_to_string(dst.join("profiles/sub/default")).unwrap(),
            "[settings]\n"
        );
        assert_eq!(
            fs_err::read_link(dst.join("link")).unwrap(),
            Path::new("global.conf")
        );
        assert!(
            copy_tree(&open(&src), &root, "dst", &src).is_err(),
            "existing destination must be refused"
        );
    }
}
