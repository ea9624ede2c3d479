//! Where things come from: index and mirror URLs, from flags, the environment and the spec.
//!
//! Precedence for the package index: `--index-url` > `ENVPACK_INDEX_URL` > `[packages].index` >
//! `PIP_INDEX_URL` > `UV_INDEX_URL`. The environment beats the spec so a mirror can be swapped
//! without editing the spec (which would make the lock stale).
//!
//! A bundle (`--bundle DIR` or `ENVPACK_BUNDLE`, made by `envpack bundle`) beats all of them:
//! it is the index (`DIR/simple/`), the CPython mirror (`DIR/python/`, explicitly pinned
//! archives included) and the base images (`DIR/oci/`), and `--index-url` beside it is refused.

use std::path::PathBuf;
use std::sync::OnceLock;

use url::Url;

/// The bundle given with `--bundle` (the CLI sets it once, before any command runs).
static BUNDLE_FLAG: OnceLock<PathBuf> = OnceLock::new();

/// The process environment, with `--bundle` standing in for `ENVPACK_BUNDLE`.
fn process_env(key: &str) -> Option<String> {
    if key == "ENVPACK_BUNDLE" {
        if let Some(dir) = BUNDLE_FLAG.get() {
            return Some(dir.display().to_string());
        }
    }
    std::env::var(key).ok()
}

/// Settles this process's bundle once, before any command runs: `flag` (`--bundle`), else a
/// non-empty `ENVPACK_BUNDLE`; it must be a directory `envpack bundle` wrote. Returns whether
/// there is one.
pub fn init_bundle(flag: Option<&std::path::Path>) -> Result<bool, ConfigError> {
    let dir = match flag {
        Some(dir) => {
            let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            check_bundle(&abs)?;
            Some(abs)
        }
        None => bundle_from(&|k| std::env::var(k).ok())?,
    };
    // Set once per process; a second call keeps the first (the CLI calls it once).
    if let Some(dir) = dir {
        let _ = BUNDLE_FLAG.set(dir);
    }
    Ok(bundle_in_use())
}

/// Whether [`init_bundle`] found a bundle.
pub fn bundle_in_use() -> bool {
    BUNDLE_FLAG.get().is_some()
}

fn check_bundle(dir: &std::path::Path) -> Result<(), ConfigError> {
    if dir.join(crate::bundle::SUMS_FILE).is_file() && dir.join("simple").is_dir() {
        Ok(())
    } else {
        Err(ConfigError::NotABundle(dir.to_path_buf()))
    }
}

/// The bundle in use, if any (`--bundle`, else `ENVPACK_BUNDLE`).
pub fn bundle() -> Result<Option<PathBuf>, ConfigError> {
    bundle_from(&process_env)
}

fn bundle_from(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<PathBuf>, ConfigError> {
    match env("ENVPACK_BUNDLE").filter(|s| !s.trim().is_empty()) {
        Some(dir) => {
            let dir = std::path::absolute(dir.trim()).unwrap_or_else(|_| dir.trim().into());
            check_bundle(&dir)?;
            Ok(Some(dir))
        }
        None => Ok(None),
    }
}

/// The bundle's subdirectory `sub` as a `file://` directory URL (a path with `#`, `?` or `%`
/// in it stays that path).
fn bundle_url(dir: &std::path::Path, sub: &str) -> Result<Url, ConfigError> {
    let path = dir.join(sub);
    Url::from_directory_path(&path).map_err(|()| ConfigError::NotABundle(path))
}

/// The OCI image layout that serves base images by digest when a bundle is in use (the
/// bundle's `oci/`, which then is the only source: a base missing from it is an error).
pub fn base_layout() -> Result<Option<PathBuf>, ConfigError> {
    Ok(bundle()?.map(|b| b.join("oci")))
}

/// The public python-build-standalone release location, used when nothing else is configured.
pub const DEFAULT_PYTHON_MIRROR: &str =
    "https://github.com/astral-sh/python-build-standalone/releases/download";

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No index anywhere.
    #[error("no package index configured: set ENVPACK_INDEX_URL (or [packages].index in the spec, or PIP_INDEX_URL) to a PEP 503/691 simple index such as https://mirror.example/simple/")]
    NoIndex,
    /// `--bundle` / `ENVPACK_BUNDLE` names something else.
    #[error("{} is not a bundle written by `envpack bundle` (it needs SHA256SUMS and simple/)", .0.display())]
    NotABundle(PathBuf),
    /// `--index-url` and a bundle at once.
    #[error("--index-url and a bundle (--bundle / ENVPACK_BUNDLE) both name the index; give one")]
    IndexAndBundle,
    /// A configured URL does not parse.
    #[error("{source_name} \"{}\" is not a URL: {error}", envpack_layers::shown_name(.value))]
    BadUrl {
        source_name: String,
        value: String,
        error: url::ParseError,
    },
}

