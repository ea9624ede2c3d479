//! Resolves requirements against a simple index for one platform at a time (pubgrub).

pub mod candidates;
pub mod provider;
pub mod ranges;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use envpack_layers::digest::Sha256Digest;
use pep440_rs::Version;
use pubgrub::{DefaultStringReporter, PubGrubError, Reporter};
use url::Url;

use crate::filename::PackageName;
use crate::index::{IndexError, IndexFile, SimpleIndex};
use crate::metadata::MetadataError;
use crate::platform::{Platform, PlatformError};
use crate::tags::TagRanks;
pub use candidates::TargetNote;
use envpack_net::{Cache, NetError};
use provider::{Pkg, Provider};

/// What to resolve, for which platform and interpreter.
#[derive(Debug, Clone, Copy)]
pub struct ResolveRequest<'a> {
    /// Top-level requirements (markers are evaluated for the platform).
    pub requirements: &'a [pep508_rs::Requirement],
    /// Target platform.
    pub platform: &'a Platform,
    /// Full CPython version, e.g. "3.11.7".
    pub python_full_version: &'a str,
}

/// Whether a package is installed from a wheel or built from an sdist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DistKind {
    /// A wheel from the index.
    Wheel,
    /// An sdist from the index (built into a wheel).
    Sdist,
}

/// A wheel built from an sdist by an [`SdistBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltWheel {
    /// The wheel's file name.
    pub filename: String,
    /// Where the built wheel is.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: Sha256Digest,
    /// Its size.
    pub size: u64,
}

/// One package of a resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPackage {
    /// Project name.
    pub name: PackageName,
    /// Chosen version.
    pub version: Version,
    /// The chosen index file.
    pub file: IndexFile,
    /// Wheel or sdist.
    pub kind: DistKind,
    /// For an sdist, the wheel built from it.
    pub built_wheel: Option<BuiltWheel>,
    /// Dependencies active under this platform's markers (including requested extras), sorted.
    pub dependencies: Vec<PackageName>,
    /// A newer version in range that only a raised platform target would admit.
    pub newer_needs_target: Option<TargetNote>,
}

/// Builds wheels from sdists (PEP 517 with the pinned CPython); implemented by the caller.
pub trait SdistBuilder: Sync {
    /// Builds `sdist` (already downloaded and verified at `sdist_path`) into a wheel.
    fn build_wheel(&self, sdist: &IndexFile, sdist_path: &Path) -> anyhow::Result<BuiltWheel>;
}

/// Resolution failures.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No set of versions satisfies the requirements.
    #[error("no solution for platform {platform}:\n{report}")]
    NoSolution {
        /// Platform name.
        platform: String,
        /// pubgrub's derivation report.
        report: String,
    },
    /// An sdist built a wheel the platform cannot use (native code built for the host).
    #[error("{package} {version} has no wheel for {platform} and its sdist builds a platform-specific wheel ({wheel}); provide a wheel for {platform} on the index{hint}")]
    NativeSdist {
        /// What a raised target would admit instead ("; ..."), or empty.
        hint: String,
        /// The project.
        package: PackageName,
        /// Its version.
        version: Version,
        /// The built wheel's name.
        wheel: String,
        /// Platform name.
        platform: String,
    },
    /// Index failure.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Cache or download failure.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Metadata of a file could not be read.
    #[error("metadata of {file}: {source}")]
    Metadata {
        /// The file.
        file: String,
        /// Why.
        source: MetadataError,
    },
    /// A PEP 658 metadata file does not match its announced hash.
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual}")]
    MetadataDigestMismatch {
        /// The metadata URL.
        url: Box<Url>,
        /// Announced digest.
        expected: Sha256Digest,
        /// Actual digest.
        actual: Sha256Digest,
    },
    /// Metadata disagrees with the file it came from.
    #[error("{file}: inconsistent metadata: {detail}")]
    InconsistentMetadata {
        /// The file.
        file: String,
        /// What disagrees.
        detail: String,
    },
    /// Building a wheel from an sdist failed.
    #[error("building a wheel from {file} failed: {source}")]
    Build {
        /// The sdist.
        file: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Direct URL requirements are not supported (a lock pins index files).
    #[error(
        "requirement {requirement:?} uses a direct URL; only index requirements are supported"
    )]
    UrlRequirement {
        /// The requirement.
        requirement: String,
    },
    /// Bad platform data or Python version.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// A resolver invariant broke.
    #[error("internal resolver error: {0}")]
    Internal(String),
}

