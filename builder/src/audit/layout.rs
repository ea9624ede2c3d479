//! `envpack audit DIR` on an OCI image layout: for every platform manifest, every blob
//! re-hashed, every layer's diff_id against the config, the env's meta files (found in the
//! layers) against its lock, and the SBOM referrers equal to the SBOMs inside the image.

use envpack_unpack::staging::MAX_META_FILE;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use envpack_layers::compress::{decoder, Compression};
use envpack_layers::digest::{HashingReader, Sha256Digest};
use envpack_oci::{ConfigLayers, Desc, Entry, LayoutReader};

use super::meta::{check_meta, MetaFiles};
use super::report::AuditReport;
use crate::image::referrer::{ANNOTATION_SBOM_FORMAT, ANNOTATION_SBOM_SUBJECT};
use crate::lock::Lock;
use crate::sbom::SbomFormat;

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Whether `dir` looks like an OCI image layout.
pub fn is_layout(dir: &Path) -> bool {
    dir.join("oci-layout").is_file() && dir.join("index.json").is_file()
}

/// Audits the layout at `dir`; `external` is a lock given on the command line.
pub fn audit_layout(dir: &Path, external: Option<&Lock>) -> AuditReport {
    let subject = format!("layout {}", dir.display());
    let mut r = AuditReport::new(subject.clone());
    let layout = match LayoutReader::open(dir) {
        Ok(l) => l,
        Err(e) => {
            r.find(format!("{subject} index.json"), e.to_string());
            return r;
        }
    };
    let (referrers, images): (Vec<&Entry>, Vec<&Entry>) = layout
        .index()
        .entries
        .iter()
        .partition(|e| e.annotations.contains_key(ANNOTATION_SBOM_SUBJECT));
    let mut manifests: Vec<Desc> = Vec::new();
    for e in images {
        match e.desc.media_type.as_str() {
            INDEX_TYPE => match layout.read_doc(&e.desc) {
                Ok((_, idx)) => manifests.extend(idx.entries.into_iter().map(|e| e.desc)),
                Err(err) => r.find(
                    format!("{subject} image index {}", e.desc.digest),
                    err.to_string(),
                ),
            },
            MANIFEST_TYPE => manifests.push(e.desc.clone()),
            other => r.note(format!(
                "index.json entry of type \"{}\" not audited",
                envpack_layers::shown_name(other)
            )),
        }
    }
    for m in &manifests {
        let sboms = audit_manifest(&mut r, &layout, m, external);
        check_referrers(&mut r, &layout, &m.digest, &referrers, &sboms);
    }
    r
}

/// Checks one platform manifest; returns the SBOMs found inside its layers.
fn audit_manifest(
    r: &mut AuditReport,
    layout: &LayoutReader,
    desc: &Desc,
    external: Option<&Lock>,
) -> MetaFiles {
    let item = format!("manifest {}", desc.digest);
    let mut meta = MetaFiles {
        origin: item.clone(),
        ..MetaFiles::default()
    };
    r.checked += 1;
    let manifest = match layout.read_doc(desc) {
        Ok((_, m)) if !m.index => m,
        Ok(_) => {
            r.find(item, "an index where a platform manifest belongs");
            return meta;
        }
        Err(e) => {
            r.find(item, e.to_string());
            return meta;
        }
    };
    let config = manifest
        .config
        .as_ref()
        .ok_or_else(|| "the manifest has no config".to_string())
        .and_then(|c| {
            let bytes = layout.read_verified(c).map_err(|e| e.to_string())?;
            ConfigLayers::parse(&bytes, &c.digest).map_err(|e| e.to_string())
        });
    let diff_ids = match config {
        Ok(c) => c.diff_ids,
        Err(e) => {
            r.find(format!("{item} config"), e);
            return meta;
        }
    };
    let layers = &manifest.layers;
    if diff_ids.len() != layers.len() {
        r.find(
            format!("{item} config"),
            format!("{} diff_ids for {} layers", diff_ids.len(), layers.len()),
        );
    }
    for (i, l) in layers.iter().enumerate() {
        r.checked += 1;
        let litem = format!("{item} layer {i} {}", l.digest);
        match scan_layer(layout, l, &mut meta) {
            Ok(diff_id) => {
                if diff_ids.get(i) != Some(&diff_id) {
                    let recorded = diff_ids
                        .get(i)
                        .map_or_else(|| "nothing".to_string(), ToString::to_string);
                    r.find(
                        litem,
                        format!("diff_id {diff_id}, the config records {recorded}"),
                    );
                }
            }
            Err(e) => r.find(litem, e),
        }
    }
    let (m, _) = check_meta(&meta, external);
    r.merge(m);
    meta
}

