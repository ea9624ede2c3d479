//! SBOMs attached to platform manifests as OCI 1.1 referrers: one artifact manifest per
//! format (`artifactType` = the SBOM media type, empty config, the SBOM as its only layer,
//! `subject` = the platform manifest), listed in the layout's `index.json` after the tagged
//! image, annotated so readers can tell them apart.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use serde_json::{json, Value};

use crate::sbom::SbomFormat;
use envpack_oci::LayoutWriter;
use envpack_oci::Result;

/// Media type of the empty config of artifact manifests.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// `index.json` annotation: which SBOM format the entry holds.
pub const ANNOTATION_SBOM_FORMAT: &str = "dev.envpack.sbom.format";
/// `index.json` annotation: the platform whose manifest the SBOM describes.
pub const ANNOTATION_SBOM_PLATFORM: &str = "dev.envpack.sbom.platform";
/// `index.json` annotation: digest of the subject manifest.
pub const ANNOTATION_SBOM_SUBJECT: &str = "dev.envpack.sbom.subject";

/// `artifactType` of a referrer holding an envpack signature (minisign format) of the artifact
/// its subject manifest restores to.
pub const SIGNATURE_TYPE: &str = "application/vnd.dev.envpack.signature.v1+minisign";
/// `artifactType` of a referrer holding the signed SLSA provenance of that artifact.
pub const PROVENANCE_TYPE: &str = "application/vnd.in-toto+json";
/// Media type of the provenance referrer's layer: a DSSE envelope.
pub const DSSE_LAYER_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// `index.json` annotation: the manifest a signature or provenance referrer is about.
pub const ANNOTATION_SIGNED_SUBJECT: &str = "dev.envpack.signature.subject";
/// `index.json` annotation: the id of the key that signed it.
pub const ANNOTATION_SIGNED_KEY: &str = "dev.envpack.signature.key";
/// `index.json` annotation: the platform (`os/arch`) of that manifest.
pub const ANNOTATION_SIGNED_PLATFORM: &str = "dev.envpack.signature.platform";

/// One platform manifest signed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignedImage {
    /// `os/arch` of the manifest.
    pub platform: String,
    /// The platform manifest's digest.
    pub manifest: String,
    /// The env id of the artifact it restores to.
    pub env_id: String,
    /// The signing key's id.
    pub key_id: String,
    /// The signing time in the signature.
    pub timestamp: u64,
}

/// The envpack signature an image carries for its platform manifest `subject`: the text of a
/// signature referrer's layer, or none. Of several, the newest that one of `keys` verifies
/// (the newest of all when no key is given, or none verifies: the unpacker then says why).
/// Referrers that are not readable signatures are passed over with a warning: anyone who can
/// push may add one, and it must not hide a good one or block an unsigned unpack.
pub fn find_signature(
    store: &mut dyn crate::image::restore::ImageStore,
    subject: &str,
    keys: &envpack_trust::TrustedKeys,
) -> anyhow::Result<Option<String>> {
    let mut found: Vec<(u64, String, envpack_trust::Signature, String)> = Vec::new();
    for (desc, doc) in store.referrers(subject)? {
        if doc.artifact_type.as_deref() != Some(SIGNATURE_TYPE) {
            continue;
        }
        let skip =
            |why: String| tracing::warn!("passing over signature referrer {}: {why}", desc.digest);
        let Some(layer) = doc.layers.first() else {
            skip("it has no layer".into());
            continue;
        };
        if layer.size > envpack_trust::MAX_SIGNATURE_BYTES {
            skip(format!(
                "its layer is {} bytes, more than a signature",
                layer.size
            ));
            continue;
        }
        let text = match store.read_doc(layer).map(String::from_utf8) {
            Ok(Ok(text)) => text,
            Ok(Err(_)) => {
                skip("its layer is not UTF-8 text".into());
                continue;
            }
            Err(e) => {
                skip(e.to_string());
                continue;
            }
        };
        let sig = match envpack_trust::Signature::parse(
            &text,
            &format!("signature referrer {}", desc.digest),
        ) {
            Ok(sig) => sig,
            Err(e) => {
                skip(e.to_string());
                continue;
            }
        };
        let time = envpack_trust::Claims::parse(&sig.trusted_comment)
            .ok()
            .and_then(|c| c.timestamp)
            .unwrap_or(0);
        found.push((time, desc.digest.clone(), sig, text));
    }
    // Newest first; equal times by digest, so every reader picks the same one.
    found.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let verified = found
        .iter()
        .position(|(_, _, sig, _)| !keys.is_empty() && keys.verify_claims(sig).is_ok());
    let pick = verified.unwrap_or(0);
    Ok(found.into_iter().nth(pick).map(|(_, _, _, text)| text))
}

/// One referrer written into the layout, waiting to be listed in `index.json`.
#[derive(Debug, Clone)]
pub struct SbomReferrer {
    /// Platform name.
    pub platform: String,
    /// Format.
    pub format: SbomFormat,
    /// Descriptor of the artifact manifest, annotated for `index.json`.
    pub descriptor: Descriptor,
}

/// The artifact manifest of type `artifact_type` holding `blob` (already stored) about
/// `subject`.
pub fn artifact_manifest(
    artifact_type: &str,
    blob: &Descriptor,
    subject: &Descriptor,
    empty: &Descriptor,
    created: &str,
) -> Value {
    let plain = |d: &Descriptor| json!({"mediaType": d.media_type().to_string(), "digest": d.digest().to_string(), "size": d.size()});
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": plain(empty),
        "layers": [plain(blob)],
        "subject": plain(subject),
        "annotations": {"org.opencontainers.image.created": created},
    })
}

