//! `envpack audit --rebuild`: rebuild every platform of the lock into a temp dir and compare
//! each artifact with the previously built one (`--against DIR`, default `dist`): artifact
//! digest, each layer's digest and diff_id, and for layers that differ a file-by-file diff.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use envpack_layers::artifact::ArtifactReader;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::tree::{EntryKind, TreeEntry};
use sha2::Digest as _;

use super::report::AuditReport;
use super::signed::{audit_signed, HeldLock};
use crate::artifact_writer::artifact_name;
use crate::build::{build, BuildOptions};
use crate::lock::Lock;
use envpack_net::Cache;

/// Every entry of layer `i`, by path.
pub fn layer_entries(
    reader: &ArtifactReader,
    i: usize,
) -> Result<BTreeMap<String, TreeEntry>, String> {
    let stream = reader.open_layer(i).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(stream));
    let mut out = BTreeMap::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = raw.trim_end_matches('/').to_string();
        let header = entry.header();
        let mode = header.mode().map_err(|e| e.to_string())?;
        let kind = match header.entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink {
                target: entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default(),
            },
            _ => {
                let mut h = sha2::Sha256::new();
                let mut buf = [0u8; 64 * 1024];
                let mut size = 0u64;
                loop {
                    let n = entry.read(&mut buf).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    size += n as u64;
                }
                EntryKind::File {
                    size,
                    sha256: Sha256Digest(h.finalize().into()),
                    executable: mode & 0o111 != 0,
                }
            }
        };
        out.insert(path.clone(), TreeEntry { path, kind });
    }
    Ok(out)
}

fn kind_name(k: &EntryKind) -> &'static str {
    match k {
        EntryKind::Dir => "directory",
        EntryKind::File { .. } => "file",
        EntryKind::Symlink { .. } => "symlink",
    }
}

/// What changed between two versions of one entry (`None` when equal).
pub fn entry_change(a: &TreeEntry, b: &TreeEntry) -> Option<String> {
    match (&a.kind, &b.kind) {
        (
            EntryKind::File {
                size: sa,
                sha256: ha,
                ..
            },
            EntryKind::File {
                size: sb,
                sha256: hb,
                ..
            },
        ) => {
            let mut what = Vec::new();
            if ha != hb {
                what.push(format!("content hash {ha} -> {hb}"));
            }
            if sa != sb {
                what.push(format!("size {sa} -> {sb}"));
            }
            if a.mode() != b.mode() {
                what.push(format!("mode {:04o} -> {:04o}", a.mode(), b.mode()));
            }
            (!what.is_empty()).then(|| what.join(", "))
        }
        (EntryKind::Symlink { target: ta }, EntryKind::Symlink { target: tb }) => {
            (ta != tb).then(|| format!("link target {ta} -> {tb}"))
        }
        (EntryKind::Dir, EntryKind::Dir) => None,
        (ka, kb) => Some(format!("type {} -> {}", kind_name(ka), kind_name(kb))),
    }
}

/// File-by-file differences between two layers' entries: `(path, what changed)`.
pub fn diff_entries(
    before: &BTreeMap<String, TreeEntry>,
    after: &BTreeMap<String, TreeEntry>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (p, a) in before {
        match after.get(p) {
            None => out.push((p.clone(), "removed".to_string())),
            Some(b) => {
                if let Some(c) = entry_change(a, b) {
                    out.push((p.clone(), c));
                }
            }
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push((p.clone(), "added".to_string()));
    }
    out
}

/// Compares the `previous` artifact with the `rebuilt` one.
pub fn compare_artifacts(previous: &Path, rebuilt: &Path) -> AuditReport {
    let subject = format!("artifact {}", previous.display());
    let mut r = AuditReport::new(subject.clone());
    r.checked += 1;
    let digest = |p: &Path| Sha256Digest::of_file(p).map(|(d, _)| d);
    match (digest(previous), digest(rebuilt)) {
        (Ok(a), Ok(b)) if a == b => return r,
        (Ok(a), Ok(b)) => r.find(
            subject.clone(),
            format!("sha256 {a}, the rebuild gives {b}"),
        ),
        (Err(e), _) | (_, Err(e)) => {
            r.find(subject, e.to_string());
            return r;
        }
    }
    let (ra, rb) = match (
        ArtifactReader::open(previous),
        ArtifactReader::open(rebuilt),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            r.find(subject, e.to_string());
            return r;
        }
    };
    if ra.lock_bytes() != rb.lock_bytes() {
        r.find(
            format!("{subject} envpack.lock"),
            "was built from a different lock",
        );
    }
    for (i, la) in ra.index().layers.iter().enumerate() {
        let item = format!("{subject} layer {}", la.name);
        r.checked += 1;
        let Some(j) = rb.index().layers.iter().position(|l| l.name == la.name) else {
            r.find(item, "absent from the rebuild");
            continue;
        };
        let lb = &rb.index().layers[j];
        if la.digest != lb.digest {
            r.find(
                item.clone(),
                format!("digest {}, the rebuild gives {}", la.digest, lb.digest),
            );
        }
        if la.diff_id == lb.diff_id {
            continue;
        }
        r.find(
            item.clone(),
            format!("diff_id {}, the rebuild gives {}", la.diff_id, lb.diff_id),
        );
        match (layer_entries(&ra, i), layer_entries(&rb, j)) {
            (Ok(ea), Ok(eb)) => {
                for (path, change) in diff_entries(&ea, &eb) {
                    r.find(format!("layer {}: {path}", la.name), change);
                }
            }
            (Err(e), _) | (_, Err(e)) => r.find(item, format!("cannot list entries: {e}")),
        }
    }
    r
}

