//! The pubgrub dependency provider: candidates from the index, dependencies from core metadata.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;

use pep440_rs::{Operator, Version};
use pep508_rs::{MarkerEnvironment, Requirement, VerbatimUrl, VersionOrUrl};
use pubgrub::{
    Dependencies, DependencyConstraints, DependencyProvider, PackageResolutionStatistics, Ranges,
};

use super::candidates::{
    candidate_files, raise_advice, Candidates, FileChoice, TargetNote, VersionFiles,
};
use super::lookahead::pep658_metadata;
use super::ranges::{names_prerelease, specifiers_to_ranges};
use super::{BuiltWheel, DistKind, Resolver};
use crate::filename::{parse_wheel_filename, PackageName};
use crate::index::IndexFile;
use crate::metadata::{read_wheel_metadata, CoreMetadata};
use crate::tags::{TagRanks, WheelTarget};
use crate::PypkgError;

/// Largest PEP 658 metadata file accepted.
pub(super) const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// A node in the resolution graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    /// The user's requirements.
    Root,
    /// A real project.
    Base(PackageName),
    /// `name[extra]`: pinned to the base's version, adds the extra's dependencies.
    Extra(PackageName, String),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the environment"),
            Pkg::Base(n) => write!(f, "{n}"),
            Pkg::Extra(n, e) => write!(f, "{n}[{e}]"),
        }
    }
}

/// What was picked for one (project, version).
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The file.
    pub file: IndexFile,
    /// Wheel or sdist.
    pub kind: DistKind,
    /// For an sdist, the wheel built from it.
    pub built_wheel: Option<BuiltWheel>,
    /// Its metadata, once read.
    pub metadata: Option<Arc<CoreMetadata>>,
}

/// Per-resolution state; single-threaded like pubgrub itself.
pub struct Provider<'r, 'a> {
    pub(super) resolver: &'r Resolver<'a>,
    pub(super) platform_name: String,
    pub(super) requirements: Vec<Requirement<VerbatimUrl>>,
    pub(super) env: MarkerEnvironment,
    pub(super) python: Version,
    pub(super) ranks: TagRanks,
    pub(super) target: WheelTarget,
    pub(super) candidates: RefCell<HashMap<PackageName, Rc<Candidates>>>,
    /// Per picked (project, version): a newer version only a raised target admits.
    pub(super) notes: RefCell<HashMap<(PackageName, Version), TargetNote>>,
    pub(super) chosen: RefCell<HashMap<(PackageName, Version), Chosen>>,
    allow_pre: RefCell<HashSet<PackageName>>,
    hints: RefCell<BTreeMap<PackageName, String>>,
    /// Hints about packages only looked at ahead, reported once the resolver asks for them.
    pending_hints: RefCell<HashMap<PackageName, String>>,
    pinned: RefCell<HashSet<(PackageName, Version)>>,
}

impl<'r, 'a> Provider<'r, 'a> {
    pub(super) fn new(
        resolver: &'r Resolver<'a>,
        platform_name: String,
        requirements: Vec<Requirement<VerbatimUrl>>,
        env: MarkerEnvironment,
        python: Version,
        ranks: TagRanks,
        target: WheelTarget,
    ) -> Self {
        Provider {
            resolver,
            platform_name,
            requirements,
            env,
            python,
            ranks,
            target,
            candidates: RefCell::new(HashMap::new()),
            notes: RefCell::new(HashMap::new()),
            chosen: RefCell::new(HashMap::new()),
            allow_pre: RefCell::new(HashSet::new()),
            hints: RefCell::new(BTreeMap::new()),
            pending_hints: RefCell::new(HashMap::new()),
            pinned: RefCell::new(HashSet::new()),
        }
    }

    /// `name`'s candidates, for the resolver: why it has none, if so, goes into the report.
    fn candidates(&self, name: &PackageName) -> Result<Rc<Candidates>, PypkgError> {
        let c = self.candidates_unreported(name)?;
        if let Some(hint) = self.pending_hints.borrow_mut().remove(name) {
            self.hints.borrow_mut().insert(name.clone(), hint);
        }
        Ok(c)
    }

