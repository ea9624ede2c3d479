//! A recipe folder read into lock pins, and the pins laid out as a `local-recipes-index`
//! folder: `recipes/<name>/config.yml` naming one folder per version,
//! `recipes/<name>/<version>/…` holding the files.

use std::collections::BTreeMap;
use std::path::Path;

use envpack_layers::digest::Sha256Digest;
use envpack_layers::shown_name;
use envpack_pypkg::GeneratedFile;

use super::{RecipeRef, INDEX_DIR};
use crate::lock::{LockedRecipe, LockedRecipeFile};

/// Left out of a folder: what running a recipe, git and macOS's Finder add beside it.
const SKIPPED: [&str; 3] = ["__pycache__", ".git", ".DS_Store"];

/// A recipe travels inside the lock, so its files are bounded (all of them together).
pub const RECIPE_MAX_BYTES: u64 = 1 << 20;

/// The files of the folder `rel` (relative to `base`: a recipe, or a Conan config tree),
/// sorted by path. Python bytecode caches and `.git` are left out (running a recipe makes the
/// former); links, special files, non-UTF-8 text and folders over [`RECIPE_MAX_BYTES`] are
/// errors.
pub fn read_folder(base: &Path, rel: &str) -> Result<Vec<LockedRecipeFile>, String> {
    let dir = crate::spec::spec_dir(base, rel)?;
    let mut files = Vec::new();
    let mut total = 0u64;
    let walk = walkdir::WalkDir::new(&dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !SKIPPED.iter().any(|s| e.file_name() == *s));
    for entry in walk {
        let entry = entry.map_err(|e| format!("reading {rel}: {e}"))?;
        let Ok(inner) = entry.path().strip_prefix(&dir) else {
            continue;
        };
        if inner.as_os_str().is_empty() {
            continue;
        }
        let shown = format!("{rel}/{}", inner.display());
        let inner = inner
            .to_str()
            .ok_or_else(|| format!("\"{}\": the name is not UTF-8", shown_name(&shown)))?
            .replace('\\', "/");
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink() {
            return Err(format!(
                "\"{}\" is a link; the folder must hold its files themselves",
                shown_name(&shown)
            ));
        }
        if !kind.is_file() {
            return Err(format!("\"{}\" is not a regular file", shown_name(&shown)));
        }
        if inner.ends_with(".pyc") {
            continue;
        }
        envpack_layers::tree::validate_rel_path(&inner)
            .map_err(|e| format!("\"{}\": {e}", shown_name(&shown)))?;
        for part in inner.split('/') {
            crate::conan_ref::portable_component(part)
                .map_err(|why| format!("\"{}\" {why}", shown_name(&shown)))?;
        }
        if let Some(other) = files
            .iter()
            .find(|f: &&LockedRecipeFile| f.path.to_lowercase() == inner.to_lowercase())
        {
            return Err(format!(
                "\"{}\" and \"{rel}/{}\" differ only in case, which macOS and Windows can't hold",
                shown_name(&shown),
                shown_name(&other.path)
            ));
        }
        let meta = fs_err::metadata(entry.path()).map_err(|e| e.to_string())?;
        total += meta.len();
        if total > RECIPE_MAX_BYTES {
            return Err(format!(
                "{rel} holds more than {} KiB; envpack carries it in the lock, so keep large files (sources) in [conan] sources",
                RECIPE_MAX_BYTES >> 10
            ));
        }
        let bytes = fs_err::read(entry.path()).map_err(|e| e.to_string())?;
        let content = String::from_utf8(bytes).map_err(|_| {
            format!(
                "\"{}\" is not UTF-8 text; envpack carries these files in the lock as text",
                shown_name(&shown)
            )
        })?;
        files.push(LockedRecipeFile {
            path: inner,
            sha256: Sha256Digest::of_bytes(content.as_bytes()),
            executable: is_executable(&meta),
            content,
        });
    }
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(files)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

/// The index folder's files (paths relative to the env's root) for `recipes`.
pub fn index_files(recipes: &[LockedRecipe]) -> Result<Vec<GeneratedFile>, String> {
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for r in recipes {
        let parsed = RecipeRef::parse(&r.reference)
            .map_err(|e| format!("recipe \"{}\" {e}", shown_name(&r.reference)))?;
        let folder = format!("{INDEX_DIR}/recipes/{}/{}", parsed.name, parsed.version);
        for f in &r.files {
            out.push(GeneratedFile {
                path: format!("{folder}/{}", f.path),
                contents: f.content.as_bytes().to_vec(),
                executable: f.executable,
            });
        }
        versions
            .entry(parsed.name)
            .or_default()
            .push(parsed.version);
    }
    for (name, list) in versions {
        out.push(GeneratedFile {
            path: format!("{INDEX_DIR}/recipes/{name}/config.yml"),
            contents: config_yml(&list).into_bytes(),
            executable: false,
        });
    }
    out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(out)
}

/// `config.yml` of one recipe name: each version in the folder named like it. Versions are
/// letters, digits and `_+.-` ([`RecipeRef::parse`]), so double quotes need no escapes.
fn config_yml(versions: &[String]) -> String {
    let mut text = String::from("versions:\n");
    for v in versions {
        text.push_str(&format!("  \"{v}\":\n    folder: \"{v}\"\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(reference: &str, files: &[(&str, &str)]) -> LockedRecipe {
        LockedRecipe {
            reference: reference.into(),
            revision: "0".repeat(32),
            path: Some("r".into()),
            remote: None,
            files: files
                .iter()
                .map(|(p, c)| LockedRecipeFile {
                    path: p.to_string(),
                    sha256: Sha256Digest::of_bytes(c.as_bytes()),
                    executable: false,
                    content: c.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn index_layout() {
        let files = index_files(&[
            recipe("tools/1.0", &[("conanfile.py", "A")]),
            recipe("tools/2.0@team/stable", &[("conanfile.py", "B")]),
            recipe(
                "zlib/1.3.1",
                &[("conanfile.py", "C"), ("patches/x.patch", "D")],
            ),
        ])
        .unwrap();
        let got: Vec<(&str, &str)> = files
            .iter()
            .map(|f| (f.path.as_str(), std::str::from_utf8(&f.contents).unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("conan-recipes/recipes/tools/1.0/conanfile.py", "A"),
                ("conan-recipes/recipes/tools/2.0/conanfile.py", "B"),
                (
                    "conan-recipes/recipes/tools/config.yml",
                    "versions:\n  \"1.0\":\n    folder: \"1.0\"\n  \"2.0\":\n    folder: \"2.0\"\n"
                ),
                ("conan-recipes/recipes/zlib/1.3.1/conanfile.py", "C"),
                ("conan-recipes/recipes/zlib/1.3.1/patches/x.patch", "D"),
                (
                    "conan-recipes/recipes/zlib/config.yml",
                    "versions:\n  \"1.3.1\":\n    folder: \"1.3.1\"\n"
                ),
            ]
        );
        assert!(index_files(&[recipe("../x/1.0", &[])]).is_err());
    }

    #[test]
    fn reads_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("rec");
        fs_err::create_dir_all(r.join("patches")).unwrap();
        fs_err::create_dir_all(r.join("__pycache__")).unwrap();
        fs_err::write(r.join("conanfile.py"), "x").unwrap();
        fs_err::write(r.join("patches/a.patch"), "y").unwrap();
        fs_err::write(r.join("__pycache__/conanfile.cpython-311.pyc"), [0xff]).unwrap();
        let files = read_folder(dir.path(), "rec").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["conanfile.py", "patches/a.patch"]);
        assert_eq!(files[0].sha256, Sha256Digest::of_bytes(b"x"));

        fs_err::write(r.join("blob.bin"), [0xff, 0xfe]).unwrap();
        let e = read_folder(dir.path(), "rec").unwrap_err();
        assert!(e.contains("\"rec/blob.bin\" is not UTF-8 text"), "{e}");
        fs_err::remove_file(r.join("blob.bin")).unwrap();

        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/passwd", r.join("leak")).unwrap();
            let e = read_folder(dir.path(), "rec").unwrap_err();
            assert!(e.contains("\"rec/leak\" is a link"), "{e}");
            fs_err::remove_file(r.join("leak")).unwrap();
            std::os::unix::fs::symlink("/etc", dir.path().join("out")).unwrap();
            let e = read_folder(dir.path(), "out").unwrap_err();
            assert!(e.contains("leads outside the spec's directory"), "{e}");
        }
        let big = "z".repeat((RECIPE_MAX_BYTES + 1) as usize);
        fs_err::write(r.join("big.txt"), big).unwrap();
        let e = read_folder(dir.path(), "rec").unwrap_err();
        assert!(e.contains("more than 1024 KiB"), "{e}");
    }
}
