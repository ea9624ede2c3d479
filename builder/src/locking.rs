//! `envpack lock`: turn a spec into a lock, resolving every platform separately.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use envpack_layers::digest::Sha256Digest;

use crate::lock::{
    BuiltWheelPin, Lock, LockedBuildPython, LockedConanFile, LockedFile, LockedPackage,
    LockedPlatform, LockedPythonRelease, LockedRemote, PackageKind,
};
use crate::python::SumsMemo;
use crate::sdist::LockingSdistBuilder;
use crate::spec::{LoadedSpec, ProfileSource};
use envpack_net::{try_parallel_map, Cache, HttpClient, Memo, SingleFlight};
use envpack_pypkg::LazyHost;
use envpack_pypkg::SimpleIndex;
use envpack_pypkg::{host_platform, Platform};
use envpack_pypkg::{DistKind, ResolveRequest, Resolver};

/// Inputs of a lock run besides the spec.
pub struct LockOptions<'a> {
    /// Index URL from `--index-url`.
    pub index_flag: Option<&'a str>,
    /// The cache.
    pub cache: &'a Cache,
    /// HTTP client.
    pub http: &'a HttpClient,
    /// The existing lock, whose epoch is kept when SOURCE_DATE_EPOCH is unset.
    pub previous: Option<&'a Lock>,
    /// Progress callback: one line per step (called from the threads of platforms locked at once).
    pub progress: &'a (dyn Fn(&str) + Sync),
}

/// A newer version of a locked package that the platform's target kept out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetWarning {
    /// Platform name.
    pub platform: String,
    /// Project name.
    pub package: String,
    /// The version locked.
    pub locked: String,
    /// The newer version.
    pub newer: String,
    /// The setting that would admit it (`glibc`, `macos`).
    pub setting: String,
    /// The value that would admit it.
    pub needs: String,
    /// The platform's value now.
    pub target: String,
    /// The newer version's file that needs it.
    pub file: String,
    /// The whole warning as one line.
    pub message: String,
}

impl TargetWarning {
    fn new(platform: &str, package: &str, locked: &str, note: &envpack_pypkg::TargetNote) -> Self {
        let needs = format!("{}.{}", note.needed.0, note.needed.1);
        let target = format!("{}.{}", note.current.0, note.current.1);
        let message = format!(
            "{platform}: locked {package} {locked}, but {package} {}; {}",
            note,
            envpack_pypkg::raise_advice(platform, note.key, note.needed)
        );
        TargetWarning {
            platform: platform.to_string(),
            package: package.to_string(),
            locked: locked.to_string(),
            newer: note.version.to_string(),
            setting: note.key.to_string(),
            needs,
            target,
            file: note.filename.clone(),
            message,
        }
    }
}

/// A lock and what `lock` has to say about it.
#[derive(Debug, Clone)]
pub struct LockOutcome {
    /// The lock.
    pub lock: Lock,
    /// Newer versions the platforms' targets kept out.
    pub warnings: Vec<TargetWarning>,
}

