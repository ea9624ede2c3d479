//! Reusing the stable layers (CPython, packages) across builds, like a container build cache.
//!
//! A stable layer has one *tree* — its entries, its (unprefixed) diff_id, what building it
//! found — and one *blob* per way a writer stores it: at the tree's root for portable artifacts,
//! under the env's directory for images, each in its compression. Both are found by keys over
//! everything their bytes depend on (envpack version, platform, input hashes, epoch; for a blob
//! also the prefix and the compression), so a tarball build and an image build of the same lock
//! share the tree and each reuse their own blob. Blobs live in the content-addressed cache and
//! are re-hashed on use.

use std::path::{Path, PathBuf};

use anyhow::Context;
use envpack_layers::compress::Compression;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::LayerDesc;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::TreeEntry;
use serde_json::json;

use envpack_net::Cache;
use envpack_pypkg::EntryPoint;
use envpack_pypkg::InstallWarning;

/// A layer's tree found in (or about to go into) the cache.
pub struct CachedTree {
    /// Digest of the unprefixed, uncompressed tar (what the env id is made of).
    pub diff_id: Sha256Digest,
    /// The entries of the layer.
    pub entries: Vec<TreeEntry>,
    /// What building it found besides its files.
    pub extra: LayerExtra,
}

/// A written layer file: its descriptor and where its bytes are.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// Its descriptor.
    pub desc: LayerDesc,
    /// The compressed blob.
    pub path: PathBuf,
}

/// What building a layer found besides its files, kept with it in the cache.
#[derive(Default)]
pub struct LayerExtra {
    /// Console scripts of the packages layer.
    pub console_scripts: Vec<EntryPoint>,
    /// Wheel defects the install of the packages layer warned about.
    pub warnings: Vec<InstallWarning>,
}

/// Key over the given parts, in order.
pub fn key(parts: &[&str]) -> String {
    // v2: trees and blobs are separate entries (v1 entries held both, keyed with compression).
    let mut text = String::from("envpack-layer-cache-v2");
    for p in parts {
        text.push('\n');
        text.push_str(p);
    }
    Sha256Digest::of_bytes(text.as_bytes()).to_hex()
}

/// Key of the blob of the tree `tree_key` written under `prefix` with `compression`.
pub fn blob_key(tree_key: &str, prefix: &str, compression: Compression) -> String {
    key(&["blob", tree_key, prefix, &compression.to_string()])
}

fn entry_path(cache: &Cache, key: &str) -> PathBuf {
    cache.root().join("layers").join(format!("{key}.json"))
}

/// Reads a cache entry; a missing one is `None` without a word, an unreadable or corrupt one
/// is `None` with a warning (the layer is rebuilt either way).
fn load_entry<T>(
    cache: &Cache,
    key: &str,
    parse: impl FnOnce(serde_json::Value) -> anyhow::Result<T>,
) -> Option<T> {
    let path = entry_path(cache, key);
    let bytes = match fs_err::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("ignoring layer cache entry: {e}");
            return None;
        }
    };
    match serde_json::from_slice(&bytes)
        .map_err(anyhow::Error::from)
        .and_then(parse)
    {
        Ok(v) => {
            tracing::debug!(key, "layer cache hit");
            Some(v)
        }
        Err(e) => {
            tracing::warn!("ignoring layer cache entry {}: {e:#}", path.display());
            None
        }
    }
}

fn store_entry(cache: &Cache, key: &str, doc: &serde_json::Value) -> anyhow::Result<()> {
    let path = entry_path(cache, key);
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    crate::atomic::write_file(&path, &serde_json::to_vec(doc)?)?;
    Ok(())
}

