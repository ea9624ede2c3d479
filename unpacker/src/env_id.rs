//! Validation of env ids, which become directory names under `ROOT/envs/`.

use crate::error::UnpackError;

/// Longest env id accepted; keeps `ROOT/envs/<id>/…` well under path limits.
const MAX_ENV_ID_LEN: usize = 128;

/// Checks that `id` is safe as a single directory name on every platform.
pub fn validate_env_id(id: &str) -> Result<(), UnpackError> {
    let reject = |reason| {
        Err(UnpackError::InvalidEnvId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return reject("it is empty");
    }
    if id.len() > MAX_ENV_ID_LEN {
        return reject("it is longer than 128 characters");
    }
    if id.starts_with('.') {
        // Also rules out "." and "..", and keeps ids from hiding as dot-files.
        return reject("it starts with '.'");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return reject("only the characters A-Z a-z 0-9 . _ - are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, bool)] = &[
            ("openssl-dev-linux-x86_64-3f2a9c", true),
            ("A.b_c-1", true),
            ("x", true),
            ("", false),
            (".", false),
            ("..", false),
            (".hidden", false),
            ("a/b", false),
            ("a\\b", false),
            ("c:", false),
            ("with space", false),
            ("tab\t", false),
            ("ünicode", false),
            ("nul\0", false),
        ];
        for (id, ok) in cases {
            assert_eq!(validate_env_id(id).is_ok(), *ok, "{id:?}");
        }
        assert!(validate_env_id(&"a".repeat(128)).is_ok());
        assert!(validate_env_id(&"a".repeat(129)).is_err());
    }
}
