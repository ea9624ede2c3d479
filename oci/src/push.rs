//! Pushing an OCI image layout into a registry (`envpack push`) — blobs first (skipping what the
//! registry has, mounting across repositories when told where from, streaming the rest),
//! then manifests by digest, referrers (with the tag-schema fallback), and the tag last, so a
//! failed push never leaves the tag pointing at something incomplete.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{OciError, Result};
use crate::image::{Desc, Document, LayoutReader};
use crate::registry::{ClientOptions, Mount, Reference, RegistryClient};

/// Choices for a push besides the reference.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Client settings (insecure, retries, credentials).
    pub client: ClientOptions,
    /// Another repository on the same registry to mount missing blobs from.
    pub mount_from: Option<String>,
    /// Parallel blob transfers.
    pub jobs: usize,
}

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobAction {
    /// The registry had it already.
    Skipped,
    /// Linked from `--mount-from`.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// One blob's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct BlobOutcome {
    /// `sha256:…`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// What was done.
    pub action: BlobAction,
}

/// The result of a push, printed by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// `host/repo:tag` pushed to.
    pub reference: String,
    /// The tag.
    pub tag: String,
    /// Digest the tag now points to (local == registry).
    pub digest: String,
    /// Blobs uploaded.
    pub blobs_uploaded: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Blobs mounted from another repository.
    pub blobs_mounted: usize,
    /// Blobs already present.
    pub blobs_skipped: usize,
    /// Manifests (and indexes) written, the tag included.
    pub manifests_pushed: usize,
    /// Manifests already present.
    pub manifests_skipped: usize,
    /// Referrer fallback tags written (`sha256-<hex>`).
    pub referrer_tags: Vec<String>,
    /// Per blob.
    pub blobs: Vec<BlobOutcome>,
    /// Every manifest digest pushed or found, children first.
    pub manifests: Vec<String>,
}

/// The tag-schema fallback tag of a subject: `sha256-<hex>`.
pub fn fallback_tag(subject_digest: &str) -> String {
    subject_digest.replacen(':', "-", 1)
}

