//! `envpack build`: fetch everything a lock pins (cache first), assemble each platform's tree
//! and write its portable artifact.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use envpack_layers::compress::Compression;

use crate::assemble::{assemble, EnvInputs};
use crate::cache::Cache;
use crate::host_python::HostPython;
use crate::http::HttpClient;
use crate::index::SimpleIndex;
use crate::lock::{Lock, LockedFile, LockedPackage, PackageKind};
use crate::package::{package, BuiltArtifact, EnvMeta};
use crate::platform::{self, Platform};

/// Inputs of a build besides the lock.
pub struct BuildOptions<'a> {
    /// Platforms to build (empty: all in the lock).
    pub platforms: &'a [String],
    /// Output directory.
    pub out_dir: &'a Path,
    /// Layer compression.
    pub compression: Compression,
    /// Index URL from `--index-url`.
    pub index_flag: Option<&'a str>,
    /// Index URL from the spec.
    pub spec_index: Option<&'a str>,
    /// CPython mirror from the spec.
    pub spec_mirror: Option<&'a str>,
    /// Cache.
    pub cache: &'a Cache,
    /// HTTP client.
    pub http: &'a HttpClient,
    /// Progress: one line per step.
    pub progress: &'a dyn Fn(&str),
}

/// Build artifacts for the chosen platforms of a (fresh) lock.
pub fn build(
    lock: &Lock,
    lock_text: &str,
    opts: &BuildOptions,
) -> anyhow::Result<Vec<BuiltArtifact>> {
    let chosen: Vec<Platform> = if opts.platforms.is_empty() {
        lock.platforms
            .iter()
            .map(|p| platform::by_name(&p.name))
            .collect::<Result<_, _>>()?
    } else {
        let mut v = Vec::new();
        for name in opts.platforms {
            let p = platform::by_name(name)?;
            if lock.platform(name).is_none() {
                let have: Vec<&str> = lock.platforms.iter().map(|p| p.name.as_str()).collect();
                bail!("platform {name} is not in the lock (it has: {}); add it to env.platforms and re-run `envpack lock`", have.join(", "));
            }
            v.push(p);
        }
        v
    };
    crate::package::prepare_out_dir(opts.out_dir)?;
    let epoch = crate::config::epoch(lock.epoch);
    let mirror = crate::config::python_mirror(opts.spec_mirror)?;
    // The index is only contacted for files missing from the cache.
    let index = crate::config::index_url(opts.index_flag, opts.spec_index)
        .ok()
        .map(|u| SimpleIndex::new(u, opts.http.clone()));

    let host_platform = platform::host()
        .ok_or_else(|| anyhow!("this machine is not one of envpack's platforms"))?;
    let host_locked = lock.platform(&host_platform.name).ok_or_else(|| {
        anyhow!(
            "building needs the build host's platform ({}) in the lock: its CPython compiles the bytecode; add it to env.platforms and re-run `envpack lock`",
            host_platform.name
        )
    })?;
    (opts.progress)(&format!(
        "fetching CPython for the build host ({})",
        host_platform.name
    ));
    let host_archive = crate::python::fetch_python(
        &host_locked.python,
        &lock.python,
        &mirror,
        opts.http,
        opts.cache,
    )?;
    let host = HostPython::from_archive(
        &host_archive.path,
        host_platform,
        &lock.python.version,
        opts.cache,
    )?;

    let mut out = Vec::new();
    for p in &chosen {
        let locked = lock
            .platform(&p.name)
            .ok_or_else(|| anyhow!("platform {} is not in the lock", p.name))?;
        (opts.progress)(&format!(
            "fetching CPython and {} packages for {}",
            locked.packages.len(),
            p.name
        ));
        let archive = crate::python::fetch_python(
            &locked.python,
            &lock.python,
            &mirror,
            opts.http,
            opts.cache,
        )
        .with_context(|| format!("fetching CPython for {}", p.name))?;
        let mut wheels = Vec::new();
        for pkg in &locked.packages {
            let path = wheel_for(pkg, lock, index.as_ref(), &host, opts)?;
            let filename = match &pkg.built_wheel {
                Some(b) => b.filename.clone(),
                None => pkg.filename.clone(),
            };
            wheels.push((filename, path));
        }
        (opts.progress)(&format!("assembling {}", p.name));
        let staging = tempfile::Builder::new()
            .prefix(".envpack-staging-")
            .tempdir_in(opts.out_dir)
            .with_context(|| format!("creating a staging dir in {}", opts.out_dir.display()))?;
        let assembled = assemble(
            &EnvInputs {
                lock,
                lock_text,
                platform: p,
                locked,
                python_archive: &archive.path,
                wheels: &wheels,
                host: &host,
            },
            staging.path(),
        )?;
        (opts.progress)(&format!("writing layers for {}", p.name));
        let artifact = package(
            staging.path(),
            &assembled,
            &EnvMeta {
                name: &lock.name,
                platform: &p.name,
                python_version: &lock.python.version,
                python_build: &lock.python.build,
                epoch,
                lock_bytes: lock_text.as_bytes(),
            },
            opts.compression,
            opts.out_dir,
        )?;
        out.push(artifact);
    }
    Ok(out)
}

