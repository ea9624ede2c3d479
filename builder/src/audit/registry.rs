//! `envpack audit REF`: the image in a registry, copied blob by blob (every digest checked on
//! the way) into a scratch image layout, then audited like a layout. SBOM referrers come from
//! the referrers API or, where the registry lacks it, the `sha256-<hex>` fallback tag.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, Context};
use serde_json::json;

use crate::image::referrer::{
    ANNOTATION_SBOM_FORMAT, ANNOTATION_SBOM_PLATFORM, ANNOTATION_SBOM_SUBJECT,
};
use crate::image::restore::ImageStore;
use crate::pull::RegistryStore;
use crate::sbom::SbomFormat;
use envpack_oci::OCI_LAYOUT;
use envpack_oci::{is_manifest_type, Desc, Document};
use envpack_oci::{ClientOptions, Reference};

/// Audits the image `reference` names: mirrored into a scratch layout under `work`, then
/// checked like a layout; findings name the reference, not the scratch path.
pub fn audit_reference(
    reference: &Reference,
    options: &ClientOptions,
    work: &Path,
    external: Option<&crate::lock::Lock>,
) -> anyhow::Result<super::report::AuditReport> {
    let dir = work.join("layout");
    let mirrored = mirror_to_layout(reference, options, &dir)
        .with_context(|| format!("copying {reference} for the audit"))?;
    let mut report = super::layout::audit_layout(&dir, external);
    let scratch = format!("layout {}", dir.display());
    let name = reference.to_string();
    report.subject = name.clone();
    for f in &mut report.findings {
        f.item = f.item.replace(&scratch, &name);
    }
    for n in &mut report.notes {
        *n = n.replace(&scratch, &name);
    }
    report.note(format!(
        "{} manifests and blobs fetched, each digest-checked; {} SBOM referrers found",
        mirrored.documents, mirrored.referrers
    ));
    if mirrored.referrers == 0 {
        report.find(
            format!("{name} SBOM referrers"),
            "none found (neither the referrers API nor the sha256-<digest> fallback tag lists any)",
        );
    }
    Ok(report)
}

/// What a mirror holds, for the report's notes.
#[derive(Debug, Default)]
pub struct Mirrored {
    /// Blobs and manifests copied.
    pub documents: usize,
    /// SBOM referrers found.
    pub referrers: usize,
}

/// Copies `reference` (every platform, their blobs and their SBOM referrers) into the new image
/// layout `dir`.
pub fn mirror_to_layout(
    reference: &Reference,
    options: &ClientOptions,
    dir: &Path,
) -> anyhow::Result<Mirrored> {
    let blobs = dir.join("blobs/sha256");
    fs_err::create_dir_all(&blobs)?;
    fs_err::write(dir.join("oci-layout"), OCI_LAYOUT)?;
    let mut store = RegistryStore::connect(reference.clone(), options, &dir.join("downloads"))?;
    let mut copied = BTreeSet::new();
    let top = store.top()?;
    let mut platforms: Vec<(String, String)> = Vec::new();
    copy_tree(&mut store, &top, &blobs, &mut copied, &mut platforms)?;
    if platforms.is_empty() {
        // A single-platform manifest is its own subject.
        platforms.push((top.digest.clone(), String::new()));
    }
    let tag = match reference.target() {
        t if t.starts_with("sha256:") => "audited".to_string(),
        t => t.to_string(),
    };
    let mut entries = vec![json!({
        "mediaType": top.media_type,
        "digest": top.digest,
        "size": top.size,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    })];
    let mut referrers = 0;
    for (subject, platform) in &platforms {
        for (desc, doc) in store.referrers(subject)? {
            copy_tree(&mut store, &desc, &blobs, &mut copied, &mut Vec::new())?;
            let artifact_type = doc.artifact_type.as_deref().unwrap_or_default();
            let Some(format) = SbomFormat::ALL
                .into_iter()
                .find(|f| f.media_type() == artifact_type)
            else {
                continue;
            };
            entries.push(json!({
                "mediaType": desc.media_type,
                "digest": desc.digest,
                "size": desc.size,
                "artifactType": artifact_type,
                "annotations": {
                    ANNOTATION_SBOM_FORMAT: format.name(),
                    ANNOTATION_SBOM_PLATFORM: platform,
                    ANNOTATION_SBOM_SUBJECT: subject,
                },
            }));
            referrers += 1;
        }
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    fs_err::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    fs_err::remove_dir_all(dir.join("downloads")).ok();
    Ok(Mirrored {
        documents: copied.len(),
        referrers,
    })
}

/// Copies `desc` and everything it references; records (digest, platform name) of image
/// manifests listed by an index.
fn copy_tree(
    store: &mut RegistryStore,
    desc: &Desc,
    blobs: &Path,
    copied: &mut BTreeSet<String>,
    platforms: &mut Vec<(String, String)>,
) -> anyhow::Result<()> {
    if !copied.insert(desc.digest.clone()) {
        return Ok(());
    }
    let hex = desc
        .digest
        .strip_prefix("sha256:")
        .ok_or_else(|| anyhow!("{} is not a sha256 digest", desc.digest))?;
    let dest = blobs.join(hex);
    if !is_manifest_type(&desc.media_type) {
        let file = store.blob_file(desc)?;
        fs_err::rename(&file, &dest)?;
        return Ok(());
    }
    let bytes = store.read_doc(desc)?;
    fs_err::write(&dest, &bytes)?;
    let doc = Document::parse(&desc.media_type, &bytes, &desc.digest)?;
    let (manifests, parts) = doc.children();
    for e in &doc.entries {
        let name = e
            .platform
            .as_ref()
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .unwrap_or_default();
        platforms.push((e.desc.digest.clone(), name));
    }
    for m in &manifests {
        copy_tree(store, m, blobs, copied, &mut Vec::new())?;
    }
    for b in &parts {
        copy_tree(store, b, blobs, copied, platforms)?;
    }
    Ok(())
}
