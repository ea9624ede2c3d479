//! A build's inputs, gathered before any platform is assembled: every CPython archive and
//! package file the chosen platforms pin, from the cache or downloaded on the HTTP client's
//! bounded pool, so a cold build's downloads overlap instead of following one another. Every
//! file is checked against the lock's sha256 and size on the way in; assembly reads only files
//! gathered here (or rebuilt from an sdist gathered here).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use envpack_layers::digest::Sha256Digest;
use envpack_net::try_parallel_map;
use envpack_pypkg::{LazyHost, SimpleIndex, WheelInput};

use super::BuildOptions;
use crate::lock::{Lock, LockedFile, LockedPackage, LockedPython, LockedSource, PackageKind};

/// One file to gather.
pub(crate) enum Need<'a> {
    /// A CPython archive, from the mirror.
    Python(&'a LockedPython),
    /// An upstream source a Conan recipe downloads, from its URL.
    Source(&'a LockedSource),
    /// A package file, from the index.
    Package {
        name: &'a str,
        filename: &'a str,
        sha256: Sha256Digest,
        size: u64,
    },
}

impl Need<'_> {
    fn sha256(&self) -> Sha256Digest {
        match self {
            Need::Python(p) => p.sha256,
            Need::Source(s) => s.sha256,
            Need::Package { sha256, .. } => *sha256,
        }
    }

    fn size(&self) -> u64 {
        match self {
            Need::Python(p) => p.size,
            Need::Source(s) => s.size,
            Need::Package { size, .. } => *size,
        }
    }
}

/// Where files missing from the cache come from: the mirror and the index `opts` name.
pub(crate) struct Origins {
    mirror: url::Url,
    index: Option<SimpleIndex>,
    bundle: Option<PathBuf>,
}

impl Origins {
    /// The configured origins; a misconfigured index is an error even before it is needed.
    pub fn new(opts: &BuildOptions) -> anyhow::Result<Origins> {
        let mirror = crate::config::python_mirror(opts.spec_mirror)?;
        // Only contacted for files missing from the cache.
        let index = crate::config::index_url_if_any(opts.index_flag, opts.spec_index)?
            .map(|u| SimpleIndex::new(u, opts.http.clone()));
        let bundle = crate::config::bundle()?;
        Ok(Origins {
            mirror,
            index,
            bundle,
        })
    }

    /// What `lock`'s files are gathered from.
    pub fn sources<'a>(&'a self, lock: &'a Lock) -> Sources<'a> {
        Sources {
            lock,
            mirror: &self.mirror,
            index: self.index.as_ref(),
            bundled: self.bundle.is_some(),
            bundle: self.bundle.as_deref(),
        }
    }
}

/// Where the gathered files are, by sha256.
pub(super) struct Inputs {
    paths: HashMap<Sha256Digest, PathBuf>,
}

/// What gathering reads from: the lock's release, the mirror and the index.
pub(crate) struct Sources<'a> {
    pub lock: &'a Lock,
    pub mirror: &'a url::Url,
    pub index: Option<&'a SimpleIndex>,
    /// Whether a bundle serves the mirror, explicitly pinned CPython archives included.
    pub bundled: bool,
    /// The bundle's directory, which also serves the Conan sources.
    pub bundle: Option<&'a Path>,
}

