//! Registry credentials: `$REGISTRY_AUTH_FILE`, then `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`), each with per-host credential helpers
//! (`docker-credential-<name>`), inline `auth`, or a default `credsStore`; anonymous otherwise.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use base64::Engine as _;
use serde::Deserialize;

use crate::error::{OciError, Result};

/// A user name and secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (`<token>` for identity tokens).
    pub username: String,
    /// Password or token.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.username, self.secret))
        )
    }
}

/// The parts of a Docker/containers auth file we read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthFile {
    /// Per-host inline entries.
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    /// Per-host helper names.
    #[serde(default)]
    pub cred_helpers: BTreeMap<String, String>,
    /// Helper for every host without another entry.
    #[serde(default)]
    pub creds_store: Option<String>,
}

/// One `auths` entry.
#[derive(Debug, Default, Deserialize)]
pub struct AuthEntry {
    /// base64 of `user:password`.
    #[serde(default)]
    pub auth: Option<String>,
    /// Plain user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Plain password.
    #[serde(default)]
    pub password: Option<String>,
    /// OAuth2 refresh token, sent as password with user `<token>`.
    #[serde(default)]
    pub identitytoken: Option<String>,
}

/// Where a host's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Inline in the file.
    Inline(Credentials),
    /// Ask `docker-credential-<name>`.
    Helper(String),
}

/// `auths` keys may be bare hosts or URLs (`https://host/v1/`); this strips the decoration.
fn auth_key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

impl AuthFile {
    /// Parses an auth file's JSON.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| OciError::Credentials {
            host: "*".into(),
            detail: format!("{} is not a valid auth file: {e}", path.display()),
        })
    }

    /// The source of `registry`'s credentials in this file, if it has one.
    pub fn source_for(&self, registry: &str) -> Result<Option<CredentialSource>> {
        if let Some(helper) = self.cred_helpers.get(registry) {
            return Ok(Some(CredentialSource::Helper(helper.clone())));
        }
        if let Some(entry) = self
            .auths
            .iter()
            .find(|(k, _)| auth_key_host(k) == registry)
            .map(|(_, v)| v)
        {
            if let Some(c) = inline(entry, registry)? {
                return Ok(Some(CredentialSource::Inline(c)));
            }
        }
        Ok(self.creds_store.clone().map(CredentialSource::Helper))
    }
}

