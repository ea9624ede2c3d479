//! The crate's error type.

use crate::digest::Sha256Digest;

/// Everything that can go wrong while building, reading, extracting or verifying layers.
#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    /// An I/O failure; `fs_err` messages carry the path involved.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An archive entry broke a safety rule and was not written.
    #[error("archive entry {entry:?} rejected: {rule}")]
    Rejected {
        /// The entry's name as found in the archive.
        entry: String,
        /// The rule it broke.
        rule: &'static str,
    },
    /// An extracted entry disagrees with the manifest.
    #[error("{path}: does not match the manifest: {detail}")]
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
    #[error("invalid path {path:?}: {reason}")]
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
