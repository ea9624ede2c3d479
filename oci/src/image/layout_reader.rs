//! Reading an OCI image layout: `index.json`, verified manifests, and the closure of blobs a
//! manifest or index refers to.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use envpack_layers::digest::Sha256Digest;
use oci_spec::image::OciLayout;

use super::document::{Document, MAX_MANIFEST_BYTES};
use crate::error::{OciError, Result};

const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Media types that are manifests or indexes (documents that point at other content).
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

/// Whether `media_type` is an index (points at manifests).
pub fn is_index_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

/// The fields of a descriptor we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    /// Media type.
    pub media_type: String,
    /// `sha256:…`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

fn bad(what: &str, detail: impl Into<String>) -> OciError {
    OciError::BadLayout {
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// A layout directory being read.
#[derive(Debug, Clone)]
pub struct LayoutReader {
    dir: PathBuf,
    index: Document,
}

/// Everything reachable from a set of root manifests, in push order.
#[derive(Debug, Clone, Default)]
pub struct Closure {
    /// Config and layer blobs, each once, in first-use order.
    pub blobs: Vec<Desc>,
    /// Manifests and indexes, children before the documents that list them.
    pub manifests: Vec<(Desc, Vec<u8>)>,
}

impl LayoutReader {
    /// Opens the layout at `dir` (`oci-layout` and `index.json` must exist).
    pub fn open(dir: &Path) -> Result<Self> {
        let layout = fs_err::read(dir.join("oci-layout"))?;
        let v = OciLayout::from_reader(layout.as_slice())
            .map_err(|e| bad("oci-layout", e.to_string()))?;
        if v.image_layout_version() != "1.0.0" {
            return Err(bad("oci-layout", "imageLayoutVersion is not 1.0.0"));
        }
        let index_bytes = fs_err::read(dir.join("index.json"))?;
        let index = Document::parse(INDEX_TYPE, &index_bytes, "OCI layout index.json")?;
        Ok(LayoutReader {
            dir: dir.to_path_buf(),
            index,
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `index.json` as read.
    pub fn index(&self) -> &Document {
        &self.index
    }

    /// `index.json`'s entries with their `org.opencontainers.image.ref.name`, if any.
    pub fn entries(&self) -> Result<Vec<(Desc, Option<String>)>> {
        Ok(self
            .index
            .entries
            .iter()
            .map(|e| (e.desc.clone(), e.ref_name().map(str::to_string)))
            .collect())
    }

    /// The entry tagged `tag`, or the only tagged entry when `tag` is `None`.
    pub fn tagged(&self, tag: Option<&str>) -> Result<(Desc, String)> {
        let tagged: Vec<(Desc, String)> = self
            .entries()?
            .into_iter()
            .filter_map(|(d, n)| n.map(|n| (d, n)))
            .collect();
        if let Some(t) = tag {
            if let Some(hit) = tagged.iter().find(|(_, n)| n == t) {
                return Ok(hit.clone());
            }
        }
        match tagged.as_slice() {
            [(d, n)] => Ok((d.clone(), tag.unwrap_or(n).to_string())),
            [] => Err(bad(
                "index.json",
                "no entry has an org.opencontainers.image.ref.name tag",
            )),
            _ => Err(bad(
                "index.json",
                format!(
                    "several tags ({}); name one in the reference",
                    tagged
                        .iter()
                        .map(|(_, n)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// Path of blob `digest`.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let d = Sha256Digest::parse_prefixed(digest).map_err(|_| {
            bad(
                "blob",
                format!(
                    "digest \"{}\" is not sha256:<hex>",
                    envpack_layers::shown_name(digest)
                ),
            )
        })?;
        Ok(self.dir.join("blobs").join("sha256").join(d.to_hex()))
    }

    /// Reads a small blob (manifest, index, config) and checks its digest and size.
    pub fn read_verified(&self, desc: &Desc) -> Result<Vec<u8>> {
        if desc.size > MAX_MANIFEST_BYTES {
            return Err(bad(
                &desc.digest,
                format!("{} bytes is too large for a manifest or config", desc.size),
            ));
        }
        let path = self.blob_path(&desc.digest)?;
        let bytes = fs_err::read(&path)?;
        let actual = Sha256Digest::of_bytes(&bytes).to_string();
        if actual != desc.digest || bytes.len() as u64 != desc.size {
            return Err(OciError::DigestMismatch {
                what: format!("blob {} ({})", desc.digest, path.display()),
                expected: format!("{} ({} bytes)", desc.digest, desc.size),
                actual: format!("{actual} ({} bytes)", bytes.len()),
            });
        }
        Ok(bytes)
    }

    /// Reads and parses a manifest or index.
    pub fn read_doc(&self, desc: &Desc) -> Result<(Vec<u8>, Document)> {
        let bytes = self.read_verified(desc)?;
        let doc = Document::parse(&desc.media_type, &bytes, &desc.digest)?;
        Ok((bytes, doc))
    }

    /// Everything `roots` reach: every blob and every manifest, children first.
    pub fn closure(&self, roots: &[Desc]) -> Result<Closure> {
        let mut out = Closure::default();
        let mut seen_blobs = BTreeSet::new();
        let mut seen_docs = BTreeSet::new();
        for r in roots {
            self.walk(r, &mut out, &mut seen_blobs, &mut seen_docs, 0)?;
        }
        Ok(out)
    }

    fn walk(
        &self,
        desc: &Desc,
        out: &mut Closure,
        seen_blobs: &mut BTreeSet<String>,
        seen_docs: &mut BTreeSet<String>,
        depth: u32,
    ) -> Result<()> {
        if depth > 8 {
            return Err(bad(&desc.digest, "indexes nested more than 8 deep"));
        }
        if !seen_docs.insert(desc.digest.clone()) {
            return Ok(());
        }
        let (bytes, doc) = self.read_doc(desc)?;
        let (manifests, blobs) = doc.children();
        for m in &manifests {
            self.walk(m, out, seen_blobs, seen_docs, depth + 1)?;
        }
        for b in blobs {
            if seen_blobs.insert(b.digest.clone()) {
                out.blobs.push(b);
            }
        }
        out.manifests.push((desc.clone(), bytes));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::LayoutWriter;
    use oci_spec::image::MediaType;
    use serde_json::{json, Value};

    fn put(w: &LayoutWriter, mt: &str, v: &Value) -> Desc {
        let d = w
            .put_bytes(
                MediaType::from(mt),
                serde_json::to_vec(v).unwrap().as_slice(),
            )
            .unwrap();
        Desc {
            media_type: mt.to_string(),
            digest: d.digest().to_string(),
            size: d.size(),
        }
    }

    fn dv(d: &Desc) -> Value {
        json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size})
    }

    #[test]
    fn closure_lists_children_first_and_blobs_once() {
        let dir = tempfile::tempdir().unwrap();
        let w = LayoutWriter::create(dir.path()).unwrap();
        let layer = put(
            &w,
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &json!("layer"),
        );
        let cfg = put(&w, "application/vnd.oci.image.config.v1+json", &json!({}));
        let mt = "application/vnd.oci.image.manifest.v1+json";
        let m1 = put(
            &w,
            mt,
            &json!({"schemaVersion": 2, "config": dv(&cfg), "layers": [dv(&layer)], "n": 1}),
        );
        let m2 = put(
            &w,
            mt,
            &json!({"schemaVersion": 2, "config": dv(&cfg), "layers": [dv(&layer)], "n": 2}),
        );
        let idx = put(
            &w,
            "application/vnd.oci.image.index.v1+json",
            &json!({"schemaVersion": 2, "manifests": [dv(&m1), dv(&m2)]}),
        );
        let referrer = put(
            &w,
            mt,
            &json!({"schemaVersion": 2, "config": dv(&cfg), "layers": [], "subject": dv(&m1)}),
        );
        let mut top = dv(&idx);
        top["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
        fs_err::write(
            dir.path().join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top, dv(&referrer)]}))
                .unwrap(),
        )
        .unwrap();
        fs_err::write(
            dir.path().join("oci-layout"),
            super::super::layout::OCI_LAYOUT,
        )
        .unwrap();

        let r = LayoutReader::open(dir.path()).unwrap();
        let (desc, tag) = r.tagged(None).unwrap();
        assert_eq!(
            (desc.digest.as_str(), tag.as_str()),
            (idx.digest.as_str(), "v1")
        );
        assert_eq!(r.tagged(Some("other")).unwrap().1, "other");
        let entries: Vec<Desc> = r.entries().unwrap().into_iter().map(|(d, _)| d).collect();
        let c = r.closure(&entries).unwrap();
        let docs: Vec<&str> = c.manifests.iter().map(|(d, _)| d.digest.as_str()).collect();
        assert_eq!(
            docs,
            [&m1.digest, &m2.digest, &idx.digest, &referrer.digest]
        );
        let blobs: Vec<&str> = c.blobs.iter().map(|d| d.digest.as_str()).collect();
        assert_eq!(blobs, [&cfg.digest, &layer.digest]);
        let (_, doc) = r.read_doc(&referrer).unwrap();
        assert_eq!(doc.subject.map(|s| s.digest), Some(m1.digest.clone()));

        // A damaged manifest is caught.
        fs_err::write(r.blob_path(&m2.digest).unwrap(), b"{}").unwrap();
        assert!(r
            .closure(&entries)
            .unwrap_err()
            .to_string()
            .contains("digest mismatch"));
    }
}