fn inline(entry: &AuthEntry, registry: &str) -> Result<Option<Credentials>> {
    if let Some(token) = &entry.identitytoken {
        return Ok(Some(Credentials {
            username: "<token>".into(),
            secret: token.clone(),
        }));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = |detail: &str| OciError::Credentials {
            host: registry.to_string(),
            detail: detail.to_string(),
        };
        // Tools differ on padding the `auth` field, so both forms are accepted.
        let raw = STANDARD_PAD_INDIFFERENT
            .decode(auth.trim())
            .map_err(|_| bad("the `auth` field is not base64"))?;
        let text = String::from_utf8(raw).map_err(|_| bad("the `auth` field is not UTF-8"))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| bad("the `auth` field is not base64 of user:password"))?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            secret: p.to_string(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.clone(),
            secret: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// The auth files to consult, in order.
pub fn auth_files() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut files = Vec::new();
    if let Some(f) = var("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = var("DOCKER_CONFIG") {
        files.push(PathBuf::from(d).join("config.json"));
    } else if let Some(h) = var("HOME") {
        files.push(PathBuf::from(h).join(".docker").join("config.json"));
    }
    files
}

/// Looks `registry` up in the auth files; `None` means anonymous.
pub fn lookup(registry: &str) -> Result<Option<Credentials>> {
    for path in auth_files() {
        let bytes = match fs_err::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let file = AuthFile::parse(&bytes, &path)?;
        match file.source_for(registry)? {
            Some(CredentialSource::Inline(c)) => return Ok(Some(c)),
            Some(CredentialSource::Helper(name)) => {
                // The helper's own words, and which file sent us to it.
                let found = run_helper(&name, registry).map_err(|e| match e {
                    OciError::Credentials { host, detail } => OciError::Credentials {
                        host,
                        detail: format!("{detail} (the helper is named in {})", path.display()),
                    },
                    other => other,
                })?;
                if let Some(c) = found {
                    return Ok(Some(c));
                }
            }
            None => {}
        }
    }
    Ok(None)
}

/// The answer of `docker-credential-<name> get`.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Runs `docker-credential-<name> get` with the host on stdin; `None` when it has nothing.
pub fn run_helper(name: &str, registry: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{name}");
    let fail = |detail: String| OciError::Credentials {
        host: registry.to_string(),
        detail,
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("running {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| fail(format!("writing to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for {program}: {e}")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{program} get failed ({}): {}",
            out.status,
            text.trim()
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|e| {
        fail(format!(
            "{program} printed something that is not credentials JSON: {e}"
        ))
    })?;
    Ok(Some(Credentials {
        username: answer.username,
        secret: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> AuthFile {
        AuthFile::parse(json.as_bytes(), Path::new("config.json")).unwrap()
    }

    #[test]
    fn sources_in_precedence_order() {
        let f = file(
            r#"{"auths":{"https://reg.example/v1/":{"auth":"dXNlcjpwQHNz"},"plain.example":{"username":"u","password":"p"},"tok.example":{"identitytoken":"t0k"},"empty.example":{}},
                "credHelpers":{"helped.example":"pass"},"credsStore":"desktop"}"#,
        );
        let inl = |u: &str, s: &str| {
            Some(CredentialSource::Inline(Credentials {
                username: u.into(),
                secret: s.into(),
            }))
        };
        assert_eq!(f.source_for("reg.example").unwrap(), inl("user", "p@ss"));
        assert_eq!(f.source_for("plain.example").unwrap(), inl("u", "p"));
        assert_eq!(f.source_for("tok.example").unwrap(), inl("<token>", "t0k"));
        assert_eq!(
            f.source_for("helped.example").unwrap(),
            Some(CredentialSource::Helper("pass".into()))
        );
        assert_eq!(
            f.source_for("empty.example").unwrap(),
            Some(CredentialSource::Helper("desktop".into()))
        );
        assert_eq!(file("{}").source_for("x.example").unwrap(), None);
        assert!(file(r#"{"auths":{"x.example":{"auth":"!!"}}}"#)
            .source_for("x.example")
            .is_err());
        assert!(AuthFile::parse(b"[", Path::new("c.json")).is_err());
    }

    #[test]
    fn basic_header_and_debug_hide_nothing_they_shouldnt() {
        let c = Credentials {
            username: "user".into(),
            secret: "p@ss".into(),
        };
        assert_eq!(c.basic_header(), "Basic dXNlcjpwQHNz");
        assert!(!format!("{c:?}").contains("p@ss"));
    }

    #[test]
    fn rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("user:p@ss/+", "dXNlcjpwQHNzLys="),
        ];
        for (plain, enc) in cases {
            assert_eq!(STANDARD.encode(plain), enc, "{plain}");
            assert_eq!(
                STANDARD_PAD_INDIFFERENT.decode(enc).unwrap(),
                plain.as_bytes(),
                "{enc}"
            );
        }
        assert_eq!(STANDARD_PAD_INDIFFERENT.decode("Zm9vYg").unwrap(), b"foob");
        assert!(STANDARD_PAD_INDIFFERENT.decode("Zm9v!").is_err());
        assert!(STANDARD_PAD_INDIFFERENT.decode("Z").is_err());
        let unpadded = file(r#"{"auths":{"x.example":{"auth":"dXNlcjpwQHNzLys"}}}"#);
        assert_eq!(
            unpadded.source_for("x.example").unwrap(),
            Some(CredentialSource::Inline(Credentials {
                username: "user".into(),
                secret: "p@ss/+".into(),
            }))
        );
    }
}