/// Looks a layer's tree up.
pub fn load_tree(cache: &Cache, key: &str) -> Option<CachedTree> {
    load_entry(cache, key, |v| {
        let diff_id: Sha256Digest = serde_json::from_value(v["diff_id"].clone())?;
        let text = v["entries"].as_str().context("entries is not text")?;
        let manifest = Manifest::parse(text.as_bytes())?;
        let console_scripts: Vec<EntryPoint> = match v["console_scripts"].as_array() {
            Some(a) => a
                .iter()
                .map(|e| {
                    let part = |k: &str| {
                        e[k].as_str()
                            .with_context(|| format!("console script without {k}"))
                    };
                    Ok(EntryPoint::new(
                        part("name")?,
                        part("module")?,
                        part("attr")?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
            None => Vec::new(),
        };
        let warnings: Vec<InstallWarning> = match v.get("warnings") {
            Some(w) => serde_json::from_value(w.clone())?,
            None => Vec::new(),
        };
        Ok(CachedTree {
            diff_id,
            entries: manifest.entries,
            extra: LayerExtra {
                console_scripts,
                warnings,
            },
        })
    })
}

/// Puts a layer's tree into the cache and returns it.
pub fn store_tree(
    cache: &Cache,
    key: &str,
    diff_id: Sha256Digest,
    entries: Vec<TreeEntry>,
    extra: LayerExtra,
) -> anyhow::Result<CachedTree> {
    let scripts: Vec<serde_json::Value> = extra
        .console_scripts
        .iter()
        .map(|e| json!({"name": e.name, "module": e.module, "attr": e.attr}))
        .collect();
    let manifest = Manifest::from_entries(entries);
    let doc = json!({
        "diff_id": diff_id,
        "entries": String::from_utf8_lossy(&manifest.to_bytes()),
        "console_scripts": scripts,
        "warnings": extra.warnings,
    });
    store_entry(cache, key, &doc)?;
    Ok(CachedTree {
        diff_id,
        entries: manifest.entries,
        extra,
    })
}

/// Looks a layer blob up; its bytes are re-hashed against the recorded digest.
pub fn load_blob(cache: &Cache, key: &str) -> Option<LayerFile> {
    load_entry(cache, key, |v| {
        let desc: LayerDesc = serde_json::from_value(v["desc"].clone())?;
        let path = cache
            .get(&desc.digest)?
            .context("layer blob no longer in the cache")?;
        Ok(LayerFile { desc, path })
    })
}

/// Puts a freshly written layer file into the cache; returns it with the blob's cache path.
pub fn store_blob(
    cache: &Cache,
    key: &str,
    desc: LayerDesc,
    file: &Path,
) -> anyhow::Result<LayerFile> {
    let cached = cache.insert_file(file)?;
    // An entry must never describe other bytes than the blob it names.
    if cached.sha256 != desc.digest {
        anyhow::bail!(
            "layer {} hashed to {} as it entered the cache, its descriptor says {}",
            desc.name,
            cached.sha256,
            desc.digest
        );
    }
    store_entry(cache, key, &json!({ "desc": desc }))?;
    Ok(LayerFile {
        desc,
        path: cached.path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_and_blobs_come_back_from_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(Some(&tmp.path().join("cache"))).unwrap();
        let tree = tmp.path().join("tree");
        fs_err::create_dir_all(&tree).unwrap();
        fs_err::write(tree.join("f"), b"x").unwrap();
        let entries = envpack_layers::tree::scan_tree(&tree).unwrap();
        let (desc, blob) = envpack_layers::layer::write_layer(
            "packages",
            &tree,
            &entries,
            0,
            Compression::Gzip,
            tmp.path(),
        )
        .unwrap();
        let warning = InstallWarning {
            wheel: "cmake-3.31.6-py3-none-macosx_10_10_universal2.whl".into(),
            file: "cmake-3.31.6.dist-info/WHEEL".into(),
            problem: "sha256 does not match RECORD".into(),
        };
        let extra = LayerExtra {
            console_scripts: vec![EntryPoint::new("cmake", "cmake", "cmake")],
            warnings: vec![warning.clone()],
        };
        store_tree(&cache, "k", desc.diff_id, entries.clone(), extra).unwrap();
        let hit = load_tree(&cache, "k").unwrap();
        assert_eq!(hit.extra.warnings, vec![warning]);
        assert_eq!(hit.extra.console_scripts[0].name, "cmake");
        assert_eq!(hit.diff_id, desc.diff_id);
        assert_eq!(hit.entries, entries);
        assert!(load_tree(&cache, "other").is_none());

        let bk = blob_key("k", "", Compression::Gzip);
        store_blob(&cache, &bk, desc.clone(), &blob).unwrap();
        let got = load_blob(&cache, &bk).unwrap();
        assert_eq!(got.desc, desc);
        assert_eq!(
            fs_err::read(&got.path).unwrap(),
            fs_err::read(&blob).unwrap()
        );
        // A tree entry is not a blob entry, and a blob whose bytes went missing is a miss.
        assert!(load_blob(&cache, "k").is_none());
        fs_err::remove_file(&got.path).unwrap();
        assert!(load_blob(&cache, &bk).is_none());
    }

    #[test]
    fn keys_depend_on_every_part_and_order() {
        let a = key(&["cpython", "x", "1"]);
        assert_eq!(a, key(&["cpython", "x", "1"]));
        assert_ne!(a, key(&["cpython", "x", "2"]));
        assert_ne!(a, key(&["cpython", "1", "x"]));
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        let plain = blob_key(&a, "", Compression::Gzip);
        assert_ne!(plain, blob_key(&a, "opt/envpack/x", Compression::Gzip));
        assert_ne!(plain, blob_key(&a, "", Compression::Zstd));
        assert_ne!(plain, blob_key(&key(&["cpython"]), "", Compression::Gzip));
    }
}
