//! Splitting an assembled tree into layers (stable first: CPython, packages, Conan config,
//! activation/meta) and writing the portable artifact.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use envpack_layers::artifact::{write_artifact, ArtifactIndex};
use envpack_layers::compress::Compression;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::{write_layer, LayerDesc};
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::{scan_tree, TreeEntry};
use serde_json::json;

use crate::assemble::{AssembledEnv, StableLayers};

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
    /// The platform target the spec set (`glibc`/`macos`, version), if any.
    pub target: Option<(&'static str, &'a str)>,
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

/// Which of the two config layers (conan = 2, meta = 3) a path outside `python/` belongs to;
/// `None` for `python/…`, which the stable layers already hold.
pub fn layer_of(path: &str) -> Option<usize> {
    if path == "python" || path.starts_with("python/") {
        None
    } else if path == "conan-home" || path.starts_with("conan-home/") {
        Some(2)
    } else {
        Some(3)
    }
}

/// Split a fully assembled tree into the entries of the four layers (the meta layer still
/// without `envpack.json` and `manifest`, which [`finish_meta`] adds).
pub fn split_tree(staging: &Path, assembled: &AssembledEnv) -> anyhow::Result<[Vec<TreeEntry>; 4]> {
    let mut parts: [Vec<TreeEntry>; 4] = Default::default();
    for e in scan_tree(staging).with_context(|| format!("scanning {}", staging.display()))? {
        let i = match layer_of(&e.path) {
            Some(i) => i,
            None if assembled.cpython_paths.contains(&e.path) => 0,
            None => 1,
        };
        parts[i].push(e);
    }
    Ok(parts)
}

/// Write `envpack.json` and `manifest` into `staging` and add them to the meta entries;
/// returns the env id. `diff_ids` are the (unprefixed) cpython, packages and conan layers'.
pub fn finish_meta(
    staging: &Path,
    conan_version: Option<&str>,
    meta: &EnvMeta,
    diff_ids: &[(String, Sha256Digest)],
    parts: &mut [Vec<TreeEntry>; 4],
) -> anyhow::Result<String> {
    let env_id = env_id(meta, diff_ids, &parts[3]);
    let mut info = json!({
        "schema": 1,
        "name": meta.name,
        "env_id": env_id,
        "platform": meta.platform,
        "python": { "version": meta.python_version, "build": meta.python_build },
        "conan_version": conan_version,
        "envpack_version": env!("CARGO_PKG_VERSION"),
        "epoch": meta.epoch,
        // diff_ids only: the tree must not depend on how its layers are compressed.
        "layers": diff_ids.iter().map(|(name, d)| json!({"name": name, "diff_id": d.to_string()})).collect::<Vec<_>>(),
        "lock_sha256": Sha256Digest::of_bytes(meta.lock_bytes).to_string(),
    });
    // Only when the spec set one, so envs of specs without targets keep their bytes.
    if let (Some((key, value)), Some(obj)) = (meta.target, info.as_object_mut()) {
        obj.insert("target".into(), json!({ key: value }));
    }
    let mut info_bytes = serde_json::to_vec_pretty(&info)?;
    info_bytes.push(b'\n');
    fs_err::write(staging.join("envpack.json"), &info_bytes)?;
    let info_entry = TreeEntry::file_from_bytes("envpack.json", &info_bytes, false);
    let mut all: Vec<TreeEntry> = parts.iter().flatten().cloned().collect();
    all.push(info_entry.clone());
    let manifest_bytes = Manifest::checked(all)?.to_bytes();
    fs_err::write(staging.join("manifest"), &manifest_bytes)?;
    parts[3].push(info_entry);
    parts[3].push(TreeEntry::file_from_bytes(
        "manifest",
        &manifest_bytes,
        false,
    ));
    parts[3].sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(env_id)
}

/// Write the config layers and the artifact; the stable layers come prebuilt.
pub fn package(
    staging: &Path,
    stable: &StableLayers,
    meta: &EnvMeta,
    compression: Compression,
    out_dir: &Path,
) -> anyhow::Result<BuiltArtifact> {
    let mut parts: [Vec<TreeEntry>; 4] = Default::default();
    parts[0] = stable.cpython.entries.clone();
    parts[1] = stable.packages.entries.clone();
    for e in scan_tree(staging).with_context(|| format!("scanning {}", staging.display()))? {
        if let Some(i) = layer_of(&e.path) {
            parts[i].push(e);
        }
    }
    let work = tempfile::Builder::new()
        .prefix(".envpack-layers-")
        .tempdir_in(out_dir)
        .with_context(|| format!("creating a work dir in {}", out_dir.display()))?;
    let mut layers = vec![stable.cpython.desc.clone(), stable.packages.desc.clone()];
    let mut layer_files = vec![stable.cpython.blob.clone(), stable.packages.blob.clone()];
    let (desc, path) = write_layer(
        LAYERS[2],
        staging,
        &parts[2],
        meta.epoch,
        compression,
        work.path(),
    )
    .context("writing layer conan")?;
    layers.push(desc);
    layer_files.push(path);

    let diff_ids: Vec<(String, Sha256Digest)> =
        layers.iter().map(|l| (l.name.clone(), l.diff_id)).collect();
    let env_id = finish_meta(
        staging,
        stable.conan_version.as_deref(),
        meta,
        &diff_ids,
        &mut parts,
    )?;
    let (desc, path) = write_layer(
        LAYERS[3],
        staging,
        &parts[3],
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

/// Content-derived id: the same tree always gets the same id, any change a new one.
fn env_id(
    meta: &EnvMeta,
    diff_ids: &[(String, Sha256Digest)],
    meta_entries: &[TreeEntry],
) -> String {
    let mut text = format!("envpack-env-v1\n{}\n{}\n", meta.name, meta.platform);
    for (name, diff_id) in diff_ids {
        text.push_str(&format!("{name} {diff_id}\n"));
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

    #[test]
    fn config_layer_assignment() {
        let cases = [
            ("python", None),
            ("python/lib/python3.12/os.py", None),
            ("conan-home", Some(2)),
            ("conan-home/remotes.json", Some(2)),
            ("conan-homer", Some(3)),
            ("bin/conan", Some(3)),
            ("activate", Some(3)),
            ("envpack.lock", Some(3)),
        ];
        for (p, want) in cases {
            assert_eq!(layer_of(p), want, "{p}");
        }
    }
}
