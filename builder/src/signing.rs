//! Keys and signatures for artifacts: `envpack keygen`, `envpack sign`, `build --sign`.
//!
//! Key files are minisign's (the `minisign` crate writes and decrypts them, so keys from
//! `minisign -G` work too); signatures are made by `envpack_trust` so that they are
//! deterministic and carry the artifact's index digest in their trusted comment.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use envpack_layers::artifact::ArtifactReader;
use envpack_trust::{Claims, SigningKey};
use serde::Serialize;

/// Environment variable holding the password of an encrypted secret key.
pub const PASSWORD_VAR: &str = "ENVPACK_KEY_PASSWORD";

/// The files `keygen` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct KeyFiles {
    /// The secret key (unencrypted, mode 0600).
    pub secret: PathBuf,
    /// The public key, for `--trust` and `minisign -p`.
    pub public: PathBuf,
    /// The key id, as minisign prints it.
    pub key_id: String,
}

/// Where the public key of the secret key file `secret` goes: `ci.key` → `ci.pub`,
/// anything else gets `.pub` added.
pub fn public_key_path(secret: &Path) -> PathBuf {
    match secret.extension() {
        Some(e) if e == "key" => secret.with_extension("pub"),
        _ => {
            let mut name = secret.as_os_str().to_owned();
            name.push(".pub");
            PathBuf::from(name)
        }
    }
}

/// Makes a new ed25519 key pair: `secret` and its public key beside it. Refuses to replace
/// either file.
pub fn keygen(secret: &Path) -> anyhow::Result<KeyFiles> {
    let public = public_key_path(secret);
    for p in [secret, &public] {
        if p.symlink_metadata().is_ok() {
            bail!("{} exists; keygen never replaces a key", p.display());
        }
    }
    let pair = minisign::KeyPair::generate_unencrypted_keypair()
        .map_err(|e| anyhow!("generating a key: {e}"))?;
    let sk_text = pair
        .sk
        .to_box(Some(
            "envpack secret key (unencrypted: keep it out of reach)",
        ))
        .map_err(|e| anyhow!("encoding the secret key: {e}"))?
        .to_string();
    let signing = SigningKey::from_minisign_bytes(&pair.sk.to_bytes(), "the new key")?;
    let pk = signing.public_key();
    write_new(secret, sk_text.as_bytes(), true)?;
    #[cfg(not(unix))]
    tracing::warn!(
        "{} takes the permissions of its folder here: keep it in a folder only you can read",
        secret.display()
    );
    if let Err(e) = write_new(&public, pk.to_box().as_bytes(), false) {
        let _ = fs_err::remove_file(secret);
        return Err(e);
    }
    Ok(KeyFiles {
        secret: secret.to_path_buf(),
        public,
        key_id: pk.id.to_string(),
    })
}

fn write_new(path: &Path, bytes: &[u8], secret: bool) -> anyhow::Result<()> {
    let mut opts = fs_err::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use fs_err::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Reads a minisign secret key file; an encrypted one (`minisign -G` without `-W`) is
/// decrypted with the password in ENVPACK_KEY_PASSWORD.
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text = crate::input::read_text(path, 4096, "secret key")?;
    if !text.starts_with("untrusted comment:") {
        bail!(
            "{}: not a minisign secret key (make one with `envpack keygen --out KEY`)",
            path.display()
        );
    }
    let boxed = || minisign::SecretKeyBox::from_string(&text);
    let encrypted = text
        .lines()
        .nth(1)
        .and_then(|l| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(l.trim())
                .ok()
        })
        .is_some_and(|b| b.get(2..4) != Some(&[0, 0][..]));
    let sk = if encrypted {
        let password = std::env::var(PASSWORD_VAR).map_err(|_| {
            anyhow!(
                "{} is encrypted: set {PASSWORD_VAR} to its password",
                path.display()
            )
        })?;
        boxed()
            .and_then(|b| b.into_secret_key(Some(password)))
            .map_err(|e| anyhow!("{}: {e}", path.display()))?
    } else {
        boxed()
            .and_then(|b| b.into_unencrypted_secret_key())
            .map_err(|e| anyhow!("{}: {e}", path.display()))?
    };
    Ok(SigningKey::from_minisign_bytes(
        &sk.to_bytes(),
        &path.display().to_string(),
    )?)
}

/// A written signature.
#[derive(Debug, Clone, Serialize)]
pub struct SignedArtifact {
    /// The artifact.
    pub artifact: PathBuf,
    /// Its signature file.
    pub signature: PathBuf,
    /// Its signed SLSA provenance (`ARTIFACT.intoto.jsonl`).
    pub provenance: PathBuf,
    /// The signing key's id.
    pub key_id: String,
    /// The signing time in the signature.
    pub timestamp: u64,
}

/// Signs the artifact at `artifact` (`ARTIFACT.minisig`) and makes its signed provenance, to
/// write beside it with [`Prepared::write`], replacing earlier ones atomically. The time signed is now, or ENVPACK_SIGN_TIME
/// (seconds since the epoch) to sign reproducibly; not SOURCE_DATE_EPOCH, which a
/// reproducible CI pins for every build, and a root refuses an env signed before the newest it
/// accepted.
pub fn sign_artifact(artifact: &Path, key: &SigningKey) -> anyhow::Result<Prepared> {
    sign_restored(artifact, key, None)
}

