//! The one error type of OCI work: references, credentials, registry traffic, and reading
//! and writing image layouts and archives.

use envpack_layers::shown_name;

/// What can go wrong talking to a registry or reading or writing an OCI image layout or archive.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A reference that can't name an image in a registry.
    #[error("invalid image reference \"{}\": {reason}", shown_name(.reference))]
    BadReference {
        /// The text given.
        reference: String,
        /// Why it was refused.
        reason: String,
    },
    /// The network was ruled out (`--offline`) and the answer is not in the cache.
    #[error("{registry}: refused in offline mode (--offline); what is needed from it is not in the cache")]
    Offline {
        /// The registry host.
        registry: String,
    },
    /// Plain HTTP asked for a host that is not loopback, without `--insecure`.
    #[error("{host} does not speak HTTPS; plain HTTP is only used for loopback hosts or with --insecure")]
    PlainHttpRefused {
        /// The registry host.
        host: String,
    },
    /// The registry refused our credentials (or we had none).
    #[error("{method} {url}: not authorized (HTTP {status}){hint}")]
    Unauthorized {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// What to do about it.
        hint: String,
    },
    /// An unexpected status from the registry.
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the response body (registry error JSON).
        body: String,
    },
    /// The connection failed, persistently.
    #[error("{method} {url}: {detail} (after {attempts} attempts)")]
    Transport {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// What failed.
        detail: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Content whose digest is not the one it was asked for (or its descriptor names).
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The registry's TLS certificate was refused: it speaks HTTPS, so no plain-HTTP fallback.
    #[error("{what}: {detail}")]
    Certificate {
        /// What was being done.
        what: String,
        /// What was wrong, and which roots were trusted.
        detail: String,
    },
    /// The registry answered with something that breaks the protocol.
    #[error("{what}: {detail}")]
    Protocol {
        /// What was being done.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// Reading credentials failed.
    #[error("credentials for {host}: {detail}")]
    Credentials {
        /// The registry host.
        host: String,
        /// What failed.
        detail: String,
    },
    /// A layout blob whose size on disk is not its descriptor's.
    #[error("{} is {on_disk} bytes but its descriptor says {size}", path.display())]
    BlobSize {
        /// The blob file.
        path: std::path::PathBuf,
        /// Its size on disk.
        on_disk: u64,
        /// The descriptor's size.
        size: u64,
    },
    /// A manifest the layout listed is gone when it is needed.
    #[error("{digest} vanished from the layout")]
    Vanished {
        /// The manifest digest.
        digest: String,
    },
    /// A JSON document that does not parse.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The transfer thread pool could not be started.
    #[error(transparent)]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    /// Local I/O; `fs_err` messages name the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Hashing or layer handling failed.
    #[error(transparent)]
    Layers(#[from] envpack_layers::LayersError),
    /// An OCI document could not be built from our values.
    #[error("building an OCI document: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    /// A tag the layout's `index.json` can't carry.
    #[error("invalid image tag \"{}\": {reason}; use letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')", shown_name(.tag))]
    BadTag {
        /// The tag given.
        tag: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An `--annotation` that is not `KEY=VALUE`.
    #[error("invalid annotation \"{}\": expected KEY=VALUE with a non-empty KEY", shown_name(.0))]
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
    /// A manifest, index or image config that can't be read.
    #[error("{what}: {detail}")]
    BadDocument {
        /// Which document (its digest, or the file or tag it came from).
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An index without a manifest for the platform asked for.
    #[error(
        "the image has no {wanted} manifest (it has: {offered}); build the lock with that platform"
    )]
    NoSuchPlatform {
        /// `os/arch` asked for.
        wanted: String,
        /// The `os/arch` of each entry that names one.
        offered: String,
    },
    /// A layout or archive that is not a valid OCI image layout.
    #[error("OCI layout {what}: {detail}")]
    BadLayout {
        /// What was being read.
        what: String,
        /// What was wrong.
        detail: String,
    },
}

impl OciError {
    /// Whether trying the same request again might succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            OciError::Status { status, .. } => *status == 429 || *status >= 500,
            OciError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// Result with [`OciError`].
pub type Result<T> = std::result::Result<T, OciError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let url = "https://reg.example/v2/team/env/manifests/1.0";
        let s = |t: &str| t.to_string();
        let json = serde_json::from_str::<serde_json::Value>("[1,").unwrap_err();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .spawn_handler(|_| Err(std::io::Error::other("no threads left")))
            .build()
            .unwrap_err();
        let cases: Vec<(OciError, &str)> = vec![
            (
                OciError::BadReference {
                    reference: s("Reg.example/x\u{1b}"),
                    reason: s("the repository must be lowercase"),
                },
                "invalid image reference \"Reg.example/x\\u{1b}\": the repository must be \
                 lowercase",
            ),
            (
                OciError::Offline {
                    registry: s("reg.example"),
                },
                "reg.example: refused in offline mode (--offline); what is needed from it is not \
                 in the cache",
            ),
            (
                OciError::PlainHttpRefused {
                    host: s("reg.example:5000"),
                },
                "reg.example:5000 does not speak HTTPS; plain HTTP is only used for loopback \
                 hosts or with --insecure",
            ),
            (
                OciError::Unauthorized {
                    method: s("GET"),
                    url: s(url),
                    status: 401,
                    hint: s("; run `docker login reg.example`"),
                },
                "GET https://reg.example/v2/team/env/manifests/1.0: not authorized (HTTP 401); \
                 run `docker login reg.example`",
            ),
            (
                OciError::Status {
                    method: s("PUT"),
                    url: s(url),
                    status: 400,
                    body: s("{\"errors\":[]}"),
                },
                "PUT https://reg.example/v2/team/env/manifests/1.0: HTTP 400: {\"errors\":[]}",
            ),
            (
                OciError::Transport {
                    method: s("GET"),
                    url: s(url),
                    detail: s("connection reset"),
                    attempts: 3,
                },
                "GET https://reg.example/v2/team/env/manifests/1.0: connection reset (after 3 \
                 attempts)",
            ),
            (
                OciError::DigestMismatch {
                    what: s("manifest 1.0"),
                    expected: s("sha256:aa"),
                    actual: s("sha256:bb"),
                },
                "manifest 1.0: digest mismatch: expected sha256:aa, got sha256:bb",
            ),
            (
                OciError::Certificate {
                    what: s("connecting to reg.example"),
                    detail: s("unknown issuer (trusted: the system roots)"),
                },
                "connecting to reg.example: unknown issuer (trusted: the system roots)",
            ),
            (
                OciError::Protocol {
                    what: s("authenticating to reg.example"),
                    detail: s("unsupported auth scheme \"digest\""),
                },
                "authenticating to reg.example: unsupported auth scheme \"digest\"",
            ),
            (
                OciError::Credentials {
                    host: s("reg.example"),
                    detail: s("the helper docker-credential-pass failed"),
                },
                "credentials for reg.example: the helper docker-credential-pass failed",
            ),
            (
                OciError::BlobSize {
                    path: std::path::PathBuf::from("out/blobs/sha256/aa"),
                    on_disk: 10,
                    size: 12,
                },
                "out/blobs/sha256/aa is 10 bytes but its descriptor says 12",
            ),
            (
                OciError::Vanished {
                    digest: s("sha256:aa"),
                },
                "sha256:aa vanished from the layout",
            ),
            (
                OciError::Json(json),
                "EOF while parsing a value at line 1 column 3",
            ),
            (OciError::ThreadPool(pool), "no threads left"),
            (
                OciError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "out/index.json: No such file or directory",
                )),
                "out/index.json: No such file or directory",
            ),
            (
                OciError::Layers(envpack_layers::LayersError::format(
                    "sha256 digest",
                    "\"zz\" is not 64 lowercase hex digits",
                )),
                "invalid sha256 digest: \"zz\" is not 64 lowercase hex digits",
            ),
            (
                OciError::Oci(oci_spec::OciSpecError::Other(s("missing media type"))),
                "building an OCI document: missing media type",
            ),
            (
                OciError::BadTag {
                    tag: s(".hidden"),
                    reason: "starts with '.'",
                },
                "invalid image tag \".hidden\": starts with '.'; use letters, digits, '_', '.', \
                 '-' (at most 128, not starting with '.' or '-')",
            ),
            (
                OciError::BadAnnotation(s("=value")),
                "invalid annotation \"=value\": expected KEY=VALUE with a non-empty KEY",
            ),
            (
                OciError::OutputInTheWay { path: s("out") },
                "out exists and is not an OCI image layout; remove it or choose another --out",
            ),
            (
                OciError::NoPlatforms {
                    built: s("windows-x86_64"),
                },
                "no linux platform to put in the image (built: windows-x86_64); OCI images hold \
                 linux platforms only",
            ),
            (
                OciError::BadDocument {
                    what: s("manifest sha256:aa"),
                    detail: s("no layers"),
                },
                "manifest sha256:aa: no layers",
            ),
            (
                OciError::NoSuchPlatform {
                    wanted: s("linux/arm64"),
                    offered: s("linux/amd64"),
                },
                "the image has no linux/arm64 manifest (it has: linux/amd64); build the lock \
                 with that platform",
            ),
            (
                OciError::BadLayout {
                    what: s("out.tar"),
                    detail: s("member \"x\" must be a regular file"),
                },
                "OCI layout out.tar: member \"x\" must be a regular file",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