    /// `name`'s candidates, computed once; why it has none is kept aside until the resolver
    /// itself asks (a look-ahead guess must not add to the report).
    pub(super) fn candidates_unreported(
        &self,
        name: &PackageName,
    ) -> Result<Rc<Candidates>, PypkgError> {
        if let Some(c) = self.candidates.borrow().get(name) {
            return Ok(c.clone());
        }
        let files = match self.resolver.index.project_files(name) {
            Ok(f) => f,
            // An unknown project simply has no versions; pubgrub explains that in its report.
            Err(PypkgError::NotFound { url, .. }) => {
                self.pending_hints
                    .borrow_mut()
                    .insert(name.clone(), format!("{name} is not on the index ({url})"));
                Arc::new(Vec::new())
            }
            Err(e) => return Err(e),
        };
        let c = Rc::new(candidate_files(
            name,
            &files,
            &self.ranks,
            &self.target,
            &self.python,
        ));
        if c.usable.is_empty() && !files.is_empty() {
            let hint = match c.raisable.iter().next_back() {
                Some((v, r)) => self.raise_hint(name, v, r.needed, &r.filename),
                None => {
                    let seen: Vec<&str> = c
                        .foreign_platforms
                        .iter()
                        .map(String::as_str)
                        .take(8)
                        .collect();
                    let wheels = if seen.is_empty() {
                        String::new()
                    } else {
                        format!("; its wheels are for {}", seen.join(", "))
                    };
                    format!(
                        "none of the {} files of {name} on the index is usable on {}{} with Python {}{wheels}",
                        files.len(),
                        self.platform_name,
                        self.target_suffix(),
                        self.python
                    )
                }
            };
            self.pending_hints.borrow_mut().insert(name.clone(), hint);
        }
        self.candidates.borrow_mut().insert(name.clone(), c.clone());
        Ok(c)
    }

