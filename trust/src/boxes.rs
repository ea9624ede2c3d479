//! minisign's public key and signature files, read and written.
//!
//! Hand-written because the product is this exact text: the `minisign` crate signs with random
//! nonces (its signatures differ on every run; ours must be deterministic) and
//! `minisign-verify` cannot check a trusted comment without hashing the whole file again,
//! which the unpacker's fast path exists to avoid. The layouts (from minisign's own docs):
//! public key `"Ed" keynum[8] pk[32]`; signature `"ED"|"Ed" keynum[8] sig[64]`, then the
//! trusted comment and `global_sig[64]` = ed25519(sig ‖ trusted comment).

use std::fmt;

use base64::Engine as _;

use crate::error::TrustError;

/// Largest signature file read: minisign caps a trusted comment at 8 KiB.
pub const MAX_SIGNATURE_BYTES: u64 = 16 << 10;
const UNTRUSTED: &str = "untrusted comment: ";
const TRUSTED: &str = "trusted comment: ";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A minisign key id: 8 bytes chosen by the key's creator (not derived from the key, so it
/// only picks which trusted key to check with; it proves nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    /// As minisign prints it: the little-endian u64 in upper-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}

/// An ed25519 public key with its minisign key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key id.
    pub id: KeyId,
    /// The key.
    pub key: ed25519_dalek::VerifyingKey,
}

impl PublicKey {
    /// Reads a `.pub` file's text (comment line + base64) or a bare base64 line (`minisign -P`).
    pub fn parse(text: &str, what: &str) -> Result<Self, TrustError> {
        let bad = |detail: &str| TrustError::BadKey {
            what: what.to_owned(),
            detail: format!(
                "{detail}; expected a minisign public key (from `envpack keygen` or `minisign -G`)"
            ),
        };
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let mut line = lines.next().ok_or_else(|| bad("empty"))?;
        if line.starts_with(UNTRUSTED) {
            line = lines
                .next()
                .ok_or_else(|| bad("no key after the comment line"))?;
        }
        if lines.next().is_some() {
            return Err(bad("more than one key line"));
        }
        let bytes = b64()
            .decode(line)
            .map_err(|_| bad("the key line is not base64"))?;
        if bytes.len() != 42 {
            return Err(bad(&format!("{} bytes, not 42", bytes.len())));
        }
        if &bytes[..2] != b"Ed" {
            return Err(bad("not an Ed25519 key"));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[2..10]);
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&bytes[10..]);
        let key = ed25519_dalek::VerifyingKey::from_bytes(&pk)
            .map_err(|_| bad("not a valid Ed25519 point"))?;
        Ok(PublicKey { id: KeyId(id), key })
    }

    /// The base64 line of the key (as `minisign -P` takes it).
    pub fn to_base64(&self) -> String {
        let mut bytes = b"Ed".to_vec();
        bytes.extend_from_slice(&self.id.0);
        bytes.extend_from_slice(self.key.as_bytes());
        b64().encode(bytes)
    }

    /// The `.pub` file's text, as minisign writes it.
    pub fn to_box(&self) -> String {
        format!(
            "{UNTRUSTED}minisign public key {}\n{}\n",
            self.id,
            self.to_base64()
        )
    }
}

/// How the file signature was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// Over the BLAKE2b-512 of the file (`ED`, minisign's default since 0.8).
    Prehashed,
    /// Over the file itself (`Ed`, `minisign -l`).
    Legacy,
}

/// A parsed `.minisig` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The algorithm of the file signature.
    pub algorithm: SignatureAlgorithm,
    /// The signing key's id.
    pub key_id: KeyId,
    /// ed25519 over the file (or its BLAKE2b-512).
    pub file_signature: [u8; 64],
    /// The untrusted comment (without its prefix); shown, never believed.
    pub untrusted_comment: String,
    /// The trusted comment (without its prefix), covered by `global_signature`.
    pub trusted_comment: String,
    /// ed25519 over `file_signature ‖ trusted_comment`.
    pub global_signature: [u8; 64],
}

