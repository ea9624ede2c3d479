//! The generated lock (`envpack.lock`): its model, a deterministic writer and a strict reader.
//!
//! A lock pins *what* (names, files, hashes), never *where*: index and mirror URLs come from
//! configuration, so any mirror serves the same lock.

use std::path::Path;

use envpack_layers::digest::Sha256Digest;
use serde::Deserialize;

use crate::spec::SpecError;

mod bases;
mod conan;
mod write;

use bases::checked_bases;
pub use bases::{LockedBase, BASE_TABLE};
pub use conan::{LockedRecipe, LockedRecipeFile, LockedSource};

/// Newest lock schema this build reads and writes. A lock is written with the oldest version
/// that can hold it ([`Lock::required_version`]): 1 unless it pins a `[build-python]` or a
/// platform target (2), or Conan recipes or sources (3), so locks that need nothing new keep their bytes and older envpacks
/// refuse the new ones with a clear schema-version error instead of misreading them.
pub const LOCK_VERSION: u32 = 3;

/// A whole lock.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    /// Schema version.
    pub version: u32,
    /// Canonical hash of the spec this lock was made from.
    pub spec_hash: Sha256Digest,
    /// Timestamp every archive entry carries (SOURCE_DATE_EPOCH overrides at build time).
    pub epoch: u64,
    /// Environment name.
    pub name: String,
    /// The CPython release pinned for every platform.
    pub python: LockedPythonRelease,
    /// Conan remotes, in priority order.
    #[serde(default, rename = "conan-remote")]
    pub conan_remotes: Vec<LockedRemote>,
    /// Conan recipes carried in the env, sorted by reference.
    #[serde(default, rename = "conan-recipe")]
    pub conan_recipes: Vec<LockedRecipe>,
    /// Upstream sources carried in the env, sorted by sha256.
    #[serde(default, rename = "conan-source")]
    pub conan_sources: Vec<LockedSource>,
    /// The build host's CPython, when its platform is not one of the env's (schema 2).
    #[serde(default)]
    pub build_python: Option<LockedBuildPython>,
    /// Build requirements of sdists, for the build host.
    #[serde(default, rename = "build-package")]
    pub build_packages: Vec<LockedFile>,
    /// Per-platform pins.
    #[serde(rename = "platform")]
    pub platforms: Vec<LockedPlatform>,
    /// Base images of OCI output, per platform (written last, as `[[image-base]]` tables).
    #[serde(default, rename = "image-base")]
    pub image_bases: Vec<LockedBase>,
}

/// `[python]`: which release.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPythonRelease {
    /// Full version.
    pub version: String,
    /// Release tag.
    pub build: String,
    /// Archive variant.
    pub variant: String,
}

/// A pinned Conan remote.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedRemote {
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// TLS verification.
    pub verify_ssl: bool,
}

/// A file pinned by name, hash and size.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedFile {
    /// Normalized project name.
    pub name: String,
    /// Version.
    pub version: String,
    /// File name on the index.
    pub filename: String,
    /// sha256 of the file.
    #[serde(deserialize_with = "hex_digest")]
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
}

/// The CPython archive of one platform.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPython {
    /// Archive file name.
    pub filename: String,
    /// Explicit download URL (only when the spec pinned one).
    #[serde(default)]
    pub url: Option<String>,
    /// sha256 of the archive.
    #[serde(deserialize_with = "hex_digest")]
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
}

/// `[build-python]`: the CPython archive of the build host's platform, pinned because it builds
/// the sdists and compiles the bytecode of every platform even when the env doesn't target it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedBuildPython {
    /// The build host's platform name.
    pub platform: String,
    /// Archive file name.
    pub filename: String,
    /// sha256 of the archive.
    #[serde(deserialize_with = "hex_digest")]
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
}

impl LockedBuildPython {
    /// The archive as a platform's CPython pin (mirror download, no URL).
    pub fn python(&self) -> LockedPython {
        LockedPython {
            filename: self.filename.clone(),
            url: None,
            sha256: self.sha256,
            size: self.size,
        }
    }
}

/// Wheel or sdist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// A wheel installed as-is.
    Wheel,
    /// An sdist built into a wheel with pinned build requirements.
    Sdist,
}

/// The wheel built from an sdist.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltWheelPin {
    /// Wheel file name.
    pub filename: String,
    /// Its sha256.
    #[serde(deserialize_with = "hex_digest")]
    pub sha256: Sha256Digest,
    /// Its size.
    pub size: u64,
}

/// A pinned package of one platform.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPackage {
    /// Normalized name.
    pub name: String,
    /// Version.
    pub version: String,
    /// File name on the index.
    pub filename: String,
    /// sha256 of that file.
    #[serde(deserialize_with = "hex_digest")]
    pub sha256: Sha256Digest,
    /// Size of that file.
    pub size: u64,
    /// Wheel or sdist.
    pub kind: PackageKind,
    /// For sdists: the wheel built from it.
    #[serde(default)]
    pub built_wheel: Option<BuiltWheelPin>,
    /// For sdists: the build packages (`name==version`) used.
    #[serde(default)]
    pub build_requires: Vec<String>,
    /// Names of the packages it depends on (on this platform).
    #[serde(default)]
    pub dependencies: Vec<String>,
}

