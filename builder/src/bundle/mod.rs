//! `envpack bundle`: every input of a lock in one self-contained directory (or one tar), laid
//! out so that it *is* a CPython mirror (`python/`), a PEP 503 index (`simple/` over `files/`)
//! and an OCI image layout of the base images (`oci/`), next to the spec and lock (`spec/`).
//! `envpack --bundle DIR build` (or `ENVPACK_PYTHON_MIRROR`/`ENVPACK_INDEX_URL` pointed at it)
//! rebuilds the same artifacts with no network; an auditor checks it with `sha256sum -c`.
//!
//! Every file is taken from the cache or downloaded, and checked against the lock's sha256
//! before it is copied; the bundle is written beside its destination and renamed into place,
//! so a failure leaves nothing behind and an earlier bundle stays whole until replaced.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use envpack_layers::digest::Sha256Digest;

use crate::build::{build_pins, fetch_all, package_need, BuildOptions, Need, Origins};
use crate::lock::{Lock, LockedPython};
use crate::spec::LoadedSpec;

mod archive;
mod bases;
mod pages;

/// The list of every file's sha256 at the top of a bundle (what marks a directory as one).
pub const SUMS_FILE: &str = "SHA256SUMS";

/// What `bundle` was asked for.
pub struct BundleRequest<'a> {
    /// The lock and its text (copied as is).
    pub lock: &'a Lock,
    /// The lock's text.
    pub lock_text: &'a str,
    /// The spec the lock was made from (copied, with the profiles and home files it names).
    pub spec: &'a LoadedSpec,
    /// A directory, or a file ending in `.tar`.
    pub out: &'a Path,
}

/// What was written.
pub struct BundleReport {
    /// The directory or tar file.
    pub path: PathBuf,
    /// Files in it (not counting the generated pages and lists).
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
}

/// One file of the bundle: where it goes and where it comes from.
enum Source {
    /// A gathered input, by sha256.
    Input(Sha256Digest),
    /// Generated text (pages, lists, the spec and lock).
    Text(String),
}

