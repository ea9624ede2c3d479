//! The unpacker's error type.

use std::path::PathBuf;

/// Everything that can make an unpack, rollback, verify or status call fail.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An I/O failure; `fs_err` messages carry the path involved.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Reading, verifying or extracting the artifact failed.
    #[error(transparent)]
    Layers(#[from] envpack_layers::LayersError),
    /// A key or signature could not be read, or the signature does not hold.
    #[error(transparent)]
    Trust(#[from] envpack_trust::TrustError),
    /// A signature is required and there is none.
    #[error(
        "{} is not signed: {why} requires a signature and there is none at {} (sign it with \
         `envpack sign`, or give the signature's place with --signature)",
        artifact.display(), signature.display()
    )]
    Unsigned {
        /// The artifact.
        artifact: PathBuf,
        /// Where the signature was looked for.
        signature: PathBuf,
        /// What asked for it ("--trust", "the root").
        why: String,
    },
    /// A validly signed env that was signed before the current one: a replay of an older
    /// artifact is refused unless asked for.
    #[error(
        "{env_id} was signed {}, before the newest env this root accepted (signed at \
         {newest}); refusing to go back to an older environment (a replayed artifact?). Pass \
         --allow-downgrade if this is intended",
        signed.map_or("without a timestamp".to_string(), |t| format!("at {t}"))
    )]
    Downgrade {
        /// The env of the artifact.
        env_id: String,
        /// When the artifact was signed.
        signed: Option<u64>,
        /// The newest signing time the root accepted.
        newest: u64,
    },
    /// The root requires signatures by its keys and the artifact's does not hold.
    #[error("root {} requires signatures by its trusted keys: {source}", root.display())]
    RootRequiresSignature {
        /// The root.
        root: PathBuf,
        /// Why the signature is not one of them.
        source: envpack_trust::TrustError,
    },
    /// The root directory cannot be used.
    #[error("root {path}: {reason}")]
    BadRoot {
        /// The root (or the part of it) at fault.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The artifact's env id cannot be used as a directory name.
    #[error("invalid env id \"{}\": {reason}", envpack_layers::shown_name(.id))]
    InvalidEnvId {
        /// The id as found in the artifact.
        id: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The artifact does not follow the expected layer structure.
    #[error("artifact {path}: {detail}")]
    BadArtifact {
        /// The artifact file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Entries listed in the manifest were produced by no layer.
    #[error(
        "{count} manifest entries are missing from the artifact's layers, e.g. {}",
        examples.iter().map(|e| envpack_layers::shown_name(e)).collect::<Vec<_>>().join(", ")
    )]
    MissingEntries {
        /// How many entries are missing.
        count: usize,
        /// The first few missing paths.
        examples: Vec<String>,
    },
    /// An environment directory with this id exists but holds something else.
    #[error(
        "{path} already exists but its manifest differs from the artifact's; \
         remove that directory (it is not current) and unpack again"
    )]
    EnvMismatch {
        /// The existing environment directory.
        path: PathBuf,
    },
    /// The root record (root.json) cannot be read.
    #[error("root record {path}: {detail}")]
    RootRecord {
        /// The record file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The root has no current environment.
    #[error("root {root} has no current environment; unpack an artifact first")]
    NoCurrent {
        /// The root directory.
        root: PathBuf,
    },
    /// A rollback was asked for but there is nothing to roll back to.
    #[error("root {root} has no previous environment to roll back to")]
    NoPrevious {
        /// The root directory.
        root: PathBuf,
    },
}

impl UnpackError {
    /// An I/O error with the path it happened at, for operations through a directory handle
    /// (whose errors carry no path of their own).
    pub fn at(e: std::io::Error, path: &std::path::Path) -> Self {
        UnpackError::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let p = PathBuf::from;
        let bad_sig = || envpack_trust::TrustError::BadSignature {
            what: "env.tar.minisig".into(),
            detail: "truncated".into(),
        };
        let cases: Vec<(UnpackError, &str)> = vec![
            (
                UnpackError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "/r/envs: No such file or directory",
                )),
                "/r/envs: No such file or directory",
            ),
            (
                UnpackError::Layers(envpack_layers::LayersError::format(
                    "manifest",
                    "line 2: bad size \"x\"",
                )),
                "invalid manifest: line 2: bad size \"x\"",
            ),
            (
                UnpackError::Trust(bad_sig()),
                "signature env.tar.minisig: truncated",
            ),
            (
                UnpackError::Unsigned {
                    artifact: p("env.tar"),
                    signature: p("env.tar.minisig"),
                    why: "--trust".into(),
                },
                "env.tar is not signed: --trust requires a signature and there is none at \
                 env.tar.minisig (sign it with `envpack sign`, or give the signature's place \
                 with --signature)",
            ),
            (
                UnpackError::Downgrade {
                    env_id: "demo-1a2b".into(),
                    signed: Some(100),
                    newest: 200,
                },
                "demo-1a2b was signed at 100, before the newest env this root accepted (signed \
                 at 200); refusing to go back to an older environment (a replayed artifact?). \
                 Pass --allow-downgrade if this is intended",
            ),
            (
                UnpackError::Downgrade {
                    env_id: "demo-1a2b".into(),
                    signed: None,
                    newest: 200,
                },
                "demo-1a2b was signed without a timestamp, before the newest env this root \
                 accepted (signed at 200); refusing to go back to an older environment (a \
                 replayed artifact?). Pass --allow-downgrade if this is intended",
            ),
            (
                UnpackError::RootRequiresSignature {
                    root: p("/r"),
                    source: bad_sig(),
                },
                "root /r requires signatures by its trusted keys: signature env.tar.minisig: \
                 truncated",
            ),
            (
                UnpackError::BadRoot {
                    path: p("/r/envs"),
                    reason: "is a file; remove it".into(),
                },
                "root /r/envs: is a file; remove it",
            ),
            (
                UnpackError::InvalidEnvId {
                    id: "../x\n".into(),
                    reason: "contains '/'",
                },
                "invalid env id \"../x\\n\": contains '/'",
            ),
            (
                UnpackError::BadArtifact {
                    path: p("env.tar"),
                    detail: "its last layer must be named \"meta\"".into(),
                },
                "artifact env.tar: its last layer must be named \"meta\"",
            ),
            (
                UnpackError::MissingEntries {
                    count: 3,
                    examples: vec!["bin/python3".into(), "lib/a\tb".into()],
                },
                "3 manifest entries are missing from the artifact's layers, e.g. bin/python3, \
                 lib/a\\tb",
            ),
            (
                UnpackError::EnvMismatch {
                    path: p("/r/envs/demo-1a2b"),
                },
                "/r/envs/demo-1a2b already exists but its manifest differs from the artifact's; \
                 remove that directory (it is not current) and unpack again",
            ),
            (
                UnpackError::RootRecord {
                    path: p("/r/root.json"),
                    detail: "not JSON".into(),
                },
                "root record /r/root.json: not JSON",
            ),
            (
                UnpackError::NoCurrent { root: p("/r") },
                "root /r has no current environment; unpack an artifact first",
            ),
            (
                UnpackError::NoPrevious { root: p("/r") },
                "root /r has no previous environment to roll back to",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
