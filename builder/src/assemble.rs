//! Assembling one platform's environment in a staging directory, one stable layer at a time:
//! CPython (with its bytecode), then the installed wheels (with theirs), then the Conan home
//! template, launchers, activation scripts and the lock. The first two are reused from the
//! layer cache when their inputs haven't changed, in the form (prefix, compression) the writer
//! asks for.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context};
use envpack_layers::compress::Compression;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::{layer_diff_id, write_layer_prefixed};
use envpack_layers::tree::{scan_tree, TreeEntry};

use crate::conan_home::{conan_home_files, ConanRemote};
use crate::layer_cache::{self, CachedTree, LayerExtra, LayerFile};
use crate::lock::{Lock, LockedPlatform};
use envpack_net::Cache;
use envpack_pypkg::EntryPoint;
use envpack_pypkg::GeneratedFile;
use envpack_pypkg::LazyHost;
use envpack_pypkg::Platform;
use envpack_pypkg::{install_wheel, InstallTarget, InstallWarning, WheelInput};

/// What goes into one environment.
pub struct EnvInputs<'a> {
    /// The whole lock.
    pub lock: &'a Lock,
    /// The lock's exact text, copied into the tree.
    pub lock_text: &'a str,
    /// Target platform.
    pub platform: &'a Platform,
    /// Its pins.
    pub locked: &'a LockedPlatform,
    /// The CPython archive (hash-checked).
    pub python_archive: &'a Path,
    /// Wheels to install, sorted by package name.
    pub wheels: &'a [WheelInput],
    /// Compiles bytecode.
    pub host: &'a LazyHost,
    /// Identity of the host CPython (its archive hash): bytecode depends on it.
    pub host_sha256: Sha256Digest,
    /// Archive timestamp.
    pub epoch: u64,
    /// The cache (downloads and layers).
    pub cache: &'a Cache,
    /// The lock's Conan sources (hash-checked), by sha256.
    pub conan_sources: &'a [(Sha256Digest, std::path::PathBuf)],
}

/// How a writer stores a layer: under which directory and with which compression.
#[derive(Debug, Clone, Copy)]
pub struct LayerForm<'a> {
    /// Directory the layer's paths are placed under (empty: the tree's root).
    pub prefix: &'a str,
    /// Layer compression.
    pub compression: Compression,
}

impl LayerForm<'_> {
    /// Writes `entries` (read from `staging`) as layer `name` in this form into `work`.
    pub fn write(
        &self,
        name: &str,
        staging: &Path,
        entries: &[TreeEntry],
        epoch: u64,
        work: &Path,
    ) -> anyhow::Result<LayerFile> {
        let (desc, path) = write_layer_prefixed(
            name,
            staging,
            entries,
            self.prefix,
            epoch,
            self.compression,
            work,
        )
        .with_context(|| format!("writing layer {name}"))?;
        Ok(LayerFile { desc, path })
    }

    /// The diff_id of `file`'s layer unprefixed (what the env id is made of): its own when this
    /// form has no prefix, else hashed from `entries` in `staging`.
    pub fn plain_diff_id(
        &self,
        file: &LayerFile,
        staging: &Path,
        entries: &[TreeEntry],
        epoch: u64,
    ) -> anyhow::Result<Sha256Digest> {
        if self.prefix.is_empty() {
            return Ok(file.desc.diff_id);
        }
        let (diff_id, _) = layer_diff_id(staging, entries, epoch)
            .with_context(|| format!("hashing layer {}", file.desc.name))?;
        Ok(diff_id)
    }
}

/// One stable layer: its tree and its file in the form asked for.
pub struct StableLayer {
    /// Entries, unprefixed diff_id and what building it found.
    pub tree: CachedTree,
    /// The layer file (in the cache).
    pub file: LayerFile,
}

/// The two stable layers, ready to write out.
pub struct StableLayers {
    /// CPython.
    pub cpython: StableLayer,
    /// Installed packages.
    pub packages: StableLayer,
    /// Conan version installed, if any.
    pub conan_version: Option<String>,
}

fn py_minor(lock: &Lock) -> anyhow::Result<u8> {
    let (_, minor, _) = envpack_pypkg::parse_python_version(&lock.python.version)?;
    Ok(minor)
}

