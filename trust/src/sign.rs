//! Signing a file with a minisign secret key, deterministically.

use std::io::Read;
use std::path::Path;

use blake2::Digest as _;
use ed25519_dalek::Signer as _;

use crate::boxes::{KeyId, PublicKey, Signature, SignatureAlgorithm};
use crate::claims::Claims;
use crate::error::TrustError;

/// Offsets in minisign's (decrypted) secret key: sig_alg[2] kdf_alg[2] chk_alg[2] salt[32]
/// opslimit[8] memlimit[8] keynum[8] sk[64] chk[32].
const KEYNUM_AT: usize = 54;
const SK_AT: usize = 62;
const SECRET_KEY_LEN: usize = 158;

/// An ed25519 signing key with its minisign key id.
pub struct SigningKey {
    id: KeyId,
    key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// Takes minisign's decrypted secret key bytes (as the `minisign` crate's
    /// `SecretKey::to_bytes` gives them); `what` names the key file in errors.
    pub fn from_minisign_bytes(bytes: &[u8], what: &str) -> Result<Self, TrustError> {
        let bad = |detail: &str| TrustError::BadKey {
            what: what.to_owned(),
            detail: detail.to_owned(),
        };
        if bytes.len() != SECRET_KEY_LEN || &bytes[..2] != b"Ed" {
            return Err(bad("not a minisign Ed25519 secret key"));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[KEYNUM_AT..SK_AT]);
        let mut pair = [0u8; 64];
        pair.copy_from_slice(&bytes[SK_AT..SK_AT + 64]);
        let key = ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
            .map_err(|_| bad("its public half does not belong to its secret half"))?;
        Ok(SigningKey { id: KeyId(id), key })
    }

    /// A key from a 32-byte seed and a key id (for tests and key generation).
    pub fn from_seed(seed: &[u8; 32], id: [u8; 8]) -> Self {
        SigningKey {
            id: KeyId(id),
            key: ed25519_dalek::SigningKey::from_bytes(seed),
        }
    }

    /// The ed25519 key itself, to sign other messages with (DSSE).
    pub(crate) fn ed25519(&self) -> &ed25519_dalek::SigningKey {
        &self.key
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `file` (prehashed, as minisign does by default) with `claims` as the trusted
    /// comment. ed25519 is deterministic: the same file, key and claims give the same bytes.
    pub fn sign_file(&self, file: &Path, claims: &Claims) -> Result<Signature, TrustError> {
        let hash = prehash_file(file, &mut |_, _| {})?;
        Ok(self.sign_prehashed(&hash, claims))
    }

    /// Signs a file already hashed ([`Prehasher`] as it was written, or [`prehash_file`]).
    pub fn sign_prehashed(&self, hash: &[u8], claims: &Claims) -> Signature {
        let file_signature = self.key.sign(hash).to_bytes();
        let mut sig = Signature {
            algorithm: SignatureAlgorithm::Prehashed,
            key_id: self.id,
            file_signature,
            untrusted_comment: format!("signature from envpack secret key {}", self.id),
            trusted_comment: claims.to_comment(),
            global_signature: [0; 64],
        };
        sig.global_signature = self.key.sign(&sig.global_message()).to_bytes();
        sig
    }
}

/// BLAKE2b-512 (minisign's prehash) of bytes fed in order, computed on a thread of its own so
/// a writer can hash what it writes at no cost to its own thread.
pub struct Prehasher {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    handle: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Prehasher {
    /// Starts the hashing thread.
    pub fn spawn() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let handle = std::thread::spawn(move || {
            let mut hasher = blake2::Blake2b512::new();
            for chunk in rx {
                hasher.update(&chunk);
            }
            hasher.finalize().to_vec()
        });
        Prehasher {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(tx) = &self.tx {
            // A send fails only if the thread is gone; finish() then reports it.
            let _ = tx.send(bytes.to_vec());
        }
    }

    /// The hash of everything fed.
    pub fn finish(mut self) -> Result<Vec<u8>, TrustError> {
        drop(self.tx.take());
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .ok_or_else(|| TrustError::Io(std::io::Error::other("the hashing thread failed")))
    }
}

/// BLAKE2b-512 (minisign's prehash) of a file, streamed; `seen` gets each chunk with its
/// offset, so a caller can hash or check the same bytes in the same read.
pub fn prehash_file(file: &Path, seen: &mut dyn FnMut(u64, &[u8])) -> Result<Vec<u8>, TrustError> {
    let mut f = fs_err::File::open(file)?;
    let mut hasher = blake2::Blake2b512::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        seen(at, &buf[..n]);
        at += n as u64;
    }
    Ok(hasher.finalize().to_vec())
}