/// Resolves against an index, downloading into a cache and building sdists through a builder.
pub struct Resolver<'a> {
    /// The package index.
    pub index: &'a SimpleIndex,
    /// The download cache.
    pub cache: &'a Cache,
    /// Builds wheels from sdists when no compatible wheel exists.
    pub sdist_builder: &'a dyn SdistBuilder,
}

fn python_parts(full: &str) -> Result<(Version, u8, u8), ResolveError> {
    let bad = |detail: &str| {
        ResolveError::Platform(PlatformError::PythonVersion {
            version: full.to_string(),
            detail: detail.to_string(),
        })
    };
    let v = Version::from_str(full).map_err(|e| bad(&e.to_string()))?;
    let rel = v.release();
    let major = rel
        .first()
        .and_then(|m| u8::try_from(*m).ok())
        .ok_or_else(|| bad("no major version"))?;
    let minor = rel
        .get(1)
        .and_then(|m| u8::try_from(*m).ok())
        .ok_or_else(|| bad("no minor version"))?;
    Ok((v, major, minor))
}

impl Resolver<'_> {
    /// Resolves `req` for its platform; the result is sorted by name.
    pub fn resolve(&self, req: &ResolveRequest) -> Result<Vec<ResolvedPackage>, ResolveError> {
        let (python, major, minor) = python_parts(req.python_full_version)?;
        let env = req.platform.marker_environment(req.python_full_version)?;
        let ranks = TagRanks::new(&req.platform.supported_tags(major, minor));
        let provider = Provider::new(
            self,
            req.platform.name.clone(),
            req.requirements.to_vec(),
            env,
            python,
            ranks,
            req.platform.wheel.clone(),
        );
        let solution = match pubgrub::resolve(&provider, Pkg::Root, Version::new([0u64])) {
            Ok(s) => s,
            Err(PubGrubError::NoSolution(tree)) => {
                let mut report = DefaultStringReporter::report(&tree);
                for hint in provider.hints() {
                    report.push_str("\nhint: ");
                    report.push_str(&hint);
                }
                return Err(ResolveError::NoSolution {
                    platform: req.platform.name.clone(),
                    report,
                });
            }
            Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
            | Err(PubGrubError::ErrorChoosingVersion { source, .. })
            | Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(source),
        };
        let mut extras: BTreeMap<PackageName, Vec<pep508_rs::ExtraName>> = BTreeMap::new();
        let mut bases: BTreeMap<PackageName, Version> = BTreeMap::new();
        for (pkg, v) in solution {
            match pkg {
                Pkg::Root => {}
                Pkg::Base(n) => {
                    bases.insert(n, v);
                }
                Pkg::Extra(n, e) => {
                    if let Ok(e) = pep508_rs::ExtraName::from_str(&e) {
                        extras.entry(n).or_default().push(e);
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(bases.len());
        for (name, version) in bases {
            let meta = provider.metadata_for(&name, &version)?;
            let mut deps = provider.active_dependency_names(&meta, &[]);
            for e in extras.get(&name).into_iter().flatten() {
                deps.extend(provider.active_dependency_names(&meta, std::slice::from_ref(e)));
            }
            deps.sort();
            deps.dedup();
            deps.retain(|d| d != &name);
            let chosen = provider
                .chosen
                .borrow()
                .get(&(name.clone(), version.clone()))
                .cloned()
                .ok_or_else(|| {
                    ResolveError::Internal(format!("no file recorded for {name} {version}"))
                })?;
            let newer_needs_target = provider
                .notes
                .borrow()
                .get(&(name.clone(), version.clone()))
                .cloned();
            out.push(ResolvedPackage {
                newer_needs_target,
                name,
                version,
                file: chosen.file,
                kind: chosen.kind,
                built_wheel: chosen.built_wheel,
                dependencies: deps,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_version_parts() {
        let (v, a, b) = python_parts("3.11.7").unwrap();
        assert_eq!((v.to_string(), a, b), ("3.11.7".to_string(), 3, 11));
        assert!(python_parts("3").is_err());
        assert!(python_parts("x.y").is_err());
    }
}
