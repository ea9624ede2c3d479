//! Writing one deterministic, compressed tar layer from a tree on disk.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compress::{encoder, Compression};
use crate::digest::{HashingReader, HashingWriter, Sha256Digest};
use crate::error::{LayersError, Result};
use crate::tarfmt::{entry_header, padding, END_OF_ARCHIVE};
use crate::tree::{native_path, validate_link_target, validate_rel_path, EntryKind, TreeEntry};

/// What identifies a written layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerDesc {
    /// Human name (e.g. "python", "packages").
    pub name: String,
    /// Digest of the compressed bytes.
    pub digest: Sha256Digest,
    /// Length of the compressed bytes.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub diff_id: Sha256Digest,
    /// Length of the uncompressed tar.
    pub uncompressed_size: u64,
    /// How the tar is compressed.
    pub compression: Compression,
}

/// Removes a temporary file unless it was renamed into place.
pub(crate) struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// Creates a fresh, exclusively owned temp file in `dir` whose name starts with `stem`.
    pub(crate) fn create(dir: &Path, stem: &str) -> Result<(Self, fs_err::File)> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{stem}.{}.{n}.tmp", std::process::id()));
            match fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => return Ok((TempFile { path, keep: false }, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Atomically moves the file to `dest`.
    pub(crate) fn persist(mut self, dest: &Path) -> Result<()> {
        fs_err::rename(&self.path, dest)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Completes `entries` with their missing ancestor directories, sorts by path bytes and
/// removes exact duplicates; conflicting duplicates or non-directory parents are errors.
pub fn normalize_entries(entries: &[TreeEntry]) -> Result<Vec<TreeEntry>> {
    let mut map: BTreeMap<&str, &EntryKind> = BTreeMap::new();
    for e in entries {
        validate_rel_path(&e.path)?;
        if let EntryKind::Symlink { target } = &e.kind {
            validate_link_target(&e.path, target)?;
        }
        if let Some(prev) = map.insert(&e.path, &e.kind) {
            if prev != &e.kind {
                return Err(LayersError::format(
                    "layer entries",
                    format!("{} appears twice with different contents", e.path),
                ));
            }
        }
    }
    const DIR: EntryKind = EntryKind::Dir;
    let paths: Vec<&str> = map.keys().copied().collect();
    for p in paths {
        let mut ancestor = p;
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            match map.get(parent) {
                Some(EntryKind::Dir) => {}
                Some(_) => {
                    return Err(LayersError::format(
                        "layer entries",
                        format!("{p} lies under {parent}, which is not a directory"),
                    ))
                }
                None => {
                    map.insert(parent, &DIR);
                }
            }
            ancestor = parent;
        }
    }
    // BTreeMap over &str orders by bytes, which puts parents before children.
    Ok(map
        .into_iter()
        .map(|(path, kind)| TreeEntry {
            path: path.to_string(),
            kind: kind.clone(),
        })
        .collect())
}

/// Writes the layer for `entries` (read from `src_root`) into `out_dir/<hex>.<ext>`.
/// Output bytes depend only on the entries, the file contents, `epoch` and `compression`.
pub fn write_layer(
    name: &str,
    src_root: &Path,
    entries: &[TreeEntry],
    epoch: u64,
    compression: Compression,
    out_dir: &Path,
) -> Result<(LayerDesc, PathBuf)> {
    write_layer_prefixed(name, src_root, entries, "", epoch, compression, out_dir)
}

/// Like [`write_layer`], but every path in the tar is placed under `prefix` (a clean relative
/// path; empty for none), whose own directories are emitted first as 0755 dirs.
pub fn write_layer_prefixed(
    name: &str,
    src_root: &Path,
    entries: &[TreeEntry],
    prefix: &str,
    epoch: u64,
    compression: Compression,
    out_dir: &Path,
) -> Result<(LayerDesc, PathBuf)> {
    let entries = normalize_entries(entries)?;
    let (temp, file) = TempFile::create(out_dir, "layer")?;
    let compressed_side = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut tar = HashingWriter::new(encoder(compression, compressed_side)?);
    write_tar(src_root, &entries, prefix, epoch, &mut tar)?;
    let (diff_id, uncompressed_size, enc) = tar.into_parts();
    let (digest, size, buffered) = enc.finish()?.into_parts();
    let file = buffered
        .into_inner()
        .map_err(|e| LayersError::Io(e.into_error()))?;
    file.sync_all()?;
    drop(file);
    let dest = out_dir.join(format!("{}.{}", digest.to_hex(), compression.extension()));
    temp.persist(&dest)?;
    tracing::debug!(layer = name, %digest, size, uncompressed_size, "wrote layer");
    Ok((
        LayerDesc {
            name: name.to_string(),
            digest,
            size,
            diff_id,
            uncompressed_size,
            compression,
        },
        dest,
    ))
}

/// The diff_id and length of the uncompressed tar [`write_layer`] would write, without
/// writing anything; lets an env's identity be computed when its layers are stored elsewhere.
pub fn layer_diff_id(
    src_root: &Path,
    entries: &[TreeEntry],
    epoch: u64,
) -> Result<(Sha256Digest, u64)> {
    let entries = normalize_entries(entries)?;
    let mut tar = HashingWriter::new(std::io::sink());
    write_tar(src_root, &entries, "", epoch, &mut tar)?;
    Ok(tar.finish())
}

/// The directory entries `prefix` itself consists of, outermost first.
pub fn prefix_dirs(prefix: &str) -> Result<Vec<TreeEntry>> {
    if prefix.is_empty() {
        return Ok(Vec::new());
    }
    validate_rel_path(prefix)?;
    let mut dirs: Vec<TreeEntry> = prefix
        .match_indices('/')
        .map(|(i, _)| &prefix[..i])
        .chain(std::iter::once(prefix))
        .map(|p| TreeEntry {
            path: p.to_string(),
            kind: EntryKind::Dir,
        })
        .collect();
    dirs.dedup();
    Ok(dirs)
}

/// Writes normalized `entries` as one tar stream (with end-of-archive) under `prefix`.
fn write_tar(
    src_root: &Path,
    entries: &[TreeEntry],
    prefix: &str,
    epoch: u64,
    tar: &mut impl Write,
) -> Result<()> {
    for dir in prefix_dirs(prefix)? {
        tar.write_all(&entry_header(&dir, epoch)?)?;
    }
    let mut buf = vec![0u8; 1 << 16];
    for entry in entries {
        let header = if prefix.is_empty() {
            entry_header(entry, epoch)?
        } else {
            let placed = TreeEntry {
                path: format!("{prefix}/{}", entry.path),
                kind: entry.kind.clone(),
            };
            entry_header(&placed, epoch)?
        };
        tar.write_all(&header)?;
        if let EntryKind::File { size, sha256, .. } = &entry.kind {
            copy_checked(src_root, &entry.path, *size, sha256, tar, &mut buf)?;
            tar.write_all(&END_OF_ARCHIVE[..padding(*size)])?;
        }
    }
    tar.write_all(&END_OF_ARCHIVE)?;
    Ok(())
}

/// Streams one file into the tar, checking it still has the scanned size and digest.
fn copy_checked(
    root: &Path,
    rel: &str,
    size: u64,
    sha256: &Sha256Digest,
    out: &mut impl Write,
    buf: &mut [u8],
) -> Result<()> {
    let path = native_path(root, rel);
    let meta = fs_err::symlink_metadata(&path)?;
    if !meta.is_file() {
        return Err(LayersError::Changed {
            path: path.display().to_string(),
            detail: "no longer a regular file".into(),
        });
    }
    let changed = |detail: String| LayersError::Changed {
        path: path.display().to_string(),
        detail,
    };
    let mut reader = HashingReader::new(fs_err::File::open(&path)?);
    let mut done = 0u64;
    loop {
        let n = reader.read(buf)?;
        if n == 0 {
            break;
        }
        if done + n as u64 > size {
            return Err(changed(format!("grew beyond {size} bytes")));
        }
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    let (actual, len) = reader.finish();
    if len != size {
        return Err(changed(format!("size {len}, expected {size}")));
    }
    if actual != *sha256 {
        return Err(changed(format!("sha256 {actual}, expected {sha256}")));
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::tree::scan_tree;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::time::{Duration, SystemTime};

    /// Builds the same logical tree in two ways that differ in everything but content.
    fn make_tree(root: &Path, variant: bool) {
        let perm = |p: &Path, m: u32| {
            fs_err::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let files: Vec<(&str, &[u8], bool)> = vec![
            ("python/bin/python3.11", b"\x7fELF fake", true),
            ("python/lib/python3.11/os.py", b"import sys\n", false),
            (
                "conan-home/profiles/default",
                b"[settings]\nos=Linux\n",
                false,
            ),
            (
                "a-long-name/".repeat(12).leak().trim_end_matches('/'),
                b"deep",
                false,
            ),
            ("unicodé/ñame.txt", b"x", false),
            ("empty", b"", false),
        ];
        let order: Vec<_> = if variant {
            files.iter().rev().collect()
        } else {
            files.iter().collect()
        };
        for (rel, data, exec) in order {
            let p = root.join(rel);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(&p, data).unwrap();
            let m = match (exec, variant) {
                (true, false) => 0o755,
                (true, true) => 0o700,
                (false, false) => 0o644,
                (false, true) => 0o600,
            };
            perm(&p, m);
            let t = SystemTime::UNIX_EPOCH
                + Duration::from_secs(if variant { 1_000_000 } else { 2_000_000_000 });
            fs_err::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        symlink("python3.11", root.join("python/bin/python3")).unwrap();
        if variant {
            perm(&root.join("python"), 0o700);
        }
    }

    fn build(variant: bool, c: Compression) -> (LayerDesc, PathBuf, tempfile::TempDir) {
        let src = tempfile::tempdir().unwrap();
        make_tree(src.path(), variant);
        let entries = scan_tree(src.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let (d, p) =
            write_layer("test", src.path(), &entries, 1_700_000_000, c, out.path()).unwrap();
        let kept = out.path().join("keep");
        fs_err::create_dir(&kept).unwrap();
        let moved = kept.join(p.file_name().unwrap());
        fs_err::rename(&p, &moved).unwrap();
        (d, moved, out)
    }

    #[test]
    fn deterministic_across_mtime_perms_and_creation_order() {
        for c in [Compression::Zstd, Compression::Gzip] {
            let (a, pa, _ta) = build(false, c);
            let (b, pb, _tb) = build(true, c);
            assert_eq!(a, b, "{c}");
            assert_eq!(fs_err::read(&pa).unwrap(), fs_err::read(&pb).unwrap());
            assert_eq!(
                pa.file_name().unwrap().to_str().unwrap(),
                format!("{}.{}", a.digest.to_hex(), c.extension())
            );
            assert_eq!(Sha256Digest::of_file(&pa).unwrap(), (a.digest, a.size));
        }
    }

    #[test]
    fn gnu_tar_lists_normalized_entries() {
        let (d, p, _t) = build(true, Compression::Gzip);
        let out = std::process::Command::new("tar")
            .args(["--numeric-owner", "--full-time", "-tvzf"])
            .arg(&p)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        // (permissions, owner, size, name) per line; the date is the epoch in UTC.
        let rows: Vec<(String, String, String, String)> = listing
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(&f[3..5], ["2023-11-14", "22:13:20"], "{l}");
                (f[0].into(), f[1].into(), f[2].into(), f[5..].join(" "))
            })
            .collect();
        let find = |name: &str| {
            rows.iter()
                .find(|r| r.3 == name)
                .unwrap_or_else(|| panic!("{name} in {listing}"))
        };
        assert_eq!(find("python/").0, "drwxr-xr-x");
        assert_eq!(find("python/bin/python3.11").0, "-rwxr-xr-x");
        assert_eq!(find("python/bin/python3.11").2, "9");
        assert_eq!(find("python/bin/python3 -> python3.11").0, "lrwxrwxrwx");
        assert_eq!(find("unicodé/ñame.txt").0, "-rw-r--r--");
        find("a-long-name/".repeat(12).trim_end_matches('/'));
        assert!(rows.iter().all(|r| r.1 == "0/0"));
        assert_eq!(d.compression, Compression::Gzip);
        // Parents precede children and names ascend in byte order.
        let paths: Vec<String> = rows
            .iter()
            .map(|r| {
                r.3.split(" -> ")
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert_eq!(paths.len(), 25);
    }

    #[test]
    fn changed_file_is_an_error_naming_it() {
        let src = tempfile::tempdir().unwrap();
        make_tree(src.path(), false);
        let entries = scan_tree(src.path()).unwrap();
        fs_err::write(
            src.path().join("python/lib/python3.11/os.py"),
            b"import os\n",
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let err =
            write_layer("t", src.path(), &entries, 0, Compression::Zstd, out.path()).unwrap_err();
        assert!(err.to_string().contains("os.py"), "{err}");
        assert_eq!(
            fs_err::read_dir(out.path()).unwrap().count(),
            0,
            "temp file left behind"
        );
    }

    #[test]
    fn prefixed_layer_places_entries_under_prefix_dirs() {
        let src = tempfile::tempdir().unwrap();
        make_tree(src.path(), false);
        let entries = scan_tree(src.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let (d, p) = write_layer_prefixed(
            "t",
            src.path(),
            &entries,
            "opt/envpack/x",
            1_700_000_000,
            Compression::Gzip,
            out.path(),
        )
        .unwrap();
        let listing = std::process::Command::new("tar")
            .arg("-tzf")
            .arg(&p)
            .output()
            .unwrap();
        let names: Vec<String> = String::from_utf8(listing.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            names[..4],
            [
                "opt/",
                "opt/envpack/",
                "opt/envpack/x/",
                "opt/envpack/x/a-long-name/"
            ]
        );
        assert!(names.contains(&"opt/envpack/x/python/bin/python3".to_string()));
        assert_eq!(names.len(), 25 + 3);
        // The unprefixed layer's diff_id is computable without writing it.
        let (plain, _) = write_layer(
            "t",
            src.path(),
            &entries,
            1_700_000_000,
            Compression::Gzip,
            out.path(),
        )
        .unwrap();
        let (diff_id, len) = layer_diff_id(src.path(), &entries, 1_700_000_000).unwrap();
        assert_eq!((diff_id, len), (plain.diff_id, plain.uncompressed_size));
        assert_ne!(d.diff_id, plain.diff_id);
    }

    #[test]
    fn prefix_dirs_table() {
        let paths = |p: &str| -> Vec<String> {
            prefix_dirs(p)
                .unwrap()
                .into_iter()
                .map(|e| e.path)
                .collect()
        };
        assert!(paths("").is_empty());
        assert_eq!(paths("a"), ["a"]);
        assert_eq!(paths("a/b/c"), ["a", "a/b", "a/b/c"]);
        assert!(prefix_dirs("/abs").is_err());
        assert!(prefix_dirs("a/../b").is_err());
    }

    #[test]
    fn normalize_adds_parents_and_rejects_conflicts() {
        let f = |p: &str| TreeEntry {
            path: p.into(),
            kind: EntryKind::File {
                size: 0,
                sha256: Sha256Digest::of_bytes(b""),
                executable: false,
            },
        };
        let n = normalize_entries(&[f("b/c/d"), f("a"), f("a")]).unwrap();
        let paths: Vec<_> = n.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "b", "b/c", "b/c/d"]);
        assert!(n[1].is_dir() && n[2].is_dir());
        let mut conflict = f("a");
        conflict.kind = EntryKind::Dir;
        assert!(normalize_entries(&[f("a"), conflict]).is_err());
        assert!(normalize_entries(&[f("a"), f("a/b")]).is_err());
        assert!(normalize_entries(&[f("../a")]).is_err());
    }
}

#[cfg(test)]
mod golden {
    use super::*;

    /// Pinned digests: a change here means every published layer digest changes.
    #[test]
    fn golden_digests() {
        let src = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(src.path().join("bin")).unwrap();
        fs_err::write(src.path().join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
        fs_err::write(src.path().join("README"), b"envpack\n").unwrap();
        let file = |path: &str, data: &[u8], executable| TreeEntry {
            path: path.into(),
            kind: EntryKind::File {
                size: data.len() as u64,
                sha256: Sha256Digest::of_bytes(data),
                executable,
            },
        };
        let entries = vec![
            file("bin/tool", b"#!/bin/sh\necho hi\n", true),
            file("README", b"envpack\n", false),
            TreeEntry {
                path: "bin/sh-link".into(),
                kind: EntryKind::Symlink {
                    target: "tool".into(),
                },
            },
        ];
        let out = tempfile::tempdir().unwrap();
        let mut got = Vec::new();
        for c in [Compression::Zstd, Compression::Gzip] {
            let (d, _) =
                write_layer("g", src.path(), &entries, 1_700_000_000, c, out.path()).unwrap();
            got.push(format!("{c} {} {} {}", d.diff_id, d.digest, d.size));
        }
        // The diff_id equals the sha256 of the same archive written by Python's tarfile
        // (USTAR_FORMAT, uid/gid 0, empty names) minus its record padding.
        let diff_id = "sha256:e05abd28f401805a771d771194fd7ab327fc668ece5caf9f08abbe1715f7fba1";
        assert_eq!(
            got,
            [
                format!("zstd {diff_id} sha256:b115e10e0bc9a4c6910bdcb952b74eab8d5910c9eef0b19ea50fbaaab3a1ea65 173"),
                format!("gzip {diff_id} sha256:9c4eec832632a9d1a795304519f6e374274c4aace4887d1faeee7ba5bf3cfcd8 192"),
            ],
            "update the golden values only on purpose"
        );
    }
}
