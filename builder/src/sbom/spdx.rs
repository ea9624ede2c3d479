//! SPDX 2.3 JSON from the SBOM model. Everything is a package (`filesAnalyzed: false`):
//! SPDX files would need SHA-1 checksums, which the lock does not pin, so Conan profiles and
//! home files are packages with purpose FILE and their sha256.

use serde_json::{json, Value};

use super::model::{
    conan_purl, cpython_purl, oci_purl, purl_encode, pypi_file_purl, source_purl, SbomModel,
};
use super::{to_document_bytes, SbomError};
use crate::lock::PackageKind;

/// Prefix of every document namespace; `.invalid` is reserved, so it never resolves.
pub const NAMESPACE_BASE: &str = "https://envpack.invalid/spdx/";
/// SPDXID of the environment package.
pub const ENV_ID: &str = "SPDXRef-env";
/// SPDXID of the CPython package.
pub const CPYTHON_ID: &str = "SPDXRef-cpython";

/// An SPDXID fragment: letters, digits, '.' and '-' only.
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// SPDXID of a Python package (the pinned file).
pub fn package_id(name: &str) -> String {
    format!("SPDXRef-pypi-{}", id_part(name))
}

/// SPDXID of the wheel built from a package's sdist.
pub fn built_wheel_id(name: &str) -> String {
    format!("SPDXRef-built-{}", id_part(name))
}

fn checksum(hex: String) -> Value {
    json!([{"algorithm": "SHA256", "checksumValue": hex}])
}

