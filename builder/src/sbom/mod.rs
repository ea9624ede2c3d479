//! Software bills of materials of an environment: CycloneDX 1.6 and SPDX 2.3 JSON, made from
//! the lock alone (plus licenses from the installed wheels' metadata). Pure and
//! deterministic: the same lock gives the same bytes.

pub mod command;
pub mod cyclonedx;
pub mod model;
pub mod spdx;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use model::{Licenses, SbomInputs, SbomModel};

use crate::lock::{Lock, LockedPlatform};
use envpack_net::Cache;
use envpack_pypkg::WheelInput;

/// File name of the CycloneDX SBOM at the env tree's root.
pub const CDX_FILE: &str = "sbom.cdx.json";
/// File name of the SPDX SBOM at the env tree's root.
pub const SPDX_FILE: &str = "sbom.spdx.json";

/// SBOM failures.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// Serializing a document failed.
    #[error("writing the SBOM JSON: {0}")]
    Json(#[from] envpack_layers::LayersError),
    /// An SBOM being read back is not what we write.
    #[error("{what}: not a readable SBOM: {detail}")]
    Unreadable {
        /// Which document.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// The lock's base image pins don't parse.
    #[error(transparent)]
    Lock(#[from] crate::spec::SpecError),
    /// `--format` names no format we write.
    #[error("unknown SBOM format \"{}\": use cyclonedx or spdx", envpack_layers::shown_name(.0))]
    UnknownFormat(String),
}

/// An SBOM format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON.
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

impl std::str::FromStr for SbomFormat {
    type Err = SbomError;
    fn from_str(s: &str) -> Result<Self, SbomError> {
        match s {
            "cyclonedx" | "cdx" => Ok(SbomFormat::CycloneDx),
            "spdx" => Ok(SbomFormat::Spdx),
            _ => Err(SbomError::UnknownFormat(s.to_string())),
        }
    }
}

impl SbomFormat {
    /// Both formats, in a fixed order.
    pub const ALL: [SbomFormat; 2] = [SbomFormat::CycloneDx, SbomFormat::Spdx];

    /// The file name inside the env tree.
    pub fn tree_file(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => CDX_FILE,
            SbomFormat::Spdx => SPDX_FILE,
        }
    }

    /// Suffix appended to an artifact's file name for the SBOM next to it.
    pub fn suffix(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => ".cdx.json",
            SbomFormat::Spdx => ".spdx.json",
        }
    }

    /// The OCI artifact type of the SBOM.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "application/vnd.cyclonedx+json",
            SbomFormat::Spdx => "application/spdx+json",
        }
    }

    /// Short name (`cyclonedx`, `spdx`).
    pub fn name(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "cyclonedx",
            SbomFormat::Spdx => "spdx",
        }
    }

    /// The document of `model` in this format.
    pub fn render(self, model: &SbomModel) -> Result<Vec<u8>, SbomError> {
        match self {
            SbomFormat::CycloneDx => cyclonedx::cyclonedx(model),
            SbomFormat::Spdx => spdx::spdx(model),
        }
    }
}

/// Both documents of one platform, in [`SbomFormat::ALL`] order.
pub fn documents(inputs: &SbomInputs) -> Result<Vec<(SbomFormat, Vec<u8>)>, SbomError> {
    let model = SbomModel::from_inputs(inputs);
    SbomFormat::ALL
        .iter()
        .map(|f| Ok((*f, f.render(&model)?)))
        .collect()
}

/// Both SBOMs of an env being assembled, licenses read from the wheels it installs.
pub fn for_env(
    lock: &Lock,
    locked: &LockedPlatform,
    wheels: &[WheelInput],
) -> Result<Vec<(SbomFormat, Vec<u8>)>, SbomError> {
    let mut pairs: Vec<(&str, &Path)> = Vec::new();
    for pkg in &locked.packages {
        let installed = pkg
            .built_wheel
            .as_ref()
            .map_or(pkg.filename.as_str(), |b| b.filename.as_str());
        if let Some(w) = wheels.iter().find(|w| w.filename == installed) {
            pairs.push((pkg.name.as_str(), w.path.as_path()));
        }
    }
    let licenses = licenses_from_wheels(pairs);
    documents(&SbomInputs {
        lock,
        platform: locked,
        tool_version: env!("CARGO_PKG_VERSION"),
        licenses: &licenses,
    })
}

/// Licenses from the wheels of `locked` found in the cache; also returns the packages whose
/// wheel is not cached (their license stays unknown).
pub fn licenses_from_cache(
    locked: &LockedPlatform,
    cache: &Cache,
) -> Result<(Licenses, Vec<String>), envpack_net::NetError> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let mut missing = Vec::new();
    for pkg in &locked.packages {
        let sha = pkg.built_wheel.as_ref().map_or(pkg.sha256, |b| b.sha256);
        match cache.get(&sha)? {
            Some(path) => found.push((pkg.name.clone(), path)),
            None => missing.push(pkg.name.clone()),
        }
    }
    let licenses = licenses_from_wheels(found.iter().map(|(n, p)| (n.as_str(), p.as_path())));
    Ok((licenses, missing))
}

/// Where the SBOM of `format` goes next to `artifact`: `<artifact><suffix>`.
pub fn beside(artifact: &Path, format: SbomFormat) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(format.suffix());
    PathBuf::from(name)
}

