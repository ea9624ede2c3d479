//! Cross-checking the artifact index against the env's own `envpack.json`.
//!
//! No digest covers the index itself, but the meta layer is covered by the digest the index
//! names, and its `envpack.json` repeats the index's fields. Comparing the two catches an
//! altered index (say, a flipped byte in the env id) before anything is written.

use std::io::Read;
use std::path::Path;

use envpack_layers::artifact::{ArtifactIndex, ArtifactReader};
use serde_json::Value;

use crate::error::UnpackError;

/// The env info file at the env root, written into the meta layer by the builder.
pub const ENV_INFO_FILE: &str = "envpack.json";
/// Largest `envpack.json` read into memory.
const MAX_ENV_INFO_BYTES: u64 = 1 << 20;

/// Reads `envpack.json` from the meta layer (in memory) and checks that every field it
/// shares with the index agrees. An artifact without the file passes; one with it must match.
/// `verify_layers` must have passed, so the meta blob is the one the index names.
pub fn check_index_against_env_info(
    reader: &ArtifactReader,
    meta: usize,
    artifact: &Path,
) -> Result<(), UnpackError> {
    let bad = |detail: String| UnpackError::BadArtifact {
        path: artifact.to_path_buf(),
        detail,
    };
    let Some(bytes) = read_env_info(reader, meta).map_err(|e| bad(e.to_string()))? else {
        return Ok(());
    };
    let info: Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("{ENV_INFO_FILE} in the meta layer: {e}")))?;
    match index_disagreement(reader.index(), meta, &info) {
        None => Ok(()),
        Some((field, index, env)) => Err(bad(format!(
            "the index says {field} is {index}, but the env's {ENV_INFO_FILE} says {env}; \
             the index was altered or damaged, rebuild or re-copy the artifact"
        ))),
    }
}

/// The meta layer's `envpack.json`, if it has one.
fn read_env_info(
    reader: &ArtifactReader,
    meta: usize,
) -> Result<Option<Vec<u8>>, envpack_layers::LayersError> {
    let stream = reader.open_layer(meta)?;
    let mut archive = tar::Archive::new(envpack_layers::tar_guard::TarGuard::new(stream));
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.path_bytes().as_ref() != ENV_INFO_FILE.as_bytes()
            || entry.header().entry_type() != tar::EntryType::Regular
        {
            continue;
        }
        if entry.size() > MAX_ENV_INFO_BYTES {
            return Err(envpack_layers::LayersError::format(
                ENV_INFO_FILE,
                format!("{} bytes, more than {MAX_ENV_INFO_BYTES}", entry.size()),
            ));
        }
        let mut bytes = Vec::new();
        entry.take(MAX_ENV_INFO_BYTES).read_to_end(&mut bytes)?;
        return Ok(Some(bytes));
    }
    Ok(None)
}

/// The first field where `info` contradicts `index`: (field, index value, info value).
/// Fields missing from `info` are not compared.
pub fn index_disagreement(
    index: &ArtifactIndex,
    meta: usize,
    info: &Value,
) -> Option<(String, String, String)> {
    let strings = [
        ("env_id", index.env_id.clone()),
        ("name", index.name.clone()),
        ("platform", index.platform.clone()),
        ("envpack_version", index.envpack_version.clone()),
        ("lock_sha256", index.lock_sha256.to_string()),
    ];
    for (field, want) in strings {
        if let Some(got) = info.get(field) {
            if got.as_str() != Some(want.as_str()) {
                return Some((field.into(), Value::from(want).to_string(), got.to_string()));
            }
        }
    }
    if let Some(got) = info.get("epoch") {
        if got.as_u64() != Some(index.epoch) {
            return Some(("epoch".into(), index.epoch.to_string(), got.to_string()));
        }
    }
    if let Some(got) = info.get("layers") {
        let want: Vec<Value> = index
            .layers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != meta)
            .map(|(_, l)| serde_json::json!({"name": l.name, "diff_id": l.diff_id.to_string()}))
            .collect();
        if *got != Value::Array(want.clone()) {
            return Some((
                "layers (names and diff_ids)".into(),
                Value::Array(want).to_string(),
                got.to_string(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use envpack_layers::compress::Compression;
    use envpack_layers::digest::Sha256Digest;
    use envpack_layers::layer::LayerDesc;

    fn index() -> ArtifactIndex {
        let layer = |name: &str| LayerDesc {
            name: name.into(),
            digest: Sha256Digest::of_bytes(name.as_bytes()),
            size: 1,
            diff_id: Sha256Digest::of_bytes(format!("{name}-tar").as_bytes()),
            uncompressed_size: 1,
            compression: Compression::Zstd,
        };
        ArtifactIndex {
            schema: 1,
            name: "dev".into(),
            env_id: "dev-linux-abc".into(),
            platform: "linux-x86_64".into(),
            envpack_version: "0.1.0".into(),
            epoch: 7,
            lock_sha256: Sha256Digest::of_bytes(b"lock"),
            layers: vec![layer("python"), layer("meta")],
        }
    }

    fn info(i: &ArtifactIndex) -> Value {
        serde_json::json!({
            "schema": 1,
            "name": i.name, "env_id": i.env_id, "platform": i.platform,
            "envpack_version": i.envpack_version, "epoch": i.epoch,
            "lock_sha256": i.lock_sha256.to_string(),
            "layers": [{"name": "python", "diff_id": i.layers[0].diff_id.to_string()}],
            "python": {"version": "3.11.7"},
        })
    }

    #[test]
    fn agreeing_and_partial_info_pass() {
        let i = index();
        assert_eq!(index_disagreement(&i, 1, &info(&i)), None);
        assert_eq!(
            index_disagreement(&i, 1, &serde_json::json!({"env_id": i.env_id})),
            None
        );
        assert_eq!(index_disagreement(&i, 1, &serde_json::json!({})), None);
    }

    #[test]
    fn each_altered_field_is_named() {
        let base = index();
        type Alter = Box<dyn Fn(&mut ArtifactIndex)>;
        let alter: Vec<(&str, Alter)> = vec![
            ("env_id", Box::new(|i| i.env_id = "dev-linux-abd".into())),
            ("name", Box::new(|i| i.name = "dew".into())),
            ("platform", Box::new(|i| i.platform = "macos-arm64".into())),
            (
                "envpack_version",
                Box::new(|i| i.envpack_version = "0.1.1".into()),
            ),
            (
                "lock_sha256",
                Box::new(|i| i.lock_sha256 = Sha256Digest::of_bytes(b"x")),
            ),
            ("epoch", Box::new(|i| i.epoch = 8)),
            ("layers", Box::new(|i| i.layers[0].name = "pythom".into())),
            (
                "layers",
                Box::new(|i| i.layers[0].diff_id = Sha256Digest::of_bytes(b"x")),
            ),
        ];
        for (field, f) in alter {
            let mut i = base.clone();
            f(&mut i);
            let found = index_disagreement(&i, 1, &info(&base));
            assert!(
                found
                    .as_ref()
                    .is_some_and(|(name, _, _)| name.starts_with(field)),
                "{field}: {found:?}"
            );
        }
    }
}
