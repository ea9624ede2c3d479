//! Checking a signature against the trusted keys.

use std::path::Path;

use ed25519_dalek::Signature as Ed25519Signature;

use crate::boxes::{KeyId, PublicKey, Signature, SignatureAlgorithm};
use crate::claims::Claims;
use crate::error::TrustError;
use crate::sign::prehash_file;

/// The keys a signature may come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

/// A signature that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The trusted key that made it.
    pub key_id: KeyId,
    /// What its trusted comment says.
    pub claims: Claims,
}

impl TrustedKeys {
    /// These keys.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        TrustedKeys { keys }
    }

    /// Reads each public key file.
    pub fn load(files: &[impl AsRef<Path>]) -> Result<Self, TrustError> {
        let mut keys = Vec::new();
        for f in files {
            let f = f.as_ref();
            let text = read_small(f, 4096)?;
            keys.push(PublicKey::parse(&text, &f.display().to_string())?);
        }
        Ok(TrustedKeys { keys })
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks the trusted comment's signature (not the file's): enough when the comment's
    /// claims pin the content, as envpack's `envpack-index` does. Returns the claims.
    pub fn verify_claims(&self, sig: &Signature) -> Result<Verified, TrustError> {
        self.with_key(sig, |key| {
            check(
                key,
                &sig.global_message(),
                &sig.global_signature,
                "the trusted comment",
            )
        })
    }

    /// Checks the whole signature over `file`: the file's signature, then the comment's.
    pub fn verify_file(&self, sig: &Signature, file: &Path) -> Result<Verified, TrustError> {
        self.verify_file_with(sig, file, &mut |_, _| {})
    }

    /// [`TrustedKeys::verify_file`], handing every chunk read (with its offset) to `seen`, so
    /// a caller can check that what it parsed from the file is what was hashed.
    pub fn verify_file_with(
        &self,
        sig: &Signature,
        file: &Path,
        seen: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<Verified, TrustError> {
        if sig.algorithm == SignatureAlgorithm::Legacy {
            return Err(TrustError::BadSignature {
                what: file.display().to_string(),
                detail: "a legacy signature (`minisign -S -l`, or minisign before 0.8) signs \
                         the whole file unhashed; sign it again without -l"
                    .into(),
            });
        }
        let hash = prehash_file(file, seen)?;
        self.with_key(sig, |key| {
            check(key, &hash, &sig.file_signature, "the artifact")?;
            check(
                key,
                &sig.global_message(),
                &sig.global_signature,
                "the trusted comment",
            )
        })
    }

    fn with_key(
        &self,
        sig: &Signature,
        check: impl Fn(&PublicKey) -> Result<(), TrustError>,
    ) -> Result<Verified, TrustError> {
        // Key ids are chosen by their creators, so a forger can copy a trusted key's id:
        // every trusted key with that id is tried, and only a verifying one counts.
        let mut named = self.keys.iter().filter(|k| k.id == sig.key_id).peekable();
        if named.peek().is_none() {
            return Err(TrustError::UntrustedKey {
                key_id: sig.key_id.to_string(),
                trusted: self.keys.iter().map(|k| k.id.to_string()).collect(),
            });
        }
        let mut last = None;
        for key in named {
            match check(key) {
                Ok(()) => {
                    return Ok(Verified {
                        key_id: key.id,
                        claims: Claims::parse(&sig.trusted_comment)?,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(TrustError::Invalid {
            key_id: sig.key_id.to_string(),
            what: "the artifact".into(),
        }))
    }
}

fn check(key: &PublicKey, message: &[u8], sig: &[u8; 64], what: &str) -> Result<(), TrustError> {
    key.key
        .verify_strict(message, &Ed25519Signature::from_bytes(sig))
        .map_err(|_| TrustError::Invalid {
            key_id: key.id.to_string(),
            what: what.to_owned(),
        })
}

/// Reads a small text file, refusing one larger than `max` bytes.
pub(crate) fn read_small(path: &Path, max: u64) -> Result<String, TrustError> {
    use std::io::Read as _;
    let mut text = String::new();
    // Checked before opening: a FIFO or a device would block the read.
    if !fs_err::metadata(path)?.is_file() {
        return Err(TrustError::BadKey {
            what: path.display().to_string(),
            detail: "not a regular file".into(),
        });
    }
    let file = fs_err::File::open(path)?;
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
    if text.len() as u64 > max {
        return Err(TrustError::BadKey {
            what: path.display().to_string(),
            detail: format!("more than {max} bytes; not a key or signature file"),
        });
    }
    Ok(text)
}

impl Signature {
    /// Reads a `.minisig` file (at most [`crate::MAX_SIGNATURE_BYTES`]).
    pub fn read(path: &Path) -> Result<Self, TrustError> {
        let text = read_small(path, crate::MAX_SIGNATURE_BYTES).map_err(|e| match e {
            TrustError::BadKey { what, detail } => TrustError::BadSignature { what, detail },
            e => e,
        })?;
        Signature::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> crate::SigningKey {
        crate::SigningKey::from_seed(&[n; 32], [n; 8])
    }

    fn file(dir: &Path, body: &[u8]) -> std::path::PathBuf {
        let p = dir.join("a.envpack.tar");
        fs_err::write(&p, body).unwrap();
        p
    }

    #[test]
    fn a_signature_verifies_with_its_key_and_with_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), b"the artifact");
        let claims = Claims {
            timestamp: Some(5),
            index: Some(format!("sha256:{}", "a".repeat(64))),
            ..Claims::default()
        };
        let sig = key(1).sign_file(&f, &claims).unwrap();
        assert_eq!(sig, key(1).sign_file(&f, &claims).unwrap(), "deterministic");
        let trusted = TrustedKeys::new(vec![key(2).public_key(), key(1).public_key()]);
        let ok = trusted.verify_file(&sig, &f).unwrap();
        assert_eq!((ok.key_id, ok.claims), (key(1).public_key().id, claims));
        trusted.verify_claims(&sig).unwrap();

        let other = TrustedKeys::new(vec![key(2).public_key()]);
        let err = other.verify_file(&sig, &f).unwrap_err().to_string();
        assert!(
            err.contains("not trusted (trusted: 0202020202020202)"),
            "{err}"
        );

        // A forger's key that copies the trusted key's id.
        let forged = crate::SigningKey::from_seed(&[9; 32], [1; 8]);
        let bad = forged.sign_file(&f, &Claims::default()).unwrap();
        let err = trusted.verify_claims(&bad).unwrap_err().to_string();
        assert!(err.contains("does not verify"), "{err}");

        fs_err::write(&f, b"the artifacT").unwrap();
        let err = trusted.verify_file(&sig, &f).unwrap_err().to_string();
        assert!(err.contains("does not verify: the artifact"), "{err}");

        let mut edited = sig.clone();
        edited.trusted_comment = edited.trusted_comment.replace("timestamp:5", "timestamp:6");
        let err = trusted.verify_claims(&edited).unwrap_err().to_string();
        assert!(
            err.contains("does not verify: the trusted comment"),
            "{err}"
        );

        let mut legacy = sig;
        legacy.algorithm = SignatureAlgorithm::Legacy;
        let err = trusted.verify_file(&legacy, &f).unwrap_err().to_string();
        assert!(err.contains("legacy"), "{err}");
    }

    #[test]
    fn signing_what_was_hashed_as_written_is_signing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let f = file(dir.path(), &body);
        let mut pre = crate::Prehasher::spawn();
        for chunk in body.chunks(777_777) {
            pre.update(chunk);
        }
        let claims = Claims::default();
        let sig = key(3).sign_prehashed(&pre.finish().unwrap(), &claims);
        assert_eq!(sig, key(3).sign_file(&f, &claims).unwrap());
        TrustedKeys::new(vec![key(3).public_key()])
            .verify_file(&sig, &f)
            .unwrap();
    }

    #[test]
    fn oversized_signature_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.minisig");
        fs_err::write(&p, vec![b'a'; 20 << 10]).unwrap();
        let err = Signature::read(&p).unwrap_err().to_string();
        assert!(
            err.starts_with("signature ") && err.contains("more than"),
            "{err}"
        );
    }
}