/// Writes the bundle of `req.lock`'s platforms `opts.platforms` (all when empty).
pub fn bundle(req: &BundleRequest, opts: &BuildOptions) -> anyhow::Result<BundleReport> {
    let as_tar = req.out.extension().is_some_and(|e| e == "tar");
    check_destination(req.out, as_tar)?;
    let lock = req.lock;
    let chosen = chosen_platforms(lock, opts.platforms)?;
    let mut plan: BTreeMap<String, Source> = BTreeMap::new();
    let mut needs: Vec<Need> = Vec::new();

    // CPython: the chosen platforms', the build host's of the lock, and this host's when the
    // lock has it, so the sdists can be rebuilt where the bundle was made.
    let mut pythons: Vec<&LockedPython> = chosen.iter().map(|p| &p.python).collect();
    let build_python = lock.build_python.as_ref().map(|b| b.python());
    pythons.extend(build_python.as_ref());
    let host = envpack_pypkg::host_platform().and_then(|h| lock.platform(&h.name));
    pythons.extend(host.map(|p| &p.python));
    let release = &lock.python.build;
    check_component("the lock's python build", release)?;
    let mut python_sums = Vec::new();
    for py in pythons {
        check_component("CPython archive", &py.filename)?;
        let at = format!("python/{release}/{}", py.filename);
        if claim(&mut plan, &at, py.sha256)? {
            python_sums.push((py.filename.clone(), py.sha256));
            needs.push(Need::Python(py));
        }
    }
    let sums = pages::sha256sums(python_sums.iter().map(|(f, s)| (f.as_str(), *s)));
    plan.insert(format!("python/{release}/SHA256SUMS"), Source::Text(sums));

    // Packages: every file of the chosen platforms, and every build package of an sdist.
    let mut projects: BTreeMap<String, Vec<(String, Sha256Digest)>> = BTreeMap::new();
    for p in &chosen {
        for pkg in &p.packages {
            let pins = build_pins(pkg, lock)?;
            let files = std::iter::once((&pkg.name, &pkg.filename, pkg.sha256, pkg.size)).chain(
                pins.iter()
                    .map(|b| (&b.name, &b.filename, b.sha256, b.size)),
            );
            for (name, filename, sha, size) in files {
                check_component("package file", filename)?;
                let project: envpack_pypkg::PackageName = name
                    .parse()
                    .map_err(|e| anyhow!("bad package name \"{name}\" in the lock: {e}"))?;
                if claim(&mut plan, &format!("files/{filename}"), sha)? {
                    projects
                        .entry(project.to_string())
                        .or_default()
                        .push((filename.clone(), sha));
                    needs.push(package_need(name, filename, sha, size));
                }
            }
        }
    }
    let names: Vec<&str> = projects.keys().map(String::as_str).collect();
    plan.insert(
        "simple/index.html".into(),
        Source::Text(pages::root_page(&names)),
    );
    for (project, files) in &projects {
        let mut files: Vec<(&str, Sha256Digest)> =
            files.iter().map(|(f, s)| (f.as_str(), *s)).collect();
        files.sort();
        let page = pages::project_page(project, &files);
        plan.insert(format!("simple/{project}/index.html"), Source::Text(page));
    }

    spec_files(&mut plan, req, lock)?;

    let origins = Origins::new(opts)?;
    (opts.progress)(&format!("gathering {} file(s) of the lock", needs.len()));
    let gathered = fetch_all(&needs, &origins.sources(lock), opts)?;

    let parent = match req.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs_err::create_dir_all(&parent)?;
    let work = tempfile::Builder::new()
        .prefix(".envpack-bundle-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a work dir in {}", parent.display()))?;
    let dir = work.path().join("bundle");
    fs_err::create_dir_all(&dir)?;

    (opts.progress)("writing the bundle");
    let mut sums: Vec<(String, Sha256Digest)> = Vec::new();
    let (mut files, mut bytes) = (0usize, 0u64);
    for (rel, source) in &plan {
        let dest = dir.join(rel);
        if let Some(p) = dest.parent() {
            fs_err::create_dir_all(p)?;
        }
        match source {
            Source::Input(sha) => {
                let from = gathered
                    .get(sha)
                    .ok_or_else(|| anyhow!("{rel}: its input {sha} was not gathered"))?;
                // A copy, never a link: the bundle leaves this machine, the cache stays.
                bytes += fs_err::copy(from, &dest)?;
                files += 1;
                sums.push((rel.clone(), *sha));
            }
            Source::Text(text) => {
                fs_err::write(&dest, text)?;
                sums.push((rel.clone(), Sha256Digest::of_bytes(text.as_bytes())));
            }
        }
    }
    let base_files = bases::write_layout(&dir.join("oci"), lock, &chosen, opts)?;
    for (rel, sha, size) in base_files {
        files += 1;
        bytes += size;
        sums.push((rel, sha));
    }
    let text = pages::sha256sums(sums.iter().map(|(p, s)| (p.as_str(), *s)));
    fs_err::write(dir.join(SUMS_FILE), text)?;

    if as_tar {
        let tmp = work.path().join("bundle.tar");
        let top = req
            .out
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| anyhow!("{} has no usable file name", req.out.display()))?;
        archive::write_tar(&dir, top, lock.epoch, &tmp)?;
        fs_err::rename(&tmp, req.out)?;
    } else {
        replace_dir(&dir, req.out, work.path())?;
    }
    Ok(BundleReport {
        path: req.out.to_path_buf(),
        files,
        bytes,
    })
}

/// One plain path component, as the bundle's paths need.
fn check_component(what: &str, name: &str) -> anyhow::Result<()> {
    pages::check_component(what, name).map_err(anyhow::Error::msg)
}

