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
    #[error("{name}=\"{}\" is not a whole number", envpack_layers::shown_name(.value))]
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let url = || Url::parse("https://pypi.example/simple/pyyaml/").unwrap();
        let a = Sha256Digest::of_bytes(b"a");
        let b = Sha256Digest::of_bytes(b"b");
        let io = |msg: &str| io::Error::new(io::ErrorKind::PermissionDenied, msg.to_string());
        let cases: Vec<(NetError, &str)> = vec![
            (
                NetError::Setting {
                    variable: "HTTPS_PROXY".into(),
                    value: "http://user:***@proxy:3128".into(),
                    reason: "the port is not a number".into(),
                },
                "HTTPS_PROXY=http://user:***@proxy:3128: the port is not a number",
            ),
            (
                NetError::Status {
                    url: url(),
                    status: 404,
                },
                "GET https://pypi.example/simple/pyyaml/: HTTP status 404",
            ),
            (
                NetError::Offline { url: url() },
                "GET https://pypi.example/simple/pyyaml/: refused in offline mode (only file:// \
                 URLs are allowed)",
            ),
            (
                NetError::Transport {
                    url: url(),
                    detail: "connection refused".into(),
                    attempts: 4,
                },
                "GET https://pypi.example/simple/pyyaml/: connection refused (after 4 attempts)",
            ),
            (
                NetError::Truncated {
                    url: url(),
                    expected: 100,
                    got: 40,
                },
                "GET https://pypi.example/simple/pyyaml/: body truncated: got 40 of 100 bytes",
            ),
            (
                NetError::TooLarge {
                    url: url(),
                    limit: 1024,
                },
                "GET https://pypi.example/simple/pyyaml/: body larger than the limit of 1024 bytes",
            ),
            (
                NetError::File {
                    url: Url::parse("file:///srv/index/x.whl").unwrap(),
                    source: io("/srv/index/x.whl: Permission denied"),
                },
                "read file:///srv/index/x.whl: /srv/index/x.whl: Permission denied",
            ),
            (
                NetError::Write {
                    url: url(),
                    source: io("/cache/tmp/1: No space left on device"),
                },
                "download https://pypi.example/simple/pyyaml/: writing failed: /cache/tmp/1: No \
                 space left on device",
            ),
            (
                NetError::UnsupportedScheme {
                    url: Url::parse("ftp://files.example/x.whl").unwrap(),
                },
                "unsupported URL scheme in ftp://files.example/x.whl",
            ),
            (
                NetError::BadNumber {
                    name: "ENVPACK_HTTP_RETRIES".into(),
                    value: "three\n".into(),
                },
                "ENVPACK_HTTP_RETRIES=\"three\\n\" is not a whole number",
            ),
            (
                NetError::NoLocation,
                "no cache directory: pass --cache-dir or set ENVPACK_CACHE_DIR, XDG_CACHE_HOME or \
                 HOME",
            ),
            (
                NetError::Io(io("/cache/blobs: Permission denied")),
                "/cache/blobs: Permission denied",
            ),
            (
                NetError::DigestMismatch {
                    url: Box::new(url()),
                    expected: a,
                    actual: b,
                },
                "https://pypi.example/simple/pyyaml/: sha256 mismatch: expected \
                 sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb, got \
                 sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d; the \
                 file was discarded",
            ),
            (
                NetError::SizeMismatch {
                    url: Box::new(url()),
                    expected: 10,
                    actual: 12,
                },
                "https://pypi.example/simple/pyyaml/: size mismatch: expected 10 bytes, got 12; \
                 the file was discarded",
            ),
            (
                NetError::Layers(envpack_layers::LayersError::format(
                    "sha256 digest",
                    "\"xyz\" is not 64 lowercase hex digits",
                )),
                "invalid sha256 digest: \"xyz\" is not 64 lowercase hex digits",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
