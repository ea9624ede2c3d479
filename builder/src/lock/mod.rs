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
        conan::check_conan(&lock.conan_recipes, &lock.conan_sources).map_err(|message| {
            SpecError::Invalid {
                path: origin.into(),
                message,
            }
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
mod tests {
    use super::*;

    fn sample() -> Lock {
        let d = |b: u8| Sha256Digest([b; 32]);
        Lock {
            version: 1,
            spec_hash: d(1),
            epoch: 1_700_000_000,
            name: "dev".into(),
            python: LockedPythonRelease {
                version: "3.11.7".into(),
                build: "20241016".into(),
                variant: "install_only_stripped".into(),
            },
            conan_remotes: vec![LockedRemote {
                name: "r".into(),
                url: "https://conan.example.org/r".into(),
                verify_ssl: false,
            }],
            build_python: None,
            conan_recipes: Vec::new(),
            conan_sources: Vec::new(),
            build_packages: vec![LockedFile {
                name: "setuptools".into(),
                version: "75.1.0".into(),
                filename: "setuptools-75.1.0-py3-none-any.whl".into(),
                sha256: d(2),
                size: 10,
            }],
            image_bases: Vec::new(),
            platforms: vec![LockedPlatform {
                name: "linux-x86_64".into(),
                glibc: None,
                macos: None,
                python: LockedPython {
                    filename: "cpython.tar.gz".into(),
                    url: None,
                    sha256: d(3),
                    size: 99,
                },
                packages: vec![LockedPackage {
                    name: "conan".into(),
                    version: "2.21.0".into(),
                    filename: "conan-2.21.0.tar.gz".into(),
                    sha256: d(4),
                    size: 5,
                    kind: PackageKind::Sdist,
                    built_wheel: Some(BuiltWheelPin {
                        filename: "conan-2.21.0-py3-none-any.whl".into(),
                        sha256: d(5),
                        size: 6,
                    }),
                    build_requires: vec!["setuptools==75.1.0".into()],
                    dependencies: vec!["pyyaml".into()],
                }],
                profiles: vec![LockedConanFile {
                    name: "default".into(),
                    source: "profiles/linux".into(),
                    sha256: d(6),
                    content: "[settings]\nos=Linux\n\"quoted\" \\ back\n".into(),
                }],
                home_files: vec![],
            }],
        }
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let lock = sample();
        let text = lock.to_toml();
        let back = Lock::parse(&text, "envpack.lock").unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.to_toml(), text);
    }

    #[test]
    fn schema_2_only_when_needed() {
        let v1 = sample();
        assert_eq!(v1.required_version(), 1);
        let mut v2 = sample();
        v2.version = 2;
        v2.build_python = Some(LockedBuildPython {
            platform: "linux-x86_64".into(),
            filename: "cpython-host.tar.gz".into(),
            sha256: Sha256Digest([7; 32]),
            size: 42,
        });
        v2.platforms[0].glibc = Some("2.28".into());
        assert_eq!(v2.required_version(), 2);
        let text = v2.to_toml();
        assert!(
            text.contains("\n[build-python]\nplatform = \"linux-x86_64\"\n"),
            "{text}"
        );
        assert!(
            text.contains("name = \"linux-x86_64\"\nglibc = \"2.28\"\n"),
            "{text}"
        );
        let back = Lock::parse(&text, "l").unwrap();
        assert_eq!(back, v2);
        assert_eq!(back.to_toml(), text);
        // A version-1 lock can't carry them, and a newer schema is refused with advice.
        let e = Lock::parse(&text.replace("version = 2\n", "version = 1\n"), "l")
            .unwrap_err()
            .to_string();
        assert!(e.contains("need version 2") && e.contains("re-run"), "{e}");
        let e = Lock::parse(&text.replace("version = 2\n", "version = 4\n"), "l")
            .unwrap_err()
            .to_string();
        assert!(e.contains("reads 1 to 3"), "{e}");
        let e = Lock::parse(&text.replace("\"2.28\"", "\"2.5\""), "l")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("platforms.linux-x86_64.glibc") && e.contains("below"),
            "{e}"
        );
        let mut macos_only = sample();
        macos_only.platforms[0].macos = Some("10.15".into());
        assert_eq!(macos_only.required_version(), 2);
    }

    #[test]
    fn conan_content_round_trips_in_schema_3() {
        let mut v3 = sample();
        let content = "from conan import ConanFile\n\"\"\"doc\"\"\" \\ x\n";
        v3.conan_recipes = vec![LockedRecipe {
            reference: "openssl-tools/1.2.4".into(),
            revision: "0378521c55c8c25e6acda795b7d70c7c".into(),
            path: Some("recipes/openssl-tools".into()),
            remote: None,
            files: vec![LockedRecipeFile {
                path: "conanfile.py".into(),
                sha256: Sha256Digest::of_bytes(content.as_bytes()),
                executable: false,
                content: content.into(),
            }],
        }];
        v3.conan_sources = vec![LockedSource {
            url: "https://upstream.example/x-1.0.tar.gz".into(),
            sha256: Sha256Digest([9; 32]),
            size: 3,
        }];
        v3.version = v3.required_version();
        assert_eq!(v3.version, 3);
        let text = v3.to_toml();
        let back = Lock::parse(&text, "l").unwrap();
        assert_eq!(back, v3);
        assert_eq!(back.to_toml(), text);
        let e = Lock::parse(&text.replace("version = 3\n", "version = 2\n"), "l")
            .unwrap_err()
            .to_string();
        assert!(e.contains("need version 3"), "{e}");
        let bad = [
            (
                text.replace("0378521c55c8c25e6acda795b7d70c7c", "abc"),
                "revision \"abc\" is not 32 hex digits",
            ),
            (
                text.replace("\\ x", "\\ y"),
                "the content of conanfile.py does not have its pinned sha256",
            ),
            (
                text.replace(
                    "path = \"recipes/openssl-tools\"",
                    "remote = \"r\"\npath = \"x\"",
                ),
                "either a path or a remote",
            ),
            (
                text.replace("path = \"conanfile.py\"", "path = \"../conanfile.py\""),
                "file \"../conanfile.py\"",
            ),
        ];
        for (t, want) in bad {
            let e = Lock::parse(&t, "l").unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn rejects_unknown_keys_with_position() {
        let text = sample()
            .to_toml()
            .replace("epoch = ", "surprise = 1\nepoch = ");
        let err = Lock::parse(&text, "envpack.lock").unwrap_err().to_string();
        assert!(
            err.contains("envpack.lock:") && err.contains("surprise"),
            "{err}"
        );
    }

    #[test]
    fn rejects_other_schema_versions() {
        let text = sample().to_toml().replace("version = 1\n", "version = 7\n");
        let err = Lock::parse(&text, "l").unwrap_err().to_string();
        assert!(err.contains("re-run `envpack lock`"), "{err}");
    }

    #[test]
    fn base_pins_round_trip_after_the_lock() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let bases = vec![
            LockedBase {
                platform: "linux-x86_64".into(),
                name: "127.0.0.1:5000/base:1".into(),
                digest: d.clone(),
            },
            LockedBase {
                platform: "linux-aarch64".into(),
                name: "registry.example/base:1".into(),
                digest: d.clone(),
            },
        ];
        let mut with_bases = sample();
        with_bases.image_bases = bases;
        let text = with_bases.to_toml();
        assert_eq!(
            text,
            sample().to_toml() + &write::bases_to_toml(&with_bases.image_bases)
        );
        let back = Lock::parse(&text, "l").unwrap();
        assert_eq!(
            back.image_bases[0].platform, "linux-aarch64",
            "sorted by platform"
        );
        assert_eq!(back.image_bases.len(), 2);
        assert_eq!(back.to_toml(), text);
        assert!(Lock::parse(&sample().to_toml(), "l")
            .unwrap()
            .image_bases
            .is_empty());

        let bad = text.replace(&d, "sha256:00");
        let err = Lock::parse(&bad, "l").unwrap_err().to_string();
        assert!(err.contains("image-base"), "{err}");
        let unknown = text.replacen("digest = ", "surprise = 1\ndigest = ", 1);
        let err = Lock::parse(&unknown, "envpack.lock")
            .unwrap_err()
            .to_string();
        let line = sample().to_toml().lines().count() + 5;
        assert!(err.contains(&format!("envpack.lock:{line}:")), "{err}");
        let twice = text.replace("linux-aarch64", "linux-x86_64");
        assert!(Lock::parse(&twice, "l")
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn table_headers_inside_file_contents_are_just_text() {
        // A profile may hold any text, including a line that looks like a lock table.
        let mut lock = sample();
        let content = "[settings]\nos=Linux\n[[image-base]]\n[[platform]]\n";
        if let Some(p) = lock.platforms[0].profiles.first_mut() {
            p.content = content.to_string();
            p.sha256 = Sha256Digest::of_bytes(content.as_bytes());
        } else {
            panic!("the sample lock has a profile");
        }
        let back = Lock::parse(&lock.to_toml(), "l").unwrap();
        assert_eq!(back, lock);
        assert!(back.image_bases.is_empty());
    }

    #[test]
    fn read_names_a_missing_lock_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("envpack.lock");
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("envpack.lock") && e.contains("run `envpack lock`"),
            "{e}"
        );
        std::fs::write(&p, sample().to_toml()).unwrap();
        let (lock, text) = read(&p).unwrap();
        assert_eq!((lock, text), (sample(), sample().to_toml()));
    }

    #[test]
    fn rejects_bad_hashes() {
        let text = sample().to_toml().replace(&"03".repeat(32), "zz");
        assert!(Lock::parse(&text, "l").is_err());
    }
}
