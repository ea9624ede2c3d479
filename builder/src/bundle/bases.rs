//! The bundle's `oci/`: an OCI image layout holding each chosen platform's pinned base image
//! (manifest, config, layers, byte for byte), tagged with the platform's name. A build with the
//! bundle takes base blobs from it by digest; `skopeo copy oci:DIR/oci:PLATFORM docker://…`
//! seeds a registry from it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context};
use envpack_layers::digest::Sha256Digest;
use envpack_oci::{descriptor, image_index, media_type_of, Document, LayoutWriter};
use oci_spec::image::{MediaType, ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_REF_NAME};

use crate::build::BuildOptions;
use crate::lock::{Lock, LockedPlatform};

/// Writes the layout at `dir` when any chosen platform has a base; returns every file written
/// (path relative to the bundle, sha256, size).
pub(super) fn write_layout(
    dir: &Path,
    lock: &Lock,
    chosen: &[&LockedPlatform],
    opts: &BuildOptions,
) -> anyhow::Result<Vec<(String, Sha256Digest, u64)>> {
    let mut written = Vec::new();
    let mut tagged = Vec::new();
    let mut writer: Option<LayoutWriter> = None;
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
        let w = match &mut writer {
            Some(w) => w,
            None => writer.insert(LayoutWriter::create(dir)?),
        };
        let what = format!("base image {}@{}", base.name, base.digest);
        let manifest_sha = Sha256Digest::parse_prefixed(&base.digest)?;
        let manifest_path = cached(opts, &manifest_sha, &what)?;
        let bytes = fs_err::read(&manifest_path)?;
        let media_type = media_type_of("", &bytes);
        let manifest = Document::parse(&media_type, &bytes, &what)?;
        let (_, blobs) = manifest.children();
        let mut files = vec![(manifest_sha, manifest_path, media_type.clone())];
        for b in &blobs {
            let sha = Sha256Digest::parse_prefixed(&b.digest)?;
            files.push((sha, cached(opts, &sha, &what)?, b.media_type.clone()));
        }
        for (sha, path, mt) in &files {
            let size = fs_err::metadata(path)?.len();
            w.put_file(path, &descriptor(MediaType::from(mt.as_str()), sha, size)?)?;
            written.push((format!("oci/blobs/sha256/{}", sha.to_hex()), *sha, size));
        }
        let mut desc = descriptor(
            MediaType::from(media_type.as_str()),
            &manifest_sha,
            bytes.len() as u64,
        )?;
        desc.set_annotations(Some(HashMap::from([
            (ANNOTATION_REF_NAME.to_string(), p.name.clone()),
            (ANNOTATION_BASE_IMAGE_NAME.to_string(), base.name.clone()),
        ])));
        tagged.push((p.name.clone(), desc));
    }
    let Some(w) = writer else {
        return Ok(Vec::new());
    };
    w.finish(&image_index(tagged, HashMap::new())?)
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
fn cached(
    opts: &BuildOptions,
    sha: &Sha256Digest,
    what: &str,
) -> anyhow::Result<std::path::PathBuf> {
    opts.cache
        .get(sha)?
        .ok_or_else(|| anyhow!("{what}: blob {sha} is not in the cache after pulling it"))
}
