//! The one error type of the network stack and the cache; every variant names its URL or path.

use std::io;

use envpack_layers::digest::Sha256Digest;
use url::Url;

/// Fetch, settings and cache failures.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// An environment setting that cannot be used (a proxy, `NO_PROXY`, a CA bundle).
    #[error("{variable}={value}: {reason}")]
    Setting {
        /// The variable.
        variable: String,
        /// Its value (a proxy password masked).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server answered with a non-success status.
    #[error("GET {url}: HTTP status {status}")]
    Status {
        /// Requested URL.
        url: Url,
        /// HTTP status code.
        status: u16,
    },
    /// Offline mode forbids the request.
    #[error("GET {url}: refused in offline mode (only file:// URLs are allowed)")]
    Offline {
        /// Requested URL.
        url: Url,
    },
    /// Network failure that persisted through all retries.
    #[error("GET {url}: {detail} (after {attempts} attempts)")]
    Transport {
        /// Requested URL.
        url: Url,
        /// What failed.
        detail: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The connection closed before `Content-Length` bytes arrived.
    #[error("GET {url}: body truncated: got {got} of {expected} bytes")]
    Truncated {
        /// Requested URL.
        url: Url,
        /// Announced length.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The body exceeds the caller's limit.
    #[error("GET {url}: body larger than the limit of {limit} bytes")]
    TooLarge {
        /// Requested URL.
        url: Url,
        /// The limit.
        limit: u64,
    },
    /// A `file://` URL could not be read.
    #[error("read {url}: {source}")]
    File {
        /// Requested URL.
        url: Url,
        /// The I/O error (names the path).
        source: io::Error,
    },
    /// Writing the downloaded bytes failed.
    #[error("download {url}: writing failed: {source}")]
    Write {
        /// Requested URL.
        url: Url,
        /// The I/O error.
        source: io::Error,
    },
    /// Not http, https or file.
    #[error("unsupported URL scheme in {url}")]
    UnsupportedScheme {
        /// Requested URL.
        url: Url,
    },
    /// A numeric `ENVPACK_HTTP_*` setting that is not a non-negative integer.
    #[error("{name}={value:?} is not a whole number")]
    BadNumber {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
    },
    /// No cache location could be determined.
    #[error(
        "no cache directory: pass --cache-dir or set ENVPACK_CACHE_DIR, XDG_CACHE_HOME or HOME"
    )]
    NoLocation,
    /// Filesystem failure (the message names the path).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Downloaded bytes hash differently than expected.
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}; the file was discarded")]
    DigestMismatch {
        /// Source URL.
        url: Box<Url>,
        /// Expected digest.
        expected: Sha256Digest,
        /// Actual digest.
        actual: Sha256Digest,
    },
    /// Downloaded size differs from what was expected.
    #[error(
        "{url}: size mismatch: expected {expected} bytes, got {actual}; the file was discarded"
    )]
    SizeMismatch {
        /// Source URL.
        url: Box<Url>,
        /// Expected size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// Hashing a cached file failed.
    #[error(transparent)]
    Layers(#[from] envpack_layers::LayersError),
}

impl NetError {
    /// Whether trying again might help.
    pub fn is_transient(&self) -> bool {
        match self {
            NetError::Status { status, .. } => *status == 429 || *status >= 500,
            NetError::Transport { .. } | NetError::Truncated { .. } => true,
            _ => false,
        }
    }
}