    /// Turns requirements active under `extras` into constraints (merged per package, in a fixed order).
    fn constraints<'q>(
        &self,
        reqs: impl Iterator<Item = &'q Requirement<VerbatimUrl>>,
        extras: &[pep508_rs::ExtraName],
    ) -> Result<Vec<(Pkg, Ranges<Version>)>, PypkgError> {
        let mut out: Vec<(Pkg, Ranges<Version>)> = Vec::new();
        for req in reqs {
            if !req.marker.evaluate(&self.env, extras) {
                continue;
            }
            let name = PackageName::from(&req.name);
            let range = match &req.version_or_url {
                None => Ranges::full(),
                Some(VersionOrUrl::VersionSpecifier(spec)) => {
                    if names_prerelease(spec) {
                        self.allow_pre.borrow_mut().insert(name.clone());
                    }
                    for s in spec.iter() {
                        if matches!(s.operator(), Operator::Equal | Operator::ExactEqual) {
                            self.pinned
                                .borrow_mut()
                                .insert((name.clone(), s.version().clone()));
                        }
                    }
                    specifiers_to_ranges(spec)
                }
                Some(VersionOrUrl::Url(_)) => {
                    return Err(PypkgError::UrlRequirement {
                        requirement: req.to_string(),
                    })
                }
            };
            // Repeated packages stay separate constraints so a conflict report shows each one.
            out.push((Pkg::Base(name.clone()), range.clone()));
            for e in &req.extras {
                out.push((Pkg::Extra(name.clone(), e.to_string()), range.clone()));
            }
        }
        Ok(out)
    }

    fn pick(
        &self,
        name: &PackageName,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, PypkgError> {
        let all = self.candidates(name)?;
        let allow_pre = self.allow_pre.borrow().contains(name);
        let Some((v, best)) = self.newest_fit(name, &all.usable, range) else {
            if let Some((v, r)) = all.newest_raisable(range, None, allow_pre) {
                let hint = self.raise_hint(name, v, r.needed, &r.filename);
                self.hints.borrow_mut().insert(name.clone(), hint);
            }
            return Ok(None);
        };
        if let (Some((newer, r)), Some((key, current))) = (
            all.newest_raisable(range, Some(v), allow_pre),
            self.target.setting(),
        ) {
            let note = TargetNote {
                version: newer.clone(),
                key,
                needed: r.needed,
                current,
                filename: r.filename.clone(),
            };
            self.notes
                .borrow_mut()
                .insert((name.clone(), v.clone()), note);
        }
        self.chosen
            .borrow_mut()
            .entry((name.clone(), v.clone()))
            .or_insert_with(|| Chosen {
                file: best.file.clone(),
                kind: best.kind,
                built_wheel: None,
                metadata: None,
            });
        Ok(Some(v.clone()))
    }

    /// The newest version in `range` with a file to use, and that file; pre-releases only
    /// when asked for or when nothing else fits (PEP 440).
    pub(super) fn newest_fit<'c>(
        &self,
        name: &PackageName,
        cands: &'c VersionFiles,
        range: &Ranges<Version>,
    ) -> Option<(&'c Version, &'c FileChoice)> {
        let allow_pre = self.allow_pre.borrow().contains(name);
        let fit = |(v, files): (&'c Version, &'c Vec<FileChoice>)| {
            range
                .contains(v)
                .then(|| self.best_file(name, v, files))
                .flatten()
                .map(|best| (v, best))
        };
        let mut newest_first = cands.iter().rev();
        newest_first
            .clone()
            .filter(|(v, _)| allow_pre || !v.any_prerelease())
            .find_map(fit)
            .or_else(|| newest_first.find_map(fit))
    }

    fn best_file<'f>(
        &self,
        name: &PackageName,
        v: &Version,
        files: &'f [FileChoice],
    ) -> Option<&'f FileChoice> {
        let pinned = self.pinned.borrow().contains(&(name.clone(), v.clone()));
        files.iter().find(|f| pinned || f.file.yanked.is_none())
    }

    /// Reads (or recalls) the metadata of the chosen file for `name==v`.
    pub(super) fn metadata_for(
        &self,
        name: &PackageName,
        v: &Version,
    ) -> Result<Arc<CoreMetadata>, PypkgError> {
        let key = (name.clone(), v.clone());
        let chosen = match self.chosen.borrow().get(&key) {
            Some(c) => c.clone(),
            None => {
                return Err(PypkgError::Internal(format!(
                    "no file chosen for {name} {v}"
                )));
            }
        };
        if let Some(m) = &chosen.metadata {
            return Ok(m.clone());
        }
        let (meta, built) = match chosen.kind {
            DistKind::Wheel => (self.wheel_metadata(&chosen.file)?, None),
            DistKind::Sdist => {
                let (m, b) = self.sdist_metadata(name, v, &chosen.file)?;
                (m, Some(b))
            }
        };
        if &meta.name != name {
            return Err(PypkgError::InconsistentMetadata {
                file: chosen.file.filename.clone(),
                detail: format!("metadata names project {}, expected {name}", meta.name),
            });
        }
        if let Some(c) = self.chosen.borrow_mut().get_mut(&key) {
            c.metadata = Some(meta.clone());
            c.built_wheel = built;
        }
        Ok(meta)
    }

    fn wheel_metadata(&self, file: &IndexFile) -> Result<Arc<CoreMetadata>, PypkgError> {
        self.resolver
            .index
            .metadata(&file.url, || match &file.metadata_sha256 {
                Some(expected) => match pep658_metadata(self.resolver.index, file, *expected) {
                    Ok(m) => Ok(m),
                    Err(e @ PypkgError::MetadataDigestMismatch { .. }) => Err(e),
                    Err(e) => {
                        tracing::warn!(file = %file.filename, error = %e, "PEP 658 metadata unavailable, downloading the wheel");
                        self.downloaded_wheel_metadata(file)
                    }
                },
                None => self.downloaded_wheel_metadata(file),
            })
    }

    fn downloaded_wheel_metadata(&self, file: &IndexFile) -> Result<CoreMetadata, PypkgError> {
        let expect = file.sha256.map(|d| (d, file.size));
        let blob = self
            .resolver
            .cache
            .fetch(self.resolver.index.http(), &file.url, expect)?;
        // Read through a path named like the wheel so METADATA lookup can use the file name.
        read_wheel_metadata_named(&blob.path, &file.filename)
    }

    fn sdist_metadata(
        &self,
        name: &PackageName,
        v: &Version,
        file: &IndexFile,
    ) -> Result<(Arc<CoreMetadata>, BuiltWheel), PypkgError> {
        let expect = file.sha256.map(|d| (d, file.size));
        let blob = self
            .resolver
            .cache
            .fetch(self.resolver.index.http(), &file.url, expect)?;
        tracing::info!(sdist = %file.filename, platform = %self.platform_name, "building wheel from sdist");
        let built = self
            .resolver
            .sdist_builder
            .build_wheel(file, &blob.path)
            .map_err(|e| PypkgError::Build {
                file: file.filename.clone(),
                source: e,
            })?;
        let compatible = parse_wheel_filename(&built.filename)
            .and_then(|w| self.ranks.priority(&w.tags))
            .is_some();
        if !compatible {
            let hint = match self.candidates(name)?.raisable.get(v) {
                Some(r) => format!("; or {}", self.raise_hint(name, v, r.needed, &r.filename)),
                None => String::new(),
            };
            return Err(PypkgError::NativeSdist {
                hint,
                package: name.clone(),
                version: v.clone(),
                wheel: built.filename.clone(),
                platform: self.platform_name.clone(),
            });
        }
        let meta = Arc::new(read_wheel_metadata_named(&built.path, &built.filename)?);
        Ok((meta, built))
    }

    /// " (macos 10.13)": the platform's target for messages.
    fn target_suffix(&self) -> String {
        self.target
            .setting()
            .map(|(key, (a, b))| format!(" ({key} {a}.{b})"))
            .unwrap_or_default()
    }

    /// The hint for a version only a raised target admits.
    fn raise_hint(
        &self,
        name: &PackageName,
        v: &Version,
        needed: (u32, u32),
        filename: &str,
    ) -> String {
        let key = self.target.setting().map(|(k, _)| k).unwrap_or("target");
        format!(
            "{name} {v} has no file usable on {}{}: its wheel {filename} needs {key} {}.{}; {}",
            self.platform_name,
            self.target_suffix(),
            needed.0,
            needed.1,
            raise_advice(&self.platform_name, key, needed)
        )
    }

    /// Why `name` has no usable candidates, if that was found (reported or not).
    pub(super) fn why_none(&self, name: &PackageName) -> Option<String> {
        let reported = self.hints.borrow().get(name).cloned();
        reported.or_else(|| self.pending_hints.borrow().get(name).cloned())
    }

    /// Explanations for projects that had no usable files, for failure reports.
    pub(super) fn hints(&self) -> Vec<String> {
        self.hints.borrow().values().cloned().collect()
    }

    /// Names of the dependencies active for `name==v` with `extras`.
    pub(super) fn active_dependency_names(
        &self,
        meta: &CoreMetadata,
        extras: &[pep508_rs::ExtraName],
    ) -> Vec<PackageName> {
        meta.requires_dist
            .iter()
            .filter(|r| r.marker.evaluate(&self.env, extras))
            .map(|r| PackageName::from(&r.name))
            .collect()
    }
}

