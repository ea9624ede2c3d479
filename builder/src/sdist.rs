//! Building wheels from sdists (PEP 517) with the pinned CPython of the build host and pinned
//! build requirements, under `SOURCE_DATE_EPOCH`, so the built wheel's hash can be locked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context};
use envpack_layers::digest::Sha256Digest;

use crate::lock::LockedFile;
use envpack_net::{Cache, Memo, SingleFlight};
use envpack_pypkg::{install_wheel, InstallTarget};
use envpack_pypkg::{BuiltWheel, ResolveRequest, Resolver, SdistBuilder};
use envpack_pypkg::{HostPython, LazyHost};
use envpack_pypkg::{IndexFile, SimpleIndex};

/// The PEP 517 fallback when an sdist has no `[build-system]`.
const LEGACY_BACKEND: &str = "setuptools.build_meta:__legacy__";
const LEGACY_REQUIRES: &str = "setuptools>=40.8.0";

/// Runs a PEP 517 hook inside the isolated build environment.
const HOOK_DRIVER: &str = r#"
import importlib, json, os, sys
mode, spec, out = sys.argv[1], sys.argv[2], sys.argv[3]
mod_name, _, attr = spec.partition(":")
backend = importlib.import_module(mod_name.strip())
for part in filter(None, attr.strip().split(".")):
    backend = getattr(backend, part)
if mode == "requires":
    hook = getattr(backend, "get_requires_for_build_wheel", None)
    reqs = list(hook({})) if hook else []
    with open(out, "w") as f:
        json.dump(reqs, f)
else:
    name = backend.build_wheel(out, {})
    with open(os.path.join(out, ".envpack-built-wheel"), "w") as f:
        f.write(name)
"#;

/// What the lock records about one sdist build.
#[derive(Debug, Clone)]
pub struct SdistRecord {
    /// The wheel built.
    pub wheel: BuiltWheel,
    /// The build packages used, pinned.
    pub build_packages: Vec<LockedFile>,
}

/// Builds sdists during `lock`: resolves their build requirements on the index (wheels only).
pub struct LockingSdistBuilder<'a> {
    /// CPython of the build host.
    pub host: &'a LazyHost,
    /// Index for build requirements.
    pub index: &'a SimpleIndex,
    /// Cache for downloads and built wheels.
    pub cache: &'a Cache,
    /// `SOURCE_DATE_EPOCH` for the build.
    pub epoch: u64,
    /// Builds done, by sdist sha256 (one build serves every platform).
    pub records: Mutex<BTreeMap<Sha256Digest, SdistRecord>>,
    /// Builds under way, by sdist sha256: platforms resolved at once wait for one build.
    pub building: SingleFlight<Sha256Digest>,
    /// Build environments installed, by their pinned wheels: sdists with the same build
    /// requirements share one. This assumes a backend only reads its environment, as PEP 517
    /// backends do (their bytecode goes to the pycache prefix, not into the environment).
    pub envs: Memo<Vec<Sha256Digest>, Arc<tempfile::TempDir>>,
}

/// A resolver hook for build requirements, which must all be wheels (no recursive sdist builds).
struct NoSdists;

impl SdistBuilder for NoSdists {
    fn build_wheel(
        &self,
        sdist: &IndexFile,
        _path: &Path,
    ) -> Result<BuiltWheel, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "build requirement {} is only available as an sdist; envpack builds sdists only with wheel build requirements",
            sdist.filename
        )
        .into())
    }
}

impl SdistBuilder for LockingSdistBuilder<'_> {
    fn build_wheel(
        &self,
        sdist: &IndexFile,
        sdist_path: &Path,
    ) -> Result<BuiltWheel, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.build(sdist, sdist_path)?)
    }
}

