//! Resolves requirements against a simple index for one platform at a time (pubgrub).

mod candidates;
mod lookahead;
mod provider;
mod ranges;
mod unmet;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use envpack_layers::digest::Sha256Digest;
use pep440_rs::Version;
use pubgrub::{DefaultStringReporter, PubGrubError, Reporter};

use crate::filename::PackageName;
use crate::index::{IndexFile, SimpleIndex};
use crate::platform::Platform;
use crate::tags::TagRanks;
use crate::PypkgError;
pub use candidates::{raise_advice, TargetNote};
use envpack_net::Cache;
use provider::{Pkg, Provider};
pub use unmet::Unmet;

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
    fn build_wheel(
        &self,
        sdist: &IndexFile,
        sdist_path: &Path,
    ) -> Result<BuiltWheel, Box<dyn std::error::Error + Send + Sync>>;
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

fn python_parts(full: &str) -> Result<(Version, u8, u8), PypkgError> {
    let bad = |detail: &str| PypkgError::PythonVersion {
        version: full.to_string(),
        detail: detail.to_string(),
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
    pub fn resolve(&self, req: &ResolveRequest) -> Result<Vec<ResolvedPackage>, PypkgError> {
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
                let unmet = unmet::unmet_requirements(&provider)?;
                if !unmet.is_empty() {
                    return Err(PypkgError::Unmet {
                        platform: req.platform.name.clone(),
                        unmet,
                    });
                }
                // pubgrub names the root by its display and its placeholder version.
                let mut report = DefaultStringReporter::report(&tree)
                    .replace(&format!("{} 0", Pkg::Root), "the environment");
                for hint in provider.hints() {
                    report.push_str("\nhint: ");
                    report.push_str(&hint);
                }
                return Err(PypkgError::NoSolution {
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
                    PypkgError::Internal(format!("no file recorded for {name} {version}"))
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
