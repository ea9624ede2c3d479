//! The trust crate's error type.

/// Everything that can make reading a key or checking a signature fail.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// An I/O failure; `fs_err` messages carry the path.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A key file that is not a minisign key.
    #[error("{what}: {detail}")]
    BadKey {
        /// The file (or "public key") at fault.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A signature file that is not a minisign signature (truncated, damaged, not one).
    #[error("signature {what}: {detail}")]
    BadSignature {
        /// The signature file.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// Signed by a key that is not among the trusted ones.
    #[error("signed by key {key_id}, which is not trusted (trusted: {})", trusted.join(", "))]
    UntrustedKey {
        /// The key the signature names.
        key_id: String,
        /// The trusted keys' ids.
        trusted: Vec<String>,
    },
    /// The signature does not verify with the trusted key it names.
    #[error(
        "the signature by key {key_id} does not verify: {what} or its signature was changed \
         after signing"
    )]
    Invalid {
        /// The signing key.
        key_id: String,
        /// What was checked ("the artifact", "the trusted comment").
        what: String,
    },
    /// A signature whose claims name another artifact.
    #[error(
        "the signature is for another artifact: it signs index {signed}, this artifact's \
         index is {actual}"
    )]
    OtherArtifact {
        /// The index digest the signature claims.
        signed: String,
        /// The artifact's own index digest.
        actual: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let cases: Vec<(TrustError, &str)> = vec![
            (
                TrustError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "keys/ci.pub: No such file or directory",
                )),
                "keys/ci.pub: No such file or directory",
            ),
            (
                TrustError::BadKey {
                    what: "keys/ci.pub".into(),
                    detail: "not a minisign public key".into(),
                },
                "keys/ci.pub: not a minisign public key",
            ),
            (
                TrustError::BadSignature {
                    what: "env.tar.minisig".into(),
                    detail: "truncated".into(),
                },
                "signature env.tar.minisig: truncated",
            ),
            (
                TrustError::UntrustedKey {
                    key_id: "0123456789ABCDEF".into(),
                    trusted: vec!["1111111111111111".into(), "2222222222222222".into()],
                },
                "signed by key 0123456789ABCDEF, which is not trusted (trusted: \
                 1111111111111111, 2222222222222222)",
            ),
            (
                TrustError::Invalid {
                    key_id: "0123456789ABCDEF".into(),
                    what: "the artifact".into(),
                },
                "the signature by key 0123456789ABCDEF does not verify: the artifact or its \
                 signature was changed after signing",
            ),
            (
                TrustError::OtherArtifact {
                    signed: "sha256:aa".into(),
                    actual: "sha256:bb".into(),
                },
                "the signature is for another artifact: it signs index sha256:aa, this \
                 artifact's index is sha256:bb",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