impl LockingSdistBuilder<'_> {
    /// Builds `sdist` once per sha256 and records the build for the lock.
    fn build(&self, sdist: &IndexFile, sdist_path: &Path) -> anyhow::Result<BuiltWheel> {
        let key = Sha256Digest::of_file(sdist_path)
            .with_context(|| format!("hashing {}", sdist.filename))?
            .0;
        self.building
            .run(&key, || self.build_once(sdist, sdist_path, key))
    }

    fn build_once(
        &self,
        sdist: &IndexFile,
        sdist_path: &Path,
        key: Sha256Digest,
    ) -> anyhow::Result<BuiltWheel> {
        if let Some(rec) = self
            .records
            .lock()
            .map_err(|_| anyhow!("sdist build state poisoned"))?
            .get(&key)
        {
            return Ok(rec.wheel.clone());
        }
        tracing::info!("building wheel from sdist {}", sdist.filename);
        let scratch = self.cache.scratch_dir()?;
        let src = unpack_sdist(sdist_path, &sdist.filename, scratch.path())?;
        let (backend, backend_path, mut requires) = build_system(&src)?;
        // The wheel hook runs beside the requires hook, in a second copy of the source (each
        // hook in a fresh process and a tree of its own, as PEP 517 asks), unpacked while the
        // build requirements are resolved and installed.
        let early = self.cache.scratch_dir()?;
        let resolver = Resolver {
            index: self.index,
            cache: self.cache,
            sdist_builder: &NoSdists,
        };
        let resolve = |reqs: &[String]| -> anyhow::Result<Vec<LockedFile>> {
            let parsed = reqs
                .iter()
                .map(|r| {
                    envpack_pypkg::parse_requirement(r).map_err(|e| {
                        anyhow!(
                            "build requirement \"{}\" of {}: {e}",
                            envpack_layers::shown_name(r),
                            sdist.filename
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let resolved = resolver
                .resolve(&ResolveRequest {
                    requirements: &parsed,
                    platform: self.host.platform(),
                    python_full_version: self.host.version(),
                })
                .with_context(|| {
                    format!("resolving the build requirements of {}", sdist.filename)
                })?;
            resolved
                .into_iter()
                .map(|p| {
                    let blob = self.cache.fetch(
                        self.index.http(),
                        &p.file.url,
                        p.file.sha256.map(|s| (s, p.file.size)),
                    )?;
                    Ok(LockedFile {
                        name: p.name.to_string(),
                        version: p.version.to_string(),
                        filename: p.file.filename.clone(),
                        sha256: blob.sha256,
                        size: blob.size,
                    })
                })
                .collect()
        };
        let (early_src, env) = std::thread::scope(|s| {
            let copy = s.spawn(|| unpack_sdist(sdist_path, &sdist.filename, early.path()));
            let env = resolve(&requires).and_then(|pins| Ok((self.env_for(&pins)?, pins)));
            (copy.join(), env)
        });
        let early_src = early_src
            .map_err(|_| anyhow!("unpacking {} stopped unexpectedly", sdist.filename))??;
        let (env, mut pins) = env?;
        let (_, early_backend_path, _) = build_system(&early_src)?;
        // Only the hooks need the interpreter itself, which may still be unpacking.
        let host = self.host.get()?;
        let hook = Hook {
            host,
            src: &src,
            env: env.path(),
            backend: &backend,
            backend_path: &backend_path,
            epoch: self.epoch,
            scratch: scratch.path(),
        };
        let early_hook = Hook {
            src: &early_src,
            backend_path: &early_backend_path,
            scratch: early.path(),
            ..hook
        };
        // The early wheel is kept when the requires hook wants nothing the env lacks, the
        // common case, so the two hooks overlap instead of running one after the other.
        // A failing requires hook stops the early wheel at once (dropping it kills the hook).
        let early_wheel = early_hook.start_wheel()?;
        let dynamic = hook.requires()?;
        let have: Vec<String> = pins.iter().map(|p| normalize(&p.name)).collect();
        let missing: Vec<String> = dynamic
            .into_iter()
            .filter(|r| {
                let name = envpack_pypkg::parse_requirement(r)
                    .map(|q| q.name.to_string())
                    .unwrap_or_else(|_| r.clone());
                !have.contains(&normalize(&name))
            })
            .collect();
        let wheel = if missing.is_empty() {
            early_wheel.finish(self.cache)?
        } else {
            drop(early_wheel);
            requires.extend(missing);
            pins = resolve(&requires)?;
            let env = self.env_for(&pins)?;
            Hook {
                env: env.path(),
                ..hook
            }
            .build_wheel(self.cache)?
        };
        self.records
            .lock()
            .map_err(|_| anyhow!("sdist build state poisoned"))?
            .insert(
                key,
                SdistRecord {
                    wheel: wheel.clone(),
                    build_packages: pins,
                },
            );
        Ok(wheel)
    }
}

impl LockingSdistBuilder<'_> {
    /// The build environment holding exactly `pins`, installed on first use.
    fn env_for(&self, pins: &[LockedFile]) -> anyhow::Result<Arc<tempfile::TempDir>> {
        let key: Vec<Sha256Digest> = pins.iter().map(|p| p.sha256).collect();
        self.envs.get_or_try(&key, || {
            let dir = self.cache.scratch_dir()?;
            let (platform, version) = (self.host.platform(), self.host.version());
            install_build_env(platform, version, pins, dir.path(), self.cache)?;
            Ok(Arc::new(dir))
        })
    }
}

/// Rebuild an sdist during `build` from exactly the pinned build packages (already in the cache
/// or fetched by the caller) and check the result against the locked wheel hash.
pub fn rebuild_pinned(
    host: &HostPython,
    sdist_path: &Path,
    sdist_filename: &str,
    pins: &[LockedFile],
    epoch: u64,
    cache: &Cache,
) -> anyhow::Result<BuiltWheel> {
    let scratch = cache.scratch_dir()?;
    let src = unpack_sdist(sdist_path, sdist_filename, scratch.path())?;
    let (backend, backend_path, _) = build_system(&src)?;
    let env = scratch.path().join("build-env");
    install_build_env(&host.platform, &host.version, pins, &env, cache)?;
    Hook {
        host,
        src: &src,
        env: &env,
        backend: &backend,
        backend_path: &backend_path,
        epoch,
        scratch: scratch.path(),
    }
    .build_wheel(cache)
}

pub(crate) fn install_build_env(
    platform: &envpack_pypkg::Platform,
    python_version: &str,
    pins: &[LockedFile],
    env: &Path,
    cache: &Cache,
) -> anyhow::Result<()> {
    fs_err::create_dir_all(env)?;
    let (_, py_minor, _) = envpack_pypkg::parse_python_version(python_version)?;
    let target = InstallTarget {
        env_root: env,
        platform,
        py_minor,
    };
    for pin in pins {
        let path = cache.get(&pin.sha256)?.ok_or_else(|| {
            anyhow!(
                "build package {} ({}) is not in the cache",
                pin.filename,
                pin.sha256
            )
        })?;
        install_wheel(&path, &pin.filename, &target)
            .with_context(|| format!("installing build package {}", pin.filename))?;
    }
    Ok(())
}

fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// Unpack an sdist and return its single top-level source directory.
fn unpack_sdist(archive: &Path, filename: &str, scratch: &Path) -> anyhow::Result<PathBuf> {
    let dest = scratch.join("src");
    envpack_pypkg::extract_sdist(archive, filename, &dest)?;
    let mut dirs = Vec::new();
    for entry in fs_err::read_dir(&dest)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    match dirs.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("sdist {filename} does not contain exactly one top-level directory"),
    }
}

/// `[build-system]` of `pyproject.toml`: (backend, backend-path, requires).
fn build_system(src: &Path) -> anyhow::Result<(String, Vec<PathBuf>, Vec<String>)> {
    let pyproject = src.join("pyproject.toml");
    let legacy = || {
        (
            LEGACY_BACKEND.to_string(),
            Vec::new(),
            vec![LEGACY_REQUIRES.to_string()],
        )
    };
    if !pyproject.exists() {
        return Ok(legacy());
    }
    let text = fs_err::read_to_string(&pyproject)?;
    let value: toml::Value =
        toml::from_str(&text).with_context(|| format!("parsing {}", pyproject.display()))?;
    let Some(bs) = value.get("build-system") else {
        return Ok(legacy());
    };
    let requires = match bs.get("requires") {
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    anyhow!(
                        "{}: build-system.requires must be strings",
                        pyproject.display()
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => vec![LEGACY_REQUIRES.to_string()],
        Some(_) => bail!(
            "{}: build-system.requires must be a list",
            pyproject.display()
        ),
    };
    let backend = match bs.get("build-backend") {
        Some(v) => v
            .as_str()
            .ok_or_else(|| {
                anyhow!(
                    "{}: build-system.build-backend must be a string",
                    pyproject.display()
                )
            })?
            .to_string(),
        None => LEGACY_BACKEND.to_string(),
    };
    let mut backend_path = Vec::new();
    if let Some(toml::Value::Array(a)) = bs.get("backend-path") {
        for v in a {
            let rel = v
                .as_str()
                .ok_or_else(|| anyhow!("backend-path entries must be strings"))?;
            envpack_layers::tree::validate_rel_path(rel.trim_start_matches("./")).with_context(
                || {
                    format!(
                        "{}: backend-path \"{}\"",
                        pyproject.display(),
                        envpack_layers::shown_name(rel)
                    )
                },
            )?;
            backend_path.push(src.join(rel));
        }
    }
    Ok((backend, backend_path, requires))
}

/// One PEP 517 backend in its isolated build environment.
#[derive(Clone, Copy)]
struct Hook<'a> {
    host: &'a HostPython,
    src: &'a Path,
    env: &'a Path,
    backend: &'a str,
    backend_path: &'a [PathBuf],
    epoch: u64,
    scratch: &'a Path,
}

impl Hook<'_> {
    /// The driver command with a clean, pinned environment.
    fn command(&self, mode: &str, out: &Path) -> anyhow::Result<Command> {
        let site = self
            .env
            .join(self.host.platform.site_packages(self.host.py_minor));
        let mut path_entries: Vec<PathBuf> = self.backend_path.to_vec();
        path_entries.push(site);
        let pythonpath =
            std::env::join_paths(&path_entries).map_err(|e| anyhow!("build PYTHONPATH: {e}"))?;
        let home = self.scratch.join("home");
        fs_err::create_dir_all(&home)?;
        // Files the backend creates get their mode from the umask, and wheels record modes: pin it.
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "umask 022 && exec \"$0\" \"$@\""])
            .arg(&self.host.exe)
            .current_dir(self.src)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("TMPDIR", self.scratch)
            .env("SOURCE_DATE_EPOCH", self.epoch.to_string())
            .env("PYTHONHASHSEED", "0")
            // Bytecode goes to a tree of its own, never into the source or the build env: a
            // hook then loads what an earlier one compiled (the standard library, the backend)
            // instead of compiling it again, about a second per hook.
            .env(
                "PYTHONPYCACHEPREFIX",
                self.host
                    .pycache_prefix()
                    .unwrap_or_else(|| self.scratch.join("pycache")),
            )
            .env("PYTHONNOUSERSITE", "1")
            .env("PYTHONPATH", pythonpath)
            .env("LC_ALL", "C.UTF-8")
            .env("TZ", "UTC")
            .args(["-c", HOOK_DRIVER, mode, self.backend])
            .arg(out);
        Ok(cmd)
    }

    /// `get_requires_for_build_wheel`
    fn requires(&self) -> anyhow::Result<Vec<String>> {
        let out = self.scratch.join("requires.json");
        run_checked(
            self.command("requires", &out)?,
            "get_requires_for_build_wheel",
        )?;
        let text = fs_err::read_to_string(&out)?;
        serde_json::from_str(&text).context("reading the build backend's requirements")
    }

    /// `build_wheel`, with the result put into the cache.
    fn build_wheel(&self, cache: &Cache) -> anyhow::Result<BuiltWheel> {
        self.start_wheel()?.finish(cache)
    }

    /// Starts `build_wheel`; the hook runs until [`RunningWheel::finish`] waits for it, or
    /// is stopped when the handle is dropped.
    fn start_wheel(&self) -> anyhow::Result<RunningWheel> {
        let out_dir = self.scratch.join("dist");
        fs_err::create_dir_all(&out_dir)?;
        let log_path = self.scratch.join("build_wheel.log");
        let log = fs_err::File::create(&log_path)?;
        let mut cmd = self.command("wheel", &out_dir)?;
        // As with the other hooks, only stderr is kept for an error's message.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.into_parts().0);
        let what = format!("build_wheel of {}", self.src.display());
        let child = cmd.spawn().with_context(|| format!("running {what}"))?;
        Ok(RunningWheel {
            child: Some(child),
            out_dir,
            log_path,
            what,
        })
    }
}

