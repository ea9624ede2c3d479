//! Registry credentials: `$REGISTRY_AUTH_FILE`, then `~/.docker/config.json` (or
//! `$DOCKER_CONFIG/config.json`). Each file is read by `docker_credential`, which applies
//! Docker's order: a per-host credential helper (`docker-credential-<name>`), inline
//! `identitytoken` / `auth` / `username`+`password`, then the default `credsStore`.
//! Anonymous when no file has anything for the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use serde::Deserialize;

use super::error::{RegistryError, Result};

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
        if let Some(c) = from_auth_file(&bytes, &path, registry)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// `registry`'s credentials in one auth file (`bytes`, read from `path`), running the helper
/// it names if any; `None` when the file (or its helper) has nothing for that host.
pub fn from_auth_file(bytes: &[u8], path: &Path, registry: &str) -> Result<Option<Credentials>> {
    let err = |detail: String| RegistryError::Credentials {
        host: registry.to_string(),
        detail,
    };
    let file = path.display();
    match docker_credential::get_credential_from_reader(bytes, registry) {
        Ok(DockerCredential::IdentityToken(token)) => Ok(Some(Credentials {
            username: "<token>".into(),
            secret: token,
        })),
        Ok(DockerCredential::UsernamePassword(username, secret)) => {
            Ok(Some(Credentials { username, secret }))
        }
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(None),
        Err(CredentialRetrievalError::HelperFailure {
            helper,
            stdout,
            stderr,
        }) => {
            let text = format!("{} {}", stdout.trim(), stderr.trim());
            // Docker's helpers say so when they simply hold nothing for the host; like an
            // absent entry, that lets the next auth file answer.
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            Err(err(format!(
                "{helper} get (named in {file}) failed: {}",
                text.trim()
            )))
        }
        Err(CredentialRetrievalError::HelperCommunicationError) => Err(err(format!(
            "could not run {} (named in {file}); is it on PATH?",
            helper_program(bytes, registry)
        ))),
        Err(CredentialRetrievalError::MalformedHelperResponse) => Err(err(format!(
            "{} (named in {file}) printed something that is not credentials JSON",
            helper_program(bytes, registry)
        ))),
        Err(CredentialRetrievalError::CredentialDecodingError) => Err(err(format!(
            "the `auth` field in {file} is not base64 of user:password"
        ))),
        Err(CredentialRetrievalError::CredentialMismatchError) => Err(err(format!(
            "in {file}, the `auth` field and the `username`/`password` fields disagree"
        ))),
        Err(
            CredentialRetrievalError::ConfigReadError | CredentialRetrievalError::ConfigNotFound,
        ) => {
            let detail = match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Err(e) => e.to_string(),
                Ok(_) => "`auths`, `credHelpers` or `credsStore` has the wrong shape".into(),
            };
            Err(RegistryError::Credentials {
                host: "*".into(),
                detail: format!("{file} is not a valid auth file: {detail}"),
            })
        }
    }
}

/// Only the helper names of an auth file, to say which helper failed.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HelperNames {
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default)]
    creds_store: Option<String>,
}

/// The program `docker_credential` ran for `registry`: its `credHelpers` entry, else the
/// `credsStore` (the crate reports a failure to run either without naming it).
fn helper_program(bytes: &[u8], registry: &str) -> String {
    let names: HelperNames = serde_json::from_slice(bytes).unwrap_or_default();
    let name = names
        .cred_helpers
        .get(registry)
        .filter(|n| !n.is_empty())
        .cloned()
        .or(names.creds_store);
    match name {
        Some(n) => format!("docker-credential-{n}"),
        None => "its credential helper".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;

    fn get(json: &str, host: &str) -> Result<Option<Credentials>> {
        from_auth_file(json.as_bytes(), Path::new("/cfg/config.json"), host)
    }

    fn creds(u: &str, s: &str) -> Option<Credentials> {
        Some(Credentials {
            username: u.into(),
            secret: s.into(),
        })
    }

    #[test]
    fn sources_in_precedence_order() {
        // Helpers that can't exist show which one was chosen, without touching PATH.
        let f = r#"{"auths":{"https://reg.example/v1/":{"auth":"dXNlcjpwQHNz"},"plain.example":{"username":"u","password":"p"},"tok.example":{"identitytoken":"t0k"},"empty.example":{},"helped.example":{"auth":"dXNlcjpwQHNz"}},
                "credHelpers":{"helped.example":"envpack-absent-helper"},"credsStore":"envpack-absent-store"}"#;
        assert_eq!(get(f, "reg.example").unwrap(), creds("user", "p@ss"));
        assert_eq!(get(f, "plain.example").unwrap(), creds("u", "p"));
        assert_eq!(get(f, "tok.example").unwrap(), creds("<token>", "t0k"));
        for (host, helper) in [
            ("helped.example", "docker-credential-envpack-absent-helper"),
            ("empty.example", "docker-credential-envpack-absent-store"),
            ("other.example", "docker-credential-envpack-absent-store"),
        ] {
            let e = get(f, host).unwrap_err().to_string();
            assert!(
                e.contains(host) && e.contains(helper) && e.contains("/cfg/config.json"),
                "{e}"
            );
        }
        assert_eq!(get("{}", "x.example").unwrap(), None);
        assert_eq!(get(r#"{"auths":{}}"#, "x.example").unwrap(), None);
    }

    #[test]
    fn bad_files_are_named_without_debug_text() {
        for (json, want) in [
            (r#"{"auths":{"x.example":{"auth":"!!"}}}"#, "not base64"),
            (
                r#"{"auths":{"x.example":{"auth":"bm9jb2xvbg=="}}}"#,
                "not base64 of user:password",
            ),
            (
                r#"{"auths":{"x.example":{"auth":"dTpw","username":"u","password":"q"}}}"#,
                "disagree",
            ),
            ("[", "not a valid auth file: EOF"),
            (r#"{"auths":[]}"#, "wrong shape"),
        ] {
            let e = get(json, "x.example").unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("/cfg/config.json"), "{e}");
            assert!(!e.contains("Error") && !e.contains('{'), "{e}");
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
        // Tools differ on padding the `auth` field; both forms are read.
        for auth in ["dXNlcjpwQHNzLys=", "dXNlcjpwQHNzLys"] {
            let json = format!(r#"{{"auths":{{"x.example":{{"auth":"{auth}"}}}}}}"#);
            assert_eq!(get(&json, "x.example").unwrap(), creds("user", "p@ss/+"));
        }
    }
}
