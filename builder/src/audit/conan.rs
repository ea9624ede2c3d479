//! `envpack audit` of a lock's Conan recipes from remotes: each still the remote's latest
//! revision (else the lock is stale) and its pinned revision still served with the lock's
//! files.

use envpack_net::HttpClient;

use super::report::AuditReport;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::EntryKind;

use crate::conan_recipes::{
    latest_revision, revision_files, source_cache_path, RecipeRef, INDEX_DIR,
};
use crate::lock::Lock;

/// Asks each recipe's remote about the revision the lock pins.
pub fn audit_remote_recipes(lock: &Lock, http: &HttpClient) -> AuditReport {
    let mut r = AuditReport::new("conan remotes");
    for recipe in &lock.conan_recipes {
        let Some(remote) = &recipe.remote else {
            continue;
        };
        r.checked += 1;
        let item = format!("conan recipe {} from remote {remote}", recipe.pinned());
        let Some(url) = lock
            .conan_remotes
            .iter()
            .find(|x| &x.name == remote)
            .map(|x| x.url.as_str())
        else {
            r.find(item, "the lock pins no remote of that name");
            continue;
        };
        let parsed = match RecipeRef::parse(&recipe.reference) {
            Ok(p) => p,
            Err(e) => {
                r.find(item, e);
                continue;
            }
        };
        match latest_revision(http, url, &parsed) {
            Ok(latest) if latest != recipe.revision => r.find(
                item.clone(),
                format!(
                    "the remote's latest revision is now {latest}: the lock is stale; re-run `envpack lock` to move to it"
                ),
            ),
            Ok(_) => {}
            Err(e) => r.find(item.clone(), format!("{e:#}")),
        }
        match revision_files(http, url, &parsed, &recipe.revision) {
            Ok(files) if files != recipe.files => r.find(
                item,
                "the remote serves other files for the pinned revision than the lock holds",
            ),
            Ok(_) => {}
            Err(e) => r.find(item, format!("the pinned revision: {e:#}")),
        }
    }
    r
}

/// The env's Conan content against its lock: every recipe file at its place in the index
/// folder with the pinned sha256, nothing else there but the generated `config.yml`s, and every
/// source in the home template's download cache under its own sha256.
pub fn conan_files_in_manifest(manifest: &Manifest, lock: &Lock, origin: &str) -> AuditReport {
    let mut r = AuditReport::new(origin.to_string());
    let file_sha = |path: &str| {
        manifest
            .entries
            .iter()
            .find(|e| e.path == path)
            .map(|e| match &e.kind {
                EntryKind::File { sha256, .. } => Some(*sha256),
                _ => None,
            })
    };
    let mut expected = std::collections::BTreeSet::new();
    for recipe in &lock.conan_recipes {
        let Ok(parsed) = RecipeRef::parse(&recipe.reference) else {
            continue;
        };
        let folder = format!("{INDEX_DIR}/recipes/{}", parsed.name);
        expected.insert(format!("{folder}/config.yml"));
        for f in &recipe.files {
            let path = format!("{folder}/{}/{}", parsed.version, f.path);
            r.checked += 1;
            let item = format!("{origin} {path}");
            match file_sha(&path) {
                None => r.find(
                    item,
                    format!("recipe {} pins it; the env lacks it", recipe.pinned()),
                ),
                Some(None) => r.find(item, "not a regular file"),
                Some(Some(sha)) if sha != f.sha256 => r.find(
                    item,
                    format!(
                        "has sha256 {sha}, recipe {} pins {}",
                        recipe.pinned(),
                        f.sha256
                    ),
                ),
                Some(Some(_)) => {}
            }
            expected.insert(path);
        }
    }
    let prefix = format!("{INDEX_DIR}/");
    for e in &manifest.entries {
        let is_file = matches!(e.kind, EntryKind::File { .. });
        if is_file && e.path.starts_with(&prefix) && !expected.contains(&e.path) {
            r.find(
                format!("{origin} {}", e.path),
                "in the env's recipes but not in its lock",
            );
        }
    }
    for s in &lock.conan_sources {
        let path = source_cache_path(&s.sha256);
        r.checked += 1;
        match file_sha(&path) {
            Some(Some(sha)) if sha == s.sha256 => {}
            Some(Some(sha)) => r.find(format!("{origin} {path}"), format!("has sha256 {sha}")),
            _ => r.find(
                format!("{origin} {path}"),
                format!("the lock pins source {}; the env lacks it", s.url),
            ),
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{LockedRecipe, LockedRecipeFile, LockedSource};
    use envpack_layers::digest::Sha256Digest;
    use envpack_layers::tree::TreeEntry;

    #[test]
    fn recipe_and_source_files_are_held_against_the_lock() {
        let mut lock = crate::sbom::model::tests::sample_lock();
        lock.conan_recipes = vec![LockedRecipe {
            reference: "tools/1.0".into(),
            revision: "0".repeat(32),
            path: Some("recipes/tools".into()),
            remote: None,
            files: vec![LockedRecipeFile {
                path: "conanfile.py".into(),
                sha256: Sha256Digest::of_bytes(b"pinned"),
                executable: false,
                content: "pinned".into(),
            }],
        }];
        lock.conan_sources = vec![LockedSource {
            url: "https://upstream.example/x.tgz".into(),
            sha256: Sha256Digest::of_bytes(b"src"),
            size: 3,
        }];
        let src = source_cache_path(&Sha256Digest::of_bytes(b"src"));
        let tree = |recipe: &[u8], extra: bool, source: &[u8]| {
            let mut e = vec![
                TreeEntry::file_from_bytes("conan-recipes/recipes/tools/config.yml", b"v", false),
                TreeEntry::file_from_bytes(
                    "conan-recipes/recipes/tools/1.0/conanfile.py",
                    recipe,
                    false,
                ),
                TreeEntry::file_from_bytes(&src, source, false),
            ];
            if extra {
                e.push(TreeEntry::file_from_bytes(
                    "conan-recipes/recipes/tools/1.0/evil.py",
                    b"x",
                    false,
                ));
            }
            Manifest::from_entries(e)
        };
        let problems = |m: &Manifest| -> Vec<String> {
            conan_files_in_manifest(m, &lock, "root r")
                .findings
                .into_iter()
                .map(|f| f.to_string())
                .collect()
        };
        assert!(problems(&tree(b"pinned", false, b"src")).is_empty());
        let got = problems(&tree(b"edited", true, b"other"));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with("root r conan-recipes/recipes/tools/1.0/conanfile.py: has sha256"),
            "{got:?}"
        );
        assert!(
            got[1].ends_with("evil.py: in the env's recipes but not in its lock"),
            "{got:?}"
        );
        assert!(
            got[2].contains("sources-cache/s/") && got[2].contains("has sha256"),
            "{got:?}"
        );
        let empty = Manifest::from_entries(Vec::new());
        let got = problems(&empty);
        assert!(
            got[0].ends_with(
                "recipe tools/1.0#00000000000000000000000000000000 pins it; the env lacks it"
            ),
            "{got:?}"
        );
        assert!(
            got[1]
                .ends_with("the lock pins source https://upstream.example/x.tgz; the env lacks it"),
            "{got:?}"
        );
    }
}
