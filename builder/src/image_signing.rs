//! Signed images: each platform manifest of an image layout gets an envpack signature and a
//! signed SLSA provenance as OCI 1.1 referrers (artifact manifests whose `subject` is that
//! manifest), listed in the layout's `index.json` and pushed with it (under the `sha256-<hex>`
//! fallback tag where a registry has no referrers API), like the SBOMs.
//!
//! What is signed is the portable artifact the platform's image restores to
//! (`image::restore`): `unpack IMAGE` rebuilds exactly that artifact before anything is
//! written and checks the signature beside it as it checks a tarball's — the same trusted
//! keys, root policy, newest-signed mark and recorded index. The restore checks each env layer
//! against the manifest's digest and the config's diff_id, so the signature covers what
//! `unpack` installs (not the base layers, the root layer or the config); the provenance's
//! subject is that artifact's sha256.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use envpack_layers::canonical::to_canonical_vec;
use envpack_layers::digest::Sha256Digest;
use envpack_oci::{descriptor, ConfigLayers, Desc, LayoutReader, LayoutWriter, OciPlatform};
use oci_spec::image::{Descriptor, MediaType};
use serde_json::Value;

use crate::image::referrer::{
    artifact_manifest, SignedImage, ANNOTATION_SIGNED_KEY, ANNOTATION_SIGNED_PLATFORM,
    ANNOTATION_SIGNED_SUBJECT, DSSE_LAYER_TYPE, EMPTY_CONFIG, EMPTY_MEDIA_TYPE, PROVENANCE_TYPE,
    SIGNATURE_TYPE,
};
use crate::image::restore::restore_artifact;
use crate::pull::LayoutStore;
use crate::signing::{sign_restored, Prepared};

/// A platform manifest of the layout with the signature and provenance made for it.
struct Made {
    platform: String,
    manifest: Desc,
    env_id: String,
    prepared: Prepared,
}

/// Signs every platform manifest of the image tagged `tag` (the layout's only tag when none)
/// in the layout `dir`, replacing the signatures this key made before for the same manifests.
pub fn sign_layout(
    dir: &Path,
    tag: Option<&str>,
    key: &envpack_trust::SigningKey,
    scratch: &Path,
) -> anyhow::Result<Vec<SignedImage>> {
    prepare_layout(dir, tag, key, scratch)?.write()
}

/// The signatures of one layout, made and not yet written.
pub struct PreparedLayout {
    dir: std::path::PathBuf,
    made: Vec<Made>,
}

impl PreparedLayout {
    /// Stores the referrers and replaces `index.json` atomically.
    pub fn write(self) -> anyhow::Result<Vec<SignedImage>> {
        write_referrers(&self.dir, &self.made)?;
        Ok(self
            .made
            .into_iter()
            .map(|m| {
                let (key_id, timestamp) = m.prepared.signer();
                SignedImage {
                    platform: m.platform,
                    manifest: m.manifest.digest,
                    env_id: m.env_id,
                    key_id: key_id.to_string(),
                    timestamp,
                }
            })
            .collect())
    }
}

/// Makes the signature and provenance of every platform manifest of the image tagged `tag`
/// in `dir` (restoring each platform's artifact under `scratch`), changing nothing yet.
pub fn prepare_layout(
    dir: &Path,
    tag: Option<&str>,
    key: &envpack_trust::SigningKey,
    scratch: &Path,
) -> anyhow::Result<PreparedLayout> {
    let reader = LayoutReader::open(dir)?;
    let (top, tag) = reader.tagged(tag)?;
    let (_, top_doc) = reader.read_doc(&top)?;
    let manifests: Vec<(Desc, OciPlatform)> = if top_doc.index {
        top_doc
            .entries
            .iter()
            .filter_map(|e| {
                e.platform.as_ref().map(|p| {
                    let platform = OciPlatform {
                        os: p.os.clone(),
                        arch: p.architecture.clone(),
                        variant: p.variant.clone(),
                    };
                    (e.desc.clone(), platform)
                })
            })
            .collect()
    } else {
        let config = top_doc
            .config
            .as_ref()
            .ok_or_else(|| anyhow!("manifest {} has no config", top.digest))?;
        let parsed = ConfigLayers::parse(&reader.read_verified(config)?, &config.digest)?;
        let platform = OciPlatform {
            os: parsed.os,
            arch: parsed.architecture,
            variant: None,
        };
        vec![(top.clone(), platform)]
    };
    if manifests.is_empty() {
        bail!(
            "the image {tag} in {} lists no platform manifest to sign",
            dir.display()
        );
    }

    let mut made = Vec::new();
    for (i, (manifest, platform)) in manifests.into_iter().enumerate() {
        let work = scratch.join(format!("restore-{i}"));
        fs_err::create_dir_all(&work)?;
        let mut store = LayoutStore::open(dir, Some(tag.clone()))?;
        let name = format!("{}/{}", platform.os, platform.arch);
        let restored = restore_artifact(&mut store, &platform, &work)
            .with_context(|| format!("restoring the {name} artifact of {tag} to sign it"))?;
        if restored.manifest_digest != manifest.digest {
            bail!(
                "{name}: the image restores from {}, not {}",
                restored.manifest_digest,
                manifest.digest
            );
        }
        let hex = manifest.digest.trim_start_matches("sha256:").to_string();
        let prepared = sign_restored(&restored.path, key, Some((format!("{tag} ({name})"), hex)))?;
        // The restored env is as big as the env: gone before the next platform's.
        fs_err::remove_dir_all(&work)?;
        made.push(Made {
            platform: name,
            manifest,
            env_id: restored.env_id,
            prepared,
        });
    }
    Ok(PreparedLayout {
        dir: dir.to_path_buf(),
        made,
    })
}