impl Inputs {
    /// Gathers `pythons` and every package of `platforms`: a wheel built from an sdist is
    /// taken from the cache when there, else its sdist and the pinned build packages are.
    pub fn gather(
        src: &Sources,
        pythons: &[&LockedPython],
        platforms: &[&[LockedPackage]],
        opts: &BuildOptions,
    ) -> anyhow::Result<Inputs> {
        let limit = opts.http.concurrency();
        let mut seen = HashSet::new();
        let built: Vec<&LockedPackage> = platforms
            .iter()
            .flat_map(|p| p.iter())
            .filter(|p| p.kind == PackageKind::Sdist && seen.insert(p.sha256))
            .collect();
        let cached_built = try_parallel_map(limit, &built, |pkg| match &pkg.built_wheel {
            Some(b) => Ok(opts.cache.get(&b.sha256)?.map(|path| (b.sha256, path))),
            None => bail!(
                "lock entry for {} is an sdist without built-wheel",
                pkg.name
            ),
        })?;
        let mut paths = HashMap::new();
        let mut rebuild = Vec::new();
        for (pkg, hit) in built.iter().zip(cached_built) {
            match hit {
                Some((sha, path)) => {
                    paths.insert(sha, path);
                }
                None => rebuild.push(*pkg),
            }
        }

        let mut needs: Vec<Need> = pythons.iter().map(|p| Need::Python(p)).collect();
        needs.extend(src.lock.conan_sources.iter().map(Need::Source));
        for pkg in platforms.iter().flat_map(|p| p.iter()) {
            if pkg.kind == PackageKind::Wheel {
                needs.push(package_need(&pkg.name, &pkg.filename, pkg.sha256, pkg.size));
            }
        }
        for pkg in &rebuild {
            needs.push(package_need(&pkg.name, &pkg.filename, pkg.sha256, pkg.size));
            for pin in build_pins(pkg, src.lock)? {
                needs.push(package_need(&pin.name, &pin.filename, pin.sha256, pin.size));
            }
        }
        let mut seen = HashSet::new();
        needs.retain(|n| !paths.contains_key(&n.sha256()) && seen.insert(n.sha256()));

        let to_fetch = needs.iter().map(|n| (Some(n.sha256()), n.size()));
        if let Some((count, bytes)) = opts.cache.announce_downloads(opts.http, to_fetch) {
            let mib = bytes as f64 / f64::from(1 << 20);
            (opts.progress)(&format!("downloading {count} file(s), {mib:.1} MiB"));
        }
        let fetched = try_parallel_map(limit, &needs, |need| fetch(need, src, opts))?;
        for (need, path) in needs.iter().zip(fetched) {
            paths.insert(need.sha256(), path);
        }
        Ok(Inputs { paths })
    }

    /// The gathered file with `sha256`.
    pub fn path(&self, sha256: &Sha256Digest) -> anyhow::Result<&Path> {
        self.paths
            .get(sha256)
            .map(PathBuf::as_path)
            .ok_or_else(|| anyhow!("no input with sha256 {sha256} was gathered for this build"))
    }

    /// The wheels to install for one platform, rebuilding from sdists where needed.
    pub fn wheels(
        &self,
        packages: &[LockedPackage],
        lock: &Lock,
        host: &LazyHost,
        opts: &BuildOptions,
    ) -> anyhow::Result<Vec<WheelInput>> {
        let mut wheels = Vec::new();
        for pkg in packages {
            let (filename, sha256, path) = match (&pkg.kind, &pkg.built_wheel) {
                (PackageKind::Wheel, _) => {
                    (&pkg.filename, pkg.sha256, self.path(&pkg.sha256)?.into())
                }
                (PackageKind::Sdist, Some(built)) => {
                    // An earlier platform's rebuild put it in the cache.
                    let path = match self.paths.get(&built.sha256) {
                        Some(p) => p.clone(),
                        None => match opts.cache.get(&built.sha256)? {
                            Some(p) => p,
                            None => self.rebuild(pkg, &built.sha256, lock, host, opts)?,
                        },
                    };
                    (&built.filename, built.sha256, path)
                }
                (PackageKind::Sdist, None) => bail!(
                    "lock entry for {} is an sdist without built-wheel",
                    pkg.name
                ),
            };
            wheels.push(WheelInput {
                filename: filename.clone(),
                path,
                sha256,
            });
        }
        Ok(wheels)
    }

    /// Rebuilds a wheel from its gathered sdist with the pinned build packages, under the
    /// lock's epoch: that is what the locked wheel hash was made with.
    fn rebuild(
        &self,
        pkg: &LockedPackage,
        want: &Sha256Digest,
        lock: &Lock,
        host: &LazyHost,
        opts: &BuildOptions,
    ) -> anyhow::Result<PathBuf> {
        let pins: Vec<LockedFile> = build_pins(pkg, lock)?.into_iter().cloned().collect();
        (opts.progress)(&format!("rebuilding {} from its sdist", pkg.filename));
        let wheel = crate::sdist::rebuild_pinned(
            host.get()?,
            self.path(&pkg.sha256)?,
            &pkg.filename,
            &pins,
            lock.epoch,
            opts.cache,
        )?;
        if wheel.sha256 != *want {
            bail!(
                "rebuilding {} gave {} with {}, but the lock pins {}: the sdist build is not reproducible here",
                pkg.filename,
                wheel.filename,
                wheel.sha256,
                want
            );
        }
        Ok(wheel.path)
    }
}