/// Stores both SBOMs of the env tree at `tree` (its `sbom.*.json`) as referrers of the
/// platform manifest `subject`.
pub fn attach_sboms(
    layout: &LayoutWriter,
    subject: &Descriptor,
    platform: &str,
    tree: &Path,
    epoch: u64,
) -> Result<Vec<SbomReferrer>> {
    let empty = layout.put_bytes(MediaType::Other(EMPTY_MEDIA_TYPE.into()), EMPTY_CONFIG)?;
    let created = envpack_layers::time::rfc3339(epoch);
    let mut out = Vec::new();
    for format in SbomFormat::ALL {
        let bytes = fs_err::read(tree.join(format.tree_file()))?;
        let blob = layout.put_bytes(MediaType::Other(format.media_type().into()), &bytes)?;
        let manifest = artifact_manifest(format.media_type(), &blob, subject, &empty, &created);
        let mut d = layout.put_json(MediaType::ImageManifest, &manifest)?;
        d.set_artifact_type(Some(MediaType::from(format.media_type())));
        let mut a = HashMap::new();
        a.insert(
            ANNOTATION_SBOM_FORMAT.to_string(),
            format.name().to_string(),
        );
        a.insert(ANNOTATION_SBOM_PLATFORM.to_string(), platform.to_string());
        a.insert(
            ANNOTATION_SBOM_SUBJECT.to_string(),
            subject.digest().to_string(),
        );
        d.set_annotations(Some(a));
        out.push(SbomReferrer {
            platform: platform.to_string(),
            format,
            descriptor: d,
        });
    }
    Ok(out)
}

/// Appends the referrers to the layout's `index.json`, after the tagged entry (which stays
/// first) and sorted by platform then format, so the bytes never depend on build order.
pub fn list_in_index(index: &mut ImageIndex, referrers: &[SbomReferrer]) {
    let mut sorted: Vec<&SbomReferrer> = referrers.iter().collect();
    sorted
        .sort_by(|a, b| (a.platform.as_bytes(), a.format).cmp(&(b.platform.as_bytes(), b.format)));
    let mut all = index.manifests().clone();
    all.extend(sorted.into_iter().map(|r| r.descriptor.clone()));
    index.set_manifests(all);
}

#[cfg(test)]
mod tests {
    use super::*;
    use envpack_layers::canonical::to_canonical_vec;
    use envpack_layers::digest::Sha256Digest;

    #[test]
    fn referrers_are_artifact_manifests_listed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LayoutWriter::create(&dir.path().join("l")).unwrap();
        let tree = dir.path().join("tree");
        fs_err::create_dir_all(&tree).unwrap();
        fs_err::write(
            tree.join("sbom.cdx.json"),
            b"{\"bomFormat\":\"CycloneDX\"}\n",
        )
        .unwrap();
        fs_err::write(
            tree.join("sbom.spdx.json"),
            b"{\"spdxVersion\":\"SPDX-2.3\"}\n",
        )
        .unwrap();
        let subject = layout
            .put_bytes(MediaType::ImageManifest, b"{\"m\":1}")
            .unwrap();
        let mut refs =
            attach_sboms(&layout, &subject, "linux-x86_64", &tree, 1_700_000_000).unwrap();
        let other = attach_sboms(&layout, &subject, "linux-aarch64", &tree, 1_700_000_000).unwrap();
        refs.extend(other);
        assert_eq!(refs.len(), 4);

        let blob = |d: &Descriptor| {
            let hex = d
                .digest()
                .to_string()
                .trim_start_matches("sha256:")
                .to_string();
            fs_err::read(dir.path().join("l/blobs/sha256").join(hex)).unwrap()
        };
        let m: Value = serde_json::from_slice(&blob(&refs[0].descriptor)).unwrap();
        assert_eq!(m["artifactType"], "application/vnd.cyclonedx+json");
        assert_eq!(m["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            m["config"]["digest"],
            format!("sha256:{}", Sha256Digest::of_bytes(b"{}").to_hex())
        );
        assert_eq!(m["subject"]["digest"], subject.digest().to_string());
        assert_eq!(
            m["layers"][0]["mediaType"],
            "application/vnd.cyclonedx+json"
        );
        let layer_hex = m["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        assert_eq!(
            fs_err::read(dir.path().join("l/blobs/sha256").join(layer_hex)).unwrap(),
            b"{\"bomFormat\":\"CycloneDX\"}\n"
        );

        let mut index = envpack_oci::layout_index(subject.clone(), "v1").unwrap();
        list_in_index(&mut index, &refs);
        let json: Value = serde_json::from_slice(&to_canonical_vec(&index).unwrap()).unwrap();
        let entries = json["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0]["digest"], subject.digest().to_string());
        let order: Vec<(String, String)> = entries[1..]
            .iter()
            .map(|e| {
                (
                    e["annotations"][ANNOTATION_SBOM_PLATFORM]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    e["artifactType"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                (
                    "linux-aarch64".into(),
                    "application/vnd.cyclonedx+json".into()
                ),
                ("linux-aarch64".into(), "application/spdx+json".into()),
                (
                    "linux-x86_64".into(),
                    "application/vnd.cyclonedx+json".into()
                ),
                ("linux-x86_64".into(), "application/spdx+json".into()),
            ]
        );
    }
}
