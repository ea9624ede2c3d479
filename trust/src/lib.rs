//! Signatures of envpack artifacts.
//!
//! Keys and signatures are minisign's formats, so `minisign -Vm ART -p KEY.pub` checks what
//! envpack signs and envpack checks what `minisign -S` signs. A signature's trusted comment
//! carries envpack's [`Claims`] (the artifact's index digest, its env id, the signing time),
//! which lets the unpacker check a signature without hashing the whole artifact again.

mod boxes;
mod claims;
mod dsse;
mod error;
mod sign;
mod verify;

pub use boxes::{KeyId, PublicKey, Signature, SignatureAlgorithm, MAX_SIGNATURE_BYTES};
pub use claims::Claims;
pub use dsse::{pae, Envelope, EnvelopeSignature};
pub use error::TrustError;
pub use sign::{prehash_file, Prehasher, SigningKey};
pub use verify::{TrustedKeys, Verified};

/// The in-toto and SLSA names an envpack provenance uses.
pub mod intoto {
    /// The DSSE payload type of an in-toto statement.
    pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
    /// The statement type.
    pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
    /// The predicate type.
    pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
    /// envpack's build type (a URI naming how to read `externalParameters`).
    pub const BUILD_TYPE: &str = "urn:envpack:build:v1";
    /// The builder's id.
    pub const BUILDER_ID: &str = "urn:envpack:builder";

    /// Where an artifact's provenance goes: `ARTIFACT.intoto.jsonl`.
    pub fn provenance_path(artifact: &std::path::Path) -> std::path::PathBuf {
        let mut name = artifact.as_os_str().to_owned();
        name.push(".intoto.jsonl");
        std::path::PathBuf::from(name)
    }
}

/// The conventional name of a file's detached signature: the file's name with `.minisig`.
pub fn signature_path(file: &std::path::Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    std::path::PathBuf::from(name)
}