/// Re-hashes a layer blob, decompresses it (checking nothing yet) and gathers the env's meta
/// files (`…/envs/<slot>/<file>`); returns the diff_id.
fn scan_layer(
    layout: &LayoutReader,
    l: &Desc,
    meta: &mut MetaFiles,
) -> Result<Sha256Digest, String> {
    let c = match l.media_type.as_str() {
        t if t.ends_with("+gzip") => Compression::Gzip,
        t if t.ends_with("+zstd") => Compression::Zstd,
        other => {
            return Err(format!(
                "unsupported layer media type \"{}\"",
                envpack_layers::shown_name(other)
            ))
        }
    };
    let path = layout.blob_path(&l.digest).map_err(|e| e.to_string())?;
    let mut compressed = HashingReader::new(fs_err::File::open(&path).map_err(|e| e.to_string())?);
    let mut plain = HashingReader::new(decoder(c, &mut compressed).map_err(|e| e.to_string())?);
    {
        let mut archive = tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(&mut plain));
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let parts: Vec<&str> = name.rsplitn(3, '/').collect();
            if parts.len() == 3
                && parts[2].ends_with("envs")
                && entry.header().entry_type().is_file()
                && MetaFiles::wants(parts[0])
            {
                let mut bytes = Vec::new();
                (&mut entry)
                    .take(MAX_META_FILE)
                    .read_to_end(&mut bytes)
                    .map_err(|e| e.to_string())?;
                meta.put(parts[0], bytes);
            }
        }
    }
    std::io::copy(&mut plain, &mut std::io::sink()).map_err(|e| e.to_string())?;
    let (diff_id, _) = plain.finish();
    std::io::copy(&mut compressed, &mut std::io::sink()).map_err(|e| e.to_string())?;
    let (actual, size) = compressed.finish();
    if actual.to_string() != l.digest {
        return Err(format!("blob hashes to {actual}"));
    }
    if l.size != size {
        return Err(format!(
            "blob is {size} bytes, the manifest says {}",
            l.size
        ));
    }
    Ok(diff_id)
}

/// Each SBOM format must be attached to `subject` as a referrer whose blob equals the SBOM
/// inside the image.
fn check_referrers(
    r: &mut AuditReport,
    layout: &LayoutReader,
    subject: &str,
    referrers: &[&Entry],
    inside: &MetaFiles,
) {
    let mine: BTreeMap<&str, &Entry> = referrers
        .iter()
        .filter(|e| {
            e.annotations
                .get(ANNOTATION_SBOM_SUBJECT)
                .map(String::as_str)
                == Some(subject)
        })
        .filter_map(|e| Some((e.annotations.get(ANNOTATION_SBOM_FORMAT)?.as_str(), *e)))
        .collect();
    for f in SbomFormat::ALL {
        r.checked += 1;
        let item = format!("{} referrer of manifest {subject}", f.name());
        let Some(entry) = mine.get(f.name()) else {
            r.find(item, "missing from index.json");
            continue;
        };
        let result = layout
            .read_doc(&entry.desc)
            .map_err(|e| e.to_string())
            .and_then(|(_, m)| {
                let theirs = m.subject.as_ref().map(|s| s.digest.as_str());
                if theirs != Some(subject) {
                    return Err(format!("its subject is {}", theirs.unwrap_or("missing")));
                }
                let sbom = m.layers.first().ok_or("it has no layer")?;
                layout.read_verified(sbom).map_err(|e| e.to_string())
            });
        let want = match f {
            SbomFormat::CycloneDx => &inside.cdx,
            SbomFormat::Spdx => &inside.spdx,
        };
        match result {
            Err(e) => r.find(item, e),
            Ok(bytes) if Some(&bytes) != want.as_ref() => r.find(
                item,
                format!("differs from the {} inside the image", f.tree_file()),
            ),
            Ok(_) => {}
        }
    }
}
