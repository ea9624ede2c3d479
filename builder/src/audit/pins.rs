//! `envpack audit [--lock L]`: every pin of a lock re-checked — the spec it was made from,
//! every cached file re-hashed, every package file still on the configured index with the
//! same hash.

use std::collections::BTreeMap;
use std::path::PathBuf;

use envpack_layers::digest::Sha256Digest;
use rayon::prelude::*;

use super::report::AuditReport;
use crate::lock::Lock;
use crate::spec::LoadedSpec;
use envpack_net::Cache;
use envpack_pypkg::PackageName;
use envpack_pypkg::SimpleIndex;

/// One file a lock pins, with the words that name it in findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    /// How findings name it: `package pyyaml (PyYAML-….whl)`.
    pub item: String,
    /// Project name on the index (`None` for CPython archives and built wheels).
    pub project: Option<String>,
    /// File name.
    pub filename: String,
    /// Pinned sha256.
    pub sha256: Sha256Digest,
}

/// Every file of the lock, deduplicated by (file name, hash), in a stable order: CPython
/// archives, then packages and their built wheels, then build packages.
pub fn pinned_files(lock: &Lock) -> Vec<PinnedFile> {
    let mut out: BTreeMap<(String, Sha256Digest), PinnedFile> = BTreeMap::new();
    let mut add = |f: PinnedFile| {
        out.entry((f.filename.clone(), f.sha256)).or_insert(f);
    };
    for p in &lock.platforms {
        add(PinnedFile {
            item: format!("CPython archive {} ({})", p.python.filename, p.name),
            project: None,
            filename: p.python.filename.clone(),
            sha256: p.python.sha256,
        });
        for pkg in &p.packages {
            add(PinnedFile {
                item: format!("package {} ({})", pkg.name, pkg.filename),
                project: Some(pkg.name.clone()),
                filename: pkg.filename.clone(),
                sha256: pkg.sha256,
            });
            if let Some(b) = &pkg.built_wheel {
                add(PinnedFile {
                    item: format!("built wheel of {} ({})", pkg.name, b.filename),
                    project: None,
                    filename: b.filename.clone(),
                    sha256: b.sha256,
                });
            }
        }
    }
    if let Some(b) = &lock.build_python {
        add(PinnedFile {
            item: format!("build-host CPython archive {} ({})", b.filename, b.platform),
            project: None,
            filename: b.filename.clone(),
            sha256: b.sha256,
        });
    }
    for s in &lock.conan_sources {
        add(PinnedFile {
            item: format!("Conan source {}", s.url),
            project: None,
            filename: s.url.rsplit('/').next().unwrap_or(&s.url).to_string(),
            sha256: s.sha256,
        });
    }
    for b in &lock.build_packages {
        add(PinnedFile {
            item: format!("build package {} ({})", b.name, b.filename),
            project: Some(b.name.clone()),
            filename: b.filename.clone(),
            sha256: b.sha256,
        });
    }
    out.into_values().collect()
}

/// Where the cache keeps the blob of `sha256`. Read directly (not through `Cache::get`,
/// which silently drops a corrupt blob) so a damaged file is reported, not hidden.
pub fn cached_blob(cache: &Cache, sha256: &Sha256Digest) -> PathBuf {
    cache
        .root()
        .join("blobs")
        .join("sha256")
        .join(sha256.to_hex())
}

/// Spec ↔ lock consistency (when a spec is given).
pub fn audit_spec(spec: &LoadedSpec, lock: &Lock, lock_path: &std::path::Path) -> AuditReport {
    let mut r = AuditReport::new(lock_path.display().to_string());
    r.checked += 1;
    if let Err(e) = crate::locking::check_fresh(spec, lock, lock_path) {
        r.find(
            format!(
                "lock {} against spec {}",
                lock_path.display(),
                spec.path.display()
            ),
            format!("{e:#}"),
        );
    }
    r
}

