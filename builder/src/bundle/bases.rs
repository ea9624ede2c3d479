//! The bundle's `oci/`: an OCI image layout holding each chosen platform's pinned base image
//! (manifest, config, layers, byte for byte), tagged with the platform's name. A build with the
//! bundle takes base blobs from it by digest; `skopeo copy oci:DIR/oci:PLATFORM docker://…`
//! seeds a registry from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use envpack_layers::digest::Sha256Digest;
use envpack_oci::{descriptor, image_index, media_type_of, Document, LayoutWriter};
use oci_spec::image::{MediaType, ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_REF_NAME};

use crate::build::BuildOptions;
use crate::lock::{Lock, LockedPlatform};

/// One platform's base image, pulled into the cache.
pub(super) struct PulledBase {
    platform: String,
    name: String,
    manifest: Sha256Digest,
    manifest_type: String,
    /// The manifest, config and layers: sha256, cached file, media type.
    files: Vec<(Sha256Digest, PathBuf, String)>,
}

/// Pulls the pinned base of every chosen platform that has one (from the cache when there).
pub(super) fn pull(
    lock: &Lock,
    chosen: &[&LockedPlatform],
    opts: &BuildOptions,
) -> anyhow::Result<Vec<PulledBase>> {
    let mut out = Vec::new();
    for p in chosen {
        let Some(base) = lock.image_bases.iter().find(|b| b.platform == p.name) else {
            continue;
        };
        let platform = envpack_pypkg::platform_by_name(&p.name)?;
        (opts.progress)(&format!("pulling base image {}@{}", base.name, base.digest));
        crate::pull_base::pull_base(
            base,
            opts.cache,
            &envpack_oci::ClientOptions::from_http(opts.http.config(), false),
            &crate::pull_base::oci_of(&platform),
        )?;
        let what = format!("base image {}@{}", base.name, base.digest);
        let manifest = Sha256Digest::parse_prefixed(&base.digest)?;
        let manifest_path = cached(opts, &manifest, &what)?;
        let bytes = fs_err::read(&manifest_path)?;
        // A manifest need not state its type (umoci's don't); a pinned base is a manifest, and
        // readers of a layout (skopeo) pass over entries of no known type.
        let manifest_type = match media_type_of("", &bytes) {
            t if t.is_empty() => "application/vnd.oci.image.manifest.v1+json".to_string(),
            t => t,
        };
        let doc = Document::parse(&manifest_type, &bytes, &what)?;
        let (_, blobs) = doc.children();
        let mut files = vec![(manifest, manifest_path, manifest_type.clone())];
        for b in &blobs {
            let sha = Sha256Digest::parse_prefixed(&b.digest)?;
            files.push((sha, cached(opts, &sha, &what)?, b.media_type.clone()));
        }
        out.push(PulledBase {
            platform: p.name.clone(),
            name: base.name.clone(),
            manifest,
            manifest_type,
            files,
        });
    }
    Ok(out)
}

/// Writes the layout at `dir` when there is any base; returns every file written (path
/// relative to the bundle, sha256, size).
pub(super) fn write_layout(
    dir: &Path,
    bases: &[PulledBase],
) -> anyhow::Result<Vec<(String, Sha256Digest, u64)>> {
    if bases.is_empty() {
        return Ok(Vec::new());
    }
    let writer = LayoutWriter::create(dir)?;
    let mut written = Vec::new();
    let mut tagged = Vec::new();
    for base in bases {
        let mut manifest_size = 0;
        for (sha, path, mt) in &base.files {
            let size = fs_err::metadata(path)?.len();
            writer.put_file(path, &descriptor(MediaType::from(mt.as_str()), sha, size)?)?;
            written.push((format!("oci/blobs/sha256/{}", sha.to_hex()), *sha, size));
            if *sha == base.manifest {
                manifest_size = size;
            }
        }
        let mut desc = descriptor(
            MediaType::from(base.manifest_type.as_str()),
            &base.manifest,
            manifest_size,
        )?;
        desc.set_annotations(Some(HashMap::from([
            (ANNOTATION_REF_NAME.to_string(), base.platform.clone()),
            (ANNOTATION_BASE_IMAGE_NAME.to_string(), base.name.clone()),
        ])));
        tagged.push((base.platform.clone(), desc));
    }
    writer
        .finish(&image_index(tagged, HashMap::new())?)
        .with_context(|| format!("writing the image layout {}", dir.display()))?;
    for name in ["index.json", "oci-layout"] {
        let bytes = fs_err::read(dir.join(name))?;
        let sha = Sha256Digest::of_bytes(&bytes);
        written.push((format!("oci/{name}"), sha, bytes.len() as u64));
    }
    // Blobs two bases share are one file.
    written.sort_by(|a, b| a.0.cmp(&b.0));
    written.dedup_by(|a, b| a.0 == b.0);
    Ok(written)
}

/// A blob `pull_base` left in the cache.
fn cached(opts: &BuildOptions, sha: &Sha256Digest, what: &str) -> anyhow::Result<PathBuf> {
    opts.cache
        .get(sha)?
        .ok_or_else(|| anyhow!("{what}: blob {sha} is not in the cache after pulling it"))
}
