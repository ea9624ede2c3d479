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

use anyhow::{anyhow, bail};
use envpack_layers::digest::Sha256Digest;

use crate::build::{build_pins, fetch_all, package_need, BuildOptions, Need, Origins};
use crate::lock::{Lock, LockedPython};
use crate::spec::LoadedSpec;

mod archive;
mod bases;
mod pages;
mod place;

/// The list of every file's sha256 at the top of a bundle (what marks a directory as one).
pub const SUMS_FILE: &str = "SHA256SUMS";

/// The bundle's folder of Conan sources (`<sha256>` files).
const SOURCES_DIR: &str = "sources";

/// Where the bundle at `dir` holds the Conan source with `sha256`, as a URL to fetch it from.
pub fn source_url(dir: &Path, sha256: &Sha256Digest) -> anyhow::Result<url::Url> {
    let path = dir.join(SOURCES_DIR).join(sha256.to_hex());
    url::Url::from_file_path(&path)
        .map_err(|()| anyhow!("bundle path {} can't be a file URL", path.display()))
}

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
    let top = place::check_destination(req.out, as_tar)?;
    let lock = req.lock;
    let chosen = chosen_platforms(lock, opts.platforms)?;
    let mut plan = Plan::default();

    // CPython of every platform of the lock and its [build-python], whichever platforms are
    // chosen: a build needs the build host's, and the bundle must not depend on where it was
    // made. A mirror serves `<build>/<name>` decoded from its URL form, so an explicit pin's
    // `%2B` is stored as `+`.
    let mut pythons: Vec<&LockedPython> = lock.platforms.iter().map(|p| &p.python).collect();
    let build_python = lock.build_python.as_ref().map(|b| b.python());
    pythons.extend(build_python.as_ref());
    let release = &lock.python.build;
    check_component("the lock's python build", release)?;
    let mut python_sums = Vec::new();
    for py in pythons {
        let name = percent_encoding::percent_decode_str(&py.filename)
            .decode_utf8()
            .map_err(|_| anyhow!("CPython archive name {} is not UTF-8 decoded", py.filename))?
            .into_owned();
        check_component("CPython archive", &name)?;
        if plan.claim(format!("python/{release}/{name}"), py.sha256)? {
            python_sums.push((name, py.sha256));
            plan.needs.push(Need::Python(py));
        }
    }
    let sums = pages::sha256sums(python_sums.iter().map(|(f, s)| (f.as_str(), *s)));
    plan.text(format!("python/{release}/SHA256SUMS"), sums)?;

    // Packages: every file of the chosen platforms, and every build package of an sdist.
    let mut projects: BTreeMap<String, Vec<(&str, Sha256Digest)>> = BTreeMap::new();
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
                if plan.claim(format!("files/{filename}"), sha)? {
                    projects
                        .entry(project.to_string())
                        .or_default()
                        .push((filename, sha));
                    plan.needs.push(package_need(name, filename, sha, size));
                }
            }
        }
    }
    let names: Vec<&str> = projects.keys().map(String::as_str).collect();
    plan.text("simple/index.html".into(), pages::root_page(&names))?;
    for (project, files) in &mut projects {
        files.sort();
        let page = pages::project_page(project, files);
        plan.text(format!("simple/{project}/index.html"), page)?;
    }
    // Conan sources, named by sha256 as Conan's download cache names them.
    for src in &lock.conan_sources {
        if plan.claim(format!("{SOURCES_DIR}/{}", src.sha256.to_hex()), src.sha256)? {
            plan.needs.push(Need::Source(src));
        }
    }
    spec_files(&mut plan, req, lock)?;
    plan.check_case_collisions()?;

    // Everything is fetched, and every base pulled, before the first directory is made.
    let origins = Origins::new(opts)?;
    (opts.progress)(&format!(
        "gathering {} file(s) of the lock",
        plan.needs.len()
    ));
    let gathered = fetch_all(&plan.needs, &origins.sources(lock), opts)?;
    let pulled = bases::pull(lock, &chosen, opts)?;

    let work = place::work_dir(req.out)?;
    let dir = work.path().join("bundle");
    fs_err::create_dir_all(&dir)?;
    (opts.progress)("writing the bundle");
    let mut sums: Vec<(String, Sha256Digest)> = Vec::new();
    let (mut files, mut bytes) = (0usize, 0u64);
    for (rel, source) in &plan.files {
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
    for (rel, sha, size) in bases::write_layout(&dir.join("oci"), &pulled)? {
        files += 1;
        bytes += size;
        sums.push((rel, sha));
    }
    let text = pages::sha256sums(sums.iter().map(|(p, s)| (p.as_str(), *s)));
    fs_err::write(dir.join(SUMS_FILE), text)?;

    if as_tar {
        let tmp = work.path().join("bundle.tar");
        archive::write_tar(&dir, &top, lock.epoch, &tmp)?;
        fs_err::rename(&tmp, req.out)?;
    } else {
        place::replace_dir(&dir, req.out, work)?;
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

/// What the bundle will hold, by path, and the inputs to gather for it.
#[derive(Default)]
struct Plan<'l> {
    files: BTreeMap<String, Source>,
    needs: Vec<Need<'l>>,
}

impl Plan<'_> {
    /// Records that `at` holds the input `sha`; false when it already does (two platforms
    /// share it), an error when another file wants the same path.
    fn claim(&mut self, at: String, sha: Sha256Digest) -> anyhow::Result<bool> {
        match self.files.get(&at) {
            None => {
                self.files.insert(at, Source::Input(sha));
                Ok(true)
            }
            Some(Source::Input(had)) if *had == sha => Ok(false),
            Some(_) => bail!("the lock pins two different files named {at}"),
        }
    }

    /// Records generated text at `at`, which nothing else may claim.
    fn text(&mut self, at: String, text: String) -> anyhow::Result<()> {
        if self.files.contains_key(&at) {
            bail!("the lock names a file {at}, which the bundle writes itself");
        }
        self.files.insert(at, Source::Text(text));
        Ok(())
    }

    /// Two paths that differ only in case are one file on macOS and Windows: refused, so a
    /// bundle made on Linux stays whole wherever it is copied.
    fn check_case_collisions(&self) -> anyhow::Result<()> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for path in self.files.keys() {
            if let Some(other) = seen.insert(path.to_lowercase(), path) {
                bail!("the bundle would hold {other} and {path}, which are one file where case is not told apart");
            }
        }
        Ok(())
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
fn spec_files(plan: &mut Plan, req: &BundleRequest, lock: &Lock) -> anyhow::Result<()> {
    plan.text("spec/envpack.toml".into(), req.spec.text.clone())?;
    plan.text("spec/envpack.lock".into(), req.lock_text.to_string())?;
    let mut files: Vec<(String, Sha256Digest, &str)> = Vec::new();
    for p in &lock.platforms {
        for f in p.profiles.iter().chain(&p.home_files) {
            files.push((f.source.clone(), f.sha256, &f.content));
        }
    }
    for r in &lock.conan_recipes {
        // A remote's recipe is rebuilt from the lock alone; only folders are spec files.
        let Some(path) = &r.path else { continue };
        for f in &r.files {
            files.push((format!("{path}/{}", f.path), f.sha256, &f.content));
        }
    }
    for (source, sha256, content) in files {
        if Sha256Digest::of_bytes(content.as_bytes()) != sha256 {
            bail!("the lock's content of {source} does not have its pinned sha256");
        }
        for part in source.split('/') {
            check_component("a spec file's path part", part)?;
        }
        let at = format!("spec/{source}");
        match plan.files.get(&at) {
            Some(Source::Text(t)) if t == content => {}
            Some(_) => bail!("the lock gives {source} two different contents"),
            None => plan.text(at, content.to_string())?,
        }
    }
    Ok(())
}
