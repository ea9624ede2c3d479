//! The format-neutral content of one platform's SBOM, derived from the lock alone (plus the
//! licenses read from the installed wheels' metadata, the only input the lock does not pin).

use std::collections::BTreeMap;

use envpack_layers::digest::Sha256Digest;

use crate::lock::{Lock, LockedBase, LockedPlatform, PackageKind};

/// License text per package name, as the wheel's `METADATA` declares it.
pub type Licenses = BTreeMap<String, String>;

/// Everything an SBOM of one platform is made from.
pub struct SbomInputs<'a> {
    /// The whole lock.
    pub lock: &'a Lock,
    /// The platform's pins.
    pub platform: &'a LockedPlatform,
    /// Version of the envpack that built the env.
    pub tool_version: &'a str,
    /// Declared licenses by package name (absent ones are left out, never guessed).
    pub licenses: &'a Licenses,
}

/// The pinned CPython.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpythonPart {
    /// Full version.
    pub version: String,
    /// python-build-standalone release tag.
    pub build: String,
    /// Archive variant.
    pub variant: String,
    /// Archive file name.
    pub filename: String,
    /// sha256 of the archive.
    pub sha256: Sha256Digest,
}

/// A pinned Python package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePart {
    /// PEP 503 normalized name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The pinned file's name.
    pub filename: String,
    /// sha256 of that exact file.
    pub sha256: Sha256Digest,
    /// Wheel or sdist.
    pub kind: PackageKind,
    /// For sdists: the built wheel's file name and sha256.
    pub built_wheel: Option<(String, Sha256Digest)>,
    /// Declared license, when the metadata has a usable one.
    pub license: Option<String>,
    /// Names of the packages it depends on, sorted.
    pub dependencies: Vec<String>,
}

/// A Conan profile or CONAN_HOME file, as placed in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// Path inside the env tree (`conan-home/…`).
    pub path: String,
    /// `profile` or `home-file`.
    pub role: &'static str,
    /// Source file next to the spec.
    pub source: String,
    /// sha256 of the content.
    pub sha256: Sha256Digest,
}

/// A pinned Conan remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePart {
    /// Remote name.
    pub name: String,
    /// Remote URL.
    pub url: String,
    /// TLS verification.
    pub verify_ssl: bool,
}

/// A pinned Conan recipe (or `python_requires` package).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipePart {
    /// `name/version[@user/channel]`.
    pub reference: String,
    /// Recipe revision.
    pub revision: String,
    /// Folder next to the spec, or `remote NAME`.
    pub origin: String,
}

impl RecipePart {
    /// `(name, version)` of the reference (`user/channel` left out).
    pub fn name_version(&self) -> (&str, &str) {
        let nv = self.reference.split('@').next().unwrap_or(&self.reference);
        nv.split_once('/').unwrap_or((nv, ""))
    }
}

/// A pinned upstream source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePart {
    /// Where it is fetched from.
    pub url: String,
    /// Its file name (the URL's last segment).
    pub filename: String,
    /// sha256 of the file.
    pub sha256: Sha256Digest,
}

/// The base image an OCI build starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImagePart {
    /// Repository the base was resolved from, without tag or digest (`debian`, `r.example/x`).
    pub repository: String,
    /// Manifest digest `sha256:<hex>`.
    pub digest: String,
}

/// One platform's SBOM content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomModel {
    /// Env name.
    pub env_name: String,
    /// Platform name.
    pub platform: String,
    /// The lock's epoch (documents carry it as their creation time).
    pub epoch: u64,
    /// The lock's spec hash.
    pub spec_hash: String,
    /// envpack version.
    pub tool_version: String,
    /// CPython.
    pub cpython: CpythonPart,
    /// Packages, sorted by name.
    pub packages: Vec<PackagePart>,
    /// Profiles then home files, sorted by path.
    pub files: Vec<FilePart>,
    /// Remotes in priority order.
    pub remotes: Vec<RemotePart>,
    /// Conan recipes, sorted by reference.
    pub recipes: Vec<RecipePart>,
    /// Upstream sources, sorted by sha256.
    pub sources: Vec<SourcePart>,
    /// Base image, when the lock pins one.
    pub base_image: Option<BaseImagePart>,
}