/// A `build_wheel` hook under way.
struct RunningWheel {
    child: Option<Child>,
    out_dir: PathBuf,
    log_path: PathBuf,
    what: String,
}

impl RunningWheel {
    /// Waits for the hook and puts its wheel into the cache.
    fn finish(mut self, cache: &Cache) -> anyhow::Result<BuiltWheel> {
        let status = match self.child.take() {
            Some(mut child) => child
                .wait()
                .with_context(|| format!("waiting for {}", self.what))?,
            None => bail!("{} was already stopped", self.what),
        };
        if !status.success() {
            let log = fs_err::read_to_string(&self.log_path).unwrap_or_default();
            bail!("{} failed ({status}):\n{}", self.what, tail(&log));
        }
        let name = fs_err::read_to_string(self.out_dir.join(".envpack-built-wheel"))?;
        let name = name.trim().to_string();
        if name.contains(['/', '\\']) || !name.ends_with(".whl") {
            bail!(
                "build backend returned an odd wheel name \"{}\"",
                envpack_layers::shown_name(&name)
            );
        }
        let blob = cache.insert_file(&self.out_dir.join(&name))?;
        Ok(BuiltWheel {
            filename: name,
            path: blob.path,
            sha256: blob.sha256,
            size: blob.size,
        })
    }
}

impl Drop for RunningWheel {
    fn drop(&mut self) {
        // Not waited for: its result isn't wanted (the requires hook failed or asked for
        // more), so it is stopped now rather than waited out.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last 30 lines of a hook's output, for an error.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().rev().take(30).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

fn run_checked(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{what} failed ({}):\n{}", out.status, tail(&stderr));
    }
    Ok(())
}
