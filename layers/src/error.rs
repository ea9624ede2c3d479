//! The crate's error type.

use crate::digest::Sha256Digest;

/// Everything that can go wrong while building, reading, extracting or verifying layers.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    /// An I/O failure; `fs_err` messages carry the path involved.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An archive entry broke a safety rule and was not written.
    #[error("archive entry {} rejected: {rule}", shown_name(.entry))]
    Rejected {
        /// The entry's name as found in the archive.
        entry: String,
        /// The rule it broke.
        rule: &'static str,
    },
    /// A link whose resolution leaves the tree, loops, or that another entry sits below.
    #[error("link {}: {detail}", shown_name(.path))]
    BadLink {
        /// Path of the link (or of the entry below a link).
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An extracted entry disagrees with the manifest.
    #[error("{}: does not match the manifest: {detail}", shown_name(.path))]
    ManifestMismatch {
        /// Path of the entry.
        path: String,
        /// What differs.
        detail: String,
    },
    /// Bytes hashed to something other than what was recorded.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was hashed.
        what: String,
        /// The recorded digest.
        expected: Sha256Digest,
        /// The digest of the bytes actually seen.
        actual: Sha256Digest,
    },
    /// Malformed input in one of our formats.
    #[error("invalid {what}: {detail}")]
    Format {
        /// Which format or object.
        what: String,
        /// What is wrong and where.
        detail: String,
    },
    /// A path that may not appear in a tree or archive.
    #[error("invalid path {}: {reason}", shown_name(.path))]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A file changed between scanning and packing.
    #[error("{path}: changed while being packed ({detail}); rebuild the environment")]
    Changed {
        /// The file's path.
        path: String,
        /// What changed.
        detail: String,
    },
    /// A file type that environments may not contain (socket, fifo, device).
    #[error("{path}: unsupported file type {kind}")]
    UnsupportedFileType {
        /// The file's path.
        path: String,
        /// The kind found.
        kind: &'static str,
    },
    /// JSON (de)serialization failed.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Result alias with [`LayersError`] as the default error.
pub type Result<T, E = LayersError> = std::result::Result<T, E>;

impl LayersError {
    /// Shorthand for a [`LayersError::Format`].
    pub fn format(what: impl Into<String>, detail: impl Into<String>) -> Self {
        LayersError::Format {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Longest name shown whole in a message; longer ones keep their start and end.
const MAX_SHOWN: usize = 160;

/// A name from an archive as messages show it: control characters and other invisible
/// bytes escaped (`\n`, `\u{1b}`), and a very long name shortened in the middle.
pub fn shown_name(name: &str) -> String {
    let escaped: String = name
        .chars()
        .flat_map(|c| {
            let plain = !c.is_control() && c != '\u{feff}' && c != '\u{fffd}';
            let text: String = if plain {
                c.to_string()
            } else {
                c.escape_default().collect()
            };
            text.chars().collect::<Vec<_>>()
        })
        .collect();
    let chars: Vec<char> = escaped.chars().collect();
    if chars.len() <= MAX_SHOWN {
        return escaped;
    }
    let keep = MAX_SHOWN / 2 - 1;
    let head: String = chars[..keep].iter().collect();
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("{head}…({} characters)…{tail}", chars.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_name_table() {
        let long = "a/".repeat(2000);
        let cases: &[(&str, &str)] = &[
            ("python/bin/python3", "python/bin/python3"),
            ("a\nb", "a\\nb"),
            ("esc\u{1b}[31m", "esc\\u{1b}[31m"),
            ("caf\u{e9}", "caf\u{e9}"),
            ("bad\u{fffd}", "bad\\u{fffd}"),
        ];
        for (name, want) in cases {
            assert_eq!(shown_name(name), *want, "{name}");
        }
        let short = shown_name(&long);
        assert!(
            short.chars().count() < 200 && short.contains("(4000 characters)"),
            "{short}"
        );
    }

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let a = Sha256Digest::of_bytes(b"a");
        let b = Sha256Digest::of_bytes(b"b");
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let cases: Vec<(LayersError, &str)> = vec![
            (
                LayersError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "env/manifest: No such file or directory",
                )),
                "env/manifest: No such file or directory",
            ),
            (
                LayersError::Rejected {
                    entry: "../etc/passwd\n".into(),
                    rule: "path leaves the tree",
                },
                "archive entry ../etc/passwd\\n rejected: path leaves the tree",
            ),
            (
                LayersError::BadLink {
                    path: "lib/loop".into(),
                    detail: "the link loops".into(),
                },
                "link lib/loop: the link loops",
            ),
            (
                LayersError::ManifestMismatch {
                    path: "bin/python3".into(),
                    detail: "size 10, the manifest says 12".into(),
                },
                "bin/python3: does not match the manifest: size 10, the manifest says 12",
            ),
            (
                LayersError::DigestMismatch {
                    what: "layer 0 \"python\"".into(),
                    expected: a,
                    actual: b,
                },
                "sha256 mismatch for layer 0 \"python\": expected \
                 sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb, \
                 got sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
            ),
            (
                LayersError::format("manifest", "line 3: bad size \"x\""),
                "invalid manifest: line 3: bad size \"x\"",
            ),
            (
                LayersError::InvalidPath {
                    path: "a//b".into(),
                    reason: "empty path component",
                },
                "invalid path a//b: empty path component",
            ),
            (
                LayersError::Changed {
                    path: "lib/x.py".into(),
                    detail: "size 3 -> 4".into(),
                },
                "lib/x.py: changed while being packed (size 3 -> 4); rebuild the environment",
            ),
            (
                LayersError::UnsupportedFileType {
                    path: "run/sock".into(),
                    kind: "socket",
                },
                "run/sock: unsupported file type socket",
            ),
            (
                LayersError::Json {
                    what: "artifact index".into(),
                    source: json,
                },
                "artifact index: EOF while parsing an object at line 1 column 1",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
