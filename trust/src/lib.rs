//! Signatures of envpack artifacts.
//!
//! Keys and signatures are minisign's formats, so `minisign -Vm ART -p KEY.pub` checks what
//! envpack signs and envpack checks what `minisign -S` signs. A signature's trusted comment
//! carries envpack's [`Claims`] (the artifact's index digest, its env id, the signing time),
//! which lets the unpacker check a signature without hashing the whole artifact again.

mod boxes;
mod claims;
mod error;
mod sign;
mod verify;

pub use boxes::{KeyId, PublicKey, Signature, SignatureAlgorithm, MAX_SIGNATURE_BYTES};
pub use claims::Claims;
pub use error::TrustError;
pub use sign::SigningKey;
pub use verify::{TrustedKeys, Verified};

/// The conventional name of a file's detached signature: the file's name with `.minisig`.
pub fn signature_path(file: &std::path::Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    std::path::PathBuf::from(name)
}
