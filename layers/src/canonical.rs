//! Canonical JSON: object keys sorted by bytes, no whitespace, so equal data gives equal bytes.

use serde::Serialize;
use serde_json::Value;

use crate::error::{LayersError, Result};

/// Serializes `v` canonically (sorted keys, compact), without a trailing newline.
pub fn to_canonical_vec<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let value = serde_json::to_value(v).map_err(|source| LayersError::Json {
        what: "canonical JSON".into(),
        source,
    })?;
    let mut out = Vec::new();
    write_value(&value, &mut out);
    Ok(out)
}

/// Writes `v` canonically into `out`. Sorting here (not relying on the map type) keeps the
/// output independent of serde_json's `preserve_order` feature being enabled elsewhere.
pub fn write_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write_value(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // Serializing a scalar Value into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_compact() {
        let v = json!({"b": [1, {"z": null, "a": "é\n"}], "a": true, "B": 1.5});
        assert_eq!(
            String::from_utf8(to_canonical_vec(&v).unwrap()).unwrap(),
            r#"{"B":1.5,"a":true,"b":[1,{"a":"é\n","z":null}]}"#
        );
    }
}