/// Rebuilds every platform of `held.lock` (tarball format, `opts.out_dir` ignored: a temp dir
/// is used) and compares each artifact with the one of the same name in `against`; with
/// `trust` keys, each of those must be signed with a provenance of this lock, about the very
/// file the rebuild gives.
pub fn audit_rebuild(
    held: &HeldLock,
    opts: &BuildOptions,
    against: &Path,
    trust: &[PathBuf],
) -> anyhow::Result<AuditReport> {
    let (lock, lock_text) = (held.lock, held.text);
    let mut r = AuditReport::new(format!("rebuild against {}", against.display()));
    // A fresh cache holding only the pinned downloads: every layer is rebuilt, nothing is
    // taken from the layer cache, and nothing needs the network that was cached before.
    let tmp = opts.cache.scratch_dir()?;
    let cache = seeded_cache(lock, opts.cache, &tmp.path().join("cache"))?;
    let out = tmp.path().join("dist");
    let rebuild_opts = BuildOptions {
        format: crate::build::OutputFormat::Tarball,
        ..opts.redirected(&cache, &out)
    };
    let built = build(lock, lock_text, &rebuild_opts)?;
    for a in &built.artifacts {
        let previous = against.join(artifact_name(&lock.name, &a.platform));
        if !previous.is_file() {
            r.checked += 1;
            r.find(
                format!("artifact {}", previous.display()),
                "missing: nothing to compare the rebuild with (build it first, or pass --against DIR)",
            );
            continue;
        }
        r.merge(compare_artifacts(&previous, &a.path));
        if !trust.is_empty() {
            r.merge(audit_signed(&previous, trust, Some(held), Some(&a.path)));
        }
    }
    Ok(r)
}

/// A cache at `dir` with the pinned files of `lock` that `from` holds (hard links where
/// possible, else copies).
fn seeded_cache(lock: &Lock, from: &Cache, dir: &Path) -> anyhow::Result<Cache> {
    let blobs = dir.join("blobs").join("sha256");
    fs_err::create_dir_all(&blobs)?;
    for f in super::pins::pinned_files(lock) {
        let src = super::pins::cached_blob(from, &f.sha256);
        if src.is_file() {
            let dest = blobs.join(f.sha256.to_hex());
            if fs_err::hard_link(&src, &dest).is_err() {
                fs_err::copy(&src, &dest)?;
            }
        }
    }
    Ok(Cache::open(Some(dir))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, bytes: &[u8], exec: bool) -> TreeEntry {
        TreeEntry::file_from_bytes(path, bytes, exec)
    }

    #[test]
    fn diff_names_every_kind_of_change() {
        let mut a = BTreeMap::new();
        let mut b = BTreeMap::new();
        for e in [
            file("same", b"x", false),
            file("content", b"a", false),
            file("mode", b"m", false),
            file("gone", b"g", false),
            TreeEntry {
                path: "link".into(),
                kind: EntryKind::Symlink { target: "a".into() },
            },
            TreeEntry {
                path: "kind".into(),
                kind: EntryKind::Dir,
            },
        ] {
            a.insert(e.path.clone(), e);
        }
        for e in [
            file("same", b"x", false),
            file("content", b"bb", false),
            file("mode", b"m", true),
            file("new", b"n", false),
            TreeEntry {
                path: "link".into(),
                kind: EntryKind::Symlink { target: "b".into() },
            },
            file("kind", b"", false),
        ] {
            b.insert(e.path.clone(), e);
        }
        let d: BTreeMap<String, String> = diff_entries(&a, &b).into_iter().collect();
        assert_eq!(d.len(), 6, "{d:?}");
        assert!(d["content"].contains("content hash") && d["content"].contains("size 1 -> 2"));
        assert_eq!(d["mode"], "mode 0644 -> 0755");
        assert_eq!(d["gone"], "removed");
        assert_eq!(d["new"], "added");
        assert_eq!(d["link"], "link target a -> b");
        assert_eq!(d["kind"], "type directory -> file");
    }
}