pub(crate) fn package_need<'a>(
    name: &'a str,
    filename: &'a str,
    sha256: Sha256Digest,
    size: u64,
) -> Need<'a> {
    Need::Package {
        name,
        filename,
        sha256,
        size,
    }
}

/// Every file of `needs`, from the cache or downloaded and checked against its pin, by
/// sha256: what `envpack bundle` copies (a build gathers less, see [`Inputs::gather`]).
pub(crate) fn fetch_all(
    needs: &[Need],
    src: &Sources,
    opts: &BuildOptions,
) -> anyhow::Result<HashMap<Sha256Digest, PathBuf>> {
    let to_fetch = needs.iter().map(|n| (Some(n.sha256()), n.size()));
    if let Some((count, bytes)) = opts.cache.announce_downloads(opts.http, to_fetch) {
        let mib = bytes as f64 / f64::from(1 << 20);
        (opts.progress)(&format!("downloading {count} file(s), {mib:.1} MiB"));
    }
    let fetched = try_parallel_map(opts.http.concurrency(), needs, |need| {
        fetch(need, src, opts)
    })?;
    Ok(needs.iter().map(|n| n.sha256()).zip(fetched).collect())
}

/// The lock's build packages an sdist is rebuilt with.
pub(crate) fn build_pins<'l>(
    pkg: &LockedPackage,
    lock: &'l Lock,
) -> anyhow::Result<Vec<&'l LockedFile>> {
    pkg.build_requires
        .iter()
        .map(|req| {
            let (name, version) = req
                .split_once("==")
                .ok_or_else(|| anyhow!("bad build-requires entry \"{req}\" for {}", pkg.name))?;
            lock.build_packages
                .iter()
                .find(|b| b.name == name && b.version == version)
                .ok_or_else(|| anyhow!("build package {req} of {} is not in the lock", pkg.name))
        })
        .collect()
}

/// One file from the cache, else downloaded and checked against its pin.
fn fetch(need: &Need, src: &Sources, opts: &BuildOptions) -> anyhow::Result<PathBuf> {
    match need {
        Need::Python(locked) => {
            // A bundle holds an explicitly pinned archive under the mirror's name for it.
            let unpinned;
            let locked = if src.bundled && locked.url.is_some() {
                unpinned = LockedPython {
                    url: None,
                    ..(*locked).clone()
                };
                &unpinned
            } else {
                *locked
            };
            let blob = crate::python::fetch_python(
                locked,
                &src.lock.python,
                src.mirror,
                opts.http,
                opts.cache,
            )
            .with_context(|| format!("fetching CPython {}", locked.filename))?;
            Ok(blob.path)
        }
        Need::Source(source) => {
            let url = match &src.bundle {
                Some(dir) => crate::bundle::source_url(dir, &source.sha256)?,
                None => crate::conan_recipes::fetch_url(
                    &source.url,
                    Some(&source.sha256),
                    crate::config::source_mirror()?.as_ref(),
                )?,
            };
            let blob = opts
                .cache
                .fetch(opts.http, &url, Some((source.sha256, Some(source.size))))
                .with_context(|| format!("fetching source {}", source.url))?;
            Ok(blob.path)
        }
        Need::Package {
            name,
            filename,
            sha256,
            size,
        } => {
            if let Some(path) = opts.cache.get(sha256)? {
                return Ok(path);
            }
            let index = src.index.ok_or_else(|| {
                anyhow!("{filename} is not in the cache and no package index is configured (set ENVPACK_INDEX_URL)")
            })?;
            let pname: envpack_pypkg::PackageName = name
                .parse()
                .map_err(|e| anyhow!("bad package name \"{name}\": {e}"))?;
            let files = index.project_files(&pname)?;
            let file = files
                .iter()
                .find(|f| f.filename == *filename)
                .ok_or_else(|| {
                    anyhow!("{filename} is not on the index any more (project {name})")
                })?;
            let blob = opts
                .cache
                .fetch(opts.http, &file.url, Some((*sha256, Some(*size))))
                .with_context(|| format!("downloading {filename}"))?;
            Ok(blob.path)
        }
    }
}
