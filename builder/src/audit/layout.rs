//! `envpack audit DIR` on an OCI image layout: for every platform manifest, every blob
//! re-hashed, every layer's diff_id against the config, the env's meta files (found in the
//! layers) against its lock, and the SBOM referrers equal to the SBOMs inside the image.

use envpack_unpack::staging::MAX_META_FILE;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use envpack_layers::compress::{decoder, Compression};
use envpack_layers::digest::{HashingReader, Sha256Digest};
use serde_json::Value;

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

struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn blob_path(&self, digest: &str) -> Result<PathBuf, String> {
        let d = Sha256Digest::parse_prefixed(digest).map_err(|e| e.to_string())?;
        Ok(self.dir.join("blobs").join("sha256").join(d.to_hex()))
    }

    /// The blob of descriptor `d`, checked against its digest and size.
    fn read_verified(&self, d: &Value) -> Result<Vec<u8>, String> {
        let digest = d["digest"].as_str().ok_or("descriptor without digest")?;
        let bytes = fs_err::read(self.blob_path(digest)?).map_err(|e| e.to_string())?;
        let actual = Sha256Digest::of_bytes(&bytes).to_string();
        if actual != digest {
            return Err(format!("blob {digest} hashes to {actual}"));
        }
        if d["size"].as_u64() != Some(bytes.len() as u64) {
            return Err(format!(
                "blob {digest} is {} bytes, the descriptor says {}",
                bytes.len(),
                d["size"]
            ));
        }
        Ok(bytes)
    }
}

/// Audits the layout at `dir`; `external` is a lock given on the command line.
pub fn audit_layout(dir: &Path, external: Option<&Lock>) -> AuditReport {
    let subject = format!("layout {}", dir.display());
    let mut r = AuditReport::new(subject.clone());
    let layout = Layout {
        dir: dir.to_path_buf(),
    };
    let top: Value = match fs_err::read(dir.join("index.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            r.find(format!("{subject} index.json"), e);
            return r;
        }
    };
    let entries: Vec<Value> = top["manifests"].as_array().cloned().unwrap_or_default();
    let (referrers, images): (Vec<Value>, Vec<Value>) = entries
        .into_iter()
        .partition(|e| e["annotations"][ANNOTATION_SBOM_SUBJECT].is_string());
    let mut manifests: Vec<Value> = Vec::new();
    for e in images {
        match e["mediaType"].as_str() {
            Some(INDEX_TYPE) => match layout
                .read_verified(&e)
                .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|x| x.to_string()))
            {
                Ok(idx) => {
                    manifests.extend(idx["manifests"].as_array().cloned().unwrap_or_default())
                }
                Err(err) => r.find(format!("{subject} image index {}", e["digest"]), err),
            },
            Some(MANIFEST_TYPE) => manifests.push(e),
            other => r.note(format!("index.json entry of type {other:?} not audited")),
        }
    }
    for m in &manifests {
        let sboms = audit_manifest(&mut r, &layout, m, external);
        let digest = m["digest"].as_str().unwrap_or_default();
        check_referrers(&mut r, &layout, digest, &referrers, &sboms);
    }
    r
}

/// Checks one platform manifest; returns the SBOMs found inside its layers.
fn audit_manifest(
    r: &mut AuditReport,
    layout: &Layout,
    desc: &Value,
    external: Option<&Lock>,
) -> MetaFiles {
    let digest = desc["digest"].as_str().unwrap_or_default().to_string();
    let item = format!("manifest {digest}");
    let mut meta = MetaFiles {
        origin: item.clone(),
        ..MetaFiles::default()
    };
    r.checked += 1;
    let manifest: Value = match layout
        .read_verified(desc)
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            r.find(item, e);
            return meta;
        }
    };
    let config: Value = match layout
        .read_verified(&manifest["config"])
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            r.find(format!("{item} config"), e);
            return meta;
        }
    };
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    if diff_ids.len() != layers.len() {
        r.find(
            format!("{item} config"),
            format!("{} diff_ids for {} layers", diff_ids.len(), layers.len()),
        );
    }
    for (i, l) in layers.iter().enumerate() {
        r.checked += 1;
        let litem = format!(
            "{item} layer {i} {}",
            l["digest"].as_str().unwrap_or_default()
        );
        match scan_layer(layout, l, &mut meta) {
            Ok(diff_id) => {
                if diff_ids.get(i).and_then(Value::as_str) != Some(diff_id.as_str()) {
                    r.find(
                        litem,
                        format!(
                            "diff_id {diff_id}, the config records {}",
                            diff_ids.get(i).unwrap_or(&Value::Null)
                        ),
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
fn scan_layer(layout: &Layout, l: &Value, meta: &mut MetaFiles) -> Result<String, String> {
    let digest = l["digest"].as_str().ok_or("layer without digest")?;
    let c = match l["mediaType"].as_str() {
        Some(t) if t.ends_with("+gzip") => Compression::Gzip,
        Some(t) if t.ends_with("+zstd") => Compression::Zstd,
        other => return Err(format!("unsupported layer media type {other:?}")),
    };
    let path = layout.blob_path(digest)?;
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
    if actual.to_string() != digest {
        return Err(format!("blob hashes to {actual}"));
    }
    if l["size"].as_u64() != Some(size) {
        return Err(format!(
            "blob is {size} bytes, the manifest says {}",
            l["size"]
        ));
    }
    Ok(diff_id.to_string())
}

/// Each SBOM format must be attached to `subject` as a referrer whose blob equals the SBOM
/// inside the image.
fn check_referrers(
    r: &mut AuditReport,
    layout: &Layout,
    subject: &str,
    referrers: &[Value],
    inside: &MetaFiles,
) {
    let mine: BTreeMap<String, &Value> = referrers
        .iter()
        .filter(|e| e["annotations"][ANNOTATION_SBOM_SUBJECT] == subject)
        .filter_map(|e| {
            Some((
                e["annotations"][ANNOTATION_SBOM_FORMAT]
                    .as_str()?
                    .to_string(),
                e,
            ))
        })
        .collect();
    for f in SbomFormat::ALL {
        r.checked += 1;
        let item = format!("{} referrer of manifest {subject}", f.name());
        let Some(entry) = mine.get(f.name()) else {
            r.find(item, "missing from index.json");
            continue;
        };
        let result = layout
            .read_verified(entry)
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()))
            .and_then(|m| {
                if m["subject"]["digest"] != subject {
                    return Err(format!("its subject is {}", m["subject"]["digest"]));
                }
                layout.read_verified(&m["layers"][0])
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