/// Looks layer `name` up in the cache (its tree and its file in `form`); on a miss, `make`
/// builds its tree in `staging` and the layer is written and cached. Also says whether it was
/// found.
fn cached_layer(
    inputs: &EnvInputs,
    name: &str,
    tree_key: &str,
    form: &LayerForm,
    staging: &Path,
    work: &Path,
    make: impl FnOnce() -> anyhow::Result<(Vec<TreeEntry>, LayerExtra)>,
) -> anyhow::Result<(StableLayer, bool)> {
    let blob_key = layer_cache::blob_key(tree_key, form.prefix, form.compression);
    if let Some(tree) = layer_cache::load_tree(inputs.cache, tree_key) {
        if let Some(file) = layer_cache::load_blob(inputs.cache, &blob_key) {
            return Ok((StableLayer { tree, file }, true));
        }
    }
    // A missing form rebuilds the tree too: the files it is written from are not kept.
    let (entries, extra) = make()?;
    let file = form.write(name, staging, &entries, inputs.epoch, work)?;
    let diff_id = form.plain_diff_id(&file, staging, &entries, inputs.epoch)?;
    let file = layer_cache::store_blob(inputs.cache, &blob_key, file.desc, &file.path)?;
    let tree = layer_cache::store_tree(inputs.cache, tree_key, diff_id, entries, extra)?;
    Ok((StableLayer { tree, file }, false))
}

/// Build (or reuse) the CPython and packages layers in `form`; `staging` receives what they
/// need and `work` the layer files.
pub fn stable_layers(
    inputs: &EnvInputs,
    form: &LayerForm,
    staging: &Path,
    work: &Path,
) -> anyhow::Result<StableLayers> {
    let platform = inputs.platform;
    let common = [
        env!("CARGO_PKG_VERSION").to_string(),
        platform.name.clone(),
        inputs.locked.python.sha256.to_hex(),
        inputs.host_sha256.to_hex(),
        inputs.epoch.to_string(),
    ];
    let mut parts: Vec<&str> = vec!["cpython"];
    parts.extend(common.iter().map(String::as_str));
    let cpython_key = layer_cache::key(&parts);
    let (cpython, _) = cached_layer(inputs, "cpython", &cpython_key, form, staging, work, || {
        Ok((cpython_tree(inputs, staging)?, LayerExtra::default()))
    })?;

    let wheel_ids: Vec<String> = inputs
        .wheels
        .iter()
        .map(|w| format!("{} {}", w.filename, w.sha256.to_hex()))
        .collect();
    let diff_id = cpython.tree.diff_id.to_string();
    let mut parts: Vec<&str> = vec!["packages", &diff_id];
    parts.extend(common.iter().map(String::as_str));
    parts.extend(wheel_ids.iter().map(String::as_str));
    let packages_key = layer_cache::key(&parts);
    let (packages, found) = cached_layer(
        inputs,
        "packages",
        &packages_key,
        form,
        staging,
        work,
        || {
            let cpython_paths: BTreeSet<String> = cpython
                .tree
                .entries
                .iter()
                .map(|e| e.path.clone())
                .collect();
            let tree = packages_tree(inputs, staging, &cpython_paths)?;
            let extra = LayerExtra {
                console_scripts: tree.console_scripts,
                warnings: tree.warnings,
            };
            Ok((tree.entries, extra))
        },
    )?;
    if found {
        // The install that found them ran in an earlier build; say it again.
        for w in &packages.tree.extra.warnings {
            w.log();
        }
    }
    let conan_version = conan_version(inputs.locked);
    Ok(StableLayers {
        cpython,
        packages,
        conan_version,
    })
}

/// The Conan version a platform's lock installs.
pub fn conan_version(locked: &LockedPlatform) -> Option<String> {
    locked
        .packages
        .iter()
        .find(|p| p.name == "conan")
        .map(|p| p.version.clone())
}

/// Unpack CPython into `staging`, drop its shipped bytecode and compile it anew; returns every
/// entry of the result (the CPython layer).
fn cpython_tree(inputs: &EnvInputs, staging: &Path) -> anyhow::Result<Vec<TreeEntry>> {
    let platform = inputs.platform;
    envpack_pypkg::extract_tar_gz(inputs.python_archive, staging)
        .with_context(|| format!("unpacking CPython for {}", platform.name))?;
    if fs_err::symlink_metadata(staging.join(platform.python_exe())).is_err() {
        bail!(
            "the CPython archive for {} has no {} (is it a python-build-standalone install_only archive?)",
            platform.name,
            platform.python_exe()
        );
    }
    fs_err::create_dir_all(staging.join(platform.site_packages(py_minor(inputs.lock)?)))?;
    remove_pycaches(&staging.join("python"))?;
    envpack_pypkg::compile_tree(inputs.host.get()?, staging, &BTreeSet::new())
        .with_context(|| format!("compiling bytecode for {}", platform.name))?;
    Ok(scan_tree(staging)?)
}

/// What installing the wheels added to a tree.
struct PackagesTree {
    /// The new entries (the packages layer).
    entries: Vec<TreeEntry>,
    /// Console scripts of all the wheels.
    console_scripts: Vec<EntryPoint>,
    /// Wheel defects that did not stop the install.
    warnings: Vec<InstallWarning>,
}