impl Signature {
    /// Parses a `.minisig` file's text; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<Self, TrustError> {
        let bad = |detail: &str| TrustError::BadSignature {
            what: what.to_owned(),
            detail: format!("{detail}; it is damaged, truncated or not a minisign signature"),
        };
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        // Four lines and an optional final newline, nothing else.
        let lines = match lines.as_slice() {
            [a, b, c, d] | [a, b, c, d, ""] => [*a, *b, *c, *d],
            _ => return Err(bad(&format!("{} lines, expected 4", text.lines().count()))),
        };
        let untrusted = lines[0]
            .strip_prefix(UNTRUSTED)
            .ok_or_else(|| bad("line 1 is not an untrusted comment"))?;
        let sig = b64()
            .decode(lines[1].trim())
            .map_err(|_| bad("line 2 is not base64"))?;
        if sig.len() != 74 {
            return Err(bad(&format!(
                "the signature is {} bytes, not 74",
                sig.len()
            )));
        }
        let algorithm = match &sig[..2] {
            b"ED" => SignatureAlgorithm::Prehashed,
            b"Ed" => SignatureAlgorithm::Legacy,
            _ => return Err(bad("unknown signature algorithm")),
        };
        let trusted = lines[2]
            .strip_prefix(TRUSTED)
            .ok_or_else(|| bad("line 3 is not a trusted comment"))?;
        let global = b64()
            .decode(lines[3].trim())
            .map_err(|_| bad("line 4 is not base64"))?;
        let global_signature: [u8; 64] = global
            .try_into()
            .map_err(|_| bad("the global signature is not 64 bytes"))?;
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&sig[2..10]);
        let mut file_signature = [0u8; 64];
        file_signature.copy_from_slice(&sig[10..]);
        Ok(Signature {
            algorithm,
            key_id: KeyId(key_id),
            file_signature,
            untrusted_comment: untrusted.to_owned(),
            trusted_comment: trusted.to_owned(),
            global_signature,
        })
    }

    /// The `.minisig` text.
    pub fn to_text(&self) -> String {
        let mut sig = match self.algorithm {
            SignatureAlgorithm::Prehashed => b"ED".to_vec(),
            SignatureAlgorithm::Legacy => b"Ed".to_vec(),
        };
        sig.extend_from_slice(&self.key_id.0);
        sig.extend_from_slice(&self.file_signature);
        format!(
            "{UNTRUSTED}{}\n{}\n{TRUSTED}{}\n{}\n",
            self.untrusted_comment,
            b64().encode(sig),
            self.trusted_comment,
            b64().encode(self.global_signature)
        )
    }

    /// The bytes the global signature covers.
    pub fn global_message(&self) -> Vec<u8> {
        let mut m = self.file_signature.to_vec();
        m.extend_from_slice(self.trusted_comment.as_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_print_as_minisign_does() {
        assert_eq!(
            KeyId([0x6b, 0x5a, 0x4f, 0x3e, 0x2d, 0x1c, 0xab, 0x3b]).to_string(),
            "3BAB1C2D3E4F5A6B"
        );
    }

    #[test]
    fn public_keys_round_trip_and_bad_ones_are_named() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]).verifying_key();
        let pk = PublicKey {
            id: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            key,
        };
        assert_eq!(PublicKey::parse(&pk.to_box(), "k").unwrap(), pk);
        assert_eq!(PublicKey::parse(&pk.to_base64(), "k").unwrap(), pk);
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            ("untrusted comment: x\n", "no key after"),
            ("!!!", "not base64"),
            ("RWQ=", "bytes, not 42"),
            (
                &format!("{}\n{}", pk.to_base64(), pk.to_base64()),
                "more than one",
            ),
        ];
        for (text, want) in table {
            let err = PublicKey::parse(text, "ci.pub").unwrap_err().to_string();
            assert!(
                err.starts_with("ci.pub: ") && err.contains(want),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn signatures_round_trip_and_damage_is_refused() {
        let sig = Signature {
            algorithm: SignatureAlgorithm::Prehashed,
            key_id: KeyId([9; 8]),
            file_signature: [3; 64],
            untrusted_comment: "signature from envpack secret key".into(),
            trusted_comment: "timestamp:1\tfile:a".into(),
            global_signature: [4; 64],
        };
        let text = sig.to_text();
        assert_eq!(Signature::parse(&text, "s").unwrap(), sig);
        assert_eq!(
            Signature::parse(&text.replace('\n', "\r\n"), "s").unwrap(),
            sig
        );
        let lines: Vec<&str> = text.lines().collect();
        let table: Vec<(String, &str)> = vec![
            (String::new(), "lines, expected 4"),
            (lines[..3].join("\n"), "lines, expected 4"),
            (text[..text.len() - 10].to_owned(), "not base64"),
            (text.replacen("untrusted", "trusted", 1), "line 1"),
            (
                text.replacen("trusted comment: t", "comment: t", 1),
                "line 3",
            ),
            (format!("{text}extra\n"), "lines, expected 4"),
            (
                text.replacen(lines[1], &lines[1][..lines[1].len() - 8], 1),
                "is 69 bytes, not 74",
            ),
        ];
        for (bad, want) in table {
            let err = Signature::parse(&bad, "a.minisig").unwrap_err().to_string();
            assert!(
                err.starts_with("signature a.minisig: ") && err.contains(want),
                "{bad:?}: {err}"
            );
        }
    }
}