/// A pinned Conan profile or CONAN_HOME file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedConanFile {
    /// Profile name, or path inside CONAN_HOME for home files.
    pub name: String,
    /// Source file, relative to the spec.
    pub source: String,
    /// sha256 of the content.
    #[serde(deserialize_with = "hex_digest")]
    pub sha256: Sha256Digest,
    /// The content itself, so a build needs only the lock.
    pub content: String,
}

/// Everything pinned for one platform.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPlatform {
    /// Platform name.
    pub name: String,
    /// The spec's glibc target (`[platforms.<name>] glibc`), when it set one (schema 2).
    #[serde(default)]
    pub glibc: Option<String>,
    /// The spec's macOS target (`[platforms.<name>] macos`), when it set one (schema 2).
    #[serde(default)]
    pub macos: Option<String>,
    /// Its CPython archive.
    pub python: LockedPython,
    /// Its packages, sorted by name.
    #[serde(default, rename = "package")]
    pub packages: Vec<LockedPackage>,
    /// Its Conan profiles, sorted by name.
    #[serde(default, rename = "profile")]
    pub profiles: Vec<LockedConanFile>,
    /// Its extra CONAN_HOME files, sorted by path.
    #[serde(default, rename = "home-file")]
    pub home_files: Vec<LockedConanFile>,
}

impl Lock {
    /// The pins of one platform.
    pub fn platform(&self, name: &str) -> Option<&LockedPlatform> {
        self.platforms.iter().find(|p| p.name == name)
    }

    /// The platform `name` with the target this lock recorded for it.
    pub fn target_platform(
        &self,
        name: &str,
    ) -> Result<envpack_pypkg::Platform, envpack_pypkg::PypkgError> {
        let mut p = envpack_pypkg::platform_by_name(name)?;
        if let Some(locked) = self.platform(name) {
            for (key, value) in [("glibc", &locked.glibc), ("macos", &locked.macos)] {
                if let Some(v) = value {
                    p = p.with_target(key, v)?;
                }
            }
        }
        Ok(p)
    }

    /// Every recorded target and the build-python platform must make sense.
    fn check_targets(&self, origin: &str) -> Result<(), SpecError> {
        let invalid = |message: String| SpecError::Invalid {
            path: origin.to_string(),
            message,
        };
        for p in &self.platforms {
            self.target_platform(&p.name)
                .map_err(|e| invalid(format!("platform {}: {e}", p.name)))?;
        }
        if let Some(b) = &self.build_python {
            envpack_pypkg::platform_by_name(&b.platform)
                .map_err(|e| invalid(format!("build-python: {e}")))?;
        }
        Ok(())
    }

    /// The oldest schema version that holds everything this lock pins.
    pub fn required_version(&self) -> u32 {
        let targets = self
            .platforms
            .iter()
            .any(|p| p.glibc.is_some() || p.macos.is_some());
        if !self.conan_recipes.is_empty() || !self.conan_sources.is_empty() {
            3
        } else if targets || self.build_python.is_some() {
            2
        } else {
            1
        }
    }

    /// Parse lock text strictly; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Lock, SpecError> {
        let mut lock: Lock =
            toml::from_str(text).map_err(|e| crate::spec::toml_error(text, origin, &e))?;
        lock.image_bases = checked_bases(std::mem::take(&mut lock.image_bases), origin)?;
        if lock.version == 0 || lock.version > LOCK_VERSION {
            return Err(SpecError::Invalid {
                path: origin.into(),
                message: format!(
                    "lock schema version {} is not supported (this envpack reads 1 to {LOCK_VERSION}); re-run `envpack lock`",
                    lock.version
                ),
            });
        }
        lock.check_targets(origin)?;
        conan::check_conan(
            &lock.conan_recipes,
            &lock.conan_sources,
            &lock.conan_remotes,
        )
        .map_err(|message| SpecError::Invalid {
            path: origin.into(),
            message,
        })?;
        if lock.version < lock.required_version() {
            return Err(SpecError::Invalid {
                path: origin.into(),
                message: format!(
                    "lock schema version {} can't hold what it pins ([build-python], platform targets or Conan recipes and sources need version {}); re-run `envpack lock`",
                    lock.version,
                    lock.required_version()
                ),
            });
        }
        Ok(lock)
    }
}

/// Reads and parses the lock at `path` (size-limited); returns it with its text. A missing
/// file is an error that says to run `envpack lock`.
pub fn read(path: &Path) -> Result<(Lock, String), SpecError> {
    let text = crate::input::read_text(path, crate::input::MAX_LOCK_BYTES, "lock").map_err(
        |e| match e {
            crate::input::InputError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                SpecError::Invalid {
                    path: path.display().to_string(),
                    message: "does not exist; run `envpack lock` first (or give --lock)".into(),
                }
            }
            other => other.into(),
        },
    )?;
    let lock = Lock::parse(&text, &path.display().to_string())?;
    Ok((lock, text))
}

/// Lock files write file hashes as bare hex (the key already says sha256).
pub(crate) fn hex_digest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Sha256Digest, D::Error> {
    let s = String::deserialize(d)?;
    Sha256Digest::from_hex(&s).map_err(|_| {
        serde::de::Error::custom(format!(
            "\"{}\" is not a sha256 (64 hex digits)",
            envpack_layers::shown_name(&s)
        ))
    })
}

#[cfg(test)]
mod tests;
