//! Splitting an assembled tree into layers (stable first: CPython, packages, Conan config,
//! activation/meta) and writing the portable artifact.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use envpack_layers::artifact::{write_artifact, ArtifactIndex};
use envpack_layers::compress::Compression;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::{write_layer, LayerDesc};
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::{scan_tree, EntryKind, TreeEntry};
use serde_json::json;

use crate::assemble::AssembledEnv;

/// Layer names, in order; the unpacker relies on "meta" being last.
pub const LAYERS: [&str; 4] = ["cpython", "packages", "conan", "meta"];

/// What describes an env besides its files.
pub struct EnvMeta<'a> {
    /// Env name.
    pub name: &'a str,
    /// Platform name.
    pub platform: &'a str,
    /// Python version.
    pub python_version: &'a str,
    /// python-build-standalone tag.
    pub python_build: &'a str,
    /// Archive timestamp.
    pub epoch: u64,
    /// The lock's exact bytes.
    pub lock_bytes: &'a [u8],
}

/// A written artifact.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltArtifact {
    /// Platform.
    pub platform: String,
    /// Env id.
    pub env_id: String,
    /// Artifact file.
    pub path: PathBuf,
    /// sha256 of the artifact file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Layer digests.
    pub layers: Vec<LayerDesc>,
}

/// Which layer a path belongs to.
pub fn layer_of(entry: &TreeEntry, cpython: &BTreeSet<String>) -> usize {
    let p = entry.path.as_str();
    if p == "conan-home" || p.starts_with("conan-home/") {
        return 2;
    }
    if p == "python" || p.starts_with("python/") {
        if cpython.contains(p) {
            return 0;
        }
        if !entry.is_dir() {
            if let Some(src) = pyc_source(p) {
                if cpython.contains(&src) {
                    return 0;
                }
            }
        }
        return 1;
    }
    3
}

/// `a/__pycache__/m.cpython-312.pyc` → `a/m.py`
fn pyc_source(p: &str) -> Option<String> {
    let (dir, file) = p.rsplit_once('/')?;
    let parent = dir.strip_suffix("__pycache__")?.trim_end_matches('/');
    let stem = file.strip_suffix(".pyc")?.split('.').next()?;
    Some(if parent.is_empty() {
        format!("{stem}.py")
    } else {
        format!("{parent}/{stem}.py")
    })
}

/// Write the layers and the artifact for an assembled tree.
pub fn package(
    staging: &Path,
    assembled: &AssembledEnv,
    meta: &EnvMeta,
    compression: Compression,
    out_dir: &Path,
) -> anyhow::Result<BuiltArtifact> {
    let entries = scan_tree(staging).with_context(|| format!("scanning {}", staging.display()))?;
    let mut parts: [Vec<TreeEntry>; 4] = Default::default();
    for e in entries {
        let i = layer_of(&e, &assembled.cpython_paths);
        parts[i].push(e);
    }
    let work = tempfile::Builder::new()
        .prefix(".envpack-layers-")
        .tempdir_in(out_dir)
        .with_context(|| format!("creating a work dir in {}", out_dir.display()))?;
    let mut layers = Vec::new();
    let mut layer_files = Vec::new();
    for (i, name) in LAYERS.iter().enumerate().take(3) {
        let (desc, path) = write_layer(
            name,
            staging,
            &parts[i],
            meta.epoch,
            compression,
            work.path(),
        )
        .with_context(|| format!("writing layer {name}"))?;
        layers.push(desc);
        layer_files.push(path);
    }

    let env_id = env_id(meta, &layers, &parts[3]);
    let info = json!({
        "schema": 1,
        "name": meta.name,
        "env_id": env_id,
        "platform": meta.platform,
        "python": { "version": meta.python_version, "build": meta.python_build },
        "conan_version": assembled.conan_version,
        "envpack_version": env!("CARGO_PKG_VERSION"),
        "epoch": meta.epoch,
        // diff_ids only: the tree must not depend on how its layers are compressed.
        "layers": layers.iter().map(|l| json!({"name": l.name, "diff_id": l.diff_id.to_string()})).collect::<Vec<_>>(),
        "lock_sha256": Sha256Digest::of_bytes(meta.lock_bytes).to_string(),
    });
    let mut info_bytes = serde_json::to_vec_pretty(&info)?;
    info_bytes.push(b'\n');
    fs_err::write(staging.join("envpack.json"), &info_bytes)?;
    let info_entry = file_entry("envpack.json", &info_bytes);

    let mut all: Vec<TreeEntry> = parts.iter().flatten().cloned().collect();
    all.push(info_entry.clone());
    let manifest = Manifest::from_entries(all);
    let manifest_bytes = manifest.to_bytes();
    fs_err::write(staging.join("manifest"), &manifest_bytes)?;
    let mut meta_entries = parts[3].clone();
    meta_entries.push(info_entry);
    meta_entries.push(file_entry("manifest", &manifest_bytes));
    meta_entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let (desc, path) = write_layer(
        LAYERS[3],
        staging,
        &meta_entries,
        meta.epoch,
        compression,
        work.path(),
    )
    .context("writing layer meta")?;
    layers.push(desc);
    layer_files.push(path);

    let index = ArtifactIndex {
        schema: 1,
        name: meta.name.to_string(),
        env_id: env_id.clone(),
        platform: meta.platform.to_string(),
        envpack_version: env!("CARGO_PKG_VERSION").to_string(),
        epoch: meta.epoch,
        lock_sha256: Sha256Digest::of_bytes(meta.lock_bytes),
        layers: layers.clone(),
    };
    let out = out_dir.join(artifact_name(meta.name, meta.platform));
    let (sha, size) = write_artifact(&out, &index, meta.lock_bytes, &layer_files, meta.epoch)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(BuiltArtifact {
        platform: meta.platform.to_string(),
        env_id,
        path: out,
        sha256: sha.to_string(),
        size,
        layers,
    })
}

