//! `envpack audit ARTIFACT`: every layer digest and entry of a portable artifact (against the
//! manifest in its meta layer), its meta files against its lock, and the SBOMs next to it.

use envpack_unpack::staging::MAX_META_FILE;
use std::io::Read;
use std::path::Path;

use envpack_layers::artifact::ArtifactReader;
use envpack_layers::digest::Sha256Digest;

use super::meta::{check_meta, MetaFiles};
use super::report::AuditReport;
use crate::lock::Lock;
use crate::sbom::{beside, SbomFormat};

/// The root-level meta files found in layer `i` of `reader`.
pub fn read_meta_files(
    reader: &ArtifactReader,
    i: usize,
    origin: &str,
) -> Result<MetaFiles, String> {
    let mut meta = MetaFiles {
        origin: origin.to_string(),
        ..MetaFiles::default()
    };
    let stream = reader.open_layer(i).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(stream));
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if entry.header().entry_type().is_file() && MetaFiles::wants(&name) {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_META_FILE)
                .read_to_end(&mut bytes)
                .map_err(|e| e.to_string())?;
            meta.put(&name, bytes);
        }
    }
    Ok(meta)
}

/// Audits the artifact at `path`; `external` is a lock given on the command line.
pub fn audit_artifact(path: &Path, external: Option<&Lock>) -> AuditReport {
    let subject = format!("artifact {}", path.display());
    let mut r = AuditReport::new(subject.clone());
    match envpack_unpack::verify_artifact(path) {
        Ok(v) => {
            r.checked += v.files_checked;
            for d in v.differences {
                r.find(subject.clone(), d);
            }
        }
        Err(e) => {
            r.find(subject, e.to_string());
            return r;
        }
    }
    let reader = match ArtifactReader::open(path) {
        Ok(rd) => rd,
        Err(e) => {
            r.find(subject, e.to_string());
            return r;
        }
    };
    let Some(meta_i) = reader.index().layers.iter().position(|l| l.name == "meta") else {
        r.find(subject, "no meta layer");
        return r;
    };
    let meta = match read_meta_files(&reader, meta_i, &format!("{subject} layer meta:")) {
        Ok(m) => m,
        Err(e) => {
            r.find(format!("{subject} layer meta"), e);
            return r;
        }
    };
    if meta.lock.as_deref() != Some(reader.lock_bytes()) {
        r.find(
            format!("{subject} envpack.lock"),
            "the lock member of the artifact differs from the envpack.lock in its meta layer",
        );
    }
    let (m, facts) = check_meta(&meta, external);
    r.merge(m);
    if let Some(info) = &facts.info {
        check_layer_ids(&mut r, &subject, &reader, info);
    }
    for f in SbomFormat::ALL {
        let next = beside(path, f);
        if let Ok(bytes) = fs_err::read(&next) {
            r.checked += 1;
            let inside = match f {
                SbomFormat::CycloneDx => &meta.cdx,
                SbomFormat::Spdx => &meta.spdx,
            };
            if inside.as_deref() != Some(bytes.as_slice()) {
                r.find(
                    next.display().to_string(),
                    format!("differs from the {} inside the artifact", f.tree_file()),
                );
            }
        }
    }
    r
}

/// `envpack.json` lists the diff_ids of the layers below meta; the artifact index must agree,
/// and the index's env id and lock digest must be the tree's.
fn check_layer_ids(
    r: &mut AuditReport,
    subject: &str,
    reader: &ArtifactReader,
    info: &serde_json::Value,
) {
    let index = reader.index();
    r.checked += 1;
    if info["env_id"].as_str() != Some(index.env_id.as_str()) {
        r.find(
            format!("{subject} envpack-artifact.json"),
            format!(
                "env_id {} but the tree's envpack.json says {}",
                index.env_id, info["env_id"]
            ),
        );
    }
    if index.lock_sha256 != Sha256Digest::of_bytes(reader.lock_bytes()) {
        r.find(
            format!("{subject} envpack-artifact.json"),
            "lock_sha256 does not match the lock",
        );
    }
    for l in info["layers"].as_array().into_iter().flatten() {
        let name = l["name"].as_str().unwrap_or_default();
        let want = l["diff_id"].as_str().unwrap_or_default();
        match index.layers.iter().find(|x| x.name == name) {
            None => r.find(
                format!("{subject} layer {name}"),
                "listed in envpack.json, absent from the artifact",
            ),
            Some(x) if x.diff_id.to_string() != want => r.find(
                format!("{subject} layer {name}"),
                format!("diff_id {} but envpack.json records {want}", x.diff_id),
            ),
            Some(_) => {}
        }
    }
}
