//! Refusing roots whose own structure was redirected by planted links.
//!
//! Roots are shared in practice (`/opt/…` in CI images, a team directory on an air-gapped
//! host), so anyone who could write there earlier may have left `ROOT/envs -> /etc` or
//! `ROOT/.envpack/tmp -> ~victim` behind. Every path the unpacker itself creates below the root
//! must therefore be what it made: a real directory or a regular file, never a link. The root
//! itself may be a link (that is the user's choice); nothing below it. Each operation checks
//! this under the root lock before it touches anything, and deletions additionally go through
//! a handle opened without following links (see [`crate::scratch`]).

use std::path::{Path, PathBuf};

use crate::error::UnpackError;
use crate::layout::RootLayout;

/// What a structural entry of a root must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Dir,
    File,
}

/// Structural entries, relative to the root, and what each must be when present.
const STRUCTURE: &[(&str, Want)] = &[
    (".envpack", Want::Dir),
    (".envpack/tmp", Want::Dir),
    (".envpack/artifacts", Want::Dir),
    (".envpack/lock", Want::File),
    (".envpack/root.json", Want::File),
    (".envpack/root.json.tmp", Want::File),
    // Made only by doctor (its default log dir) and repair (what it moves aside), so a link
    // planted before either first ran would take their writes.
    (".envpack/doctor", Want::Dir),
    (".envpack/quarantine", Want::Dir),
    ("envs", Want::Dir),
    ("state", Want::Dir),
    ("bin", Want::Dir),
];

/// Directories whose every child has a fixed kind: env trees and state dirs are directories,
/// shims and kept artifacts are regular files.
const CHILDREN: &[(&str, Want)] = &[
    ("envs", Want::Dir),
    ("state", Want::Dir),
    ("bin", Want::File),
    (".envpack/artifacts", Want::File),
];

/// Errors naming the first entry of the root's own structure that is a link or of the wrong
/// kind. Missing entries are fine (they get created).
pub fn check_root_structure(layout: &RootLayout) -> Result<(), UnpackError> {
    for (rel, want) in STRUCTURE {
        check_entry(layout, &layout.root.join(rel), *want)?;
    }
    for (rel, want) in CHILDREN {
        let dir = layout.root.join(rel);
        let entries = match fs_err::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let path = entry?.path();
            check_entry(layout, &path, *want)?;
            if *want == Want::Dir && rel == &"state" {
                check_entry(layout, &path.join("conan-home"), Want::Dir)?;
            }
        }
    }
    Ok(())
}

fn check_entry(layout: &RootLayout, path: &Path, want: Want) -> Result<(), UnpackError> {
    let meta = match fs_err::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let shown = shown_path(layout, path);
    if meta.file_type().is_symlink() || is_reparse_point(&meta) {
        return Err(UnpackError::BadRoot {
            path: shown,
            reason: "is a link, but the unpacker never creates one there; links inside a root \
                     are refused because they could redirect its writes outside it. Remove it \
                     (and find out who planted it), then run again"
                .into(),
        });
    }
    let ok = match want {
        Want::Dir => meta.is_dir(),
        Want::File => meta.is_file(),
    };
    if !ok {
        let what = match want {
            Want::Dir => "a directory",
            Want::File => "a regular file",
        };
        return Err(UnpackError::BadRoot {
            path: shown,
            reason: format!("must be {what}; remove it and run again"),
        });
    }
    Ok(())
}

/// `ROOT/<rel>` as the user named the root, for messages.
fn shown_path(layout: &RootLayout, path: &Path) -> PathBuf {
    path.strip_prefix(&layout.root)
        .map_or_else(|_| path.to_path_buf(), |rel| layout.root.join(rel))
}

/// Makes `opts` refuse to open a link in the last path component (`O_NOFOLLOW`), so a link
/// swapped in after [`check_root_structure`] fails instead of being written through.
pub fn no_follow(opts: &mut fs_err::OpenOptions) -> &mut fs_err::OpenOptions {
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    opts
}

#[cfg(windows)]
fn is_reparse_point(meta: &std::fs::Metadata) -> bool {
    use std::os::windows::fs::MetadataExt;
    // Junctions are reparse points that std does not report as symlinks.
    meta.file_attributes() & 0x400 != 0
}

#[cfg(not(windows))]
fn is_reparse_point(_meta: &std::fs::Metadata) -> bool {
    false
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn planted_links_and_wrong_kinds_are_named() {
        let cases: &[(&str, bool)] = &[
            (".envpack", true),
            (".envpack/tmp", true),
            (".envpack/artifacts", true),
            (".envpack/lock", false),
            (".envpack/root.json", false),
            (".envpack/doctor", true),
            (".envpack/quarantine", true),
            ("envs", true),
            ("state", true),
            ("bin", true),
            ("envs/abc", true),
            ("state/abc", true),
            ("state/abc/conan-home", true),
            ("bin/conan", false),
            (".envpack/artifacts/abc.envpack.tar", false),
        ];
        for (rel, _) in cases {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            let outside = dir.path().join("outside");
            fs_err::create_dir_all(&outside).unwrap();
            for d in [
                ".envpack/artifacts",
                ".envpack/tmp",
                "envs",
                "state/abc",
                "bin",
            ] {
                fs_err::create_dir_all(root.join(d)).unwrap();
            }
            let at = root.join(rel);
            if at.is_dir() {
                fs_err::remove_dir_all(&at).unwrap();
            }
            if let Some(parent) = at.parent() {
                fs_err::create_dir_all(parent).unwrap();
            }
            std::os::unix::fs::symlink(&outside, &at).unwrap();
            let layout = RootLayout::new(&root);
            let err = check_root_structure(&layout).unwrap_err().to_string();
            assert!(
                err.contains(rel) && err.contains("is a link"),
                "{rel}: {err}"
            );
        }
        for (rel, is_dir) in cases {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            fs_err::create_dir_all(root.join("state/abc")).unwrap();
            fs_err::create_dir_all(root.join(".envpack/artifacts")).unwrap();
            fs_err::create_dir_all(root.join("envs")).unwrap();
            fs_err::create_dir_all(root.join("bin")).unwrap();
            let at = root.join(rel);
            if at.is_dir() {
                fs_err::remove_dir_all(&at).unwrap();
            }
            // The opposite kind of what belongs there.
            if *is_dir {
                fs_err::write(&at, "x").unwrap();
            } else {
                fs_err::create_dir_all(&at).unwrap();
            }
            let err = check_root_structure(&RootLayout::new(&root))
                .unwrap_err()
                .to_string();
            assert!(err.contains(rel) && err.contains("must be"), "{rel}: {err}");
        }
        // The root itself may be a link.
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("real/envs")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        check_root_structure(&RootLayout::new(&dir.path().join("link"))).unwrap();
    }
}