/// Copies the SBOMs of the env tree at `tree` next to `artifact`; returns the paths written.
pub fn write_beside(artifact: &Path, tree: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for f in SbomFormat::ALL {
        let bytes = fs_err::read(tree.join(f.tree_file()))?;
        let dest = beside(artifact, f);
        crate::atomic::write_file(&dest, &bytes)?;
        written.push(dest);
    }
    Ok(written)
}

/// Canonical JSON plus a final newline: the bytes of every document we write.
pub(crate) fn to_document_bytes(v: &Value) -> Result<Vec<u8>, SbomError> {
    let mut bytes = envpack_layers::canonical::to_canonical_vec(v)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A UUID (version 5 layout, RFC 4122 variant) from the sha256 of `content`: stable for equal
/// content, distinct otherwise.
pub(crate) fn content_uuid(content: &[u8]) -> String {
    let d = envpack_layers::digest::Sha256Digest::of_bytes(content);
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&d.0[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Licenses from the installed wheels (`(package name, wheel path)`); a wheel whose metadata
/// can't be read contributes nothing (logged), never a guess.
pub fn licenses_from_wheels<'a>(wheels: impl IntoIterator<Item = (&'a str, &'a Path)>) -> Licenses {
    let mut out = Licenses::new();
    for (name, path) in wheels {
        match envpack_pypkg::read_wheel_metadata(path) {
            Ok(md) => {
                if let Some(l) = md.license.as_deref().and_then(model::usable_license) {
                    out.insert(name.to_string(), l);
                }
            }
            Err(e) => {
                tracing::warn!(package = name, path = %path.display(), error = %e, "no license: metadata unreadable")
            }
        }
    }
    out
}

/// The licenses a CycloneDX document of ours records, by package name (so a document can be
/// regenerated from its lock and compared byte for byte).
pub fn licenses_from_cyclonedx(bytes: &[u8], what: &str) -> Result<Licenses, SbomError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| SbomError::Unreadable {
        what: what.to_string(),
        detail: e.to_string(),
    })?;
    let comps = doc["components"]
        .as_array()
        .ok_or_else(|| SbomError::Unreadable {
            what: what.to_string(),
            detail: "no components array".into(),
        })?;
    let mut out = Licenses::new();
    for c in comps {
        if c["type"] != "library" {
            continue;
        }
        if let (Some(name), Some(l)) = (
            c["name"].as_str(),
            c["licenses"][0]["license"]["name"].as_str(),
        ) {
            out.insert(name.to_string(), l.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::tests::sample_lock;

    #[test]
    fn base_image_is_listed_in_both_formats() {
        let mut lock = sample_lock();
        let digest = format!("sha256:{}", "ab".repeat(32));
        lock.image_bases = vec![
            crate::lock::LockedBase {
                platform: "linux-x86_64".into(),
                name: "registry.example/library/debian:bookworm".into(),
                digest: digest.clone(),
            },
            crate::lock::LockedBase {
                platform: "linux-aarch64".into(),
                name: "other:1".into(),
                digest: format!("sha256:{}", "cd".repeat(32)),
            },
        ];
        let docs = documents(&SbomInputs {
            lock: &lock,
            platform: &lock.platforms[0],
            tool_version: "0.1.0",
            licenses: &Licenses::new(),
        })
        .unwrap();
        let cdx: Value = serde_json::from_slice(&docs[0].1).unwrap();
        let containers: Vec<&Value> = cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "container")
            .collect();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "registry.example/library/debian");
        assert!(containers[0]["purl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pkg:oci/debian@sha256%3A{}", "ab".repeat(32))));
        let spdx: Value = serde_json::from_slice(&docs[1].1).unwrap();
        let rels = spdx["relationships"].as_array().unwrap();
        assert!(rels.iter().any(|r| r["relationshipType"] == "DESCENDANT_OF"
            && r["relatedSpdxElement"] == "SPDXRef-base-image"));
    }

    #[test]
    fn uuid_has_version_and_variant_bits() {
        let u = content_uuid(b"x");
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "5");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_eq!(u, content_uuid(b"x"));
        assert_ne!(u, content_uuid(b"y"));
    }

    #[test]
    fn formats_parse_and_licenses_round_trip() {
        assert_eq!(
            "cyclonedx".parse::<SbomFormat>().unwrap(),
            SbomFormat::CycloneDx
        );
        assert_eq!("spdx".parse::<SbomFormat>().unwrap(), SbomFormat::Spdx);
        assert!("xml".parse::<SbomFormat>().is_err());
        let lock = sample_lock();
        let mut licenses = Licenses::new();
        licenses.insert("conan".into(), "MIT".into());
        let inputs = SbomInputs {
            lock: &lock,
            platform: &lock.platforms[0],
            tool_version: "0.1.0",
            licenses: &licenses,
        };
        let docs = documents(&inputs).unwrap();
        assert_eq!(docs.len(), 2);
        assert!(docs.iter().all(|(_, b)| b.ends_with(b"}\n")));
        let back = licenses_from_cyclonedx(&docs[0].1, "cdx").unwrap();
        assert_eq!(back, licenses);
        assert_eq!(documents(&inputs).unwrap(), docs);
    }
}
