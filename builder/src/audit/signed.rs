//! `audit --trust`: an artifact's signature and provenance checked with the trusted keys (as
//! `verify --trust` checks them), then the provenance held against the lock the auditor holds:
//! the lock and spec it names, and every input it lists, must be that lock's; with `--rebuild`,
//! the rebuilt artifact must be the file the provenance is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use envpack_layers::artifact::ArtifactReader;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::shown_name;
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
    let verified = match envpack_unpack::signature_check::verify_signed_statement(artifact, &opts) {
        Ok(v) => v,
        Err(e) => {
            r.find(item, e.to_string());
            return r;
        }
    };
    let Some(statement) = verified.statement else {
        r.find(
            format!("provenance of {}", artifact.display()),
            "none: the signature is good, but nothing signed says how it was built",
        );
        return r;
    };
    // Read once more for what the statement is held against: the artifact's platform, and
    // its own lock when the auditor gives none.
    let reader = match ArtifactReader::open(artifact) {
        Ok(reader) => reader,
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
            let text = String::from_utf8_lossy(reader.lock_bytes()).into_owned();
            own = match Lock::parse(&text, "the artifact's envpack.lock") {
                Ok(lock) => (lock, text),
                Err(e) => {
                    r.find(
                        format!("{} envpack.lock", artifact.display()),
                        e.to_string(),
                    );
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
    let signed = Signed {
        artifact,
        platform: &reader.index().platform,
        sha256_hex: &verified.sha256_hex,
    };
    finish(r, &statement, held, &signed, rebuilt)
}

/// The artifact whose signature was found good.
struct Signed<'a> {
    artifact: &'a Path,
    platform: &'a str,
    /// sha256 of the bytes the signature was checked over.
    sha256_hex: &'a str,
}

fn finish(
    mut r: AuditReport,
    statement: &Value,
    held: &HeldLock,
    signed: &Signed,
    rebuilt: Option<&Path>,
) -> AuditReport {
    let name = signed.artifact.display().to_string();
    let at = |p: &str| {
        statement
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // The platform whose inputs are expected is the artifact's own, never the statement's.
    let platform = signed.platform;
    let named_platform = at("/predicate/buildDefinition/externalParameters/platform");
    r.checked += 3;
    if named_platform != platform {
        r.find(
            format!("provenance of {name}"),
            format!(
                "names platform \"{}\", the artifact is {platform}",
                shown_name(&named_platform)
            ),
        );
    }
    let lock_hex = Sha256Digest::of_bytes(held.text.as_bytes()).to_hex();
    let named_lock = at("/predicate/buildDefinition/externalParameters/lock/sha256");
    if named_lock != lock_hex {
        r.find(
            format!("provenance of {name}"),
            format!(
                "names lock sha256 \"{}\", {} is {lock_hex}",
                shown_name(&named_lock),
                held.origin
            ),
        );
    }
    let named_spec = at("/predicate/buildDefinition/externalParameters/spec/sha256");
    if named_spec != held.lock.spec_hash.to_hex() {
        r.find(
            format!("provenance of {name}"),
            format!(
                "names spec sha256 \"{}\", {} was made from {}",
                shown_name(&named_spec),
                held.origin,
                held.lock.spec_hash.to_hex()
            ),
        );
    }
    let (listed, bad) =
        dependencies(statement.pointer("/predicate/buildDefinition/resolvedDependencies"));
    for problem in bad {
        r.find(format!("provenance of {name}"), problem);
    }
    let (mut want, _) = dependencies(Some(&Value::Array(
        crate::provenance::resolved_dependencies(held.lock, platform),
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
                format!("sha256 \"{}\", {} pins {sha}", shown_name(got), held.origin),
            ),
            Some(_) => {}
        }
    }
    for dep in listed.keys().filter(|d| !want.contains_key(*d)) {
        r.find(
            format!("provenance of {name}: input \"{}\"", shown_name(dep)),
            format!(
                "listed, but {} has no such input for {platform}",
                held.origin
            ),
        );
    }
    if let Some(rebuilt) = rebuilt {
        // The signature was checked over the whole artifact: the rebuild must be that file.
        r.checked += 1;
        match fs_err::File::open(rebuilt).map(Sha256Digest::of_reader) {
            Ok(Ok((sha, _))) if sha.to_hex() == signed.sha256_hex => {}
            Ok(Ok((sha, _))) => r.find(
                format!("rebuild of {name}"),
                format!(
                    "sha256 {}, the signed provenance is about {}",
                    sha.to_hex(),
                    signed.sha256_hex
                ),
            ),
            Ok(Err(e)) | Err(e) => r.find(format!("rebuild of {name}"), e.to_string()),
        }
    }
    r
}

/// A provenance's resource descriptors, name → sha256, and what is wrong with the list (an
/// entry without a name or sha256, a name given twice): a list that can't be read whole is
/// not one that matches.
fn dependencies(list: Option<&Value>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut bad = Vec::new();
    let Some(items) = list.and_then(Value::as_array) else {
        return (
            out,
            vec!["resolvedDependencies is missing or not a list".into()],
        );
    };
    for (i, d) in items.iter().enumerate() {
        let name = d.get("name").and_then(Value::as_str);
        let sha = d.pointer("/digest/sha256").and_then(Value::as_str);
        match (name, sha) {
            (Some(name), Some(sha)) => {
                if out.insert(name.to_string(), sha.to_string()).is_some() {
                    bad.push(format!("input \"{}\" is listed twice", shown_name(name)));
                }
            }
            _ => bad.push(format!("input {} has no name or no sha256", i + 1)),
        }
    }
    (out, bad)
}
