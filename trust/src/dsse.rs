//! DSSE envelopes (the signature wrapper in-toto attestations use), signed with the same
//! ed25519 key as the artifact: the signature covers PAE(payloadType, payload) =
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII decimal.

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};

use crate::boxes::KeyId;
use crate::error::TrustError;
use crate::sign::SigningKey;
use crate::verify::TrustedKeys;

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The payload's media type, e.g. `application/vnd.in-toto+json`.
    pub payload_type: String,
    /// The payload, base64.
    pub payload: String,
    /// The signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The signing key's id (the minisign key id, as minisign prints it); DSSE makes it a
    /// hint, so an empty one means "try every trusted key".
    #[serde(default)]
    pub keyid: String,
    /// ed25519 over the PAE, base64.
    pub sig: String,
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// DSSE allows standard or URL-safe base64, padded or not.
fn decode_any(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
}

impl Envelope {
    /// Signs `payload` (deterministic: same key and payload, same envelope).
    pub fn sign(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Self {
        let sig = key.ed25519().sign(&pae(payload_type, payload));
        Envelope {
            payload_type: payload_type.to_owned(),
            payload: b64().encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: key.public_key().id.to_string(),
                sig: b64().encode(sig.to_bytes()),
            }],
        }
    }

    /// Checks that a trusted key signed it; returns that key and the payload.
    pub fn verify(&self, keys: &TrustedKeys) -> Result<(KeyId, Vec<u8>), TrustError> {
        let bad = |detail: &str| TrustError::BadSignature {
            what: "provenance envelope".into(),
            detail: detail.to_owned(),
        };
        let payload = decode_any(&self.payload).ok_or_else(|| bad("its payload is not base64"))?;
        let message = pae(&self.payload_type, &payload);
        let mut named = Vec::new();
        for s in &self.signatures {
            let Some(sig) = decode_any(&s.sig) else {
                continue;
            };
            let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
                continue;
            };
            let sig = ed25519_dalek::Signature::from_bytes(&sig);
            let named_by =
                |k: &&crate::PublicKey| s.keyid.is_empty() || k.id.to_string() == s.keyid;
            for key in keys.keys().iter().filter(named_by) {
                named.push(key.id.to_string());
                if key.key.verify_strict(&message, &sig).is_ok() {
                    return Ok((key.id, payload));
                }
            }
        }
        if named.is_empty() {
            return Err(TrustError::UntrustedKey {
                key_id: self
                    .signatures
                    .iter()
                    .map(|s| s.keyid.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                trusted: keys.keys().iter().map(|k| k.id.to_string()).collect(),
            });
        }
        Err(TrustError::Invalid {
            key_id: named.join(", "),
            what: "the provenance".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_as_the_dsse_spec_spells_it() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn envelopes_verify_with_their_key_only() {
        let k1 = SigningKey::from_seed(&[1; 32], [1; 8]);
        let k2 = SigningKey::from_seed(&[2; 32], [2; 8]);
        let env = Envelope::sign(&k1, "application/vnd.in-toto+json", b"{}");
        assert_eq!(
            env,
            Envelope::sign(&k1, "application/vnd.in-toto+json", b"{}")
        );
        let trusted = TrustedKeys::new(vec![k1.public_key()]);
        assert_eq!(env.verify(&trusted).unwrap().1, b"{}");
        let err = env
            .verify(&TrustedKeys::new(vec![k2.public_key()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not trusted"), "{err}");
        let mut swapped = env.clone();
        swapped.payload_type = "text/plain".into();
        let err = swapped.verify(&trusted).unwrap_err().to_string();
        assert!(err.contains("does not verify: the provenance"), "{err}");
        let mut other = env;
        other.payload = b64().encode(b"{\"x\":1}");
        assert!(other.verify(&trusted).is_err());
    }
}
