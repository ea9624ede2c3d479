//! Manifests, the multi-platform image index, the layout's `index.json`, and their annotations.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{
    Arch, Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, ImageManifestBuilder,
    MediaType, Os, Platform, PlatformBuilder, ANNOTATION_BASE_IMAGE_DIGEST,
    ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_CREATED, ANNOTATION_REF_NAME, ANNOTATION_REVISION,
    ANNOTATION_SOURCE, ANNOTATION_TITLE, ANNOTATION_VERSION,
};

use super::config::OciPlatform;
use super::BaseImage;
use crate::error::{OciError, Result};
use envpack_layers::time::rfc3339;

/// What the image's annotations are made from.
#[derive(Debug, Clone, Default)]
pub struct AnnotationInputs {
    /// The lock's epoch.
    pub epoch: u64,
    /// Env name.
    pub title: String,
    /// Python + Conan versions.
    pub version: String,
    /// Source repository, if known.
    pub source: Option<String>,
    /// Source revision, if known.
    pub revision: Option<String>,
    /// `--annotation KEY=VALUE` flags; these win over everything above.
    pub extra: BTreeMap<String, String>,
}

/// The annotations of the image index and of every manifest.
pub fn image_annotations(
    inputs: &AnnotationInputs,
    base: Option<&BaseImage>,
) -> HashMap<String, String> {
    let mut a = HashMap::new();
    a.insert(ANNOTATION_CREATED.to_string(), rfc3339(inputs.epoch));
    a.insert(ANNOTATION_TITLE.to_string(), inputs.title.clone());
    a.insert(ANNOTATION_VERSION.to_string(), inputs.version.clone());
    if let Some(s) = &inputs.source {
        a.insert(ANNOTATION_SOURCE.to_string(), s.clone());
    }
    if let Some(r) = &inputs.revision {
        a.insert(ANNOTATION_REVISION.to_string(), r.clone());
    }
    if let Some(b) = base {
        a.insert(ANNOTATION_BASE_IMAGE_NAME.to_string(), b.name.clone());
        a.insert(ANNOTATION_BASE_IMAGE_DIGEST.to_string(), b.digest.clone());
    }
    for (k, v) in &inputs.extra {
        a.insert(k.clone(), v.clone());
    }
    a
}

/// Parses one `KEY=VALUE` annotation flag.
pub fn parse_annotation(flag: &str) -> Result<(String, String)> {
    match flag.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(OciError::BadAnnotation(flag.to_string())),
    }
}

