//! SLSA provenance for an artifact: an in-toto Statement v1 with a SLSA Provenance v1
//! predicate, in a DSSE envelope signed with the artifact's key, written beside it as
//! `ARTIFACT.intoto.jsonl`. It is made from the artifact alone (its lock is inside), so
//! `envpack sign` can add it to any artifact; canonical JSON with no clock in it, so the same
//! artifact and key give the same bytes.

use std::path::Path;

use anyhow::Context;
use envpack_layers::artifact::ArtifactIndex;
use envpack_layers::digest::Sha256Digest;
use envpack_trust::{Envelope, SigningKey};
use serde_json::{json, Value};

use crate::lock::Lock;

pub use envpack_trust::intoto::provenance_path;
use envpack_trust::intoto::{BUILDER_ID, BUILD_TYPE, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE};

fn digest(hex: &str) -> Value {
    json!({ "sha256": hex })
}

fn dependency(name: &str, sha256_hex: &str) -> Value {
    json!({ "name": name, "digest": digest(sha256_hex) })
}

/// Every input of `platform` in `lock`, as SLSA resource descriptors: CPython, each package
/// file (and the wheel built from an sdist), the build requirements, the Conan files, the base
/// image. Sorted by name, so the order does not depend on the lock's.
pub fn resolved_dependencies(lock: &Lock, platform: &str) -> Vec<Value> {
    let mut deps: Vec<(String, String)> = Vec::new();
    if let Some(p) = lock.platform(platform) {
        deps.push((p.python.filename.clone(), p.python.sha256.to_hex()));
        for pkg in &p.packages {
            deps.push((pkg.filename.clone(), pkg.sha256.to_hex()));
            if let Some(w) = &pkg.built_wheel {
                deps.push((w.filename.clone(), w.sha256.to_hex()));
            }
        }
        for f in p.profiles.iter() {
            deps.push((format!("conan/profiles/{}", f.name), f.sha256.to_hex()));
        }
        for f in p.home_files.iter() {
            deps.push((format!("conan/home/{}", f.name), f.sha256.to_hex()));
        }
    }
    if let Some(b) = &lock.build_python {
        deps.push((b.filename.clone(), b.sha256.to_hex()));
    }
    for f in &lock.build_packages {
        deps.push((f.filename.clone(), f.sha256.to_hex()));
    }
    for b in lock.image_bases.iter().filter(|b| b.platform == platform) {
        let hex = b.digest.strip_prefix("sha256:").unwrap_or(&b.digest);
        deps.push((format!("image-base/{}", b.name), hex.to_owned()));
    }
    deps.sort();
    deps.dedup();
    deps.iter().map(|(n, d)| dependency(n, d)).collect()
}

/// The statement for an artifact (file name `name`, file digest `sha256_hex`, and the image
/// manifest it was restored from, if any: name and digest) with this index and lock.
pub fn statement(
    index: &ArtifactIndex,
    index_digest: &Sha256Digest,
    lock_bytes: &[u8],
    name: &str,
    sha256_hex: &str,
    manifest: Option<&(String, String)>,
) -> anyhow::Result<Value> {
    let text = String::from_utf8_lossy(lock_bytes).into_owned();
    let lock = Lock::parse(&text, &format!("{name}!envpack.lock"))?;
    let mut deps = vec![dependency("envpack.lock", &index.lock_sha256.to_hex())];
    deps.extend(resolved_dependencies(&lock, &index.platform));
    let mut subject = vec![json!({ "name": name, "digest": digest(sha256_hex) })];
    if let Some((m_name, m_hex)) = manifest {
        subject.push(json!({ "name": m_name, "digest": digest(m_hex) }));
    }
    Ok(json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "env": index.name,
                    "platform": index.platform,
                    "lock": { "sha256": index.lock_sha256.to_hex() },
                    "spec": { "sha256": lock.spec_hash.to_hex() },
                    "epoch": index.epoch,
                },
                "internalParameters": { "envpackVersion": index.envpack_version },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": { "envpack": index.envpack_version },
                },
                "metadata": { "invocationId": index.env_id },
                "byproducts": [{ "name": "envpack-artifact.json", "digest": digest(&index_digest.to_hex()) }],
            },
        },
    }))
}

/// What a provenance is made from: the artifact's index (and its stored bytes' digest), its
/// lock and the artifact file's digest.
pub struct ArtifactFacts<'a> {
    /// The index.
    pub index: &'a ArtifactIndex,
    /// sha256 of the index member as stored.
    pub index_digest: Sha256Digest,
    /// The lock member.
    pub lock_bytes: &'a [u8],
    /// sha256 of the artifact file, hex.
    pub sha256_hex: String,
    /// The image manifest the artifact was restored from (a name and its sha256 hex): a
    /// second subject of an image's provenance.
    pub manifest: Option<(String, String)>,
}

/// The signed provenance of the artifact at `artifact`: one DSSE envelope and a newline.
pub fn provenance_line(
    artifact: &Path,
    key: &SigningKey,
    facts: &ArtifactFacts,
) -> anyhow::Result<Vec<u8>> {
    let name = artifact
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let statement = statement(
        facts.index,
        &facts.index_digest,
        facts.lock_bytes,
        &name,
        &facts.sha256_hex,
        facts.manifest.as_ref(),
    )?;
    let payload = envpack_layers::canonical::to_canonical_vec(&statement)
        .context("serializing the provenance")?;
    let envelope = Envelope::sign(key, PAYLOAD_TYPE, &payload);
    let mut line = envpack_layers::canonical::to_canonical_vec(&envelope)
        .context("serializing the provenance envelope")?;
    line.push(b'\n');
    Ok(line)
}
