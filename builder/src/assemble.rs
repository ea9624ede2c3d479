//! Assembling one platform's environment tree in a staging directory: CPython, installed
//! wheels, bytecode, the Conan home template, launchers, activation scripts and the lock.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::conan_home::{conan_home_files, ConanRemote};
use crate::host_python::HostPython;
use crate::install::entry_points::EntryPoint;
use crate::install::{install_wheel, InstallTarget};
use crate::launcher::GeneratedFile;
use crate::lock::{Lock, LockedPlatform};
use crate::platform::Platform;

/// What goes into one environment tree.
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
    /// Wheels to install as (wheel file name, hash-checked path), sorted by package name.
    pub wheels: &'a [(String, PathBuf)],
    /// Compiles bytecode.
    pub host: &'a HostPython,
}

/// Facts about an assembled tree needed to split it into layers.
pub struct AssembledEnv {
    /// Paths that came with the CPython archive (after removing its bytecode caches).
    pub cpython_paths: BTreeSet<String>,
    /// Conan version installed, if any.
    pub conan_version: Option<String>,
}

/// Build the tree of one platform under `staging` (which must be empty).
pub fn assemble(inputs: &EnvInputs, staging: &Path) -> anyhow::Result<AssembledEnv> {
    let platform = inputs.platform;
    crate::archive::extract_tar_gz(inputs.python_archive, staging)
        .with_context(|| format!("unpacking CPython for {}", platform.name))?;
    let exe = staging.join(platform.python_exe());
    if fs_err::symlink_metadata(&exe).is_err() {
        bail!(
            "the CPython archive for {} has no {} (is it a python-build-standalone install_only archive?)",
            platform.name,
            platform.python_exe()
        );
    }
    let (_, py_minor, _) = crate::spec::parse_python_version(&inputs.lock.python.version)
        .map_err(anyhow::Error::msg)?;
    let site = staging.join(platform.site_packages(py_minor));
    fs_err::create_dir_all(&site)?;
    remove_pycaches(&staging.join("python"))?;
    let cpython_paths = relative_paths(staging)?;

    let target = InstallTarget {
        env_root: staging,
        platform,
        py_minor,
    };
    let mut console_scripts: Vec<EntryPoint> = Vec::new();
    let names = tempfile::tempdir().context("creating a temp dir")?;
    for (filename, wheel) in inputs.wheels {
        let named = link_with_name(wheel, filename, names.path())?;
        let dist =
            install_wheel(&named, &target).with_context(|| format!("installing {filename}"))?;
        console_scripts.extend(dist.console_scripts);
    }
    console_scripts.sort_by(|a, b| a.name.cmp(&b.name));
    console_scripts.dedup_by(|a, b| a.name == b.name);

    crate::bytecode::compile_tree(inputs.host, staging)
        .with_context(|| format!("compiling bytecode for {}", platform.name))?;

    let conan_version = inputs
        .locked
        .packages
        .iter()
        .find(|p| p.name == "conan")
        .map(|p| p.version.clone());
    let remotes: Vec<ConanRemote> = inputs
        .lock
        .conan_remotes
        .iter()
        .map(|r| ConanRemote {
            name: r.name.clone(),
            url: r.url.clone(),
            verify_ssl: r.verify_ssl,
        })
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
        conan_version.as_deref().unwrap_or("none"),
        &extra,
    )?;
    generated.extend(crate::launcher::env_bin_launchers(
        platform,
        py_minor,
        &console_scripts,
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
    for f in &generated {
        write_generated(staging, f)?;
    }
    Ok(AssembledEnv {
        cpython_paths,
        conan_version,
    })
}

/// Cached blobs are named by hash; the installer checks a wheel's file name against its
/// metadata, so give it a link with the real name.
pub fn link_with_name(blob: &Path, filename: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    envpack_layers::tree::validate_rel_path(filename)?;
    if filename.contains('/') {
        bail!("bad wheel file name {filename:?}");
    }
    let link = dir.join(filename);
    if fs_err::symlink_metadata(&link).is_ok() {
        fs_err::remove_file(&link)?;
    }
    fs_err::hard_link(blob, &link).or_else(|_| fs_err::copy(blob, &link).map(|_| ()))?;
    Ok(link)
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

fn relative_paths(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .context("walked outside the root")?
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path under {}", root.display()))?
            .replace('\\', "/");
        out.insert(rel);
    }
    Ok(out)
}
