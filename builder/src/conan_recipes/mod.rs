//! Conan content carried in the env: recipes and `python_requires` packages as an env-local
//! `local-recipes-index` remote (`conan-recipes/`), listed before the team's remotes, and the
//! upstream sources they download, pre-laid in Conan's source download cache.
//!
//! A Conan cache (`p/`, `cache.sqlite3`) holds timestamps and ids, so the env never carries
//! one: Conan exports a recipe from the index folder the first time it is asked for it, and
//! the revision it computes is the one `envpack lock` had the same Conan compute from the same
//! files ([`revision`]).

mod remote;
mod revision;
mod sources;
mod tree;

pub use crate::conan_ref::RecipeRef;
pub use remote::{latest_revision, revision_files};
pub use revision::recipe_revisions;
pub use sources::{fetch_url, lock_sources, source_cache_path};
pub use tree::{index_files, read_folder, RECIPE_MAX_BYTES};

use std::path::Path;

use anyhow::bail;

use crate::conan_home::ConanRemote;
use crate::lock::{Lock, LockedFile, LockedPlatform, LockedRecipe, PackageKind};
use crate::spec::LoadedSpec;

/// The env-local remote's name in `remotes.json`.
pub const LOCAL_REMOTE: &str = "envpack-recipes";

/// The recipes index folder, relative to the env's root.
pub const INDEX_DIR: &str = "conan-recipes";

/// The env-local remote, first in `remotes.json`; its url is relative to the env's root
/// until the unpacker seeds the writable home.
pub fn local_remote() -> ConanRemote {
    ConanRemote {
        name: LOCAL_REMOTE.into(),
        url: INDEX_DIR.into(),
        verify_ssl: true,
        remote_type: Some("local-recipes-index"),
    }
}

