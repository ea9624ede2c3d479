//! `audit --trust`: an artifact's signature and provenance checked with the trusted keys (as
//! `verify --trust` checks them), then the provenance held against the lock the auditor holds:
//! the lock and spec it names, and every input it lists, must be that lock's; with `--rebuild`,
//! the rebuilt artifact must be the file the provenance is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use envpack_layers::digest::Sha256Digest;
use envpack_unpack::TrustOptions;
use serde_json::Value;

use super::report::AuditReport;
use crate::lock::Lock;

/// The auditor's lock: its model and its exact bytes.
pub struct HeldLock<'a> {
    /// The lock.
    pub lock: &'a Lock,
    /// Its text (what the provenance's lock sha256 is of).
    pub text: &'a str,
    /// Where it came from, for the report.
    pub origin: String,
}

/// Checks the signature and provenance of `artifact` with `keys`, and the provenance against
/// `held` (or the lock inside the artifact, noted, when the auditor gives none). With
/// `rebuilt`, that file must be the provenance's subject.
pub fn audit_signed(
    artifact: &Path,
    keys: &[PathBuf],
    held: Option<&HeldLock>,
    rebuilt: Option<&Path>,
) -> AuditReport {
    let mut r = AuditReport::new(artifact.display().to_string());
    let item = format!("signature of {}", artifact.display());
    r.checked += 1;
    let opts = TrustOptions {
        trust: keys.to_vec(),
        ..TrustOptions::default()
    };
    let statement = match envpack_unpack::signature_check::verify_signed_statement(artifact, &opts)
    {
        Ok((_, Some(s))) => s,
        Ok((_, None)) => {
            r.find(
                format!("provenance of {}", artifact.display()),
                "none: the signature is good, but nothing signed says how it was built",
            );
            return r;
        }
        Err(e) => {
            r.find(item, e.to_string());
            return r;
        }
    };
    let own: (Lock, String);
    let own_held;
    let held = match held {
        Some(h) => h,
        None => {
            own = match own_lock(artifact) {
                Ok(o) => o,
                Err(e) => {
                    r.find(format!("{} envpack.lock", artifact.display()), e);
                    return r;
                }
            };
            r.note("no --lock: the provenance is checked against the lock inside the artifact");
            own_held = HeldLock {
                lock: &own.0,
                text: &own.1,
                origin: "the artifact's lock".into(),
            };
            &own_held
        }
    };
    finish(r, &statement, held, artifact, rebuilt)
}

fn finish(
    mut r: AuditReport,
    statement: &Value,
    held: &HeldLock,
    artifact: &Path,
    rebuilt: Option<&Path>,
) -> AuditReport {
    let name = artifact.display().to_string();
    let at = |p: &str| {
        statement
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let platform = at("/predicate/buildDefinition/externalParameters/platform");
    let lock_hex = Sha256Digest::of_bytes(held.text.as_bytes()).to_hex();
    r.checked += 2;
    let named_lock = at("/predicate/buildDefinition/externalParameters/lock/sha256");
    if named_lock != lock_hex {
        r.find(
            format!("provenance of {name}"),
            format!(
                "names lock sha256 {named_lock}, {} is {lock_hex}",
                held.origin
            ),
        );
    }
    let named_spec = at("/predicate/buildDefinition/externalParameters/spec/sha256");
    if named_spec != held.lock.spec_hash.to_hex() {
        r.find(
            format!("provenance of {name}"),
            format!(
                "names spec sha256 {named_spec}, {} was made from {}",
                held.origin,
                held.lock.spec_hash.to_hex()
            ),
        );
    }
    let listed = dependencies(statement.pointer("/predicate/buildDefinition/resolvedDependencies"));
    let mut want = dependencies(Some(&Value::Array(
        crate::provenance::resolved_dependencies(held.lock, &platform),
    )));
    want.insert("envpack.lock".into(), lock_hex);
    for (dep, sha) in &want {
        r.checked += 1;
        match listed.get(dep) {
            None => r.find(
                format!("provenance of {name}: input {dep}"),
                format!("not listed; {} pins {sha}", held.origin),
            ),
            Some(got) if got != sha => r.find(
                format!("provenance of {name}: input {dep}"),
                format!("sha256 {got}, {} pins {sha}", held.origin),
            ),
            Some(_) => {}
        }
    }
    for dep in listed.keys().filter(|d| !want.contains_key(*d)) {
        r.find(
            format!("provenance of {name}: input {dep}"),
            format!(
                "listed, but {} has no such input for {platform}",
                held.origin
            ),
        );
    }
    if let Some(rebuilt) = rebuilt {
        r.checked += 1;
        let subject = at("/subject/0/digest/sha256");
        match fs_err::File::open(rebuilt).map(Sha256Digest::of_reader) {
            Ok(Ok((sha, _))) if sha.to_hex() == subject => {}
            Ok(Ok((sha, _))) => r.find(
                format!("rebuild of {name}"),
                format!(
                    "sha256 {}, the signed provenance is about {subject}",
                    sha.to_hex()
                ),
            ),
            Ok(Err(e)) | Err(e) => r.find(format!("rebuild of {name}"), e.to_string()),
        }
    }
    r
}

/// The lock inside the artifact.
fn own_lock(artifact: &Path) -> Result<(Lock, String), String> {
    let reader =
        envpack_layers::artifact::ArtifactReader::open(artifact).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(reader.lock_bytes()).into_owned();
    let lock = Lock::parse(&text, "the artifact's envpack.lock").map_err(|e| e.to_string())?;
    Ok((lock, text))
}

/// A provenance's resource descriptors, name → sha256.
fn dependencies(list: Option<&Value>) -> BTreeMap<String, String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let name = d.get("name")?.as_str()?;
            let sha = d.pointer("/digest/sha256")?.as_str()?;
            Some((name.to_string(), sha.to_string()))
        })
        .collect()
}
