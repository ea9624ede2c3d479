//! Writing an env's layers as the portable artifact.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use envpack_layers::artifact::{write_artifact, ArtifactIndex};
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::LayerDesc;

use crate::env_layers::{EnvLayers, EnvMeta};

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

/// Write the artifact of `env` (its layers made unprefixed) into `out_dir`.
pub fn package(env: &EnvLayers, meta: &EnvMeta, out_dir: &Path) -> anyhow::Result<BuiltArtifact> {
    let layers: Vec<LayerDesc> = env.files.iter().map(|f| f.desc.clone()).collect();
    let layer_files: Vec<PathBuf> = env.files.iter().map(|f| f.path.clone()).collect();
    let index = ArtifactIndex {
        schema: 1,
        name: meta.name.to_string(),
        env_id: env.env_id.clone(),
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
        env_id: env.env_id.clone(),
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

/// Fail early with a clear message if the output directory can't be used.
pub fn prepare_out_dir(out: &Path) -> anyhow::Result<()> {
    fs_err::create_dir_all(out)?;
    let md = fs_err::metadata(out)?;
    if !md.is_dir() {
        return Err(anyhow!("{} is not a directory", out.display()));
    }
    Ok(())
}
