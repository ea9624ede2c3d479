//! CycloneDX 1.6 JSON from the SBOM model: canonical JSON (sorted keys, compact), serial
//! number derived from the content so the same lock always gives the same bytes.

use serde_json::{json, Value};

use super::model::{
    conan_purl, cpython_purl, oci_purl, pypi_file_purl, pypi_purl, source_purl, SbomModel,
};
use super::{content_uuid, to_document_bytes, SbomError};
use crate::lock::PackageKind;

/// `bom-ref` of the environment itself (the metadata component).
pub const ENV_REF: &str = "envpack-env";
/// `bom-ref` of the CPython component.
pub const CPYTHON_REF: &str = "cpython";
/// Property naming the platform (on the metadata component).
pub const PLATFORM_PROPERTY: &str = "envpack:platform";

fn prop(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn sha256_hash(hex: String) -> Value {
    json!([{"alg": "SHA-256", "content": hex}])
}

/// `bom-ref` of a config file component.
pub fn file_ref(path: &str) -> String {
    format!("file:{path}")
}

/// The CycloneDX document (bytes end with a newline).
pub fn cyclonedx(m: &SbomModel) -> Result<Vec<u8>, SbomError> {
    let mut components: Vec<Value> = Vec::new();
    let mut env_deps: Vec<String> = vec![CPYTHON_REF.to_string()];
    let mut dependencies: Vec<Value> = Vec::new();

    components.push(json!({
        "type": "application",
        "bom-ref": CPYTHON_REF,
        "name": "cpython",
        "version": m.cpython.version,
        "description": "CPython (python-build-standalone build)",
        "purl": cpython_purl(&m.cpython),
        "hashes": sha256_hash(m.cpython.sha256.to_hex()),
        "properties": [
            prop("envpack:python:build", &m.cpython.build),
            prop("envpack:python:variant", &m.cpython.variant),
            prop("envpack:file", &m.cpython.filename),
        ],
    }));
    dependencies.push(json!({"ref": CPYTHON_REF, "dependsOn": []}));

    for p in &m.packages {
        let bom_ref = pypi_purl(&p.name, &p.version);
        let mut props = vec![
            prop("envpack:file", &p.filename),
            prop(
                "envpack:kind",
                match p.kind {
                    PackageKind::Wheel => "wheel",
                    PackageKind::Sdist => "sdist",
                },
            ),
        ];
        if let Some((filename, sha)) = &p.built_wheel {
            props.push(prop("envpack:built-wheel:file", filename));
            props.push(prop("envpack:built-wheel:sha256", sha.to_hex()));
        }
        let mut c = json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": p.name,
            "version": p.version,
            "purl": pypi_file_purl(&p.name, &p.version, &p.filename),
            "hashes": sha256_hash(p.sha256.to_hex()),
            "properties": props,
        });
        if let Some(l) = &p.license {
            c["licenses"] = json!([{"license": {"name": l}}]);
        }
        components.push(c);
        let deps: Vec<String> = p
            .dependencies
            .iter()
            .filter_map(|d| {
                m.packages
                    .iter()
                    .find(|q| &q.name == d)
                    .map(|q| pypi_purl(&q.name, &q.version))
            })
            .collect();
        dependencies.push(json!({"ref": bom_ref, "dependsOn": deps}));
        env_deps.push(bom_ref);
    }

    for f in &m.files {
        let r = file_ref(&f.path);
        components.push(json!({
            "type": "file",
            "bom-ref": r,
            "name": f.path,
            "hashes": sha256_hash(f.sha256.to_hex()),
            "properties": [prop("envpack:conan:role", f.role), prop("envpack:source", &f.source)],
        }));
        dependencies.push(json!({"ref": r, "dependsOn": []}));
        env_deps.push(r);
    }

    for r in &m.recipes {
        let purl = conan_purl(r);
        let (name, version) = r.name_version();
        components.push(json!({
            "type": "library",
            "bom-ref": purl,
            "name": name,
            "version": version,
            "purl": purl,
            "properties": [
                prop("envpack:conan:reference", &r.reference),
                prop("envpack:conan:revision", &r.revision),
                prop("envpack:source", &r.origin),
            ],
        }));
        dependencies.push(json!({"ref": purl, "dependsOn": []}));
        env_deps.push(purl);
    }
    for s in &m.sources {
        let purl = source_purl(s);
        components.push(json!({
            "type": "file",
            "bom-ref": purl,
            "name": s.filename,
            "purl": purl,
            "hashes": sha256_hash(s.sha256.to_hex()),
            "externalReferences": [{"type": "distribution", "url": s.url}],
            "properties": [prop("envpack:conan:role", "source")],
        }));
        dependencies.push(json!({"ref": purl, "dependsOn": []}));
        env_deps.push(purl);
    }

    if let Some(b) = &m.base_image {
        let purl = oci_purl(b);
        components.push(json!({
            "type": "container",
            "bom-ref": purl,
            "name": b.repository,
            "version": b.digest,
            "purl": purl,
            "hashes": sha256_hash(b.digest.trim_start_matches("sha256:").to_string()),
        }));
        dependencies.push(json!({"ref": purl, "dependsOn": []}));
        env_deps.push(purl);
    }

    dependencies.insert(0, json!({"ref": ENV_REF, "dependsOn": env_deps}));
    let remotes: Vec<Value> = m
        .remotes
        .iter()
        .map(|r| {
            json!({
                "type": "distribution",
                "url": r.url,
                "comment": format!("Conan remote {} (verify-ssl {})", r.name, r.verify_ssl),
            })
        })
        .collect();
    let mut env = json!({
        "type": "application",
        "bom-ref": ENV_REF,
        "name": m.env_name,
        "description": format!("envpack environment {} for {}", m.env_name, m.platform),
        "properties": [
            prop(PLATFORM_PROPERTY, &m.platform),
            prop("envpack:spec-hash", &m.spec_hash),
            prop("envpack:epoch", m.epoch.to_string()),
        ],
    });
    if !remotes.is_empty() {
        env["externalReferences"] = Value::Array(remotes);
    }

    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": envpack_layers::time::rfc3339(m.epoch),
            "lifecycles": [{"phase": "build"}],
            "tools": {"components": [{
                "type": "application",
                "name": "envpack",
                "version": m.tool_version,
            }]},
            "component": env,
        },
        "components": components,
        "dependencies": dependencies,
    });
    // The serial number identifies this exact content: derive it from everything else.
    let uuid = content_uuid(&to_document_bytes(&doc)?);
    doc["serialNumber"] = Value::String(format!("urn:uuid:{uuid}"));
    to_document_bytes(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::model::tests::sample_lock;
    use crate::sbom::model::{Licenses, SbomInputs};

    fn doc(licenses: &Licenses) -> Value {
        let lock = sample_lock();
        let m = SbomModel::from_inputs(&SbomInputs {
            lock: &lock,
            platform: &lock.platforms[0],
            tool_version: "0.1.0",
            licenses,
        });
        serde_json::from_slice(&cyclonedx(&m).unwrap()).unwrap()
    }

    #[test]
    fn lists_cpython_packages_files_and_dependencies() {
        let mut licenses = Licenses::new();
        licenses.insert("conan".into(), "MIT".into());
        let d = doc(&licenses);
        assert_eq!(d["specVersion"], "1.6");
        assert_eq!(d["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
        let refs: Vec<&str> = d["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["bom-ref"].as_str().unwrap())
            .collect();
        assert_eq!(
            refs,
            [
                "cpython",
                "pkg:pypi/conan@2.21.0",
                "pkg:pypi/pyyaml@6.0.2",
                "file:conan-home/global.conf",
                "file:conan-home/profiles/default"
            ]
        );
        let conan = &d["components"][1];
        assert_eq!(conan["hashes"][0]["content"], "04".repeat(32));
        assert_eq!(conan["licenses"][0]["license"]["name"], "MIT");
        assert_eq!(d["components"][2].get("licenses"), None);
        assert_eq!(
            conan["purl"],
            "pkg:pypi/conan@2.21.0?file_name=conan-2.21.0.tar.gz"
        );
        let built: Vec<&Value> = conan["properties"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "envpack:built-wheel:sha256")
            .collect();
        assert_eq!(built[0]["value"], "05".repeat(32));
        let conan_deps = d["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["ref"] == "pkg:pypi/conan@2.21.0")
            .unwrap();
        assert_eq!(conan_deps["dependsOn"], json!(["pkg:pypi/pyyaml@6.0.2"]));
        assert_eq!(d["dependencies"][0]["ref"], ENV_REF);
        assert_eq!(
            d["metadata"]["component"]["externalReferences"][0]["url"],
            "https://conan.example.org/center"
        );
        assert_eq!(d["metadata"]["tools"]["components"][0]["name"], "envpack");
    }

    #[test]
    fn serial_number_follows_content() {
        let a = doc(&Licenses::new());
        let b = doc(&Licenses::new());
        assert_eq!(a, b);
        let mut l = Licenses::new();
        l.insert("pyyaml".into(), "MIT".into());
        let c = doc(&l);
        let serial = a["serialNumber"].as_str().unwrap();
        assert!(serial.starts_with("urn:uuid:"), "{serial}");
        assert_ne!(serial, c["serialNumber"].as_str().unwrap());
    }
}