/// `<name>-<platform>.envpack.tar`
pub fn artifact_name(name: &str, platform: &str) -> String {
    format!("{name}-{platform}.envpack.tar")
}

fn file_entry(path: &str, bytes: &[u8]) -> TreeEntry {
    TreeEntry {
        path: path.to_string(),
        kind: EntryKind::File {
            size: bytes.len() as u64,
            sha256: Sha256Digest::of_bytes(bytes),
            executable: false,
        },
    }
}

/// Content-derived id: the same tree always gets the same id, any change a new one.
fn env_id(meta: &EnvMeta, layers: &[LayerDesc], meta_entries: &[TreeEntry]) -> String {
    let mut text = format!("envpack-env-v1\n{}\n{}\n", meta.name, meta.platform);
    for l in layers {
        text.push_str(&format!("{} {}\n", l.name, l.diff_id));
    }
    text.push_str(&String::from_utf8_lossy(
        &Manifest::from_entries(meta_entries.to_vec()).to_bytes(),
    ));
    let hex = Sha256Digest::of_bytes(text.as_bytes()).to_hex();
    format!("{}-{}-{}", meta.name, meta.platform, &hex[..12])
}

/// Fail early with a clear message if the output directory can't be used.
pub fn prepare_out_dir(out: &Path) -> anyhow::Result<()> {
    fs_err::create_dir_all(out)?;
    let md = fs_err::metadata(out)?;
    if !md.is_dir() {
        return Err(anyhow!("{} is not a directory", out.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, dir: bool) -> TreeEntry {
        TreeEntry {
            path: p.into(),
            kind: if dir {
                EntryKind::Dir
            } else {
                EntryKind::File {
                    size: 0,
                    sha256: Sha256Digest([0; 32]),
                    executable: false,
                }
            },
        }
    }

    #[test]
    fn layer_assignment() {
        let cpython: BTreeSet<String> = [
            "python",
            "python/lib",
            "python/lib/python3.12/os.py",
            "python/lib/python3.12/site-packages",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cases = [
            ("python/lib/python3.12/os.py", false, 0),
            (
                "python/lib/python3.12/__pycache__/os.cpython-312.pyc",
                false,
                0,
            ),
            ("python/lib/python3.12/__pycache__", true, 1),
            (
                "python/lib/python3.12/site-packages/yaml/__init__.py",
                false,
                1,
            ),
            (
                "python/lib/python3.12/site-packages/__pycache__/six.cpython-312.pyc",
                false,
                1,
            ),
            ("python/bin/conan", false, 1),
            ("conan-home/remotes.json", false, 2),
            ("conan-home", true, 2),
            ("bin/conan", false, 3),
            ("activate", false, 3),
            ("envpack.lock", false, 3),
        ];
        for (p, dir, want) in cases {
            assert_eq!(layer_of(&entry(p, dir), &cpython), want, "{p}");
        }
    }

    #[test]
    fn pyc_sources() {
        assert_eq!(
            pyc_source("a/__pycache__/m.cpython-312.pyc").as_deref(),
            Some("a/m.py")
        );
        assert_eq!(
            pyc_source("a/__pycache__/m.cpython-312.opt-1.pyc").as_deref(),
            Some("a/m.py")
        );
        assert_eq!(pyc_source("a/m.pyc"), None);
    }
}