fn rel(a: &str, kind: &str, b: &str) -> Value {
    json!({"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b})
}

/// A package entry with the fields every one of ours has.
fn package(id: &str, name: &str, purpose: &str) -> Value {
    json!({
        "SPDXID": id,
        "name": name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": purpose,
    })
}

/// The SPDX document (bytes end with a newline).
pub fn spdx(m: &SbomModel) -> Result<Vec<u8>, SbomError> {
    let mut packages: Vec<Value> = Vec::new();
    let mut rels: Vec<Value> = vec![rel("SPDXRef-DOCUMENT", "DESCRIBES", ENV_ID)];

    let mut env = package(ENV_ID, &m.env_name, "APPLICATION");
    env["comment"] = Value::String(format!(
        "envpack environment {} for platform {}; spec hash {}; built by envpack {}",
        m.env_name, m.platform, m.spec_hash, m.tool_version
    ));
    let remotes: Vec<Value> = m
        .remotes
        .iter()
        .map(|r| {
            json!({
                "referenceCategory": "OTHER",
                "referenceType": "conan-remote",
                "referenceLocator": r.url,
                "comment": format!("Conan remote {} (verify-ssl {})", r.name, r.verify_ssl),
            })
        })
        .collect();
    if !remotes.is_empty() {
        env["externalRefs"] = Value::Array(remotes);
    }
    packages.push(env);

    let mut py = package(CPYTHON_ID, "cpython", "APPLICATION");
    py["versionInfo"] = json!(m.cpython.version);
    py["packageFileName"] = json!(m.cpython.filename);
    py["checksums"] = checksum(m.cpython.sha256.to_hex());
    py["comment"] = json!(format!(
        "python-build-standalone build {}, variant {}",
        m.cpython.build, m.cpython.variant
    ));
    py["externalRefs"] = json!([{
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": cpython_purl(&m.cpython),
    }]);
    packages.push(py);
    rels.push(rel(ENV_ID, "CONTAINS", CPYTHON_ID));

    for p in &m.packages {
        let id = package_id(&p.name);
        let purpose = match p.kind {
            PackageKind::Wheel => "LIBRARY",
            PackageKind::Sdist => "SOURCE",
        };
        let mut pkg = package(&id, &p.name, purpose);
        pkg["versionInfo"] = json!(p.version);
        pkg["packageFileName"] = json!(p.filename);
        pkg["checksums"] = checksum(p.sha256.to_hex());
        pkg["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": pypi_file_purl(&p.name, &p.version, &p.filename),
        }]);
        if let Some(l) = &p.license {
            // Metadata licenses are free text, not always SPDX expressions: keep them as a
            // comment rather than assert an expression that may not parse.
            pkg["licenseComments"] =
                json!(format!("License declared in the package metadata: {l}"));
        }
        packages.push(pkg);
        rels.push(rel(ENV_ID, "CONTAINS", &id));
        for d in &p.dependencies {
            if m.packages.iter().any(|q| &q.name == d) {
                rels.push(rel(&id, "DEPENDS_ON", &package_id(d)));
            }
        }
        if let Some((filename, sha)) = &p.built_wheel {
            let bid = built_wheel_id(&p.name);
            let mut b = package(&bid, &p.name, "INSTALL");
            b["versionInfo"] = json!(p.version);
            b["packageFileName"] = json!(filename);
            b["checksums"] = checksum(sha.to_hex());
            b["comment"] = json!("wheel built from the sdist with the lock's build packages");
            packages.push(b);
            rels.push(rel(&bid, "GENERATED_FROM", &id));
            rels.push(rel(ENV_ID, "CONTAINS", &bid));
        }
    }

    for (i, f) in m.files.iter().enumerate() {
        let id = format!("SPDXRef-file-{i}-{}", id_part(&f.path));
        let mut pkg = package(&id, &f.path, "FILE");
        pkg["packageFileName"] = json!(f.path);
        pkg["checksums"] = checksum(f.sha256.to_hex());
        pkg["comment"] = json!(format!("Conan {} from {}", f.role, f.source));
        packages.push(pkg);
        rels.push(rel(ENV_ID, "CONTAINS", &id));
    }

    for (i, r) in m.recipes.iter().enumerate() {
        let id = format!("SPDXRef-conan-{i}-{}", id_part(&r.reference));
        let (name, version) = r.name_version();
        let mut pkg = package(&id, name, "SOURCE");
        pkg["versionInfo"] = json!(version);
        pkg["comment"] = json!(format!(
            "Conan recipe {}#{} from {}",
            r.reference, r.revision, r.origin
        ));
        pkg["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": conan_purl(r),
        }]);
        packages.push(pkg);
        rels.push(rel(ENV_ID, "CONTAINS", &id));
    }
    for (i, s) in m.sources.iter().enumerate() {
        let id = format!("SPDXRef-source-{i}-{}", id_part(&s.filename));
        let mut pkg = package(&id, &s.filename, "ARCHIVE");
        pkg["packageFileName"] = json!(s.filename);
        // SPDX admits network locations only; a file:// source stays NOASSERTION, named below.
        if s.url.starts_with("https://") || s.url.starts_with("http://") {
            pkg["downloadLocation"] = json!(s.url);
        }
        pkg["checksums"] = checksum(s.sha256.to_hex());
        pkg["comment"] = json!(format!(
            "upstream source {}, served to Conan from its download cache",
            s.url
        ));
        pkg["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": source_purl(s),
        }]);
        packages.push(pkg);
        rels.push(rel(ENV_ID, "CONTAINS", &id));
    }

    if let Some(b) = &m.base_image {
        let id = "SPDXRef-base-image";
        let mut pkg = package(id, &b.repository, "CONTAINER");
        pkg["versionInfo"] = json!(b.digest);
        pkg["checksums"] = checksum(b.digest.trim_start_matches("sha256:").to_string());
        pkg["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": oci_purl(b),
        }]);
        packages.push(pkg);
        rels.push(rel(ENV_ID, "DESCENDANT_OF", id));
    }

    let name = format!("{}-{}", m.env_name, m.platform);
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "creationInfo": {
            "created": envpack_layers::time::rfc3339(m.epoch),
            "creators": [format!("Tool: envpack-{}", m.tool_version)],
        },
        "packages": packages,
        "relationships": rels,
    });
    // A namespace unique to this content: the hash of everything else.
    let hash = envpack_layers::digest::Sha256Digest::of_bytes(&to_document_bytes(&doc)?);
    doc["documentNamespace"] = json!(format!(
        "{NAMESPACE_BASE}{}/{}-{}",
        purl_encode(&m.env_name),
        purl_encode(&m.platform),
        hash.to_hex()
    ));
    to_document_bytes(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::model::tests::sample_lock;
    use crate::sbom::model::{Licenses, SbomInputs};

    fn doc() -> Value {
        let lock = sample_lock();
        let m = SbomModel::from_inputs(&SbomInputs {
            lock: &lock,
            platform: &lock.platforms[0],
            tool_version: "0.1.0",
            licenses: &Licenses::new(),
        });
        serde_json::from_slice(&spdx(&m).unwrap()).unwrap()
    }

    #[test]
    fn packages_relationships_and_namespace() {
        let d = doc();
        assert_eq!(d["spdxVersion"], "SPDX-2.3");
        assert_eq!(d["creationInfo"]["created"], "2023-11-14T22:13:20Z");
        assert_eq!(d["creationInfo"]["creators"][0], "Tool: envpack-0.1.0");
        let ids: Vec<&str> = d["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "SPDXRef-env",
                "SPDXRef-cpython",
                "SPDXRef-pypi-conan",
                "SPDXRef-built-conan",
                "SPDXRef-pypi-pyyaml",
                "SPDXRef-file-0-conan-home-global.conf",
                "SPDXRef-file-1-conan-home-profiles-default"
            ]
        );
        let rels = d["relationships"].as_array().unwrap();
        assert!(rels.contains(&rel(
            "SPDXRef-pypi-conan",
            "DEPENDS_ON",
            "SPDXRef-pypi-pyyaml"
        )));
        assert!(rels.contains(&rel(
            "SPDXRef-built-conan",
            "GENERATED_FROM",
            "SPDXRef-pypi-conan"
        )));
        assert_eq!(
            d["packages"][3]["checksums"][0]["checksumValue"],
            "05".repeat(32)
        );
        let ns = d["documentNamespace"].as_str().unwrap();
        assert!(
            ns.starts_with("https://envpack.invalid/spdx/dev/linux-x86_64-"),
            "{ns}"
        );
        assert_eq!(doc(), d, "same lock, same document");
    }

    #[test]
    fn ids_are_sanitized() {
        assert_eq!(id_part("a_b/c+d.e-f"), "a-b-c-d.e-f");
        assert_eq!(package_id("zope.interface"), "SPDXRef-pypi-zope.interface");
    }
}
