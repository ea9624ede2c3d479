//! The hand-written environment spec (`envpack.toml`): parsing, validation and its canonical hash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use envpack_layers::digest::Sha256Digest;
use serde::Deserialize;

use crate::toml_place::line_col;

mod content;
mod validate;

pub use content::{RecipeSpec, SourceSpec};
use validate::{check_files, validate};
pub use validate::{is_name_char, is_release_tag, spec_dir, spec_file};

pub use crate::target::PlatformSettings;

/// Default python-build-standalone variant.
pub const DEFAULT_VARIANT: &str = "install_only_stripped";

/// Errors reading or validating a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec file could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// TOML syntax or schema error, with position.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// There is no spec file where one was looked for.
    #[error("no spec file {path} in {dir}; name the spec with --spec PATH (the default is envpack.toml in the current directory)")]
    NotFound { path: String, dir: String },
    /// Too large or not UTF-8.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// A semantic problem in an otherwise well-formed spec.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A semantic problem at a known place of the spec.
    #[error("{path}:{line}:{column}: {message}")]
    InvalidAt {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// `[env]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    /// Environment name; becomes part of the env-id and artifact names.
    pub name: String,
    /// Target platforms, names of files in `platforms/`.
    pub platforms: Vec<String>,
}

/// An explicitly pinned CPython archive for one platform (e.g. a private build).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonFile {
    /// Where to download it.
    pub url: String,
    /// Its sha256 (hex).
    pub sha256: String,
}

/// `[python]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonSection {
    /// Full CPython version, e.g. "3.12.7".
    pub version: String,
    /// python-build-standalone release tag, e.g. "20241016".
    pub build: String,
    /// Archive variant.
    #[serde(default = "default_variant")]
    pub variant: String,
    /// Mirror laid out like the release pages (`{mirror}/{build}/{file}`).
    #[serde(default)]
    pub mirror: Option<String>,
    /// Explicit archives per platform, overriding the mirror.
    #[serde(default)]
    pub files: BTreeMap<String, PythonFile>,
}

fn default_variant() -> String {
    DEFAULT_VARIANT.to_string()
}

/// `[packages]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackagesSection {
    /// PEP 508 requirements.
    pub requirements: Vec<String>,
    /// Simple index URL (PEP 503/691); environment variables override it.
    #[serde(default)]
    pub index: Option<String>,
}

/// One Conan remote.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteSpec {
    /// Remote name.
    pub name: String,
    /// Remote URL.
    pub url: String,
    /// Whether Conan verifies TLS for it.
    #[serde(rename = "verify-ssl", default = "default_true")]
    pub verify_ssl: bool,
}

fn default_true() -> bool {
    true
}

/// A profile file: one for all platforms, or one per platform.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ProfileSource {
    /// The same file for every platform.
    All(String),
    /// A file per platform name; platforms not listed don't get this profile.
    PerPlatform(BTreeMap<String, String>),
}

/// `[conan]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConanSection {
    /// Remotes, in priority order.
    #[serde(default)]
    pub remotes: Vec<RemoteSpec>,
    /// Profiles by name (files next to the spec).
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileSource>,
    /// Extra CONAN_HOME files: path inside CONAN_HOME → file next to the spec.
    #[serde(default, rename = "home-files")]
    pub home_files: BTreeMap<String, String>,
    /// A `conan config install` tree next to the spec: every file goes into CONAN_HOME.
    #[serde(default)]
    pub config: Option<String>,
    /// Recipes and `python_requires` packages the env carries.
    #[serde(default)]
    pub recipes: Vec<RecipeSpec>,
    /// Upstream sources the recipes download.
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
}

/// A base image reference: one for all platforms, or one per platform.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum BaseSource {
    /// The same reference for every platform (a multi-platform index, usually).
    All(String),
    /// A reference per platform name; platforms not listed are `FROM scratch`.
    PerPlatform(BTreeMap<String, String>),
}

/// `[image]`
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// Base image (`HOST/REPO:TAG`), resolved to a digest per platform by `lock`.
    #[serde(default)]
    pub base: Option<BaseSource>,
}

impl ImageSection {
    /// The base reference for `platform`, if it has one.
    pub fn base_for(&self, platform: &str) -> Option<&str> {
        match &self.base {
            None => None,
            Some(BaseSource::All(r)) => Some(r),
            Some(BaseSource::PerPlatform(m)) => m.get(platform).map(String::as_str),
        }
    }
}

/// The whole spec as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `[env]`
    pub env: EnvSection,
    /// `[python]`
    pub python: PythonSection,
    /// `[packages]`
    pub packages: PackagesSection,
    /// `[conan]`
    #[serde(default)]
    pub conan: ConanSection,
    /// `[image]`
    #[serde(default)]
    pub image: ImageSection,
    /// `[platforms.<name>]`: target settings per platform.
    #[serde(default)]
    pub platforms: BTreeMap<String, PlatformSettings>,
}

