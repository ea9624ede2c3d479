//! The read model: a manifest, an index or an image config parsed once with oci-spec's types
//! into what envpack walks (an index's entries with their platforms and tags, a manifest's
//! config, layers and subject, a config's diff_ids and layer history). Every reader (layout,
//! oci-archive, registry, base images, audit) goes through it, so a malformed document fails
//! the same way, with the same words, wherever it is read.

use std::collections::BTreeMap;

use envpack_layers::digest::Sha256Digest;
use envpack_layers::shown_name;
use oci_spec::image::{Descriptor, History, ImageConfiguration, ImageIndex, ImageManifest};
use serde::Deserialize;

use super::layout_reader::Desc;
use crate::error::{OciError, Result};
use crate::OciPlatform;

/// Largest manifest or index read into memory, from a layout, an archive or a registry (the
/// distribution spec's default limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The annotation that names an entry of a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn bad(what: &str, detail: impl Into<String>) -> OciError {
    OciError::BadDocument {
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPlatform {
    /// `os`, e.g. `linux`.
    pub os: String,
    /// `architecture`, e.g. `amd64`.
    pub architecture: String,
    /// `variant`, e.g. `v8`.
    pub variant: Option<String>,
}

impl EntryPlatform {
    /// Whether this is `want` (a variant only counts when both sides name one).
    pub fn matches(&self, want: &OciPlatform) -> bool {
        self.os == want.os
            && self.architecture == want.arch
            && match (&self.variant, &want.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// One entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it points at.
    pub desc: Desc,
    /// The platform it is for, if it says.
    pub platform: Option<EntryPlatform>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Entry {
    /// The entry's tag in a layout's `index.json`.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// A manifest or an index, as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Whether it is an index (else a manifest).
    pub index: bool,
    /// An index's entries (none for a manifest).
    pub entries: Vec<Entry>,
    /// A manifest's config (none for an index).
    pub config: Option<Desc>,
    /// A manifest's layers.
    pub layers: Vec<Desc>,
    /// The manifest this document refers to, for a referrer.
    pub subject: Option<Desc>,
    /// `artifactType`, for an artifact manifest or index.
    pub artifact_type: Option<String>,
}

/// Just enough of a document to tell what it is when nothing else says.
#[derive(Deserialize)]
struct Probe {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
}

/// The media type of a document: the one it came with (a registry's `Content-Type`), else
/// the one it states inside, else empty.
pub fn media_type_of(header: &str, bytes: &[u8]) -> String {
    if !header.is_empty() {
        return header.to_string();
    }
    serde_json::from_slice::<Probe>(bytes)
        .ok()
        .and_then(|p| p.media_type)
        .unwrap_or_default()
}

impl Document {
    /// Parses `bytes`, an index when `media_type` says so or the document has a `manifests`
    /// list, else a manifest; `what` names it in errors.
    pub fn parse(media_type: &str, bytes: &[u8], what: &str) -> Result<Document> {
        let index = super::layout_reader::is_index_type(media_type)
            || serde_json::from_slice::<Probe>(bytes)
                .map_err(|e| bad(what, format!("not JSON: {e}")))?
                .manifests
                .is_some();
        let (doc, subject, artifact_type) = if index {
            let doc = ImageIndex::from_reader(bytes)
                .map_err(|e| bad(what, format!("not an image index: {e}")))?;
            let entries = doc.manifests().iter().map(|d| entry(d, what));
            let read = Document {
                index: true,
                entries: entries.collect::<Result<_>>()?,
                ..Document::default()
            };
            (read, doc.subject().clone(), doc.artifact_type().clone())
        } else {
            let doc = ImageManifest::from_reader(bytes)
                .map_err(|e| bad(what, format!("not an image manifest: {e}")))?;
            let read = Document {
                config: Some(desc(doc.config(), what)?),
                layers: doc
                    .layers()
                    .iter()
                    .map(|d| desc(d, what))
                    .collect::<Result<_>>()?,
                ..Document::default()
            };
            (read, doc.subject().clone(), doc.artifact_type().clone())
        };
        Ok(Document {
            subject: subject.as_ref().map(|d| desc(d, what)).transpose()?,
            artifact_type: artifact_type.map(|t| t.to_string()),
            ..doc
        })
    }

    /// What a document points at: an index's manifests, a manifest's config then layers.
    pub fn children(&self) -> (Vec<Desc>, Vec<Desc>) {
        let manifests = self.entries.iter().map(|e| e.desc.clone()).collect();
        let blobs = self.config.iter().chain(&self.layers).cloned().collect();
        (manifests, blobs)
    }

    /// The entry for `want` out of an index.
    pub fn select_platform(&self, want: &OciPlatform) -> Result<Desc> {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.platform.as_ref().is_some_and(|p| p.matches(want)))
        {
            return Ok(e.desc.clone());
        }
        let offered: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| e.platform.as_ref())
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .collect();
        Err(OciError::NoSuchPlatform {
            wanted: format!("{}/{}", want.os, want.arch),
            offered: if offered.is_empty() {
                "none".to_string()
            } else {
                offered.join(", ")
            },
        })
    }
}

/// What envpack reads of an image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLayers {
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub architecture: String,
    /// `rootfs.diff_ids`, in layer order.
    pub diff_ids: Vec<Sha256Digest>,
    /// The `created_by` of each history entry that adds a layer, in layer order.
    pub created_by: Vec<String>,
    /// Every history entry, as written (an image built on this one carries them on).
    pub history: Vec<History>,
    /// `config.Env`.
    pub env: Vec<String>,
}

impl ConfigLayers {
    /// Parses an image config; `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ConfigLayers> {
        let c = ImageConfiguration::from_reader(bytes)
            .map_err(|e| bad(what, format!("not an image config: {e}")))?;
        let diff_ids = c
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| {
                Sha256Digest::parse_prefixed(d).map_err(|_| {
                    bad(
                        what,
                        format!("diff_id \"{}\" is not sha256:<hex>", shown_name(d)),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let created_by = c
            .history()
            .iter()
            .flatten()
            .filter(|h| !h.empty_layer().unwrap_or(false))
            .map(|h| h.created_by().clone().unwrap_or_default())
            .collect();
        Ok(ConfigLayers {
            os: c.os().to_string(),
            architecture: c.architecture().to_string(),
            diff_ids,
            created_by,
            history: c.history().clone().unwrap_or_default(),
            env: c
                .config()
                .as_ref()
                .and_then(|x| x.env().clone())
                .unwrap_or_default(),
        })
    }
}

fn desc(d: &Descriptor, what: &str) -> Result<Desc> {
    let digest = d.digest().to_string();
    Sha256Digest::parse_prefixed(&digest).map_err(|_| {
        bad(
            what,
            format!("digest \"{}\" is not sha256:<hex>", shown_name(&digest)),
        )
    })?;
    Ok(Desc {
        media_type: d.media_type().to_string(),
        digest,
        size: d.size(),
    })
}

fn entry(d: &Descriptor, what: &str) -> Result<Entry> {
    Ok(Entry {
        desc: desc(d, what)?,
        platform: d.platform().as_ref().map(|p| EntryPlatform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone(),
        }),
        annotations: d
            .annotations()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn want(os: &str, arch: &str, variant: Option<&str>) -> OciPlatform {
        OciPlatform {
            os: os.into(),
            arch: arch.into(),
            variant: variant.map(str::to_string),
        }
    }

    #[test]
    fn indexes_and_manifests_by_media_type_or_shape() {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{MANIFEST}","digest":"{D1}","size":10,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{MANIFEST}","digest":"{D2}","size":20,"annotations":{{"{REF_NAME}":"v1"}}}},
              {{"mediaType":"{MANIFEST}","digest":"{D3}","size":30,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        for media_type in ["application/vnd.oci.image.index.v1+json", ""] {
            let d = Document::parse(media_type, index.as_bytes(), "index").unwrap();
            assert!(d.index);
            assert_eq!(d.entries.len(), 3);
            assert_eq!(d.entries[1].ref_name(), Some("v1"));
            assert_eq!(d.children().0[1].size, 20);
            assert_eq!(
                d.select_platform(&want("linux", "arm64", Some("v8")))
                    .unwrap()
                    .digest,
                D1
            );
            assert_eq!(
                d.select_platform(&want("linux", "arm64", None))
                    .unwrap()
                    .digest,
                D1
            );
            assert_eq!(
                d.select_platform(&want("linux", "amd64", None))
                    .unwrap()
                    .digest,
                D3
            );
            let e = d
                .select_platform(&want("linux", "riscv64", None))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("linux/amd64") && e.contains("linux/arm64"),
                "{e}"
            );
            assert!(d
                .select_platform(&want("linux", "arm64", Some("v7")))
                .is_err());
        }
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},
               "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":5}}],
               "subject":{{"mediaType":"{MANIFEST}","digest":"{D2}","size":9}}}}"#
        );
        let d = Document::parse(MANIFEST, manifest.as_bytes(), "m").unwrap();
        let (manifests, blobs) = d.children();
        assert!(manifests.is_empty() && !d.index);
        assert_eq!(
            blobs.iter().map(|b| b.digest.as_str()).collect::<Vec<_>>(),
            [D1, D2]
        );
        assert_eq!(d.subject.unwrap().size, 9);
    }

    #[test]
    fn media_type_from_the_transport_else_the_document() {
        let index = br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#;
        assert_eq!(
            media_type_of("", index),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(media_type_of("x/y", index), "x/y");
        assert_eq!(media_type_of("", b"{}"), "");
        assert_eq!(media_type_of("", b"not json"), "");
    }

    #[test]
    fn malformed_documents_are_named() {
        for (bytes, says) in [
            ("not json", "not JSON"),
            (
                r#"{"schemaVersion":2,"manifests":"x"}"#,
                "not an image index",
            ),
            (
                r#"{"schemaVersion":2,"layers":[]}"#,
                "not an image manifest",
            ),
            (
                r#"{"schemaVersion":2,"manifests":[{"mediaType":"a/b","digest":"sha512:aa","size":1}]}"#,
                "doc",
            ),
        ] {
            let e = Document::parse("", bytes.as_bytes(), "doc")
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{bytes}: {e}");
        }
    }

    #[test]
    fn config_layers_skip_empty_history() {
        let c = format!(
            r#"{{"os":"linux","architecture":"amd64","rootfs":{{"type":"layers","diff_ids":["{D1}","{D2}"]}},
               "history":[{{"created_by":"a"}},{{"created_by":"env","empty_layer":true}},{{}}]}}"#
        );
        let l = ConfigLayers::parse(c.as_bytes(), "config").unwrap();
        assert_eq!((l.os.as_str(), l.architecture.as_str()), ("linux", "amd64"));
        assert_eq!(l.diff_ids.len(), 2);
        assert_eq!(l.created_by, ["a", ""]);
        assert_eq!(l.history.len(), 3);
        assert!(ConfigLayers::parse(b"{}", "config").is_err());
        let bad = c.replace(D2, "sha256:zz");
        assert!(ConfigLayers::parse(bad.as_bytes(), "config")
            .unwrap_err()
            .to_string()
            .contains("diff_id"));
    }
}
