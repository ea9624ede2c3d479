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
}