/// Make the lock for a spec.
pub fn lock(spec: &LoadedSpec, opts: &LockOptions) -> anyhow::Result<LockOutcome> {
    let s = &spec.spec;
    let release = LockedPythonRelease {
        version: s.python.version.clone(),
        build: s.python.build.clone(),
        variant: s.python.variant.clone(),
    };
    let mirror = crate::config::python_mirror(s.python.mirror.as_deref())?;
    let index_url = crate::config::index_url(opts.index_flag, s.packages.index.as_deref())?;
    let index = SimpleIndex::new(index_url, opts.http.clone());
    let epoch = match std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        Some(e) => e,
        None => match opts.previous {
            Some(prev) => prev.epoch,
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        },
    };

    let mut platforms: Vec<Platform> = s
        .env
        .platforms
        .iter()
        .map(|p| s.platform(p))
        .collect::<Result<_, _>>()?;
    platforms.sort_by(|a, b| a.name.cmp(&b.name));

    // The platforms are pinned at once: each downloads its own CPython archive.
    let sums = SumsMemo::default();
    let pinned = try_parallel_map(opts.http.concurrency(), &platforms, |p| {
        (opts.progress)(&format!(
            "pinning CPython {} for {}",
            release.version, p.name
        ));
        crate::python::lock_python(
            &release,
            s.python.files.get(&p.name),
            p,
            &mirror,
            &sums,
            opts.http,
            opts.cache,
        )
        .with_context(|| format!("pinning CPython for {}", p.name))
    })?;
    let mut pythons = BTreeMap::new();
    for (p, locked) in platforms.iter().zip(pinned) {
        pythons.insert(p.name.clone(), locked);
    }

    // The build host's CPython builds the sdists and compiles every platform's bytecode: it is
    // pinned even when the env doesn't target the build host (then as `[build-python]`).
    let mut build_python = None;
    let host = match host_platform() {
        Some(h) => {
            let locked = match pythons.get(&h.name) {
                Some(locked) => locked.clone(),
                None => {
                    (opts.progress)(&format!(
                        "pinning CPython {} for the build host ({})",
                        release.version, h.name
                    ));
                    let locked = crate::python::lock_python(
                        &release, None, &h, &mirror, &sums, opts.http, opts.cache,
                    )
                    .with_context(|| format!("pinning CPython for the build host ({})", h.name))?;
                    build_python = Some(LockedBuildPython {
                        platform: h.name.clone(),
                        filename: locked.filename.clone(),
                        sha256: locked.sha256,
                        size: locked.size,
                    });
                    locked
                }
            };
            let blob = opts
                .cache
                .get(&locked.sha256)?
                .ok_or_else(|| anyhow!("CPython for {} vanished from the cache", h.name))?;
            Some(LazyHost::new(blob, h, &release.version, opts.cache))
        }
        None => None,
    };

    let requirements = s
        .packages
        .requirements
        .iter()
        .map(|r| {
            envpack_pypkg::parse_requirement(r)
                .map_err(|e| anyhow!("\"{}\": {e}", envpack_layers::shown_name(r)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let host_builder = host.as_ref().map(|h| LockingSdistBuilder {
        host: h,
        index: &index,
        cache: opts.cache,
        epoch,
        records: Mutex::new(BTreeMap::new()),
        building: SingleFlight::new(),
        envs: Memo::default(),
    });
    let no_host = NoHost {
        host_name: host_platform()
            .map(|h| h.name)
            .unwrap_or_else(|| "unknown".into()),
    };

    // CONAN_HOME files are the same for every platform: read them once.
    let home = home_files(spec)?;
    let shared = Shared {
        spec,
        opts,
        index: &index,
        requirements: &requirements,
        release: &release,
        sdist_builder: match &host_builder {
            Some(b) => b,
            None => &no_host,
        },
        host_builder: host_builder.as_ref(),
        home: &home,
    };
    // Every platform is resolved at once; they share the index's pages and metadata, the
    // downloads and the sdist builds, each fetched or built once. A failure stops the
    // platforms not started yet; the one reported is the first in platform order.
    // The build host's CPython is unpacked, and the standard library its build backends import
    // compiled, while the resolutions wait on the index: the first sdist build takes it from
    // there, or waits for it.
    let done = std::thread::scope(|scope| {
        if let Some(h) = &host {
            scope.spawn(|| {
                if let Ok(h) = h.get() {
                    h.start_warming();
                }
            });
        }
        try_parallel_map(opts.http.concurrency(), &platforms, |p| {
            let python = pythons
                .get(&p.name)
                .cloned()
                .ok_or_else(|| anyhow!("no CPython pinned for {}", p.name))?;
            lock_platform(&shared, p, python)
        })
    })?;
    // The interpreter is checked to run even when no sdist needed it.
    if let Some(h) = &host {
        h.get()?;
    }
    let mut locked_platforms = Vec::new();
    let mut warnings = Vec::new();
    for (locked, found) in done {
        locked_platforms.push(locked);
        warnings.extend(found);
    }

    let conan_sources =
        crate::conan_recipes::lock_sources(spec, opts.http, opts.cache, opts.progress)?;
    let conan_recipes = crate::conan_recipes::locked_recipes(spec, opts.http, |recipes| {
        let host = host
            .as_ref()
            .ok_or_else(|| anyhow!("[conan] recipes: Conan computes their revisions, and envpack has no CPython for this build host ({})", no_host.host_name))?
            .get()?;
        let closure = crate::conan_recipes::conan_closure(&locked_platforms, &host.platform.name)?;
        (opts.progress)("computing Conan recipe revisions");
        crate::conan_recipes::recipe_revisions(recipes, host, &closure, opts.cache)
    })?;

    let mut build_packages: Vec<LockedFile> = host_builder
        .map(|b| {
            b.records
                .into_inner()
                .map(|m| m.into_values().flat_map(|r| r.build_packages).collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    build_packages.sort_by(|a, b| (&a.name, &a.filename).cmp(&(&b.name, &b.filename)));
    build_packages.dedup();

    let mut lock = Lock {
        version: 1,
        spec_hash: spec.hash,
        epoch,
        name: s.env.name.clone(),
        python: release,
        conan_remotes: s
            .conan
            .remotes
            .iter()
            .map(|r| LockedRemote {
                name: r.name.clone(),
                url: r.url.clone(),
                verify_ssl: r.verify_ssl,
            })
            .collect(),
        conan_recipes,
        conan_sources,
        build_python,
        build_packages,
        platforms: locked_platforms,
        image_bases: Vec::new(),
    };
    lock.version = lock.required_version();
    Ok(LockOutcome { lock, warnings })
}

/// What every platform's resolution shares.
struct Shared<'a> {
    spec: &'a LoadedSpec,
    opts: &'a LockOptions<'a>,
    index: &'a SimpleIndex,
    requirements: &'a [pep508_rs::Requirement],
    release: &'a LockedPythonRelease,
    sdist_builder: &'a dyn envpack_pypkg::SdistBuilder,
    host_builder: Option<&'a LockingSdistBuilder<'a>>,
    home: &'a [LockedConanFile],
}

/// Resolves one platform and downloads (hash-checking) every file it picked.
fn lock_platform(
    sh: &Shared,
    p: &Platform,
    python: crate::lock::LockedPython,
) -> anyhow::Result<(LockedPlatform, Vec<TargetWarning>)> {
    let s = &sh.spec.spec;
    let opts = sh.opts;
    (opts.progress)(&format!(
        "resolving {} for {}",
        s.packages.requirements.join(", "),
        p.name
    ));
    let resolver = Resolver {
        index: sh.index,
        cache: opts.cache,
        sdist_builder: sh.sdist_builder,
    };
    let resolved = resolver
        .resolve(&ResolveRequest {
            requirements: sh.requirements,
            platform: p,
            python_full_version: &sh.release.version,
        })
        .map_err(|e| match e {
            envpack_pypkg::PypkgError::Unmet { platform, unmet } => {
                let lines: Vec<String> = unmet
                    .iter()
                    .map(|u| {
                        format!(
                            "{}: packages.requirements: {}: {} (for {platform})",
                            sh.spec.requirement_place(u.index),
                            s.packages
                                .requirements
                                .get(u.index)
                                .unwrap_or(&u.requirement),
                            u.detail
                        )
                    })
                    .collect();
                anyhow!("{}", lines.join("\n"))
            }
            e => anyhow::Error::new(e).context(format!("resolving packages for {}", p.name)),
        })?;
    let to_fetch = resolved
        .iter()
        .map(|r| (r.file.sha256, r.file.size.unwrap_or(0)));
    if let Some((count, bytes)) = opts.cache.announce_downloads(opts.http, to_fetch) {
        let mib = bytes as f64 / f64::from(1 << 20);
        (opts.progress)(&format!(
            "downloading {count} file(s) for {}, {mib:.1} MiB",
            p.name
        ));
    }
    let blobs = try_parallel_map(opts.http.concurrency(), &resolved, |r| {
        opts.cache
            .fetch(
                opts.http,
                &r.file.url,
                r.file.sha256.map(|sha| (sha, r.file.size)),
            )
            .with_context(|| format!("downloading {}", r.file.filename))
    })?;
    let mut warnings = Vec::new();
    let mut packages = Vec::new();
    for (r, blob) in resolved.into_iter().zip(blobs) {
        if let Some(note) = &r.newer_needs_target {
            warnings.push(TargetWarning::new(
                &p.name,
                &r.name.to_string(),
                &r.version.to_string(),
                note,
            ));
        }
        let (kind, built_wheel, build_requires) = match r.kind {
            DistKind::Wheel => (PackageKind::Wheel, None, Vec::new()),
            DistKind::Sdist => {
                let built = r.built_wheel.as_ref().ok_or_else(|| {
                    anyhow!(
                        "{} was resolved as an sdist but no wheel was built",
                        r.file.filename
                    )
                })?;
                let reqs = sh
                    .host_builder
                    .and_then(|b| {
                        b.records
                            .lock()
                            .ok()
                            .and_then(|m| m.get(&blob.sha256).cloned())
                    })
                    .map(|rec| {
                        rec.build_packages
                            .iter()
                            .map(|f| format!("{}=={}", f.name, f.version))
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    PackageKind::Sdist,
                    Some(BuiltWheelPin {
                        filename: built.filename.clone(),
                        sha256: built.sha256,
                        size: built.size,
                    }),
                    reqs,
                )
            }
        };
        let mut deps: Vec<String> = r.dependencies.iter().map(|d| d.to_string()).collect();
        deps.sort();
        deps.dedup();
        packages.push(LockedPackage {
            name: r.name.to_string(),
            version: r.version.to_string(),
            filename: r.file.filename.clone(),
            sha256: blob.sha256,
            size: blob.size,
            kind,
            built_wheel,
            build_requires,
            dependencies: deps,
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let setting = s.platforms.get(&p.name);
    let locked = LockedPlatform {
        name: p.name.clone(),
        glibc: setting.and_then(|t| t.glibc.clone()),
        macos: setting.and_then(|t| t.macos.clone()),
        python,
        packages,
        profiles: profiles_for(sh.spec, &p.name)?,
        home_files: sh.home.to_vec(),
    };
    Ok((locked, warnings))
}

struct NoHost {
    host_name: String,
}

impl envpack_pypkg::SdistBuilder for NoHost {
    fn build_wheel(
        &self,
        sdist: &envpack_pypkg::IndexFile,
        _path: &Path,
    ) -> Result<envpack_pypkg::BuiltWheel, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "{} has no wheel and must be built from its sdist, which needs a build host of one of envpack's platforms (this one is {})",
            sdist.filename,
            self.host_name
        )
        .into())
    }
}

/// Read a UTF-8 text file next to the spec and pin it.
fn pin_file(spec: &LoadedSpec, name: &str, source: &str) -> anyhow::Result<LockedConanFile> {
    let path =
        crate::spec::spec_file(spec.base_dir(), source).map_err(|e| anyhow!("{name}: {e}"))?;
    let content = crate::input::read_text(
        &path,
        crate::input::MAX_CONFIG_FILE_BYTES,
        "Conan config file",
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(LockedConanFile {
        name: name.to_string(),
        source: source.to_string(),
        sha256: Sha256Digest::of_bytes(content.as_bytes()),
        content,
    })
}

/// The profiles a platform gets, sorted by name.
pub fn profiles_for(spec: &LoadedSpec, platform: &str) -> anyhow::Result<Vec<LockedConanFile>> {
    let mut out = Vec::new();
    for (name, src) in &spec.spec.conan.profiles {
        let source = match src {
            ProfileSource::All(s) => Some(s),
            ProfileSource::PerPlatform(m) => m.get(platform),
        };
        if let Some(source) = source {
            out.push(
                pin_file(spec, name, source).with_context(|| format!("conan profile {name}"))?,
            );
        }
    }
    Ok(out)
}

/// Extra CONAN_HOME files, sorted by path: the `home-files` table and every file of the
/// `config` folder (a `conan config install` tree), at its path inside the folder.
pub fn home_files(spec: &LoadedSpec) -> anyhow::Result<Vec<LockedConanFile>> {
    let mut out: Vec<LockedConanFile> = spec
        .spec
        .conan
        .home_files
        .iter()
        .map(|(path, source)| {
            pin_file(spec, path, source).with_context(|| format!("conan home file {path}"))
        })
        .collect::<anyhow::Result<_>>()?;
    if let Some(dir) = &spec.spec.conan.config {
        let files = crate::conan_recipes::read_folder(spec.base_dir(), dir)
            .map_err(|e| anyhow!("conan.config: {e}"))?;
        for f in files {
            if out.iter().any(|o| o.name == f.path) {
                anyhow::bail!(
                    "conan.config: {dir}/{} is also a conan.home-files entry; give it once",
                    f.path
                );
            }
            out.push(LockedConanFile {
                source: format!("{}/{}", dir.trim_end_matches('/'), f.path),
                name: f.path,
                sha256: f.sha256,
                content: f.content,
            });
        }
    }
    out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(out)
}

/// Check that a lock still matches its spec and the files next to it; the error says what to do.
pub fn check_fresh(spec: &LoadedSpec, lock: &Lock, lock_path: &Path) -> anyhow::Result<()> {
    let stale = |why: String| {
        anyhow!(
            "{} is stale: {why}; re-run `envpack lock`",
            lock_path.display()
        )
    };
    if lock.spec_hash != spec.hash {
        return Err(stale(format!(
            "{} changed since it was locked",
            spec.path.display()
        )));
    }
    crate::conan_recipes::check_fresh(spec, lock, lock_path)?;
    let home_now = home_files(spec)?;
    for p in &lock.platforms {
        let now = profiles_for(spec, &p.name)?;
        if now != p.profiles {
            return Err(stale(format!("a Conan profile of {} changed", p.name)));
        }
        if home_now != p.home_files {
            return Err(stale("a Conan home file changed".into()));
        }
    }
    Ok(())
}

/// Write a lock atomically (temp file, fsync, rename, fsync of the directory).
pub fn write_lock(lock: &Lock, path: &Path) -> anyhow::Result<()> {
    crate::atomic::write_file(path, lock.to_toml().as_bytes())
}

/// Writes the lock with `bases` as its base image pins (`[[image-base]]`).
pub fn write_lock_with_bases(
    lock: &Lock,
    bases: &[crate::lock::LockedBase],
    path: &Path,
) -> anyhow::Result<()> {
    let mut lock = lock.clone();
    lock.image_bases = bases.to_vec();
    lock.image_bases.sort_by(|a, b| a.platform.cmp(&b.platform));
    write_lock(&lock, path)
}
