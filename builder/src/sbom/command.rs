//! What `envpack sbom` does with its flags.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::{licenses_from_cache, SbomFormat, SbomInputs, SbomModel};
use crate::lock::Lock;
use envpack_net::Cache;

/// Where `envpack sbom` put its output.
pub enum SbomOutput {
    /// One document, for stdout.
    Stdout(Vec<u8>),
    /// Files written.
    Files(Vec<PathBuf>),
}

/// Makes the SBOM of `platform` (required when the lock has several, unless `out` is a
/// directory that receives one file per platform, named like the SBOMs next to artifacts).
pub fn run_sbom(
    lock: &Lock,
    platform: Option<&str>,
    format: SbomFormat,
    out: Option<&Path>,
    cache: &Cache,
) -> anyhow::Result<SbomOutput> {
    let chosen: Vec<&crate::lock::LockedPlatform> = match platform {
        Some(p) => vec![lock.platform(p).ok_or_else(|| {
            let have: Vec<&str> = lock.platforms.iter().map(|p| p.name.as_str()).collect();
            anyhow!(
                "platform {p} is not in the lock (it has: {})",
                have.join(", ")
            )
        })?],
        None => lock.platforms.iter().collect(),
    };
    let render = |p: &crate::lock::LockedPlatform| -> anyhow::Result<Vec<u8>> {
        let (licenses, missing) = licenses_from_cache(p, cache)?;
        if !missing.is_empty() {
            tracing::warn!(
                platform = %p.name,
                "wheels not in the cache, their licenses are left out (run `envpack build` first for the SBOM the env carries): {}",
                missing.join(", ")
            );
        }
        let model = SbomModel::from_inputs(&SbomInputs {
            lock,
            platform: p,
            tool_version: env!("CARGO_PKG_VERSION"),
            licenses: &licenses,
        });
        Ok(format.render(&model)?)
    };
    match (chosen.as_slice(), out) {
        ([one], None) => Ok(SbomOutput::Stdout(render(one)?)),
        ([one], Some(file)) if !file.is_dir() => {
            crate::atomic::write_file(file, &render(one)?)?;
            Ok(SbomOutput::Files(vec![file.to_path_buf()]))
        }
        (_, None) => Err(anyhow!(
            "the lock has {} platforms: give --platform P, or --out DIR for one file per platform",
            chosen.len()
        )),
        (many, Some(dir)) => {
            fs_err::create_dir_all(dir)?;
            let mut written = Vec::new();
            for p in many {
                let artifact = dir.join(crate::artifact_writer::artifact_name(&lock.name, &p.name));
                let path = super::beside(&artifact, format);
                crate::atomic::write_file(&path, &render(p)?)?;
                written.push(path);
            }
            Ok(SbomOutput::Files(written))
        }
    }
}
