//! Recipes from a Conan server (Conan's REST API v2, what `conan-server` and Artifactory
//! serve): the latest revision at `lock`, that revision's exported files and exported sources
//! unpacked into the same pins a recipe folder gives. Read anonymously, as a CI runner with
//! no credentials would.

use std::io::Read;

use anyhow::{anyhow, bail, Context};
use envpack_layers::digest::Sha256Digest;
use envpack_layers::shown_name;
use envpack_net::HttpClient;
use serde_json::Value;

use super::{RecipeRef, RECIPE_MAX_BYTES};
use crate::lock::LockedRecipeFile;

/// `…/v2/conans/<name>/<version>/<user>/<channel>` on the remote at `base` (`_` for none).
fn recipe_url(base: &str, r: &RecipeRef) -> String {
    let (user, channel) = match &r.user_channel {
        Some((u, c)) => (u.as_str(), c.as_str()),
        None => ("_", "_"),
    };
    format!(
        "{}/v2/conans/{}/{}/{user}/{channel}",
        base.trim_end_matches('/'),
        r.name,
        r.version
    )
}

fn get(http: &HttpClient, url: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let parsed = url::Url::parse(url).with_context(|| format!("{what}: bad URL {url}"))?;
    Ok(http
        .get_bytes(&parsed, None, RECIPE_MAX_BYTES)
        .with_context(|| format!("{what}: GET {url}"))?
        .bytes)
}

fn get_json(http: &HttpClient, url: &str, what: &str) -> anyhow::Result<Value> {
    serde_json::from_slice(&get(http, url, what)?)
        .map_err(|e| anyhow!("{what}: {url} answered no JSON: {e}"))
}

/// The revision the remote at `base` calls latest for `r`.
pub fn latest_revision(http: &HttpClient, base: &str, r: &RecipeRef) -> anyhow::Result<String> {
    let what = format!("recipe {r}");
    let v = get_json(http, &format!("{}/latest", recipe_url(base, r)), &what)?;
    match v.get("revision").and_then(Value::as_str) {
        Some(rev) if rev.len() == 32 && rev.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(rev.to_string())
        }
        _ => bail!("{what}: the remote named no revision as latest"),
    }
}

/// The files of revision `rev` of `r`: `conanfile.py` and the contents of `conan_export.tgz`
/// and `conan_sources.tgz`, laid out as the recipe folder they were exported from.
pub fn revision_files(
    http: &HttpClient,
    base: &str,
    r: &RecipeRef,
    rev: &str,
) -> anyhow::Result<Vec<LockedRecipeFile>> {
    let what = format!("recipe {r}#{rev}");
    let rev_url = format!("{}/revisions/{rev}/files", recipe_url(base, r));
    let listing = get_json(http, &rev_url, &what)?;
    let names = listing
        .get("files")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("{what}: the remote listed no files"))?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    // One budget for everything the revision holds, spent while reading: a small archive
    // that inflates to gigabytes stops at the limit.
    let mut budget = RECIPE_MAX_BYTES;
    for name in names.keys() {
        match name.as_str() {
            // Conan writes a new manifest when it exports the recipe from the env's index.
            "conanmanifest.txt" => {}
            "conanfile.py" => {
                let bytes = get(http, &format!("{rev_url}/{name}"), &what)?;
                budget = budget.saturating_sub(bytes.len() as u64);
                files.push((name.clone(), bytes));
            }
            "conan_export.tgz" | "conan_sources.tgz" => {
                let tgz = get(http, &format!("{rev_url}/{name}"), &what)?;
                let members =
                    unpack_tgz(&tgz, &mut budget).map_err(|e| anyhow!("{what}: {name}: {e}"))?;
                files.extend(members);
            }
            other => bail!(
                "{what}: the remote holds \"{}\", which envpack does not know how to carry",
                shown_name(other)
            ),
        }
    }
    let mut out: Vec<LockedRecipeFile> = Vec::new();
    for (path, bytes) in files {
        if out
            .iter()
            .any(|f| f.path.to_lowercase() == path.to_lowercase())
        {
            bail!(
                "{what}: \"{}\" comes twice (in one archive, in both, or but for case)",
                shown_name(&path)
            );
        }
        for part in path.split('/') {
            crate::conan_ref::portable_component(part)
                .map_err(|why| anyhow!("{what}: \"{}\" {why}", shown_name(&path)))?;
        }
        let content = String::from_utf8(bytes)
            .map_err(|_| anyhow!("{what}: \"{}\" is not UTF-8 text", shown_name(&path)))?;
        out.push(LockedRecipeFile {
            sha256: Sha256Digest::of_bytes(content.as_bytes()),
            path,
            executable: false,
            content,
        });
    }
    if !out.iter().any(|f| f.path == "conanfile.py") {
        bail!("{what}: the remote holds no conanfile.py");
    }
    out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(out)
}