/// The descriptor of a referrer manifest as a referrers index lists it.
pub fn referrer_entry(desc: &Desc, doc: &Value) -> Value {
    let mut v = json!({"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size});
    let artifact_type = doc
        .get("artifactType")
        .or_else(|| doc.get("config").and_then(|c| c.get("mediaType")));
    if let Some(t) = artifact_type {
        v["artifactType"] = t.clone();
    }
    if let Some(a) = doc
        .get("annotations")
        .filter(|a| a.as_object().is_some_and(|o| !o.is_empty()))
    {
        v["annotations"] = a.clone();
    }
    v
}

/// The fallback index: the existing one's entries plus `new`, one per digest, sorted by digest
/// so re-pushing gives the same bytes. `None` when nothing would change.
pub fn merged_referrers_index(existing: Option<&Value>, new: &[Value]) -> Option<Vec<u8>> {
    let digest_of = |v: &Value| {
        v.get("digest")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(list) = existing
        .and_then(|e| e.get("manifests"))
        .and_then(Value::as_array)
    {
        for v in list {
            entries.insert(digest_of(v), v.clone());
        }
    }
    let before = entries.len();
    for v in new {
        entries.entry(digest_of(v)).or_insert_with(|| v.clone());
    }
    if existing.is_some() && entries.len() == before {
        return None;
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries.into_values().collect::<Vec<_>>(),
    });
    envpack_layers::canonical::to_canonical_vec(&index).ok()
}

/// Pushes the layout at `layout_dir` to `reference`. The tag is the reference's, else the
/// layout's only tag; every other `index.json` entry (referrers) goes along by digest.
pub fn push_layout(
    layout: &LayoutReader,
    reference: &Reference,
    options: &PushOptions,
) -> Result<PushReport> {
    let (top, tag) = layout.tagged(reference.tag.as_deref())?;
    let entries: Vec<Desc> = layout.entries()?.into_iter().map(|(d, _)| d).collect();
    let mut roots = vec![top.clone()];
    roots.extend(entries.into_iter().filter(|d| d.digest != top.digest));
    let closure = layout.closure(&roots)?;

    let repo = reference.repository.as_str();
    let mut scopes = Vec::new();
    scopes.push(format!("repository:{repo}:pull,push"));
    if let Some(from) = &options.mount_from {
        scopes.push(format!("repository:{from}:pull"));
    }
    let client = RegistryClient::connect(&reference.registry, &options.client, scopes)?;

    let bytes_uploaded = AtomicU64::new(0);
    let push_blob = |d: &Desc| -> Result<BlobOutcome> {
        let outcome = |action| BlobOutcome {
            digest: d.digest.clone(),
            size: d.size,
            action,
        };
        if client.blob_exists(repo, &d.digest)? {
            return Ok(outcome(BlobAction::Skipped));
        }
        let path = layout.blob_path(&d.digest)?;
        let on_disk = fs_err::metadata(&path)?.len();
        if on_disk != d.size {
            return Err(OciError::BlobSize {
                path,
                on_disk,
                size: d.size,
            });
        }
        let mut session = None;
        if let Some(from) = options.mount_from.as_deref().filter(|f| *f != repo) {
            match client.mount_blob(repo, &d.digest, from)? {
                Mount::Mounted => return Ok(outcome(BlobAction::Mounted)),
                Mount::Upload(loc) => session = Some(loc),
            }
        }
        client.upload_blob(repo, &d.digest, &path, d.size, session)?;
        bytes_uploaded.fetch_add(d.size, Ordering::Relaxed);
        tracing::info!(digest = %d.digest, size = d.size, "uploaded blob");
        Ok(outcome(BlobAction::Uploaded))
    };
    let jobs = options.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let blobs: Vec<BlobOutcome> = pool.install(|| {
        closure
            .blobs
            .par_iter()
            .map(push_blob)
            .collect::<Result<Vec<_>>>()
    })?;

    // Manifests by digest (children first), then referrer fallbacks, then the tag.
    let mut pushed = 0;
    let mut skipped = 0;
    let mut referrers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (desc, bytes) in &closure.manifests {
        if desc.digest == top.digest {
            continue;
        }
        if client.manifest_digest(repo, &desc.digest)?.as_deref() == Some(desc.digest.as_str()) {
            skipped += 1;
        } else {
            client.put_manifest(repo, &desc.digest, &desc.media_type, bytes)?;
            pushed += 1;
        }
        if let Some(s) = Document::parse(&desc.media_type, bytes, &desc.digest)?.subject {
            // The entry copies the referrer's own fields as written, annotations included.
            let raw: Value = serde_json::from_slice(bytes)?;
            referrers
                .entry(s.digest)
                .or_default()
                .push(referrer_entry(desc, &raw));
        }
    }
    let mut referrer_tags = Vec::new();
    for (subject_digest, list) in &referrers {
        if client.referrers_api(repo, subject_digest)? {
            continue;
        }
        let ftag = fallback_tag(subject_digest);
        let existing = match client.manifest_digest(repo, &ftag)? {
            Some(_) => Some(serde_json::from_slice::<Value>(
                &client.get_manifest(repo, &ftag)?.bytes,
            )?),
            None => None,
        };
        if let Some(bytes) = merged_referrers_index(existing.as_ref(), list) {
            client.put_manifest(
                repo,
                &ftag,
                "application/vnd.oci.image.index.v1+json",
                &bytes,
            )?;
            pushed += 1;
            referrer_tags.push(ftag);
        } else {
            skipped += 1;
        }
    }
    let top_bytes = closure
        .manifests
        .iter()
        .find(|(d, _)| d.digest == top.digest)
        .map(|(_, b)| b.clone())
        .ok_or_else(|| OciError::Vanished {
            digest: top.digest.clone(),
        })?;
    if client.manifest_digest(repo, &tag)?.as_deref() == Some(top.digest.as_str()) {
        skipped += 1;
    } else {
        client.put_manifest(repo, &tag, &top.media_type, &top_bytes)?;
        pushed += 1;
    }

    let count = |a| blobs.iter().filter(|b| b.action == a).count();
    Ok(PushReport {
        reference: format!("{}/{}:{}", reference.registry, repo, tag),
        tag,
        digest: top.digest.clone(),
        blobs_uploaded: count(BlobAction::Uploaded),
        bytes_uploaded: bytes_uploaded.load(Ordering::Relaxed),
        blobs_mounted: count(BlobAction::Mounted),
        blobs_skipped: count(BlobAction::Skipped),
        manifests_pushed: pushed,
        manifests_skipped: skipped,
        referrer_tags,
        manifests: closure
            .manifests
            .iter()
            .map(|(d, _)| d.digest.clone())
            .collect(),
        blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str) -> Value {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1})
    }

    #[test]
    fn fallback_tags() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(fallback_tag(&d), format!("sha256-{}", "ab".repeat(32)));
    }

    #[test]
    fn referrer_entries_carry_artifact_type_and_annotations() {
        let desc = Desc {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: "sha256:00".into(),
            size: 7,
        };
        let doc = json!({"artifactType": "application/spdx+json", "annotations": {"k": "v"}, "config": {"mediaType": "application/vnd.oci.empty.v1+json"}});
        assert_eq!(
            referrer_entry(&desc, &doc),
            json!({"mediaType": desc.media_type, "digest": "sha256:00", "size": 7, "artifactType": "application/spdx+json", "annotations": {"k": "v"}})
        );
        let doc =
            json!({"config": {"mediaType": "application/vnd.example.sbom"}, "annotations": {}});
        assert_eq!(
            referrer_entry(&desc, &doc),
            json!({"mediaType": desc.media_type, "digest": "sha256:00", "size": 7, "artifactType": "application/vnd.example.sbom"})
        );
    }

    #[test]
    fn merging_is_sorted_idempotent_and_keeps_others() {
        let fresh =
            merged_referrers_index(None, &[entry("sha256:bb"), entry("sha256:aa")]).unwrap();
        let text = String::from_utf8(fresh.clone()).unwrap();
        assert!(
            text.find("sha256:aa").unwrap() < text.find("sha256:bb").unwrap(),
            "{text}"
        );
        assert!(text.contains(r#""mediaType":"application/vnd.oci.image.index.v1+json""#));
        let existing: Value = serde_json::from_slice(&fresh).unwrap();
        assert_eq!(
            merged_referrers_index(Some(&existing), &[entry("sha256:aa")]),
            None
        );
        let more = merged_referrers_index(Some(&existing), &[entry("sha256:cc")]).unwrap();
        let v: Value = serde_json::from_slice(&more).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 3);
        let again =
            merged_referrers_index(None, &[entry("sha256:aa"), entry("sha256:bb")]).unwrap();
        assert_eq!(again, fresh, "same entries, same bytes");
    }
}