/// A parsed spec together with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The parsed spec.
    pub spec: Spec,
    /// The spec file.
    pub path: PathBuf,
    /// Canonical hash of the parsed spec (comments/formatting don't change it).
    pub hash: Sha256Digest,
    /// The spec's text, to place errors found later.
    pub text: String,
}

impl LoadedSpec {
    /// Directory relative files (profiles, home files) are resolved against.
    pub fn base_dir(&self) -> &Path {
        dir_of(&self.path)
    }

    /// `file:line:column` of the `i`th of `packages.requirements` (the file alone if the text
    /// doesn't say).
    pub fn requirement_place(&self, i: usize) -> String {
        use crate::toml_place::{place, Key::*};
        let file = self.path.display();
        match place(
            &self.text,
            &[Name("packages"), Name("requirements"), Index(i)],
        ) {
            Some((line, column)) => format!("{file}:{line}:{column}"),
            None => file.to_string(),
        }
    }
}

/// The directory of a spec file ("." for a bare file name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Read, parse and validate a spec file.
pub fn load(path: &Path) -> Result<LoadedSpec, SpecError> {
    if !path.exists() {
        let dir = dir_of(path);
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        return Err(SpecError::NotFound {
            path: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            dir: dir.display().to_string(),
        });
    }
    let text = crate::input::read_text(path, crate::input::MAX_SPEC_BYTES, "spec")?;
    let origin = path.display().to_string();
    let spec = parse(&text, &origin)?;
    check_files(&spec, &text, &origin, dir_of(path))?;
    let hash = canonical_hash(&text, &origin)?;
    Ok(LoadedSpec {
        spec,
        path: path.to_path_buf(),
        hash,
        text,
    })
}

/// Parse and validate spec text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Spec, SpecError> {
    let spec: Spec = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
    validate(&spec, text, origin)?;
    Ok(spec)
}

/// Convert a TOML error into one with line and column.
pub(crate) fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> SpecError {
    let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
    SpecError::Parse {
        path: origin.to_string(),
        line,
        column,
        message: e.message().to_string(),
    }
}

/// sha256 over the spec's canonical form: the parsed TOML re-serialized as JSON with sorted
/// keys, so comments, ordering and line endings don't make a lock stale.
pub fn canonical_hash(text: &str, origin: &str) -> Result<Sha256Digest, SpecError> {
    let value: toml::Value = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
    let json = serde_json::to_value(&value).map_err(|e| SpecError::Invalid {
        path: origin.to_string(),
        message: e.to_string(),
    })?;
    // serde_json's Map is a BTreeMap here (no preserve_order feature): keys come out sorted.
    let bytes = serde_json::to_vec(&json).map_err(|e| SpecError::Invalid {
        path: origin.to_string(),
        message: e.to_string(),
    })?;
    Ok(Sha256Digest::of_bytes(&bytes))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) const GOOD: &str = r#"
[env]
name = "openssl-devenv"
platforms = ["linux-x86_64", "windows-x86_64"]

[python]
version = "3.12.7"
build = "20241016"

[packages]
requirements = ["conan==2.21.0"]