/// Longest license text kept; longer `License` fields are whole license texts, not names.
const MAX_LICENSE_CHARS: usize = 200;

/// The license worth recording from a `License-Expression`/`License` value: a single short
/// line; anything else (empty, `UNKNOWN`, a full license text) is left out.
pub fn usable_license(raw: &str) -> Option<String> {
    let t = raw.trim();
    if t.is_empty()
        || t.contains('\n')
        || t.chars().count() > MAX_LICENSE_CHARS
        || t.eq_ignore_ascii_case("unknown")
    {
        return None;
    }
    Some(t.to_string())
}

/// The base image the lock pins for the platform. It is listed in the env's SBOM whatever the
/// output format, so the tree (and its id) is the same for tarballs and images.
fn base_image_of(bases: &[LockedBase], platform: &str) -> Option<BaseImagePart> {
    bases
        .iter()
        .find(|b| b.platform == platform)
        .map(|b| BaseImagePart {
            repository: repository_of(&b.name),
            digest: b.digest.clone(),
        })
}

/// The repository of an image reference: without `@digest` and without `:tag`.
pub fn repository_of(reference: &str) -> String {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => no_digest[..i].to_string(),
        _ => no_digest.to_string(),
    }
}

impl SbomModel {
    /// The model of `inputs`; deterministic (every list sorted).
    pub fn from_inputs(inputs: &SbomInputs) -> SbomModel {
        let lock = inputs.lock;
        let p = inputs.platform;
        let mut packages: Vec<PackagePart> = p
            .packages
            .iter()
            .map(|pkg| {
                let mut dependencies = pkg.dependencies.clone();
                dependencies.sort();
                dependencies.dedup();
                PackagePart {
                    name: pkg.name.clone(),
                    version: pkg.version.clone(),
                    filename: pkg.filename.clone(),
                    sha256: pkg.sha256,
                    kind: pkg.kind,
                    built_wheel: pkg
                        .built_wheel
                        .as_ref()
                        .map(|b| (b.filename.clone(), b.sha256)),
                    license: inputs
                        .licenses
                        .get(&pkg.name)
                        .and_then(|l| usable_license(l)),
                    dependencies,
                }
            })
            .collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        let mut files: Vec<FilePart> = p
            .profiles
            .iter()
            .map(|f| FilePart {
                path: format!("conan-home/profiles/{}", f.name),
                role: "profile",
                source: f.source.clone(),
                sha256: f.sha256,
            })
            .chain(p.home_files.iter().map(|f| FilePart {
                path: format!("conan-home/{}", f.name),
                role: "home-file",
                source: f.source.clone(),
                sha256: f.sha256,
            }))
            .collect();
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        SbomModel {
            env_name: lock.name.clone(),
            platform: p.name.clone(),
            epoch: lock.epoch,
            spec_hash: lock.spec_hash.to_string(),
            tool_version: inputs.tool_version.to_string(),
            cpython: CpythonPart {
                version: lock.python.version.clone(),
                build: lock.python.build.clone(),
                variant: lock.python.variant.clone(),
                filename: p.python.filename.clone(),
                sha256: p.python.sha256,
            },
            packages,
            files,
            remotes: lock
                .conan_remotes
                .iter()
                .map(|r| RemotePart {
                    name: r.name.clone(),
                    url: r.url.clone(),
                    verify_ssl: r.verify_ssl,
                })
                .collect(),
            recipes: lock
                .conan_recipes
                .iter()
                .map(|r| RecipePart {
                    reference: r.reference.clone(),
                    revision: r.revision.clone(),
                    origin: r.origin(),
                })
                .collect(),
            sources: lock
                .conan_sources
                .iter()
                .map(|s| SourcePart {
                    url: s.url.clone(),
                    filename: source_filename(&s.url),
                    sha256: s.sha256,
                })
                .collect(),
            base_image: base_image_of(&inputs.lock.image_bases, &p.name),
        }
    }
}

/// The last path segment of a source URL (percent-decoded), or the whole URL without one.
pub fn source_filename(url: &str) -> String {
    let path = url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
        })
        .filter(|s| !s.is_empty());
    match path {
        Some(seg) => percent_encoding::percent_decode_str(&seg)
            .decode_utf8_lossy()
            .into_owned(),
        None => url.to_string(),
    }
}