/// The wheel to install for a pinned package: from the cache, else downloaded (or rebuilt from
/// its sdist with the pinned build packages), always hash-checked against the lock.
fn wheel_for(
    pkg: &LockedPackage,
    lock: &Lock,
    index: Option<&SimpleIndex>,
    host: &HostPython,
    opts: &BuildOptions,
) -> anyhow::Result<PathBuf> {
    match pkg.kind {
        PackageKind::Wheel => {
            fetch_pinned(&pkg.name, &pkg.filename, &pkg.sha256, pkg.size, index, opts)
        }
        PackageKind::Sdist => {
            let built = pkg.built_wheel.as_ref().ok_or_else(|| {
                anyhow!(
                    "lock entry for {} is an sdist without built-wheel",
                    pkg.name
                )
            })?;
            if let Some(path) = opts.cache.get(&built.sha256)? {
                return Ok(path);
            }
            let sdist = fetch_pinned(&pkg.name, &pkg.filename, &pkg.sha256, pkg.size, index, opts)?;
            let mut pins: Vec<LockedFile> = Vec::new();
            for req in &pkg.build_requires {
                let (name, version) = req
                    .split_once("==")
                    .ok_or_else(|| anyhow!("bad build-requires entry {req:?} for {}", pkg.name))?;
                let pin = lock
                    .build_packages
                    .iter()
                    .find(|b| b.name == name && b.version == version)
                    .ok_or_else(|| {
                        anyhow!("build package {req} of {} is not in the lock", pkg.name)
                    })?;
                fetch_pinned(&pin.name, &pin.filename, &pin.sha256, pin.size, index, opts)?;
                pins.push(pin.clone());
            }
            // Built with the lock's epoch: that is what the locked wheel hash was made with.
            (opts.progress)(&format!("rebuilding {} from its sdist", pkg.filename));
            let wheel = crate::sdist::rebuild_pinned(
                host,
                &sdist,
                &pkg.filename,
                &pins,
                lock.epoch,
                opts.cache,
            )?;
            if wheel.sha256 != built.sha256 {
                bail!(
                    "rebuilding {} gave {} with {}, but the lock pins {}: the sdist build is not reproducible here",
                    pkg.filename,
                    wheel.filename,
                    wheel.sha256,
                    built.sha256
                );
            }
            Ok(wheel.path)
        }
    }
}

fn fetch_pinned(
    name: &str,
    filename: &str,
    sha256: &envpack_layers::digest::Sha256Digest,
    size: u64,
    index: Option<&SimpleIndex>,
    opts: &BuildOptions,
) -> anyhow::Result<PathBuf> {
    if let Some(path) = opts.cache.get(sha256)? {
        return Ok(path);
    }
    let index = index.ok_or_else(|| {
        anyhow!("{filename} is not in the cache and no package index is configured (set ENVPACK_INDEX_URL)")
    })?;
    let pname: crate::filename::PackageName = name
        .parse()
        .map_err(|e| anyhow!("bad package name {name:?}: {e:?}"))?;
    let files = index.project_files(&pname)?;
    let file = files
        .iter()
        .find(|f| f.filename == filename)
        .ok_or_else(|| anyhow!("{filename} is not on the index any more (project {name})"))?;
    let blob = opts
        .cache
        .fetch(opts.http, &file.url, Some((*sha256, Some(size))))
        .with_context(|| format!("downloading {filename}"))?;
    Ok(blob.path)
}