/// Stores both referrers of every manifest and lists them in `index.json`, in place of the
/// envpack signatures and provenances listed there before for the same manifests.
fn write_referrers(dir: &Path, made: &[Made]) -> anyhow::Result<()> {
    let writer = LayoutWriter::create(dir)?;
    let empty = writer.put_bytes(MediaType::Other(EMPTY_MEDIA_TYPE.into()), EMPTY_CONFIG)?;
    let mut entries = Vec::new();
    for m in made {
        let subject = descriptor(
            MediaType::from(m.manifest.media_type.as_str()),
            &Sha256Digest::parse_prefixed(&m.manifest.digest)?,
            m.manifest.size,
        )?;
        let created = envpack_layers::time::rfc3339(m.prepared.signer().1);
        for (artifact_type, layer_type, bytes) in [
            (SIGNATURE_TYPE, SIGNATURE_TYPE, m.prepared.signature_bytes()),
            (
                PROVENANCE_TYPE,
                DSSE_LAYER_TYPE,
                m.prepared.provenance_bytes(),
            ),
        ] {
            let blob = writer.put_bytes(MediaType::Other(layer_type.into()), bytes)?;
            let doc = artifact_manifest(artifact_type, &blob, &subject, &empty, &created);
            let mut d: Descriptor = writer.put_json(MediaType::ImageManifest, &doc)?;
            d.set_artifact_type(Some(MediaType::from(artifact_type)));
            d.set_annotations(Some(HashMap::from([
                (
                    ANNOTATION_SIGNED_SUBJECT.to_string(),
                    m.manifest.digest.clone(),
                ),
                (ANNOTATION_SIGNED_PLATFORM.to_string(), m.platform.clone()),
                (
                    ANNOTATION_SIGNED_KEY.to_string(),
                    m.prepared.signer().0.to_string(),
                ),
            ])));
            entries.push(serde_json::to_value(&d)?);
        }
    }
    let path = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs_err::read(&path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    let signed: BTreeSet<(&str, &str)> = made
        .iter()
        .map(|m| (m.manifest.digest.as_str(), m.prepared.signer().0))
        .collect();
    let list = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| anyhow!("{} has no manifests list", path.display()))?;
    list.retain(|e| !replaced(e, &signed));
    list.extend(entries);
    crate::atomic::write_file(&path, &to_canonical_vec(&index)?)?;
    Ok(())
}

/// Whether `entry` is an envpack signature or provenance of one of the `signed` manifests by
/// the same key (another key's signature of it stays: several keys may sign one image).
fn replaced(entry: &Value, signed: &BTreeSet<(&str, &str)>) -> bool {
    let ours = matches!(
        entry.get("artifactType").and_then(Value::as_str),
        Some(SIGNATURE_TYPE) | Some(PROVENANCE_TYPE)
    );
    let note = |key: &str| {
        entry
            .get("annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    };
    match (note(ANNOTATION_SIGNED_SUBJECT), note(ANNOTATION_SIGNED_KEY)) {
        (Some(subject), Some(key)) => ours && signed.contains(&(subject, key)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_envpack_signatures_of_resigned_manifests_are_replaced() {
        let signed = BTreeSet::from([("sha256:aa", "K1")]);
        let entry = |t: &str, s: &str, k: &str| serde_json::json!({"artifactType": t, "annotations": {ANNOTATION_SIGNED_SUBJECT: s, ANNOTATION_SIGNED_KEY: k}});
        assert!(replaced(&entry(SIGNATURE_TYPE, "sha256:aa", "K1"), &signed));
        assert!(replaced(
            &entry(PROVENANCE_TYPE, "sha256:aa", "K1"),
            &signed
        ));
        assert!(!replaced(
            &entry(SIGNATURE_TYPE, "sha256:aa", "K2"),
            &signed
        ));
        assert!(!replaced(
            &entry(SIGNATURE_TYPE, "sha256:bb", "K1"),
            &signed
        ));
        assert!(!replaced(
            &entry("application/spdx+json", "sha256:aa", "K1"),
            &signed
        ));
        assert!(!replaced(
            &serde_json::json!({"digest": "sha256:aa"}),
            &signed
        ));
    }
}