/// Reads wheel metadata; blobs are stored under their hash, so give the reader the real file name.
fn read_wheel_metadata_named(
    path: &std::path::Path,
    filename: &str,
) -> Result<CoreMetadata, PypkgError> {
    let meta_err = |source: PypkgError| PypkgError::Metadata {
        file: filename.to_string(),
        source: Box::new(source),
    };
    if path.file_name().and_then(|f| f.to_str()) == Some(filename) {
        return read_wheel_metadata(path).map_err(meta_err);
    }
    // Most wheels have exactly one top-level .dist-info, so the name is rarely needed.
    match read_wheel_metadata(path) {
        Ok(m) => Ok(m),
        Err(first) => {
            let tmp =
                tempfile::tempdir().map_err(|e| PypkgError::Internal(format!("temp dir: {e}")))?;
            let link = tmp.path().join(filename);
            if fs_err::hard_link(path, &link).is_err() {
                fs_err::copy(path, &link).map_err(|e| meta_err(PypkgError::Io(e)))?;
            }
            read_wheel_metadata(&link).map_err(|_| meta_err(first))
        }
    }
}

fn extra_names(extra: &str) -> Vec<pep508_rs::ExtraName> {
    pep508_rs::ExtraName::from_str(extra).into_iter().collect()
}

impl DependencyProvider for Provider<'_, '_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type Priority = (u32, bool);
    type M = String;
    type Err = PypkgError;

    fn prioritize(
        &self,
        _package: &Pkg,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        // Conflict-prone packages first, then pinned ones (cheap to decide).
        (stats.conflict_count(), range.as_singleton().is_some())
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, PypkgError> {
        match package {
            Pkg::Root => Ok(Some(Version::new([0u64]))),
            Pkg::Base(name) | Pkg::Extra(name, _) => self.pick(name, range),
        }
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>, PypkgError> {
        let (name, extras) = match package {
            Pkg::Root => {
                let c = self.constraints(self.requirements.iter(), &[])?;
                self.look_ahead(&c);
                return Ok(Dependencies::Available(
                    c.into_iter().collect::<DependencyConstraints<_, _>>(),
                ));
            }
            Pkg::Base(name) => (name, Vec::new()),
            Pkg::Extra(name, extra) => (name, extra_names(extra)),
        };
        let meta = self.metadata_for(name, version)?;
        if let Some(rp) = &meta.requires_python {
            if !rp.contains(&self.python) {
                return Ok(Dependencies::Unavailable(format!(
                    "it requires Python {rp}"
                )));
            }
        }
        let mut c = if extras.is_empty() {
            self.constraints(meta.requires_dist.iter(), &[])?
        } else {
            // Only what the extra adds; the base's own dependencies come via the pin below.
            let base: BTreeSet<String> = meta
                .requires_dist
                .iter()
                .filter(|r| r.marker.evaluate(&self.env, &[]))
                .map(|r| r.to_string())
                .collect();
            let added = meta
                .requires_dist
                .iter()
                .filter(|r| !base.contains(&r.to_string()));
            self.constraints(added, &extras)?
        };
        // A package depending on itself (usually via its own extras) is fine; pubgrub must not see it.
        c.retain(|(p, _)| p != package && p != &Pkg::Base(name.clone()));
        if let Pkg::Extra(..) = package {
            c.push((Pkg::Base(name.clone()), Ranges::singleton(version.clone())));
        }
        self.look_ahead(&c);
        Ok(Dependencies::Available(c.into_iter().collect()))
    }
}
