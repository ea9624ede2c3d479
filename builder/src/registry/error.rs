//! The registry client's error type.

/// What can go wrong while talking to a registry or reading its answers.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A reference that can't name an image in a registry.
    #[error("invalid image reference {reference:?}: {reason}")]
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
    /// Content whose digest is not the one it was asked for.
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
    /// Local I/O; `fs_err` messages name the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Hashing or layer handling failed.
    #[error(transparent)]
    Layers(#[from] envpack_layers::LayersError),
}

impl RegistryError {
    /// Whether trying the same request again might succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            RegistryError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// Result with [`RegistryError`].
pub type Result<T> = std::result::Result<T, RegistryError>;