[conan]
remotes = [{ name = "openssl-conan", url = "https://conan.example.org/api/conan/openssl", verify-ssl = true }]
profiles = { default = "profiles/linux-gcc12", msvc = { windows-x86_64 = "profiles/msvc" } }
"#;

    #[test]
    fn parses_the_documented_shape() {
        let s = parse(GOOD, "envpack.toml").unwrap();
        assert_eq!(s.env.name, "openssl-devenv");
        assert_eq!(s.python.variant, DEFAULT_VARIANT);
        assert_eq!(s.conan.remotes[0].name, "openssl-conan");
        assert!(s.conan.remotes[0].verify_ssl);
        assert_eq!(
            s.conan.profiles["default"],
            ProfileSource::All("profiles/linux-gcc12".into())
        );
        assert!(matches!(
            s.conan.profiles["msvc"],
            ProfileSource::PerPlatform(_)
        ));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let cases = [
            (
                "[env]\nname = \"x\"\nplatforms = [\"linux-x86_64\"]\nbogus = 1\n",
                4,
                "unknown field",
            ),
            ("[env]\nname = \"x\nplatforms = []\n", 2, ""),
        ];
        for (text, want_line, want_msg) in cases {
            match parse(text, "s.toml") {
                Err(SpecError::Parse { line, message, .. }) => {
                    assert_eq!(line, want_line, "{text}: {message}");
                    assert!(message.contains(want_msg), "{message}");
                }
                other => panic!("{text}: expected parse error, got {other:?}"),
            }
        }
    }

    #[test]
    fn semantic_errors_name_the_problem() {
        let cases = [
            (
                GOOD.replace("linux-x86_64\", \"windows", "plan9-mips\", \"windows"),
                "plan9-mips",
            ),
            (GOOD.replace("3.12.7", "3.12"), "full CPython 3 version"),
            (
                GOOD.replace("conan==2.21.0", "conan=== ="),
                "packages.requirements",
            ),
            (GOOD.replace("openssl-devenv", "../evil"), "env.name"),
            (
                GOOD.replace("msvc = { windows-x86_64", "msvc = { macos-arm64"),
                "not in env.platforms",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text, "s.toml").unwrap_err().to_string();
            assert!(err.contains(want), "want {want:?} in {err}");
        }
    }

    #[test]
    fn platform_targets_raise_the_wheel_target() {
        let s = parse(
            &format!("{GOOD}\n[platforms.linux-x86_64]\nglibc = \"2.28\"\n"),
            "s.toml",
        )
        .unwrap();
        let p = s.platform("linux-x86_64").unwrap();
        assert_eq!(p.target_text().as_deref(), Some("glibc 2.28"));
        assert_eq!(
            s.platform("windows-x86_64").unwrap(),
            envpack_pypkg::platform_by_name("windows-x86_64").unwrap()
        );
        for (bad, want) in [
            ("[platforms.linux-x86_64]\nglibc = \"2.5\"", "below 2.17"),
            ("[platforms.linux-x86_64]\nmusl = \"1.2\"", "unknown field"),
            (
                "[platforms.linux-x86_64]\nmacos = \"10.15\"",
                "platforms.linux-x86_64.macos",
            ),
            (
                "[platforms.macos-arm64]\nmacos = \"12.0\"",
                "not in env.platforms",
            ),
            (
                "[platforms.windows-x86_64]\nglibc = \"2.28\"",
                "no target setting",
            ),
            ("[platforms.linux-x86_64]", "sets nothing"),
        ] {
            let err = parse(&format!("{GOOD}\n{bad}\n"), "s.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn image_base_for_all_or_per_platform() {
        let all = parse(
            &format!("{GOOD}\n[image]\nbase = \"registry.example/base/debian:12\"\n"),
            "s.toml",
        )
        .unwrap();
        assert_eq!(
            all.image.base_for("linux-x86_64"),
            Some("registry.example/base/debian:12")
        );
        let per = parse(
            &format!("{GOOD}\n[image]\nbase = {{ linux-x86_64 = \"127.0.0.1:5000/b:1\" }}\n"),
            "s.toml",
        )
        .unwrap();
        assert_eq!(
            per.image.base_for("linux-x86_64"),
            Some("127.0.0.1:5000/b:1")
        );
        assert_eq!(per.image.base_for("windows-x86_64"), None);
        assert_eq!(
            parse(GOOD, "s.toml")
                .unwrap()
                .image
                .base_for("linux-x86_64"),
            None
        );
        for (bad, want) in [
            ("base = \"debian:12\"", "image.base"),
            (
                "base = { macos-arm64 = \"r.example/b:1\" }",
                "not in env.platforms",
            ),
            (
                "base = { linux-x86_64 = \"r.example/B\" }",
                "image.base.linux-x86_64",
            ),
            ("bass = \"r.example/b\"", "unknown field"),
        ] {
            let err = parse(&format!("{GOOD}\n[image]\n{bad}\n"), "s.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn canonical_hash_ignores_formatting_but_not_content() {
        let a = canonical_hash(GOOD, "a").unwrap();
        let reformatted = format!("# a comment\r\n{}", GOOD.replace('\n', "\r\n"));
        assert_eq!(a, canonical_hash(&reformatted, "b").unwrap());
        let changed = GOOD.replace("2.21.0", "2.20.0");
        assert_ne!(a, canonical_hash(&changed, "c").unwrap());
    }

    /// Every variant's message, word for word: a changed message fails here first.
    #[test]
    fn messages_table() {
        let cases: Vec<(SpecError, &str)> = vec![
            (
                SpecError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "envpack.toml: No such file or directory",
                )),
                "envpack.toml: No such file or directory",
            ),
            (
                SpecError::Parse {
                    path: "envpack.toml".into(),
                    line: 3,
                    column: 7,
                    message: "expected `=`".into(),
                },
                "envpack.toml:3:7: expected `=`",
            ),
            (
                SpecError::NotFound {
                    path: "envpack.toml".into(),
                    dir: "/work/proj".into(),
                },
                "no spec file envpack.toml in /work/proj; name the spec with --spec PATH (the \
                 default is envpack.toml in the current directory)",
            ),
            (
                SpecError::Input(crate::input::InputError::TooLarge {
                    path: "envpack.toml".into(),
                    limit: 1048576,
                    what: "spec",
                }),
                "envpack.toml: larger than the 1048576 bytes allowed for a spec; is this the \
                 right file?",
            ),
            (
                SpecError::Invalid {
                    path: "envpack.toml".into(),
                    message: "env.platforms is empty".into(),
                },
                "envpack.toml: env.platforms is empty",
            ),
            (
                SpecError::InvalidAt {
                    path: "envpack.toml".into(),
                    line: 2,
                    column: 8,
                    message: "env.name \"a b\" must be 1-64 characters of A-Z a-z 0-9 . _ - and \
                              not start with '.'"
                        .into(),
                },
                "envpack.toml:2:8: env.name \"a b\" must be 1-64 characters of A-Z a-z 0-9 . _ - \
                 and not start with '.'",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
