//! Checking an artifact's provenance (`ARTIFACT.intoto.jsonl`, written by `envpack sign`):
//! each line a DSSE envelope signed by a trusted key, holding an in-toto statement whose
//! subject is this artifact file and whose lock and index are this artifact's.

use std::io::Read as _;

use envpack_layers::artifact::ArtifactReader;
use envpack_trust::intoto::{provenance_path, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE};
use envpack_trust::{Envelope, TrustedKeys};
use serde_json::Value;

use crate::error::UnpackError;

/// Largest provenance file read.
const MAX_PROVENANCE_BYTES: u64 = 8 << 20;

/// Checks the provenance beside the artifact `reader` (whose file has sha256 `file_hex`)
/// with `keys`; `Ok(None)` when there is none. Returns one line for the report and the
/// trusted statement about this file.
pub fn check_provenance(
    reader: &ArtifactReader,
    keys: &TrustedKeys,
    file_hex: &str,
) -> Result<Option<(String, Value)>, UnpackError> {
    let path = provenance_path(reader.path());
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
    let mut good = None;
    let mut others: Vec<String> = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line_no = n + 1;
        let envelope: Envelope = match serde_json::from_str(line) {
            Ok(e) => e,
            Err(e) => {
                others.push(format!("line {line_no}: not a DSSE envelope ({e})"));
                continue;
            }
        };
        let (key, payload) = match envelope.verify(keys) {
            Ok(v) => v,
            Err(e) => {
                others.push(format!("line {line_no}: {e}"));
                continue;
            }
        };
        let statement: Option<Value> = (envelope.payload_type == PAYLOAD_TYPE)
            .then(|| serde_json::from_slice(&payload).ok())
            .flatten();
        let Some(statement) = statement.filter(is_slsa_statement) else {
            others.push(format!("line {line_no}: not an in-toto SLSA provenance"));
            continue;
        };
        if !names_file(&statement, file_hex) {
            others.push(format!(
                "line {line_no}: the provenance of another artifact (no subject has this file's sha256)"
            ));
            continue;
        }
        // Signed by a trusted key, about this very file: it must agree with it.
        let inputs =
            check_statement(&statement, reader).map_err(|e| bad(format!("line {line_no}: {e}")))?;
        good = Some((
            format!("provenance: good (SLSA v1, {inputs} inputs), by trusted key {key}"),
            statement,
        ));
    }
    match good {
        Some(g) if others.is_empty() => Ok(Some(g)),
        Some((g, s)) => Ok(Some((
            format!("{g}; {} other lines left alone", others.len()),
            s,
        ))),
        None if others.is_empty() => Err(bad("no envelope in it".into())),
        None => Err(bad(format!(
            "no provenance of this artifact signed by a trusted key: {}",
            others.join("; ")
        ))),
    }
}

fn is_slsa_statement(s: &Value) -> bool {
    let str_at = |ptr: &str| s.pointer(ptr).and_then(Value::as_str).unwrap_or_default();
    str_at("/_type") == STATEMENT_TYPE && str_at("/predicateType") == PREDICATE_TYPE
}

fn names_file(s: &Value, file_hex: &str) -> bool {
    s.pointer("/subject")
        .and_then(Value::as_array)
        .is_some_and(|subs| {
            subs.iter()
                .any(|sub| sub.pointer("/digest/sha256").and_then(Value::as_str) == Some(file_hex))
        })
}

/// Checks a trusted statement about this file against the artifact's lock and index; returns
/// how many inputs it lists.
fn check_statement(s: &Value, reader: &ArtifactReader) -> Result<usize, String> {
    let str_at = |ptr: &str| s.pointer(ptr).and_then(Value::as_str).unwrap_or_default();
    let lock = str_at("/predicate/buildDefinition/externalParameters/lock/sha256");
    if lock != reader.index().lock_sha256.to_hex() {
        return Err(format!(
            "it names lock sha256 \"{lock}\", the artifact's is {}",
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
