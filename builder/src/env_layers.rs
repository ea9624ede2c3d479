//! One platform's env as its four layers (stable first: CPython, packages, Conan config,
//! activation/meta), made once and handed to the artifact writer or the image writer. The stable
//! two come from the layer cache when their inputs are unchanged; the writer chooses the form
//! (the directory the layers sit under, their compression) the layer files are made in.

use std::path::Path;

use anyhow::Context;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::{scan_tree, TreeEntry};
use serde_json::json;

use crate::assemble::{config_files, stable_layers, EnvInputs, LayerForm};
use crate::layer_cache::LayerFile;
use envpack_pypkg::InstallWarning;

/// Layer names, in order; the unpacker relies on "meta" being last.
pub const LAYERS: [&str; 4] = ["cpython", "packages", "conan", "meta"];

/// What describes an env besides its files.
pub struct EnvMeta<'a> {
    /// Env name.
    pub name: &'a str,
    /// Platform name.
    pub platform: &'a str,
    /// Python version.
    pub python_version: &'a str,
    /// python-build-standalone tag.
    pub python_build: &'a str,
    /// Archive timestamp.
    pub epoch: u64,
    /// The lock's exact bytes.
    pub lock_bytes: &'a [u8],
    /// The platform target the spec set (`glibc`/`macos`, version), if any.
    pub target: Option<(&'static str, &'a str)>,
}

/// An env's four layers, written in one form.
pub struct EnvLayers {
    /// Env id (made of the unprefixed layers, so it is the same in every form).
    pub env_id: String,
    /// Conan version installed, if any.
    pub conan_version: Option<String>,
    /// The entries of each layer, relative to the env's root, in [`LAYERS`] order.
    pub parts: [Vec<TreeEntry>; 4],
    /// The layer files, in [`LAYERS`] order.
    pub files: Vec<LayerFile>,
    /// Wheel defects that did not stop the install.
    pub warnings: Vec<InstallWarning>,
}

/// Makes the env's layers in `form`: the stable ones from the cache or built in `staging`, the
/// config files written into `staging` (the writers read the Conan home and SBOMs from there),
/// the layer files into `work` (or the cache).
pub fn env_layers(
    inputs: &EnvInputs,
    meta: &EnvMeta,
    form: &LayerForm,
    staging: &Path,
    work: &Path,
) -> anyhow::Result<EnvLayers> {
    let stable = stable_layers(inputs, form, staging, work)?;
    config_files(
        inputs,
        stable.conan_version.as_deref(),
        &stable.packages.tree.extra.console_scripts,
        staging,
    )?;
    let mut parts: [Vec<TreeEntry>; 4] = Default::default();
    parts[0] = stable.cpython.tree.entries;
    parts[1] = stable.packages.tree.entries;
    // On a cache miss staging holds python/ too; the stable layers already have it.
    for e in scan_tree(staging).with_context(|| format!("scanning {}", staging.display()))? {
        if let Some(i) = layer_of(&e.path) {
            parts[i].push(e);
        }
    }
    let conan = form.write(LAYERS[2], staging, &parts[2], meta.epoch, work)?;
    let conan_diff_id = form.plain_diff_id(&conan, staging, &parts[2], meta.epoch)?;
    let diff_ids = [
        (LAYERS[0].to_string(), stable.cpython.tree.diff_id),
        (LAYERS[1].to_string(), stable.packages.tree.diff_id),
        (LAYERS[2].to_string(), conan_diff_id),
    ];
    let env_id = finish_meta(
        staging,
        stable.conan_version.as_deref(),
        meta,
        &diff_ids,
        &mut parts,
    )?;
    let meta_file = form.write(LAYERS[3], staging, &parts[3], meta.epoch, work)?;
    Ok(EnvLayers {
        env_id,
        conan_version: stable.conan_version,
        parts,
        files: vec![stable.cpython.file, stable.packages.file, conan, meta_file],
        warnings: stable.packages.tree.extra.warnings,
    })
}