/// Re-hashes every cached file of the lock; files not in the cache are noted, not found.
pub fn audit_cache(lock: &Lock, cache: &Cache) -> AuditReport {
    let files = pinned_files(lock);
    let results: Vec<(usize, Result<Option<Sha256Digest>, String>)> = files
        .par_iter()
        .enumerate()
        .map(|(i, f)| {
            let path = cached_blob(cache, &f.sha256);
            if !path.is_file() {
                return (i, Ok(None));
            }
            match Sha256Digest::of_file(&path) {
                Ok((d, _)) => (i, Ok(Some(d))),
                Err(e) => (i, Err(e.to_string())),
            }
        })
        .collect();
    let mut r = AuditReport::new(format!("cache {}", cache.root().display()));
    let mut missing = Vec::new();
    for (i, res) in results {
        let f = &files[i];
        match res {
            Ok(None) => missing.push(f.filename.clone()),
            Ok(Some(d)) => {
                r.checked += 1;
                if d != f.sha256 {
                    r.find(
                        format!("{} in the cache", f.item),
                        format!(
                            "{} hashes to {d}, the lock pins {}",
                            cached_blob(cache, &f.sha256).display(),
                            f.sha256
                        ),
                    );
                }
            }
            Err(e) => r.find(format!("{} in the cache", f.item), e),
        }
    }
    if !missing.is_empty() {
        r.note(format!(
            "{} pinned file(s) not in the cache, not re-hashed: {}",
            missing.len(),
            missing.join(", ")
        ));
    }
    r
}

/// Confirms every package file is still on `index` with the lock's hash.
pub fn audit_index(lock: &Lock, index: &SimpleIndex) -> AuditReport {
    let mut r = AuditReport::new(format!("index {}", index.base()));
    for f in pinned_files(lock) {
        let Some(project) = &f.project else { continue };
        r.checked += 1;
        let item = format!("{} on the index", f.item);
        let name: PackageName = match project.parse() {
            Ok(n) => n,
            Err(e) => {
                r.find(item, format!("{e}"));
                continue;
            }
        };
        let files = match index.project_files(&name) {
            Ok(files) => files,
            Err(e) => {
                r.find(item, format!("{e}"));
                continue;
            }
        };
        match files.iter().find(|x| x.filename == f.filename) {
            None => r.find(item, "the file is no longer listed on the index"),
            Some(x) => match x.sha256 {
                Some(d) if d != f.sha256 => r.find(
                    item,
                    format!("the index announces sha256 {d}, the lock pins {}", f.sha256),
                ),
                Some(_) => {}
                None => r.note(format!(
                    "{}: the index announces no sha256, hash not compared",
                    f.filename
                )),
            },
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::model::tests::sample_lock;

    #[test]
    fn pinned_files_cover_cpython_packages_and_built_wheels_once() {
        let mut lock = sample_lock();
        let mut second = lock.platforms[0].clone();
        second.name = "linux-aarch64".into();
        lock.platforms.push(second);
        let items: Vec<String> = pinned_files(&lock).into_iter().map(|f| f.item).collect();
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(items.contains(&"package conan (conan-2.21.0.tar.gz)".to_string()));
        assert!(items.contains(&"built wheel of conan (conan-2.21.0-py3-none-any.whl)".to_string()));
    }

    #[test]
    fn cache_rehash_names_the_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(Some(dir.path())).unwrap();
        let mut lock = sample_lock();
        let good = b"wheel bytes";
        lock.platforms[0].packages[0].sha256 = Sha256Digest::of_bytes(good);
        let blob = cached_blob(&cache, &lock.platforms[0].packages[0].sha256);
        fs_err::create_dir_all(blob.parent().unwrap()).unwrap();
        fs_err::write(&blob, good).unwrap();
        let r = audit_cache(&lock, &cache);
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(r.checked, 1);
        fs_err::write(&blob, b"wheel bytez").unwrap();
        let r = audit_cache(&lock, &cache);
        assert_eq!(r.findings.len(), 1);
        assert!(
            r.findings[0]
                .item
                .starts_with("package pyyaml (PyYAML-6.0.2"),
            "{:?}",
            r.findings
        );
    }
}