/// [`sign_artifact`] for an artifact restored from an image: the image manifest (a name and
/// its sha256 hex) is a second subject of the provenance.
pub fn sign_restored(
    artifact: &Path,
    key: &SigningKey,
    manifest: Option<(String, String)>,
) -> anyhow::Result<Prepared> {
    let reader = ArtifactReader::open(artifact).with_context(|| {
        format!(
            "{} is not an envpack artifact (to sign another file, use minisign)",
            artifact.display()
        )
    })?;
    let claims = claims_for(artifact, reader.index_digest(), &reader.index().env_id)?;
    // One read for both digests: the signature's BLAKE2b and the provenance's sha256.
    let mut sha = <sha2::Sha256 as sha2::Digest>::new();
    let prehash = envpack_trust::prehash_file(artifact, &mut |_, chunk| {
        sha2::Digest::update(&mut sha, chunk)
    })?;
    let sig = key.sign_prehashed(&prehash, &claims);
    let facts = crate::provenance::ArtifactFacts {
        index: reader.index(),
        index_digest: *reader.index_digest(),
        lock_bytes: reader.lock_bytes(),
        sha256_hex: hex::encode(sha2::Digest::finalize(sha)),
        manifest,
    };
    prepare(artifact, key, &sig, &claims, &facts)
}

/// Signs an artifact the build just wrote, from the BLAKE2b-512 computed as it was written
/// (no second read of the file).
pub fn sign_written(
    artifact: &Path,
    key: &SigningKey,
    prehash: &[u8],
    index: &envpack_layers::artifact::ArtifactIndex,
    lock_bytes: &[u8],
    sha256_hex: &str,
) -> anyhow::Result<SignedArtifact> {
    let index_digest = envpack_layers::digest::Sha256Digest::of_bytes(&index.to_canonical_json());
    let claims = claims_for(artifact, &index_digest, &index.env_id)?;
    let sig = key.sign_prehashed(prehash, &claims);
    let facts = crate::provenance::ArtifactFacts {
        index,
        index_digest,
        lock_bytes,
        sha256_hex: sha256_hex.to_owned(),
        manifest: None,
    };
    prepare(artifact, key, &sig, &claims, &facts)?.write()
}

fn claims_for(
    artifact: &Path,
    index_digest: &envpack_layers::digest::Sha256Digest,
    env_id: &str,
) -> anyhow::Result<Claims> {
    Ok(Claims {
        timestamp: Some(sign_time()?),
        file: artifact
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
        index: Some(index_digest.to_string()),
        env_id: Some(env_id.to_owned()),
    })
}

/// A signature and provenance made, not yet written.
pub struct Prepared {
    artifact: PathBuf,
    signature: Vec<u8>,
    provenance: Vec<u8>,
    key_id: String,
    timestamp: u64,
}

impl Prepared {
    /// The signature file's bytes (minisign format).
    pub fn signature_bytes(&self) -> &[u8] {
        &self.signature
    }

    /// The provenance: one DSSE envelope line of an in-toto bundle.
    pub fn provenance_bytes(&self) -> &[u8] {
        &self.provenance
    }

    /// The signing key's id and the time signed.
    pub fn signer(&self) -> (&str, u64) {
        (&self.key_id, self.timestamp)
    }

    /// Writes the signature and the provenance (each atomically) beside the artifact.
    pub fn write(self) -> anyhow::Result<SignedArtifact> {
        let signature = envpack_trust::signature_path(&self.artifact);
        let provenance = crate::provenance::provenance_path(&self.artifact);
        crate::atomic::write_file(&signature, &self.signature)?;
        crate::atomic::write_file(&provenance, &self.provenance)?;
        Ok(SignedArtifact {
            artifact: self.artifact,
            signature,
            provenance,
            key_id: self.key_id,
            timestamp: self.timestamp,
        })
    }
}

/// Both files in memory first: a provenance that can't be made leaves no new signature.
fn prepare(
    artifact: &Path,
    key: &SigningKey,
    sig: &envpack_trust::Signature,
    claims: &Claims,
    facts: &crate::provenance::ArtifactFacts,
) -> anyhow::Result<Prepared> {
    Ok(Prepared {
        artifact: artifact.to_path_buf(),
        signature: sig.to_text().into_bytes(),
        provenance: crate::provenance::provenance_line(artifact, key, facts)?,
        key_id: sig.key_id.to_string(),
        timestamp: claims.timestamp.unwrap_or(0),
    })
}

/// The variable that pins the signing time.
pub const SIGN_TIME_VAR: &str = "ENVPACK_SIGN_TIME";

fn sign_time() -> anyhow::Result<u64> {
    match std::env::var(SIGN_TIME_VAR) {
        Ok(v) => v.trim().parse().map_err(|_| {
            anyhow!(
                "{SIGN_TIME_VAR}=\"{}\" is not a time in seconds since the Unix epoch",
                envpack_layers::shown_name(&v)
            )
        }),
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
    }
}
