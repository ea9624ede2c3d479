//! Conan content pins: recipes by revision (with every file they are exported from, content
//! included, like profiles, so `build` needs nothing but the lock) and upstream sources by
//! sha256.

use envpack_layers::digest::Sha256Digest;
use serde::Deserialize;

use super::hex_digest;

/// A Conan recipe pinned by the revision Conan computes from its exported files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRecipe {
    /// `name/version` (with `@user/channel` when the recipe declares them).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The recipe revision (32 hex digits), as Conan lists it.
    pub revision: String,
    /// The folder next to the spec it was read from, or
    #[serde(default)]
    pub path: Option<String>,
    /// the remote it was downloaded from.
    #[serde(default)]
    pub remote: Option<String>,
    /// Its files, sorted by path.
    #[serde(rename = "file")]
    pub files: Vec<LockedRecipeFile>,
}

impl LockedRecipe {
    /// Where it came from, for messages: its folder, or `remote NAME`.
    pub fn origin(&self) -> String {
        match (&self.path, &self.remote) {
            (Some(p), _) => p.clone(),
            (None, Some(r)) => format!("remote {r}"),
            (None, None) => "nowhere".into(),
        }
    }

    /// `name/version#revision`, as Conan prints a pinned reference.
    pub fn pinned(&self) -> String {
        format!("{}#{}", self.reference, self.revision)
    }
}

/// One file of a pinned recipe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedRecipeFile {
    /// Path inside the recipe folder (`/`-separated).
    pub path: String,
    /// sha256 of the content.
    #[serde(deserialize_with = "hex_digest")]
    pub sha256: Sha256Digest,
    /// Whether it is executable.
    #[serde(default)]
    pub executable: bool,
    /// The file's text.
    pub content: String,
}

/// An upstream source archive, served to Conan from its download cache by sha256.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSource {
    /// Where `lock` and `build` fetch it.
    pub url: String,
    /// sha256 of the file (Conan's download cache key).
    #[serde(deserialize_with = "hex_digest")]
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
}

/// What a lock's Conan pins must be for `build` to lay them out: each reference well-formed
/// and its folder (name and version, case aside) given once, its revision 32 hex digits, its
/// remote one of the lock's, its files at distinct (case aside) relative paths usable on every
/// platform with content matching their sha256, no source listed twice.
pub(super) fn check_conan(
    recipes: &[LockedRecipe],
    sources: &[LockedSource],
    remotes: &[super::LockedRemote],
) -> Result<(), String> {
    let mut folders = std::collections::BTreeSet::new();
    for r in recipes {
        let shown = envpack_layers::shown_name(&r.reference);
        let parsed = crate::conan_ref::RecipeRef::parse(&r.reference)
            .map_err(|e| format!("conan-recipe \"{shown}\" {e}"))?;
        if !folders.insert((parsed.name.clone(), parsed.version.to_ascii_lowercase())) {
            return Err(format!(
                "conan-recipe \"{shown}\": {}/{} is pinned twice (the env has one folder per name and version)",
                parsed.name, parsed.version
            ));
        }
        if let Some(remote) = &r.remote {
            if !remotes.iter().any(|x| &x.name == remote) {
                return Err(format!(
                    "conan-recipe \"{shown}\": remote \"{}\" is not one of the lock's conan-remote entries",
                    envpack_layers::shown_name(remote)
                ));
            }
        }
        if r.revision.len() != 32 || !r.revision.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "conan-recipe \"{shown}\": revision \"{}\" is not 32 hex digits",
                envpack_layers::shown_name(&r.revision)
            ));
        }
        if r.path.is_some() == r.remote.is_some() {
            return Err(format!(
                "conan-recipe \"{shown}\" must have either a path or a remote"
            ));
        }
        let mut paths = std::collections::BTreeSet::new();
        for f in &r.files {
            let file = envpack_layers::shown_name(&f.path);
            envpack_layers::tree::validate_rel_path(&f.path)
                .map_err(|e| format!("conan-recipe \"{shown}\": file \"{file}\": {e}"))?;
            for part in f.path.split('/') {
                crate::conan_ref::portable_component(part)
                    .map_err(|why| format!("conan-recipe \"{shown}\": file \"{file}\" {why}"))?;
            }
            if !paths.insert(f.path.to_lowercase()) {
                return Err(format!(
                    "conan-recipe \"{shown}\": file \"{file}\" is listed twice (or twice but for case, which macOS and Windows can't hold)"
                ));
            }
            if Sha256Digest::of_bytes(f.content.as_bytes()) != f.sha256 {
                return Err(format!(
                    "conan-recipe \"{shown}\": the content of {} does not have its pinned sha256",
                    envpack_layers::shown_name(&f.path)
                ));
            }
        }
        if !r.files.iter().any(|f| f.path == "conanfile.py") {
            return Err(format!("conan-recipe \"{shown}\" has no conanfile.py"));
        }
    }
    let mut shas = std::collections::BTreeSet::new();
    for s in sources {
        if !shas.insert(s.sha256) {
            return Err(format!(
                "conan-source {} is listed twice",
                s.sha256.to_hex()
            ));
        }
    }
    Ok(())
}