/// Which of the two config layers (conan = 2, meta = 3) a path outside `python/` belongs to;
/// `None` for `python/…`, which the stable layers already hold.
pub fn layer_of(path: &str) -> Option<usize> {
    if path == "python" || path.starts_with("python/") {
        None
    } else if ["conan-home", crate::conan_recipes::INDEX_DIR]
        .iter()
        .any(|d| path == *d || path.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
    {
        Some(2)
    } else {
        Some(3)
    }
}

/// Write `envpack.json` and `manifest` into `staging` and add them to the meta entries;
/// returns the env id. `diff_ids` are the (unprefixed) cpython, packages and conan layers'.
fn finish_meta(
    staging: &Path,
    conan_version: Option<&str>,
    meta: &EnvMeta,
    diff_ids: &[(String, Sha256Digest)],
    parts: &mut [Vec<TreeEntry>; 4],
) -> anyhow::Result<String> {
    let env_id = env_id(meta, diff_ids, &parts[3]);
    let mut info = json!({
        "schema": 1,
        "name": meta.name,
        "env_id": env_id,
        "platform": meta.platform,
        "python": { "version": meta.python_version, "build": meta.python_build },
        "conan_version": conan_version,
        "envpack_version": env!("CARGO_PKG_VERSION"),
        "epoch": meta.epoch,
        // diff_ids only: the tree must not depend on how its layers are compressed.
        "layers": diff_ids.iter().map(|(name, d)| json!({"name": name, "diff_id": d.to_string()})).collect::<Vec<_>>(),
        "lock_sha256": Sha256Digest::of_bytes(meta.lock_bytes).to_string(),
    });
    // Only when the spec set one, so envs of specs without targets keep their bytes.
    if let (Some((key, value)), Some(obj)) = (meta.target, info.as_object_mut()) {
        obj.insert("target".into(), json!({ key: value }));
    }
    let mut info_bytes = serde_json::to_vec_pretty(&info)?;
    info_bytes.push(b'\n');
    fs_err::write(staging.join("envpack.json"), &info_bytes)?;
    let info_entry = TreeEntry::file_from_bytes("envpack.json", &info_bytes, false);
    let mut all: Vec<TreeEntry> = parts.iter().flatten().cloned().collect();
    all.push(info_entry.clone());
    let manifest_bytes = Manifest::checked(all)?.to_bytes();
    fs_err::write(staging.join("manifest"), &manifest_bytes)?;
    parts[3].push(info_entry);
    parts[3].push(TreeEntry::file_from_bytes(
        "manifest",
        &manifest_bytes,
        false,
    ));
    parts[3].sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(env_id)
}

/// Content-derived id: the same tree always gets the same id, any change a new one.
fn env_id(
    meta: &EnvMeta,
    diff_ids: &[(String, Sha256Digest)],
    meta_entries: &[TreeEntry],
) -> String {
    let mut text = format!("envpack-env-v1\n{}\n{}\n", meta.name, meta.platform);
    for (name, diff_id) in diff_ids {
        text.push_str(&format!("{name} {diff_id}\n"));
    }
    text.push_str(&String::from_utf8_lossy(
        &Manifest::from_entries(meta_entries.to_vec()).to_bytes(),
    ));
    let hex = Sha256Digest::of_bytes(text.as_bytes()).to_hex();
    format!("{}-{}-{}", meta.name, meta.platform, &hex[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_layer_assignment() {
        let cases = [
            ("python", None),
            ("python/lib/python3.12/os.py", None),
            ("conan-home", Some(2)),
            ("conan-home/remotes.json", Some(2)),
            ("conan-homer", Some(3)),
            ("conan-recipes", Some(2)),
            ("conan-recipes/recipes/zlib/config.yml", Some(2)),
            ("conan-recipesx", Some(3)),
            ("bin/conan", Some(3)),
            ("activate", Some(3)),
            ("envpack.lock", Some(3)),
        ];
        for (p, want) in cases {
            assert_eq!(layer_of(p), want, "{p}");
        }
    }
}