/// The recipes of the spec, read from their folders or downloaded (latest revision) from their
/// remotes, with the revisions `revisions` computes from the files as the env will lay them
/// out, sorted by reference. A remote's recipe whose files give another revision than the
/// remote's is an error: Conan in the env would not find the pinned one.
pub fn locked_recipes(
    spec: &LoadedSpec,
    http: &envpack_net::HttpClient,
    revisions: impl Fn(&[LockedRecipe]) -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<Vec<LockedRecipe>> {
    let mut recipes = spec_recipes(spec, Some(http))?;
    if recipes.is_empty() {
        return Ok(recipes);
    }
    let found = revisions(&recipes)?;
    for (r, rev) in recipes.iter_mut().zip(found) {
        if r.remote.is_some() && r.revision != rev {
            bail!(
                "recipe {}#{} from {}: laid out as a local-recipes-index folder its files give revision {rev}, so Conan in the env would not find the pinned one (a recipe with revision_mode = \"scm\", or one whose export() writes files, can't be carried this way)",
                r.reference,
                r.revision,
                r.origin()
            );
        }
        r.revision = rev;
    }
    Ok(recipes)
}

/// The spec's recipes with their files, sorted by reference: folders read (revision left
/// empty for Conan to compute), remote recipes fetched when `http` is given (with the remote's
/// latest revision) and left out otherwise.
fn spec_recipes(
    spec: &LoadedSpec,
    http: Option<&envpack_net::HttpClient>,
) -> anyhow::Result<Vec<LockedRecipe>> {
    let mut recipes = Vec::new();
    for r in &spec.spec.conan.recipes {
        let (files, revision) = match (&r.path, &r.remote, http) {
            (Some(path), _, _) => (
                read_folder(spec.base_dir(), path)
                    .map_err(|e| anyhow::anyhow!("conan.recipes {}: {e}", r.reference))?,
                String::new(),
            ),
            (None, Some(remote), Some(http)) => {
                let parsed = RecipeRef::parse(&r.reference).map_err(anyhow::Error::msg)?;
                let url = &spec
                    .spec
                    .conan
                    .remotes
                    .iter()
                    .find(|x| &x.name == remote)
                    .ok_or_else(|| anyhow::anyhow!("remote {remote} is not in conan.remotes"))?
                    .url;
                let rev = remote::latest_revision(http, url, &parsed)?;
                (remote::revision_files(http, url, &parsed, &rev)?, rev)
            }
            _ => continue,
        };
        recipes.push(LockedRecipe {
            reference: r.reference.clone(),
            revision,
            path: r.path.clone(),
            remote: r.remote.clone(),
            files,
        });
    }
    recipes.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(recipes)
}

/// Errors when the lock pins other recipes than the spec lists (a hand-edited lock) or a
/// recipe folder no longer holds what the lock pinned (the revision would differ): the lock is
/// stale. A remote's recipe is pinned by the lock alone (`audit` asks the remote whether it
/// moved on).
pub fn check_fresh(spec: &LoadedSpec, lock: &Lock, lock_path: &Path) -> anyhow::Result<()> {
    let stale = |why: String| {
        anyhow::anyhow!(
            "{} is stale: {why}; re-run `envpack lock`",
            lock_path.display()
        )
    };
    let mut listed: Vec<(&str, Option<&String>, Option<&String>)> = spec
        .spec
        .conan
        .recipes
        .iter()
        .map(|r| (r.reference.as_str(), r.path.as_ref(), r.remote.as_ref()))
        .collect();
    listed.sort();
    let pinned: Vec<(&str, Option<&String>, Option<&String>)> = lock
        .conan_recipes
        .iter()
        .map(|r| (r.reference.as_str(), r.path.as_ref(), r.remote.as_ref()))
        .collect();
    if listed != pinned {
        return Err(stale(
            "it pins other Conan recipes than the spec lists".into(),
        ));
    }
    let now = spec_recipes(spec, None)?;
    let folders = lock.conan_recipes.iter().filter(|r| r.path.is_some());
    for (want, got) in folders.zip(&now) {
        if want.files != got.files {
            return Err(stale(format!(
                "recipe {} changed in {} ({})",
                want.reference,
                got.origin(),
                changed_files(want, got).join(", ")
            )));
        }
    }
    Ok(())
}

/// Paths that differ between two versions of a recipe's files, sorted.
fn changed_files<'a>(a: &'a LockedRecipe, b: &'a LockedRecipe) -> Vec<&'a str> {
    let mut paths: Vec<&str> = a
        .files
        .iter()
        .filter(|f| !b.files.contains(f))
        .map(|f| f.path.as_str())
        .chain(
            b.files
                .iter()
                .filter(|f| !a.files.contains(f))
                .map(|f| f.path.as_str()),
        )
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths
}

/// The wheels of conan and its dependencies as the lock pins them for `host` (the build
/// host's platform) or, when the env doesn't target it, for the first platform: Conan and
/// its dependencies run from their pure-Python parts on any host.
pub fn conan_closure(platforms: &[LockedPlatform], host: &str) -> anyhow::Result<Vec<LockedFile>> {
    let Some(p) = platforms
        .iter()
        .find(|p| p.name == host)
        .or_else(|| platforms.first())
    else {
        bail!("no platform is locked");
    };
    if !p.packages.iter().any(|pkg| pkg.name == "conan") {
        bail!(
            "[conan] recipes need conan among [packages] requirements (it computes their revisions and serves them)"
        );
    }
    let mut out = Vec::new();
    for pkg in &p.packages {
        let (filename, sha256, size) = match (&pkg.kind, &pkg.built_wheel) {
            (PackageKind::Wheel, _) => (pkg.filename.clone(), pkg.sha256, pkg.size),
            (PackageKind::Sdist, Some(w)) => (w.filename.clone(), w.sha256, w.size),
            (PackageKind::Sdist, None) => bail!(
                "{} {} is an sdist the lock built no wheel of",
                pkg.name,
                pkg.version
            ),
        };
        out.push(LockedFile {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            filename,
            sha256,
            size,
        });
    }
    Ok(out)
}
