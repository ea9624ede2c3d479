//! The root's trust record `ROOT/.envpack/trust.json`: the keys every unpack must be signed by
//! (none: signatures are checked only when asked for), and who signed each env and when, which
//! is what refuses a replayed older env.

use std::collections::BTreeMap;
use std::path::Path;

use envpack_trust::{PublicKey, TrustedKeys, Verified};
use serde::{Deserialize, Serialize};

use crate::error::UnpackError;
use crate::root_dirs::RootDirs;

const SCHEMA: u32 = 1;
const FILE: &str = "trust.json";

/// Contents of `trust.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootTrust {
    /// Format version.
    pub schema: u32,
    /// Public keys (minisign base64 lines) an artifact must be signed by; empty: no policy.
    #[serde(default)]
    pub required_keys: Vec<String>,
    /// The newest signing time of any env this root accepted: an env signed before it is a
    /// replay and refused. It only ever goes up.
    #[serde(default)]
    pub newest_signed: Option<u64>,
    /// env id → what was verified of it when it was unpacked.
    #[serde(default)]
    pub envs: BTreeMap<String, EnvTrust>,
}

/// What was verified of an env when it was unpacked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvTrust {
    /// `sha256:…` of the artifact's index: the only artifact `repair` and the kept copy may
    /// be, whoever hands it over later.
    pub index: String,
    /// The trusted key that signed it, when a signature was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// When it was signed, as the signature says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<u64>,
}

impl RootTrust {
    /// Reads the root's record through its `.envpack` handle, not following a link planted
    /// in its place; a missing file is an empty record.
    pub fn load(dirs: &RootDirs) -> Result<Self, UnpackError> {
        let path = dirs.layout.meta_dir().join(FILE);
        match crate::root_dirs::open_file_no_follow(&dirs.meta, FILE) {
            Ok(f) => Self::read_from(f, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty()),
            Err(e) => Err(UnpackError::at(e, &path)),
        }
    }

    /// Reads the record of the root at `root` without opening the root for writing (doctor).
    pub fn read(root: &Path) -> Result<Self, UnpackError> {
        let path = Self::path(root);
        match fs_err::File::open(&path) {
            Ok(f) => Self::read_from(f.into_parts().0, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty()),
            Err(e) => Err(e.into()),
        }
    }

    fn read_from(f: std::fs::File, path: &Path) -> Result<Self, UnpackError> {
        let bad = |detail: String| UnpackError::RootRecord {
            path: path.to_path_buf(),
            detail,
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut bytes)
            .map_err(|e| UnpackError::at(e, path))?;
        let trust: RootTrust = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if trust.schema != SCHEMA {
            return Err(bad(format!("schema {} is not supported", trust.schema)));
        }
        trust.required().map_err(|e| bad(e.to_string()))?;
        Ok(trust)
    }

    fn empty() -> Self {
        RootTrust {
            schema: SCHEMA,
            ..RootTrust::default()
        }
    }

    /// The keys the root requires (empty: it requires none).
    pub fn required(&self) -> Result<TrustedKeys, envpack_trust::TrustError> {
        let keys = self
            .required_keys
            .iter()
            .map(|k| PublicKey::parse(k, "a required key of the root"))
            .collect::<Result<_, _>>()?;
        Ok(TrustedKeys::new(keys))
    }

    /// Adds `keys` to the required ones.
    pub fn require(&mut self, keys: &TrustedKeys) {
        for k in keys.keys() {
            let line = k.to_base64();
            if !self.required_keys.contains(&line) {
                self.required_keys.push(line);
            }
        }
    }

    /// Whether the root requires signatures.
    pub fn requires_signature(&self) -> bool {
        !self.required_keys.is_empty()
    }

    /// Notes what was verified of `env_id` (its index, and its signature if one was checked),
    /// forgetting envs no longer in the root. An unsigned unpack of the same artifact keeps
    /// the signature noted before.
    pub fn note_env(
        &mut self,
        env_id: &str,
        index: &str,
        verified: Option<&Verified>,
        envs: &dyn Fn(&str) -> bool,
    ) {
        self.envs.retain(|id, _| envs(id));
        let kept = self
            .envs
            .get(env_id)
            .filter(|e| e.index == index && verified.is_none())
            .cloned();
        let entry = kept.unwrap_or_else(|| EnvTrust {
            index: index.to_owned(),
            key_id: verified.map(|v| v.key_id.to_string()),
            signed_at: verified.and_then(|v| v.claims.timestamp),
        });
        self.envs.insert(env_id.to_owned(), entry);
        if let Some(t) = verified.and_then(|v| v.claims.timestamp) {
            self.newest_signed = Some(self.newest_signed.map_or(t, |n| n.max(t)));
        }
    }