/// Records that `at` holds the input `sha`; false when it already does (two platforms share
/// it), an error when another input wants the same name.
fn claim(plan: &mut BTreeMap<String, Source>, at: &str, sha: Sha256Digest) -> anyhow::Result<bool> {
    match plan.get(at) {
        None => {
            plan.insert(at.to_string(), Source::Input(sha));
            Ok(true)
        }
        Some(Source::Input(had)) if *had == sha => Ok(false),
        Some(_) => bail!("the lock pins two different files named {at}"),
    }
}

/// The lock's platforms named in `wanted` (all when empty), each checked.
fn chosen_platforms<'l>(
    lock: &'l Lock,
    wanted: &[String],
) -> anyhow::Result<Vec<&'l crate::lock::LockedPlatform>> {
    if wanted.is_empty() {
        return Ok(lock.platforms.iter().collect());
    }
    let mut seen = HashSet::new();
    wanted
        .iter()
        .filter(|w| seen.insert(w.as_str()))
        .map(|w| {
            lock.platform(w).ok_or_else(|| {
                let have: Vec<&str> = lock.platforms.iter().map(|p| p.name.as_str()).collect();
                anyhow!(
                    "platform {w} is not in the lock (it has {})",
                    have.join(", ")
                )
            })
        })
        .collect()
}

/// The spec, the lock, and every profile and home file the spec names (from the lock's pinned
/// content), under `spec/`: a spec directory `build --spec DIR/spec/envpack.toml` accepts.
fn spec_files(
    plan: &mut BTreeMap<String, Source>,
    req: &BundleRequest,
    lock: &Lock,
) -> anyhow::Result<()> {
    plan.insert(
        "spec/envpack.toml".into(),
        Source::Text(req.spec.text.clone()),
    );
    plan.insert(
        "spec/envpack.lock".into(),
        Source::Text(req.lock_text.to_string()),
    );
    for p in &lock.platforms {
        for f in p.profiles.iter().chain(&p.home_files) {
            if Sha256Digest::of_bytes(f.content.as_bytes()) != f.sha256 {
                bail!(
                    "the lock's content of {} does not have its pinned sha256",
                    f.source
                );
            }
            let rel = f.source.replace('\\', "/");
            for part in rel.split('/') {
                check_component("a spec file's path part", part)?;
            }
            let at = format!("spec/{rel}");
            match plan.get(&at) {
                Some(Source::Text(t)) if *t == f.content => {}
                Some(_) => bail!("the lock gives {} two different contents", f.source),
                None => {
                    plan.insert(at, Source::Text(f.content.clone()));
                }
            }
        }
    }
    Ok(())
}

/// Refuses a destination that is something other than an earlier bundle, before any work.
fn check_destination(out: &Path, as_tar: bool) -> anyhow::Result<()> {
    let Ok(meta) = fs_err::symlink_metadata(out) else {
        return Ok(());
    };
    if as_tar {
        if !meta.is_file() {
            bail!(
                "{} exists and is not a file; choose another --out",
                out.display()
            );
        }
        return Ok(());
    }
    let empty = meta.is_dir() && fs_err::read_dir(out)?.next().is_none();
    let earlier =
        meta.is_dir() && out.join(SUMS_FILE).is_file() && out.join("spec/envpack.lock").is_file();
    if !(empty || earlier) {
        bail!(
            "{} exists and is not an earlier bundle (no {SUMS_FILE} and spec/envpack.lock); remove it or choose another --out",
            out.display()
        );
    }
    Ok(())
}

/// Puts the finished `dir` at `out`, moving an earlier bundle there aside first and
/// deleting it only once the new one is in place.
fn replace_dir(dir: &Path, out: &Path, work: &Path) -> anyhow::Result<()> {
    if fs_err::symlink_metadata(out).is_ok() {
        let old = work.join("replaced");
        fs_err::rename(out, &old)?;
        if let Err(e) = fs_err::rename(dir, out) {
            // Put the earlier bundle back before reporting.
            let _ = fs_err::rename(&old, out);
            return Err(e.into());
        }
    } else {
        fs_err::rename(dir, out)?;
    }
    Ok(())
}
