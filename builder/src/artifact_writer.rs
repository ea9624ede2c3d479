//! Writing an env's layers as the portable artifact.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use envpack_layers::artifact::ArtifactIndex;
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
    /// Its signature and provenance, when the build signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed: Option<crate::signing::SignedArtifact>,
}

/// Write the artifact of `env` (its layers made unprefixed) into `out_dir`; with `sign`, its
/// bytes are hashed for the signature on another thread as they are written.
pub fn package(
    env: &EnvLayers,
    meta: &EnvMeta,
    out_dir: &Path,
    sign: Option<&envpack_trust::SigningKey>,
) -> anyhow::Result<BuiltArtifact> {
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
    let mut prehash = sign.map(|_| envpack_trust::Prehasher::spawn());
    let (sha, size) = envpack_layers::artifact::write_artifact_observed(
        &out,
        &index,
        meta.lock_bytes,
        &layer_files,
        meta.epoch,
        &mut |chunk| {
            if let Some(p) = prehash.as_mut() {
                p.update(chunk);
            }
        },
    )
    .with_context(|| format!("writing {}", out.display()))?;
    let signed = match (sign, prehash) {
        (Some(key), Some(p)) => Some(crate::signing::sign_written(
            &out,
            key,
            &p.finish()?,
            &index,
            meta.lock_bytes,
            &sha.to_hex(),
        )?),
        _ => None,
    };
    Ok(BuiltArtifact {
        signed,
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
