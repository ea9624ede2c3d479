//! Registry credentials: `$REGISTRY_AUTH_FILE`, then `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`), each read by `docker_credential` (per-host credential
//! helpers `docker-credential-<name>`, inline entries, a default `credsStore`); the first file
//! with an answer wins, anonymous otherwise. What stays here is the order of the files (the
//! crate reads one) and errors that name the file and the host.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

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

/// The credentials an auth file (`bytes`, read from `path`) holds for `registry`, through its
/// `credHelpers` entry, an inline `identitytoken`, `auth` or `username`/`password`, or its
/// `credsStore`, in that order; `None` when it names none, or its helper has none.
pub fn from_auth_file(bytes: &[u8], path: &Path, registry: &str) -> Result<Option<Credentials>> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    let file = path.display();
    let detail = match docker_credential::get_credential_from_reader(bytes, registry) {
        Ok(DockerCredential::UsernamePassword(username, secret)) => {
            return Ok(Some(Credentials { username, secret }))
        }
        Ok(DockerCredential::IdentityToken(secret)) => {
            return Ok(Some(Credentials {
                username: "<token>".into(),
                secret,
            }))
        }
        Err(E::NoCredentialConfigured) => return Ok(None),
        Err(E::HelperFailure {
            helper,
            stdout,
            stderr,
        }) => {
            let text = format!("{}\n{}", stdout.trim(), stderr.trim());
            // Docker's helpers answer a host they hold nothing for this way, not with empty JSON.
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            format!(
                "{helper} get failed: {} (the helper is named in {file})",
                text.trim()
            )
        }
        Err(E::ConfigReadError) => {
            // The crate keeps serde's reason to itself; ask serde again for the message.
            let reason = serde_json::from_slice::<serde_json::Value>(bytes).err().map_or_else(
                || "its entries are not those of an auth file (auths, credHelpers, credsStore)".to_string(),
                |e| e.to_string(),
            );
            format!("{file} is not a valid auth file: {reason}")
        }
        Err(E::CredentialDecodingError) => {
            format!("the `auth` field in {file} is not base64 of user:password")
        }
        Err(E::CredentialMismatchError) => {
            format!("the `auth` field in {file} does not match its `username` and `password`")
        }
        Err(E::HelperCommunicationError) => format!(
            "a credential helper named in {file} could not be run (is its docker-credential-<name> on PATH?)"
        ),
        Err(E::MalformedHelperResponse) => format!(
            "a credential helper named in {file} printed something that is not credentials JSON"
        ),
        Err(other) => format!("{other} ({file})"),
    };
    Err(OciError::Credentials {
        host: registry.to_string(),
        detail,
    })
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

/// Looks `registry` up in the auth files, the first with an answer winning; `None` means
/// anonymous.
pub fn lookup(registry: &str) -> Result<Option<Credentials>> {
    for path in auth_files() {
        let bytes = match fs_err::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(c) = from_auth_file(&bytes, &path, registry)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str, host: &str) -> Result<Option<Credentials>> {
        from_auth_file(json.as_bytes(), Path::new("config.json"), host)
    }

    fn creds(u: &str, s: &str) -> Option<Credentials> {
        Some(Credentials {
            username: u.into(),
            secret: s.into(),
        })
    }

    #[test]
    fn inline_entries_and_their_precedence() {
        let f = r#"{"auths":{"https://reg.example/v1/":{"auth":"dXNlcjpwQHNz"},"plain.example":{"username":"u","password":"p"},"tok.example":{"identitytoken":"t0k","auth":"dXNlcjpwQHNz"},"unpadded.example":{"auth":"dXNlcjpwQHNzLys"},"empty.example":{}}}"#;
        assert_eq!(answer(f, "reg.example").unwrap(), creds("user", "p@ss"));
        assert_eq!(answer(f, "plain.example").unwrap(), creds("u", "p"));
        assert_eq!(answer(f, "tok.example").unwrap(), creds("<token>", "t0k"));
        // Tools differ on padding the `auth` field, so both forms are accepted.
        assert_eq!(
            answer(f, "unpadded.example").unwrap(),
            creds("user", "p@ss/+")
        );
        assert_eq!(answer(f, "empty.example").unwrap(), None);
        assert_eq!(answer(f, "other.example").unwrap(), None);
        assert_eq!(answer("{}", "x.example").unwrap(), None);
    }

    #[test]
    fn bad_files_and_entries_are_errors_naming_the_file() {
        let cases = [
            ("[", "is not a valid auth file"),
            (r#"{"auths":{"x.example":{"auth":"!!"}}}"#, "not base64"),
            (
                r#"{"auths":{"x.example":{"auth":"dXNlcg=="}}}"#,
                "not base64 of user:password",
            ),
            (
                r#"{"auths":{"x.example":{"auth":"dXNlcjpwQHNz","username":"u","password":"p"}}}"#,
                "does not match",
            ),
            (
                r#"{"credHelpers":{"x.example":"envpack-test-no-such-helper"}}"#,
                "could not be run",
            ),
        ];
        for (json, want) in cases {
            let e = answer(json, "x.example").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("config.json"), "{json}: {e}");
        }
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
}
