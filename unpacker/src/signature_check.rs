//! Checking an artifact's signature before anything of it is written.
//!
//! An envpack signature's trusted comment names the digest of the artifact's index, and the
//! index pins the lock and every layer blob (all re-hashed before extraction), so checking
//! the comment's signature and that digest is as strong as checking the whole file, without
//! reading the file a second time. A signature without that claim (`minisign -S`) is checked
//! over the whole file.

use std::path::{Path, PathBuf};

use envpack_layers::artifact::ArtifactReader;
use envpack_trust::{Claims, Signature, TrustError, TrustedKeys, Verified};

use sha2::Digest as _;

use crate::error::UnpackError;

/// What the caller asks of the artifact's signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustOptions {
    /// Public key files whose signature is accepted (`--trust`); none: the root's own keys,
    /// if it requires signatures.
    pub trust: Vec<PathBuf>,
    /// The signature file (default: the artifact's path with `.minisig`).
    pub signature: Option<PathBuf>,
    /// Make the root require signatures by the `trust` keys from now on.
    pub require_signature: bool,
    /// Accept an env signed earlier than the current one.
    pub allow_downgrade: bool,
}

impl TrustOptions {
    /// The signature file to read for `artifact`.
    pub fn signature_path(&self, artifact: &Path) -> PathBuf {
        self.signature
            .clone()
            .unwrap_or_else(|| envpack_trust::signature_path(artifact))
    }
}

/// Reads the artifact's signature: `Ok(None)` when there is none at the default place (a
/// `--signature` that names a missing file is an error).
pub fn read_signature(
    artifact: &Path,
    opts: &TrustOptions,
) -> Result<Option<Signature>, UnpackError> {
    let path = opts.signature_path(artifact);
    match Signature::read(&path) {
        Ok(sig) => Ok(Some(sig)),
        Err(TrustError::Io(e))
            if e.kind() == std::io::ErrorKind::NotFound && opts.signature.is_none() =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// How much of a signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The trusted comment's signature when its claims pin the index, else the whole file
    /// (what unpack does).
    Claims,
    /// The file's signature and the comment's, always (what `verify --trust` does).
    WholeFile,
}

/// Checks `sig` over the artifact `reader` opened with `keys`; `why` says where the keys come
/// from ("--trust", "the root") for the unsigned case.
pub fn check_signature(
    keys: &TrustedKeys,
    sig: Option<&Signature>,
    reader: &ArtifactReader,
    signature_file: &Path,
    why: &str,
    depth: Depth,
) -> Result<Verified, UnpackError> {
    check(keys, sig, reader, signature_file, why, depth).map(|(v, _)| v)
}

/// [`check_signature`], with the artifact file's sha256 when the whole file was read.
fn check(
    keys: &TrustedKeys,
    sig: Option<&Signature>,
    reader: &ArtifactReader,
    signature_file: &Path,
    why: &str,
    depth: Depth,
) -> Result<(Verified, Option<String>), UnpackError> {
    let sig = sig.ok_or_else(|| UnpackError::Unsigned {
        artifact: reader.path().to_path_buf(),
        signature: signature_file.to_path_buf(),
        why: why.to_owned(),
    })?;
    let pinned = Claims::parse(&sig.trusted_comment)?.index.is_some();
    let (verified, file_sha256) = if pinned && depth == Depth::Claims {
        (keys.verify_claims(sig)?, None)
    } else {
        // The file is read again to hash it: the index in what was hashed must be the index
        // that was parsed, or a file swapped between the two reads would pass as signed.
        let (at, len) = reader.index_range();
        let mut index = sha2::Sha256::new();
        let mut whole = sha2::Sha256::new();
        let v = keys.verify_file_with(sig, reader.path(), &mut |offset, chunk| {
            let start = at.saturating_sub(offset).min(chunk.len() as u64) as usize;
            let end = (at + len).saturating_sub(offset).min(chunk.len() as u64) as usize;
            index.update(&chunk[start..end]);
            whole.update(chunk);
        })?;
        let hashed = format!("sha256:{}", hex::encode(index.finalize()));
        if hashed != reader.index_digest().to_string() {
            return Err(UnpackError::BadArtifact {
                path: reader.path().to_path_buf(),
                detail: "it changed while it was being read".into(),
            });
        }
        (v, Some(hex::encode(whole.finalize())))
    };
    if let Some(signed) = &verified.claims.index {
        let actual = reader.index_digest().to_string();
        if *signed != actual {
            return Err(TrustError::OtherArtifact {
                signed: signed.clone(),
                actual,
            }
            .into());
        }
    }
    Ok((verified, file_sha256))
}

/// Checks an artifact's signature with the `opts.trust` keys, the whole file and its claims,
/// and its provenance when there is one (`verify --trust`); returns the report's lines.
pub fn verify_signature(artifact: &Path, opts: &TrustOptions) -> Result<String, UnpackError> {
    Ok(verify_signed_statement(artifact, opts)?.text)
}

/// What [`verify_signed_statement`] found good.
pub struct SignedStatement {
    /// The report lines (signature, provenance).
    pub text: String,
    /// The trusted provenance statement about the file (none for a plain minisign signature
    /// without one).
    pub statement: Option<serde_json::Value>,
    /// sha256 (hex) of the bytes the signature was checked over.
    pub sha256_hex: String,
}

/// [`verify_signature`], also returning the trusted statement and the file's sha256.
pub fn verify_signed_statement(
    artifact: &Path,
    opts: &TrustOptions,
) -> Result<SignedStatement, UnpackError> {
    let reader = ArtifactReader::open(artifact)?;
    let keys = TrustedKeys::load(&opts.trust)?;
    let sig = read_signature(artifact, opts)?;
    let file = opts.signature_path(artifact);
    let (v, sha) = check(
        &keys,
        sig.as_ref(),
        &reader,
        &file,
        "--trust",
        Depth::WholeFile,
    )?;
    // The provenance is checked against the bytes the signature was checked over (the
    // whole-file check always hashes them).
    let sha256_hex = sha.unwrap_or_default();
    let provenance = crate::provenance_check::check_provenance(&reader, &keys, &sha256_hex)?;
    let (text, statement) = match provenance {
        Some((p, statement)) => (format!("{}\n{p}", signature_text(&v)), Some(statement)),
        // envpack writes one with every signature: its absence is a stripped provenance.
        None if v.claims.index.is_some() => {
            return Err(UnpackError::BadArtifact {
                path: envpack_trust::intoto::provenance_path(artifact),
                detail: "missing: envpack signed this artifact, and writes its provenance with \
                         every signature"
                    .into(),
            })
        }
        None => (
            format!(
                "{}\nprovenance: none beside the artifact",
                signature_text(&v)
            ),
            None,
        ),
    };
    Ok(SignedStatement {
        text,
        statement,
        sha256_hex,
    })
}

/// One line about a verified signature.
pub fn signature_text(v: &Verified) -> String {
    let when = v
        .claims
        .timestamp
        .map_or(String::new(), |t| format!(", signed at {t}"));
    let what = if v.claims.index.is_some() {
        "artifact and index"
    } else {
        "file"
    };
    format!(
        "signature: good ({what}), by trusted key {}{when}",
        v.key_id
    )
}