/// Checks a tag against the OCI distribution tag grammar (see
/// [`crate::registry::tag_problem`]).
pub fn validate_tag(tag: &str) -> Result<()> {
    match crate::registry::tag_problem(tag) {
        Some(reason) => Err(OciError::BadTag {
            tag: tag.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The OCI platform object of a platform.
pub fn oci_platform(p: &OciPlatform) -> Result<Platform> {
    let mut b = PlatformBuilder::default()
        .architecture(Arch::from(p.arch.as_str()))
        .os(Os::from(p.os.as_str()));
    if let Some(v) = &p.variant {
        b = b.variant(v.clone());
    }
    Ok(b.build()?)
}

/// One platform's manifest: config, then base layers, then ours.
pub fn image_manifest(
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: HashMap<String, String>,
) -> Result<ImageManifest> {
    Ok(ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .annotations(annotations)
        .build()?)
}

/// The index over all platform manifests, ordered by platform name so the bytes never depend
/// on build order.
pub fn image_index(
    mut manifests: Vec<(String, Descriptor)>,
    annotations: HashMap<String, String>,
) -> Result<ImageIndex> {
    manifests.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests.into_iter().map(|(_, d)| d).collect::<Vec<_>>())
        .annotations(annotations)
        .build()?)
}

/// The layout's `index.json`: one entry, `target` tagged as `tag`.
pub fn layout_index(mut target: Descriptor, tag: &str) -> Result<ImageIndex> {
    validate_tag(tag)?;
    let mut a = HashMap::new();
    a.insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
    target.set_annotations(Some(a));
    Ok(ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![target])
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use envpack_layers::canonical::to_canonical_vec;
    use oci_spec::image::Digest;
    use std::str::FromStr;

    fn desc(mt: MediaType, hexbyte: &str, size: u64) -> Descriptor {
        let d = Digest::from_str(&format!("sha256:{}", hexbyte.repeat(32))).unwrap();
        Descriptor::new(mt, size, d)
    }

    fn json(v: &impl serde::Serialize) -> String {
        String::from_utf8(to_canonical_vec(v).unwrap()).unwrap()
    }

    #[test]
    fn tags() {
        for ok in [
            "3.11.7-conan2.21.0",
            "latest",
            "_x",
            "a".repeat(128).as_str(),
        ] {
            assert!(validate_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "é", "a".repeat(129).as_str()] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn annotation_flags() {
        assert_eq!(
            parse_annotation("org.x=a=b").unwrap(),
            ("org.x".to_string(), "a=b".to_string())
        );
        assert_eq!(parse_annotation("k=").unwrap().1, "");
        assert!(parse_annotation("novalue").is_err());
        assert!(parse_annotation("=v").is_err());
    }

    #[test]
    fn annotations_scratch_and_overrides() {
        let mut inputs = AnnotationInputs {
            epoch: 1_700_000_000,
            title: "dev".into(),
            version: "3.11.7-conan2.21.0".into(),
            source: Some("https://git.example/dev".into()),
            revision: None,
            extra: BTreeMap::new(),
        };
        inputs
            .extra
            .insert(ANNOTATION_TITLE.to_string(), "renamed".to_string());
        let a = image_annotations(&inputs, None);
        assert_eq!(
            json(&a),
            r#"{"org.opencontainers.image.created":"2023-11-14T22:13:20Z","org.opencontainers.image.source":"https://git.example/dev","org.opencontainers.image.title":"renamed","org.opencontainers.image.version":"3.11.7-conan2.21.0"}"#
        );
        assert!(!a.contains_key(ANNOTATION_BASE_IMAGE_NAME));
    }

    #[test]
    fn index_is_sorted_by_platform_name() {
        let arm = OciPlatform {
            os: "linux".into(),
            arch: "arm64".into(),
            variant: Some("v8".into()),
        };
        let mut a = desc(MediaType::ImageManifest, "aa", 10);
        a.set_platform(Some(oci_platform(&arm).unwrap()));
        let b = desc(MediaType::ImageManifest, "bb", 20);
        let i1 = image_index(
            vec![
                ("linux-x86_64".into(), b.clone()),
                ("linux-aarch64".into(), a.clone()),
            ],
            HashMap::new(),
        )
        .unwrap();
        let i2 = image_index(
            vec![("linux-aarch64".into(), a), ("linux-x86_64".into(), b)],
            HashMap::new(),
        )
        .unwrap();
        assert_eq!(json(&i1), json(&i2));
        let aa = "aa".repeat(32);
        let bb = "bb".repeat(32);
        assert_eq!(
            json(&i1),
            format!(
                r#"{{"annotations":{{}},"manifests":[{{"digest":"sha256:{aa}","mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}},"size":10}},{{"digest":"sha256:{bb}","mediaType":"application/vnd.oci.image.manifest.v1+json","size":20}}],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#
            )
        );
    }

    #[test]
    fn manifest_and_layout_index() {
        let m = image_manifest(
            desc(MediaType::ImageConfig, "cc", 5),
            vec![desc(MediaType::ImageLayerGzip, "11", 7)],
            HashMap::new(),
        )
        .unwrap();
        let cc = "cc".repeat(32);
        let l1 = "11".repeat(32);
        assert_eq!(
            json(&m),
            format!(
                r#"{{"annotations":{{}},"config":{{"digest":"sha256:{cc}","mediaType":"application/vnd.oci.image.config.v1+json","size":5}},"layers":[{{"digest":"sha256:{l1}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":7}}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
            )
        );
        let li = layout_index(desc(MediaType::ImageIndex, "dd", 3), "v1").unwrap();
        assert!(json(&li).contains(r#""annotations":{"org.opencontainers.image.ref.name":"v1"}"#));
        assert!(layout_index(desc(MediaType::ImageIndex, "dd", 3), "bad tag").is_err());
    }
}