    /// Refuses `verified` for `env_id` if it was signed before the newest env this root
    /// accepted (or carries no time while the root has one).
    pub fn check_not_older(&self, env_id: &str, verified: &Verified) -> Result<(), UnpackError> {
        let Some(newest) = self.newest_signed else {
            return Ok(());
        };
        match verified.claims.timestamp {
            Some(t) if t >= newest => Ok(()),
            signed => Err(UnpackError::Downgrade {
                env_id: env_id.to_owned(),
                signed,
                newest,
            }),
        }
    }

    /// Checks that `index` is the index verified when `env_id` was unpacked. A root that
    /// requires signatures accepts no artifact for an env it has no verified index of.
    pub fn check_index(&self, env_id: &str, index: &str) -> Result<(), String> {
        match self.envs.get(env_id) {
            Some(e) if e.index == index => Ok(()),
            Some(e) => Err(format!(
                "its index is {index}, not the {} verified when {env_id} was unpacked",
                e.index
            )),
            None if self.requires_signature() => Err(format!(
                "the root requires signatures and no verified index of {env_id} is recorded; \
                 unpack a signed artifact of it instead"
            )),
            None => Ok(()),
        }
    }

    /// Replaces the record atomically.
    pub fn store_in(&self, dirs: &RootDirs) -> Result<(), UnpackError> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        crate::root_dirs::replace_file(&dirs.meta, FILE, &bytes, &dirs.layout.meta_dir())
    }

    /// Where the record lives in the root at `root`.
    pub fn path(root: &Path) -> std::path::PathBuf {
        crate::layout::RootLayout::new(root).meta_dir().join(FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envpack_trust::{Claims, KeyId};

    fn verified(at: Option<u64>) -> Verified {
        Verified {
            key_id: KeyId([1; 8]),
            claims: Claims {
                timestamp: at,
                ..Claims::default()
            },
        }
    }

    #[test]
    fn the_newest_signed_time_only_goes_up_and_refuses_older_or_timeless() {
        let mut t = RootTrust::empty();
        let all = |_: &str| true;
        t.note_env("a", "sha256:a", Some(&verified(Some(200))), &all);
        assert_eq!(t.newest_signed, Some(200));
        // (signed at, accepted)
        for (at, ok) in [
            (Some(200), true),
            (Some(300), true),
            (Some(199), false),
            (None, false),
        ] {
            assert_eq!(t.check_not_older("b", &verified(at)).is_ok(), ok, "{at:?}");
        }
        t.note_env("b", "sha256:b", Some(&verified(Some(100))), &all);
        assert_eq!(
            t.newest_signed,
            Some(200),
            "an allowed downgrade does not lower it"
        );
        // An unsigned unpack of the same artifact keeps what was verified of it.
        t.note_env("a", "sha256:a", None, &all);
        assert_eq!(t.envs["a"].key_id.as_deref(), Some("0101010101010101"));
        // Envs gone from the root are forgotten.
        t.note_env("c", "sha256:c", None, &|id| id != "b");
        assert!(!t.envs.contains_key("b"));
    }

    #[test]
    fn only_the_verified_index_may_stand_in_for_an_env() {
        let mut t = RootTrust::empty();
        t.note_env("a", "sha256:a", None, &|_| true);
        assert!(t.check_index("a", "sha256:a").is_ok());
        assert!(t
            .check_index("a", "sha256:b")
            .unwrap_err()
            .contains("not the sha256:a"));
        // No record and no policy: nothing to hold it to.
        assert!(t.check_index("z", "sha256:z").is_ok());
        t.required_keys.push("key".into());
        assert!(t
            .check_index("z", "sha256:z")
            .unwrap_err()
            .contains("requires signatures"));
    }
}
