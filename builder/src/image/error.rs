//! The image writer's error type.

/// What can go wrong while writing an OCI image layout or archive.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An I/O failure; `fs_err` messages carry the path involved.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Writing layers, tar headers or canonical JSON failed.
    #[error(transparent)]
    Layers(#[from] envpack_layers::LayersError),
    /// An OCI document could not be built from our values.
    #[error("building an OCI document: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    /// A tag the layout's `index.json` can't carry.
    #[error("invalid image tag {tag:?}: {reason}; use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')")]
    BadTag {
        /// The tag given.
        tag: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An `--annotation` that is not `KEY=VALUE`.
    #[error("invalid annotation {0:?}: expected KEY=VALUE with a non-empty KEY")]
    BadAnnotation(String),
    /// The output path exists and is not something we may replace.
    #[error("{path} exists and is not an OCI image layout; remove it or choose another --out")]
    OutputInTheWay {
        /// The output path.
        path: String,
    },
    /// An image needs at least one platform.
    #[error("no linux platform to put in the image (built: {built}); OCI images hold linux platforms only")]
    NoPlatforms {
        /// The platforms that were asked for.
        built: String,
    },
    /// A layout or archive that is not a valid OCI image layout.
    #[error("OCI layout {what}: {detail}")]
    BadLayout {
        /// What was being read.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// Content whose digest is not the one its descriptor names.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// What the descriptor says.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
}

/// Result with [`ImageError`].
pub type Result<T> = std::result::Result<T, ImageError>;