/// `pkg:conan/NAME@VERSION?[channel=…&]rrev=…[&user=…]` (qualifiers sorted, as purl's
/// canonical form wants).
pub fn conan_purl(r: &RecipePart) -> String {
    let (name_version, user_channel) = match r.reference.split_once('@') {
        Some((nv, uc)) => (nv, uc.split_once('/')),
        None => (r.reference.as_str(), None),
    };
    let (name, version) = name_version.split_once('/').unwrap_or((name_version, ""));
    let mut q = Vec::new();
    if let Some((_, channel)) = user_channel {
        q.push(format!("channel={}", purl_encode(channel)));
    }
    q.push(format!("rrev={}", purl_encode(&r.revision)));
    if let Some((user, _)) = user_channel {
        q.push(format!("user={}", purl_encode(user)));
    }
    format!(
        "pkg:conan/{}@{}?{}",
        purl_encode(name),
        purl_encode(version),
        q.join("&")
    )
}

/// `pkg:generic/FILE?checksum=sha256:…&download_url=…`.
pub fn source_purl(s: &SourcePart) -> String {
    format!(
        "pkg:generic/{}?checksum=sha256:{}&download_url={}",
        purl_encode(&s.filename),
        s.sha256.to_hex(),
        purl_encode(&s.url)
    )
}

