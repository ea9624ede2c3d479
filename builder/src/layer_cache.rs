//! Reusing the stable layers (CPython, packages) across builds, like a container build cache.
//!
//! A cached layer is found by a key over everything its bytes depend on (envpack version,
//! platform, input hashes, epoch, compression). The entry records the layer's descriptor, its
//! entries (as manifest text) and, for the packages layer, the console scripts its wheels
//! provide; the blob itself lives in the content-addressed cache and is re-hashed on use.

use std::path::PathBuf;

use anyhow::Context;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::LayerDesc;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::TreeEntry;
use serde_json::json;

use crate::cache::Cache;
use crate::install::entry_points::EntryPoint;
use crate::install::InstallWarning;

/// A layer found in (or about to go into) the cache.
pub struct CachedLayer {
    /// Its descriptor.
    pub desc: LayerDesc,
    /// The compressed blob (hash-checked).
    pub blob: PathBuf,
    /// The entries written into it.
    pub entries: Vec<TreeEntry>,
    /// What building it found besides its files.
    pub extra: LayerExtra,
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
    let mut text = String::from("envpack-layer-cache-v1");
    for p in parts {
        text.push('\n');
        text.push_str(p);
    }
    Sha256Digest::of_bytes(text.as_bytes()).to_hex()
}

fn entry_path(cache: &Cache, key: &str) -> PathBuf {
    cache.root().join("layers").join(format!("{key}.json"))
}

/// Look a layer up; a missing, unreadable or corrupt entry is a miss (the layer is rebuilt).
pub fn load(cache: &Cache, key: &str) -> Option<CachedLayer> {
    let path = entry_path(cache, key);
    let bytes = fs_err::read(&path).ok()?;
    let parsed = (|| -> anyhow::Result<CachedLayer> {
        let v: serde_json::Value = serde_json::from_slice(&bytes)?;
        let desc: LayerDesc = serde_json::from_value(v["desc"].clone())?;
        let manifest = Manifest::parse(v["entries"].as_str().unwrap_or_default().as_bytes())?;
        let console_scripts = v["console_scripts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let part = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                        EntryPoint::new(&part("name"), &part("module"), &part("attr"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let warnings: Vec<InstallWarning> = match v.get("warnings") {
            Some(w) => serde_json::from_value(w.clone())?,
            None => Vec::new(),
        };
        let blob = cache
            .get(&desc.digest)?
            .context("layer blob no longer in the cache")?;
        Ok(CachedLayer {
            desc,
            blob,
            entries: manifest.entries,
            extra: LayerExtra {
                console_scripts,
                warnings,
            },
        })
    })();
    match parsed {
        Ok(layer) => Some(layer),
        Err(e) => {
            tracing::warn!("ignoring layer cache entry {}: {e:#}", path.display());
            None
        }
    }
}

/// Put a freshly written layer into the cache; returns it with the blob's cache path.
pub fn store(
    cache: &Cache,
    key: &str,
    desc: LayerDesc,
    blob: &std::path::Path,
    entries: Vec<TreeEntry>,
    extra: LayerExtra,
) -> anyhow::Result<CachedLayer> {
    let cached = cache.insert_file(blob)?;
    let scripts: Vec<serde_json::Value> = extra
        .console_scripts
        .iter()
        .map(|e| json!({"name": e.name, "module": e.module, "attr": e.attr}))
        .collect();
    let manifest = Manifest::from_entries(entries);
    let doc = json!({
        "desc": desc,
        "entries": String::from_utf8_lossy(&manifest.to_bytes()),
        "console_scripts": scripts,
        "warnings": extra.warnings,
    });
    let path = entry_path(cache, key);
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    crate::atomic::write_file(&path, &serde_json::to_vec(&doc)?)?;
    Ok(CachedLayer {
        desc,
        blob: cached.path,
        entries: manifest.entries,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_scripts_and_warnings_come_back_from_the_cache() {
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
            envpack_layers::compress::Compression::Gzip,
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
        store(&cache, "k", desc, &blob, entries, extra).unwrap();
        let hit = load(&cache, "k").unwrap();
        assert_eq!(hit.extra.warnings, vec![warning]);
        assert_eq!(hit.extra.console_scripts[0].name, "cmake");
        assert!(load(&cache, "other").is_none());
    }

    #[test]
    fn keys_depend_on_every_part_and_order() {
        let a = key(&["cpython", "x", "1"]);
        assert_eq!(a, key(&["cpython", "x", "1"]));
        assert_ne!(a, key(&["cpython", "x", "2"]));
        assert_ne!(a, key(&["cpython", "1", "x"]));
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
    }
}