/// Members of an archive beyond which it is not a recipe.
const MAX_MEMBERS: usize = 10_000;

/// The regular files of a gzipped tar, in memory, taking their bytes from `budget`; links,
/// devices, unsafe paths and more than the budget or [`MAX_MEMBERS`] are errors.
fn unpack_tgz(tgz: &[u8], budget: &mut u64) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut out = Vec::new();
    let entries = archive.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?;
        let path = path
            .to_str()
            .ok_or("a member's name is not UTF-8")?
            .trim_start_matches("./")
            .to_owned();
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            _ => return Err(format!("\"{}\" is not a regular file", shown_name(&path))),
        }
        envpack_layers::tree::validate_rel_path(&path)
            .map_err(|e| format!("\"{}\": {e}", shown_name(&path)))?;
        if out.len() >= MAX_MEMBERS {
            return Err(format!("more than {MAX_MEMBERS} members"));
        }
        let mut bytes = Vec::new();
        entry
            .by_ref()
            .take(*budget + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        let size = bytes.len() as u64;
        if size > *budget {
            return Err(format!(
                "the recipe's files exceed {} KiB, more than envpack carries in a lock",
                RECIPE_MAX_BYTES >> 10
            ));
        }
        *budget -= size;
        out.push((path, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // set_path refuses `..`; write the name field directly to make hostile archives.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn archives() {
        let ok = tgz(&[
            ("src", tar::EntryType::Directory, b""),
            ("src/z.c", tar::EntryType::Regular, b"int z;"),
            ("./LICENSE", tar::EntryType::Regular, b"MIT"),
        ]);
        let mut budget = RECIPE_MAX_BYTES;
        let got = unpack_tgz(&ok, &mut budget).unwrap();
        assert_eq!(budget, RECIPE_MAX_BYTES - 9);
        assert_eq!(
            got,
            [
                ("src/z.c".to_string(), b"int z;".to_vec()),
                ("LICENSE".to_string(), b"MIT".to_vec())
            ]
        );
        for (bad, want) in [
            (tgz(&[("../x", tar::EntryType::Regular, b"")]), "\"../x\""),
            (
                tgz(&[("l", tar::EntryType::Symlink, b"")]),
                "\"l\" is not a regular file",
            ),
        ] {
            let e = unpack_tgz(&bad, &mut { RECIPE_MAX_BYTES }).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        assert!(unpack_tgz(b"not gzip", &mut { RECIPE_MAX_BYTES }).is_err());
        // A bomb: two members of 600 KiB of zeros, a few KiB compressed, stop at the budget.
        let zeros = vec![0u8; 600 << 10];
        let bomb = tgz(&[
            ("a", tar::EntryType::Regular, &zeros),
            ("b", tar::EntryType::Regular, &zeros),
        ]);
        assert!(bomb.len() < 16 << 10);
        let e = unpack_tgz(&bomb, &mut { RECIPE_MAX_BYTES }).unwrap_err();
        assert!(e.contains("exceed 1024 KiB"), "{e}");
    }

    #[test]
    fn urls() {
        let r = RecipeRef::parse("zlib/1.3.1").unwrap();
        assert_eq!(
            recipe_url("http://127.0.0.1:9300/", &r),
            "http://127.0.0.1:9300/v2/conans/zlib/1.3.1/_/_"
        );
        let r = RecipeRef::parse("zlib/1.3.1@team/stable").unwrap();
        assert_eq!(
            recipe_url("https://c.example/api/conan/x", &r),
            "https://c.example/api/conan/x/v2/conans/zlib/1.3.1/team/stable"
        );
    }
}