/// Percent-encodes a purl segment: everything but unreserved characters.
pub fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:pypi/<name>@<version>` (the identity of a package, without qualifiers).
pub fn pypi_purl(name: &str, version: &str) -> String {
    format!("pkg:pypi/{}@{}", purl_encode(name), purl_encode(version))
}

/// The package's purl with the exact file as `file_name` qualifier.
pub fn pypi_file_purl(name: &str, version: &str, filename: &str) -> String {
    format!(
        "{}?file_name={}",
        pypi_purl(name, version),
        purl_encode(filename)
    )
}

/// `pkg:generic/cpython@<version>?file_name=…` for the CPython archive.
pub fn cpython_purl(c: &CpythonPart) -> String {
    format!(
        "pkg:generic/cpython@{}?file_name={}",
        purl_encode(&c.version),
        purl_encode(&c.filename)
    )
}

/// `pkg:oci/<last repository segment>@sha256:…?repository_url=<repository>`.
pub fn oci_purl(b: &BaseImagePart) -> String {
    let name = b.repository.rsplit('/').next().unwrap_or(&b.repository);
    format!(
        "pkg:oci/{}@{}?repository_url={}",
        purl_encode(&name.to_ascii_lowercase()),
        purl_encode(&b.digest),
        purl_encode(&b.repository)
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lock::{
        BuiltWheelPin, LockedConanFile, LockedPackage, LockedPython, LockedPythonRelease,
        LockedRemote,
    };

    /// A two-package lock with an sdist, a profile and a home file.
    pub(crate) fn sample_lock() -> Lock {
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
                name: "center".into(),
                url: "https://conan.example.org/center".into(),
                verify_ssl: true,
            }],
            build_python: None,
            conan_recipes: Vec::new(),
            conan_sources: Vec::new(),
            build_packages: vec![],
            image_bases: Vec::new(),
            platforms: vec![crate::lock::LockedPlatform {
                glibc: None,
                macos: None,
                name: "linux-x86_64".into(),
                python: LockedPython {
                    filename: "cpython-3.11.7+20241016-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz".into(),
                    url: None,
                    sha256: d(3),
                    size: 99,
                },
                packages: vec![
                    LockedPackage {
                        name: "pyyaml".into(),
                        version: "6.0.2".into(),
                        filename: "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl".into(),
                        sha256: d(7),
                        size: 5,
                        kind: PackageKind::Wheel,
                        built_wheel: None,
                        build_requires: vec![],
                        dependencies: vec![],
                    },
                    LockedPackage {
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
                    },
                ],
                profiles: vec![LockedConanFile {
                    name: "default".into(),
                    source: "profiles/linux".into(),
                    sha256: d(6),
                    content: "[settings]\n".into(),
                }],
                home_files: vec![LockedConanFile {
                    name: "global.conf".into(),
                    source: "home/global.conf".into(),
                    sha256: d(8),
                    content: "x\n".into(),
                }],
            }],
        }
    }

    #[test]
    fn model_is_sorted_and_complete() {
        let lock = sample_lock();
        let mut licenses = Licenses::new();
        licenses.insert("conan".into(), "MIT".into());
        licenses.insert("pyyaml".into(), "line one\nline two".into());
        let m = SbomModel::from_inputs(&SbomInputs {
            lock: &lock,
            platform: &lock.platforms[0],
            tool_version: "0.1.0",
            licenses: &licenses,
        });
        let names: Vec<&str> = m.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["conan", "pyyaml"]);
        assert_eq!(m.packages[0].license.as_deref(), Some("MIT"));
        assert_eq!(m.packages[1].license, None, "multi-line text is not a name");
        assert_eq!(
            m.packages[0].built_wheel.as_ref().map(|b| b.1),
            Some(Sha256Digest([5; 32]))
        );
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["conan-home/global.conf", "conan-home/profiles/default"]
        );
        assert_eq!(m.base_image, None);
    }

    #[test]
    fn conan_and_source_purls() {
        let r = |reference: &str| RecipePart {
            reference: reference.into(),
            revision: "0378521c55c8c25e6acda795b7d70c7c".into(),
            origin: "recipes/x".into(),
        };
        assert_eq!(
            conan_purl(&r("openssl-tools/1.2.4")),
            "pkg:conan/openssl-tools@1.2.4?rrev=0378521c55c8c25e6acda795b7d70c7c"
        );
        assert_eq!(
            conan_purl(&r("zlib/1.3.1@team/stable")),
            "pkg:conan/zlib@1.3.1?channel=stable&rrev=0378521c55c8c25e6acda795b7d70c7c&user=team"
        );
        let url = "https://www.openssl.org/source/openssl-3.0.22.tar.gz";
        let s = SourcePart {
            url: url.into(),
            filename: source_filename(url),
            sha256: Sha256Digest([0xab; 32]),
        };
        assert_eq!(s.filename, "openssl-3.0.22.tar.gz");
        assert_eq!(
            source_purl(&s),
            format!("pkg:generic/openssl-3.0.22.tar.gz?checksum=sha256:{}&download_url=https%3A%2F%2Fwww.openssl.org%2Fsource%2Fopenssl-3.0.22.tar.gz", "ab".repeat(32))
        );
        assert_eq!(source_filename("file:///a/b%2Bc.tgz"), "b+c.tgz");
        assert_eq!(source_filename("https://h.example/"), "https://h.example/");
    }

    #[test]
    fn licenses_and_purls() {
        let cases = [
            ("MIT", Some("MIT")),
            ("  Apache-2.0 ", Some("Apache-2.0")),
            ("", None),
            ("UNKNOWN", None),
            ("a\nb", None),
        ];
        for (raw, want) in cases {
            assert_eq!(usable_license(raw).as_deref(), want, "{raw:?}");
        }
        assert_eq!(usable_license(&"x".repeat(201)), None);
        for (r, want) in [
            ("debian:bookworm", "debian"),
            (
                "registry.example:5000/lib/debian:12@sha256:ab",
                "registry.example:5000/lib/debian",
            ),
            (
                "registry.example:5000/debian",
                "registry.example:5000/debian",
            ),
        ] {
            assert_eq!(repository_of(r), want, "{r}");
        }
        assert_eq!(pypi_purl("conan", "2.21.0"), "pkg:pypi/conan@2.21.0");
        assert_eq!(pypi_purl("foo", "1.0+local"), "pkg:pypi/foo@1.0%2Blocal");
        assert_eq!(
            pypi_file_purl("conan", "2.21.0", "conan-2.21.0.tar.gz"),
            "pkg:pypi/conan@2.21.0?file_name=conan-2.21.0.tar.gz"
        );
        let base = BaseImagePart {
            repository: "registry.example/library/debian".into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
        };
        assert_eq!(
            oci_purl(&base),
            format!(
                "pkg:oci/debian@sha256%3A{}?repository_url=registry.example%2Flibrary%2Fdebian",
                "ab".repeat(32)
            )
        );
    }
}
