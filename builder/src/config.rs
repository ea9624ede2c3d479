//! Where things come from: index and mirror URLs, from flags, the environment and the spec.
//!
//! Precedence for the package index: `--index-url` > `ENVPACK_INDEX_URL` > `[packages].index` >
//! `PIP_INDEX_URL` > `UV_INDEX_URL`. The environment beats the spec so a mirror can be swapped
//! without editing the spec (which would make the lock stale).

use url::Url;

/// The public python-build-standalone release location, used when nothing else is configured.
pub const DEFAULT_PYTHON_MIRROR: &str =
    "https://github.com/astral-sh/python-build-standalone/releases/download";

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No index anywhere.
    #[error("no package index configured: set ENVPACK_INDEX_URL (or [packages].index in the spec, or PIP_INDEX_URL) to a PEP 503/691 simple index such as https://mirror.example/simple/")]
    NoIndex,
    /// A configured URL does not parse.
    #[error("{source_name} {value:?} is not a URL: {error}")]
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
    index_url_from(flag, spec_index, &|k| std::env::var(k).ok())
}

/// `index_url` with an injectable environment (for tests).
pub fn index_url_from(
    flag: Option<&str>,
    spec_index: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Url, ConfigError> {
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
    python_mirror_from(spec_mirror, &|k| std::env::var(k).ok())
}

/// `python_mirror` with an injectable environment (for tests).
pub fn python_mirror_from(
    spec_mirror: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Url, ConfigError> {
    let (origin, value) = first(&[
        ("ENVPACK_PYTHON_MIRROR", env("ENVPACK_PYTHON_MIRROR")),
        ("[python].mirror", spec_mirror.map(str::to_string)),
    ])
    .unwrap_or(("default".into(), DEFAULT_PYTHON_MIRROR.into()));
    parse_dir_url(&origin, &value)
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
}
