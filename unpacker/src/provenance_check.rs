//! Checking an artifact's provenance (`ARTIFACT.intoto.jsonl`, written by `envpack sign`):
//! each line a DSSE envelope signed by a trusted key, holding an in-toto statement whose
//! subject is this artifact file and whose lock and index are this artifact's.

use std::io::Read as _;
use std::path::Path;

use envpack_layers::artifact::ArtifactReader;
use envpack_trust::intoto::{provenance_path, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE};
use envpack_trust::{Envelope, TrustedKeys};
use serde_json::Value;

use crate::error::UnpackError;

/// Largest provenance file read.
const MAX_PROVENANCE_BYTES: u64 = 8 << 20;

/// Checks the provenance beside `artifact` with `keys`; `Ok(None)` when there is none.
/// Returns one line for the report.
pub fn check_provenance(
    artifact: &Path,
    keys: &TrustedKeys,
) -> Result<Option<String>, UnpackError> {
    let path = provenance_path(artifact);
    let bad = |detail: String| UnpackError::BadArtifact {
        path: path.clone(),
        detail,
    };
    let meta = match fs_err::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mut text = String::new();
    fs_err::File::open(&path)?
        .take(MAX_PROVENANCE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("unreadable: {e}")))?;
    if text.len() as u64 > MAX_PROVENANCE_BYTES {
        return Err(bad(format!("more than {MAX_PROVENANCE_BYTES} bytes")));
    }
    let reader = ArtifactReader::open(artifact)?;
    let (file_digest, _) = envpack_layers::digest::Sha256Digest::of_file(artifact)?;
    let mut checked = 0;
    let mut summary = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let envelope: Envelope =
            serde_json::from_str(line).map_err(|e| bad(format!("not a DSSE envelope: {e}")))?;
        let (key, payload) = envelope.verify(keys)?;
        if envelope.payload_type != PAYLOAD_TYPE {
            return Err(bad(format!(
                "payload type {:?}, not {PAYLOAD_TYPE:?}",
                envelope.payload_type
            )));
        }
        let statement: Value = serde_json::from_slice(&payload)
            .map_err(|e| bad(format!("its statement is not JSON: {e}")))?;
        let inputs = check_statement(&statement, &reader, &file_digest.to_hex()).map_err(bad)?;
        checked += 1;
        summary = format!("provenance: good (SLSA v1, {inputs} inputs), by trusted key {key}");
    }
    if checked == 0 {
        return Err(bad("no envelope in it".into()));
    }
    Ok(Some(summary))
}

/// Checks the statement's types, subject, lock and index against the artifact; returns how
/// many inputs it lists.
fn check_statement(s: &Value, reader: &ArtifactReader, file_hex: &str) -> Result<usize, String> {
    let str_at = |ptr: &str| s.pointer(ptr).and_then(Value::as_str).unwrap_or_default();
    if str_at("/_type") != STATEMENT_TYPE || str_at("/predicateType") != PREDICATE_TYPE {
        return Err(format!(
            "not an in-toto statement with a SLSA provenance predicate ({:?}, {:?})",
            str_at("/_type"),
            str_at("/predicateType")
        ));
    }
    let subjects = s.pointer("/subject").and_then(Value::as_array);
    let names_this = subjects.is_some_and(|subs| {
        subs.iter()
            .any(|sub| sub.pointer("/digest/sha256").and_then(Value::as_str) == Some(file_hex))
    });
    if !names_this {
        return Err(format!(
            "it is the provenance of another artifact: no subject has this file's sha256 {file_hex}"
        ));
    }
    let lock = str_at("/predicate/buildDefinition/externalParameters/lock/sha256");
    if lock != reader.index().lock_sha256.to_hex() {
        return Err(format!(
            "it names lock sha256 {lock:?}, the artifact's is {}",
            reader.index().lock_sha256.to_hex()
        ));
    }
    let index_named = s
        .pointer("/predicate/runDetails/byproducts")
        .and_then(Value::as_array)
        .is_some_and(|b| {
            b.iter().any(|x| {
                x.pointer("/digest/sha256").and_then(Value::as_str)
                    == Some(reader.index_digest().to_hex().as_str())
            })
        });
    if !index_named {
        return Err("it does not name the artifact's index".into());
    }
    Ok(s.pointer("/predicate/buildDefinition/resolvedDependencies")
        .and_then(Value::as_array)
        .map_or(0, Vec::len))
}