/// Install the wheels into `staging` (which holds CPython, or at least its site-packages dir)
/// and compile their bytecode.
fn packages_tree(
    inputs: &EnvInputs,
    staging: &Path,
    cpython_paths: &BTreeSet<String>,
) -> anyhow::Result<PackagesTree> {
    let platform = inputs.platform;
    let py_minor = py_minor(inputs.lock)?;
    fs_err::create_dir_all(staging.join(platform.site_packages(py_minor)))?;
    let target = InstallTarget {
        env_root: staging,
        platform,
        py_minor,
    };
    let mut console_scripts: Vec<EntryPoint> = Vec::new();
    let mut warnings = Vec::new();
    let mut not_compiled = cpython_paths.clone();
    for w in inputs.wheels {
        let dist = install_wheel(&w.path, &w.filename, &target)
            .with_context(|| format!("installing {}", w.filename))?;
        console_scripts.extend(dist.console_scripts);
        warnings.extend(dist.warnings);
        not_compiled.extend(dist.launchers);
    }
    console_scripts.sort_by(|a, b| a.name.cmp(&b.name));
    console_scripts.dedup_by(|a, b| a.name == b.name);
    envpack_pypkg::compile_tree(inputs.host.get()?, staging, &not_compiled)
        .with_context(|| format!("compiling package bytecode for {}", platform.name))?;
    let entries = scan_tree(staging)?
        .into_iter()
        .filter(|e| {
            (e.path == "python" || e.path.starts_with("python/"))
                && !cpython_paths.contains(&e.path)
        })
        .collect();
    Ok(PackagesTree {
        entries,
        console_scripts,
        warnings,
    })
}

/// Write the Conan home template, launchers, activation scripts and the lock into `staging`.
pub fn config_files(
    inputs: &EnvInputs,
    conan_version: Option<&str>,
    console_scripts: &[EntryPoint],
    staging: &Path,
) -> anyhow::Result<()> {
    let platform = inputs.platform;
    let lock = inputs.lock;
    // The env's own recipes come first, so they win over a team remote's of the same name.
    let local = (!lock.conan_recipes.is_empty()).then(crate::conan_recipes::local_remote);
    let remotes: Vec<ConanRemote> = local
        .into_iter()
        .chain(lock.conan_remotes.iter().map(|r| ConanRemote {
            name: r.name.clone(),
            url: r.url.clone(),
            verify_ssl: r.verify_ssl,
            remote_type: None,
        }))
        .collect();
    let profiles: Vec<(String, Vec<u8>)> = inputs
        .locked
        .profiles
        .iter()
        .map(|p| (p.name.clone(), p.content.clone().into_bytes()))
        .collect();
    let extra: Vec<(String, Vec<u8>)> = inputs
        .locked
        .home_files
        .iter()
        .map(|p| (p.name.clone(), p.content.clone().into_bytes()))
        .collect();
    let mut generated = conan_home_files(
        &remotes,
        &profiles,
        conan_version.unwrap_or("none"),
        &extra,
        !lock.conan_sources.is_empty(),
    )?;
    generated.extend(
        crate::conan_recipes::index_files(&lock.conan_recipes).map_err(anyhow::Error::msg)?,
    );
    generated.extend(envpack_pypkg::env_bin_launchers(
        platform,
        py_minor(inputs.lock)?,
        console_scripts,
    ));
    generated.extend(crate::activate::activation_scripts(
        &inputs.lock.name,
        platform,
    ));
    generated.push(GeneratedFile {
        path: "envpack.lock".into(),
        contents: inputs.lock_text.as_bytes().to_vec(),
        executable: false,
    });
    for (format, bytes) in crate::sbom::for_env(inputs.lock, inputs.locked, inputs.wheels)? {
        generated.push(GeneratedFile {
            path: format.tree_file().into(),
            contents: bytes,
            executable: false,
        });
    }
    for f in &generated {
        write_generated(staging, f)?;
    }
    for (sha256, from) in inputs.conan_sources {
        let to = staging.join(crate::conan_recipes::source_cache_path(sha256));
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::copy(from, &to)?;
    }
    Ok(())
}

/// Write one generated file (parents created, exec bit as asked).
pub fn write_generated(root: &Path, f: &GeneratedFile) -> anyhow::Result<()> {
    envpack_layers::tree::validate_rel_path(&f.path)?;
    let path = root.join(&f.path);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(&path, &f.contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if f.executable { 0o755 } else { 0o644 };
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn remove_pycaches(dir: &Path) -> anyhow::Result<()> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        if entry.file_type().is_dir() && entry.file_name() == "__pycache__" {
            found.push(entry.path().to_path_buf());
        }
    }
    for d in found {
        if d.exists() {
            fs_err::remove_dir_all(&d)?;
        }
    }
    Ok(())
}