/// Pick the first configured value from a list of (origin, value).
fn first(candidates: &[(&str, Option<String>)]) -> Option<(String, String)> {
    candidates.iter().find_map(|(name, v)| {
        v.as_ref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| (name.to_string(), s.trim().to_string()))
    })
}

fn parse_dir_url(origin: &str, value: &str) -> Result<Url, ConfigError> {
    // A plain path is a local directory.
    let with_scheme = if value.contains("://") {
        value.to_string()
    } else {
        let abs = std::path::absolute(value).unwrap_or_else(|_| value.into());
        format!("file://{}", abs.display())
    };
    let with_slash = if with_scheme.ends_with('/') {
        with_scheme
    } else {
        format!("{with_scheme}/")
    };
    Url::parse(&with_slash).map_err(|error| ConfigError::BadUrl {
        source_name: origin.to_string(),
        value: value.to_string(),
        error,
    })
}

/// The package index to resolve and fetch from.
pub fn index_url(flag: Option<&str>, spec_index: Option<&str>) -> Result<Url, ConfigError> {
    index_url_from(flag, spec_index, &process_env)
}

/// `index_url`, or none when nothing names an index (any other problem is an error).
pub fn index_url_if_any(
    flag: Option<&str>,
    spec_index: Option<&str>,
) -> Result<Option<Url>, ConfigError> {
    match index_url(flag, spec_index) {
        Ok(url) => Ok(Some(url)),
        Err(ConfigError::NoIndex) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `index_url` with an injectable environment (for tests).
pub fn index_url_from(
    flag: Option<&str>,
    spec_index: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Url, ConfigError> {
    if let Some(dir) = bundle_from(env)? {
        if flag.is_some_and(|f| !f.trim().is_empty()) {
            return Err(ConfigError::IndexAndBundle);
        }
        return bundle_url(&dir, "simple");
    }
    let (origin, value) = first(&[
        ("--index-url", flag.map(str::to_string)),
        ("ENVPACK_INDEX_URL", env("ENVPACK_INDEX_URL")),
        ("[packages].index", spec_index.map(str::to_string)),
        ("PIP_INDEX_URL", env("PIP_INDEX_URL")),
        ("UV_INDEX_URL", env("UV_INDEX_URL")),
    ])
    .ok_or(ConfigError::NoIndex)?;
    parse_dir_url(&origin, &value)
}

/// The CPython mirror: `ENVPACK_PYTHON_MIRROR` > `[python].mirror` > the public release location.
pub fn python_mirror(spec_mirror: Option<&str>) -> Result<Url, ConfigError> {
    python_mirror_from(spec_mirror, &process_env)
}

/// `python_mirror` with an injectable environment (for tests).
pub fn python_mirror_from(
    spec_mirror: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Url, ConfigError> {
    if let Some(dir) = bundle_from(env)? {
        return bundle_url(&dir, "python");
    }
    let (origin, value) = first(&[
        ("ENVPACK_PYTHON_MIRROR", env("ENVPACK_PYTHON_MIRROR")),
        ("[python].mirror", spec_mirror.map(str::to_string)),
    ])
    .unwrap_or(("default".into(), DEFAULT_PYTHON_MIRROR.into()));
    parse_dir_url(&origin, &value)
}

/// Where Conan sources are fetched from instead of their pinned URLs: `ENVPACK_SOURCE_MIRROR`
/// (a directory URL or path holding each source under its URL's file name), if set.
pub fn source_mirror() -> Result<Option<Url>, ConfigError> {
    match first(&[(
        "ENVPACK_SOURCE_MIRROR",
        process_env("ENVPACK_SOURCE_MIRROR"),
    )]) {
        Some((origin, value)) => parse_dir_url(&origin, &value).map(Some),
        None => Ok(None),
    }
}

/// The build timestamp: `SOURCE_DATE_EPOCH` overrides the lock's epoch.
pub fn epoch(lock_epoch: u64) -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(lock_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    /// (flag, spec index, environment, expected URL)
    type IndexCase = (
        Option<&'static str>,
        Option<&'static str>,
        &'static [(&'static str, &'static str)],
        &'static str,
    );

    #[test]
    fn index_precedence() {
        let cases: &[IndexCase] = &[
            (
                Some("http://flag/simple"),
                Some("http://spec/"),
                &[("ENVPACK_INDEX_URL", "http://env/")],
                "http://flag/simple/",
            ),
            (
                None,
                Some("http://spec/"),
                &[("ENVPACK_INDEX_URL", "http://env/s")],
                "http://env/s/",
            ),
            (
                None,
                Some("http://spec/s/"),
                &[("PIP_INDEX_URL", "http://pip/")],
                "http://spec/s/",
            ),
            (
                None,
                None,
                &[
                    ("PIP_INDEX_URL", "http://pip/"),
                    ("UV_INDEX_URL", "http://uv/"),
                ],
                "http://pip/",
            ),
            (None, None, &[("UV_INDEX_URL", "http://uv/")], "http://uv/"),
            (
                None,
                None,
                &[("ENVPACK_INDEX_URL", "  "), ("UV_INDEX_URL", "http://uv/")],
                "http://uv/",
            ),
            (
                None,
                None,
                &[("ENVPACK_INDEX_URL", "/srv/index")],
                "file:///srv/index/",
            ),
        ];
        for (flag, spec, env, want) in cases {
            let got = index_url_from(*flag, *spec, &env_of(env)).unwrap();
            assert_eq!(got.as_str(), *want);
        }
    }

    #[test]
    fn a_bundle_is_the_index_and_the_mirror_and_refuses_a_second_index() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().to_path_buf();
        let value = b.display().to_string();
        let env = move |k: &str| match k {
            "ENVPACK_BUNDLE" => Some(value.clone()),
            "ENVPACK_INDEX_URL" => Some("http://env/".into()),
            "ENVPACK_PYTHON_MIRROR" => Some("http://mirror/".into()),
            _ => None,
        };
        // Not a bundle yet: named, not ignored.
        let err = index_url_from(None, None, &env).unwrap_err().to_string();
        assert!(err.contains("is not a bundle"), "{err}");
        std::fs::create_dir(b.join("simple")).unwrap();
        std::fs::write(b.join(crate::bundle::SUMS_FILE), "").unwrap();
        let index = index_url_from(None, Some("http://spec/"), &env).unwrap();
        assert_eq!(index, Url::from_directory_path(b.join("simple")).unwrap());
        let mirror = python_mirror_from(Some("http://spec/"), &env).unwrap();
        assert_eq!(mirror, Url::from_directory_path(b.join("python")).unwrap());
        let err = index_url_from(Some("http://flag/"), None, &env).unwrap_err();
        assert!(matches!(err, ConfigError::IndexAndBundle), "{err}");
    }

    #[test]
    fn no_index_is_a_clear_error() {
        let err = index_url_from(None, None, &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("ENVPACK_INDEX_URL"));
    }

    #[test]
    fn mirror_precedence() {
        let m = python_mirror_from(
            Some("http://spec/m"),
            &env_of(&[("ENVPACK_PYTHON_MIRROR", "file:///m")]),
        )
        .unwrap();
        assert_eq!(m.as_str(), "file:///m/");
        let m = python_mirror_from(Some("http://spec/m"), &env_of(&[])).unwrap();
        assert_eq!(m.as_str(), "http://spec/m/");
        let m = python_mirror_from(None, &env_of(&[])).unwrap();
        assert!(m.as_str().starts_with(DEFAULT_PYTHON_MIRROR));
    }

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let cases: Vec<(ConfigError, &str)> = vec![
            (
                ConfigError::NoIndex,
                "no package index configured: set ENVPACK_INDEX_URL (or [packages].index in the \
                 spec, or PIP_INDEX_URL) to a PEP 503/691 simple index such as \
                 https://mirror.example/simple/",
            ),
            (
                ConfigError::NotABundle(PathBuf::from("/media/usb/bundle")),
                "/media/usb/bundle is not a bundle written by `envpack bundle` (it needs \
                 SHA256SUMS and simple/)",
            ),
            (
                ConfigError::IndexAndBundle,
                "--index-url and a bundle (--bundle / ENVPACK_BUNDLE) both name the index; give \
                 one",
            ),
            (
                ConfigError::BadUrl {
                    source_name: "ENVPACK_INDEX_URL".into(),
                    value: "http://\n".into(),
                    error: url::ParseError::EmptyHost,
                },
                "ENVPACK_INDEX_URL \"http://\\n\" is not a URL: empty host",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
