//! Seeding an env's writable state (`ROOT/state/<env-id>/conan-home`) from its template.

use envpack_layers::links::check_links;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::TreeEntry;
use envpack_layers::LayersError;

use crate::error::UnpackError;
use crate::root_dirs::{child_dir, open_child, RootDirs};
use crate::scratch::Scratch;
use crate::tree_copy::copy_tree;
use std::path::Path;

/// The env's CONAN_HOME template directory name.
pub const CONAN_HOME_TEMPLATE: &str = "conan-home";

/// Copies `envs/<env_id>/conan-home` to the env's state dir unless that already exists (it then
/// holds the user's changes and must never be overwritten). Returns whether it seeded.
///
/// The template must be a real directory whose links all resolve inside it: the copy lands
/// elsewhere, so a link that reached out of the template (even to elsewhere in the env)
/// would mean something else, or something outside the root, once copied.
pub fn seed_state(dirs: &RootDirs, env_id: &str, scratch: &Scratch) -> Result<bool, UnpackError> {
    let layout = &dirs.layout;
    let env_dir = layout.env_dir(env_id);
    let template_path = env_dir.join(CONAN_HOME_TEMPLATE);
    let target = layout.conan_home(env_id);
    let state_path = layout.state_dir().join(env_id);
    let io = UnpackError::at;
    if dirs.state.symlink_metadata(env_id).is_ok() {
        let state = child_dir(&dirs.state, env_id, &state_path)?;
        if state.symlink_metadata(CONAN_HOME_TEMPLATE).is_ok() {
            return Ok(false);
        }
    }
    let env = open_child(&dirs.envs, env_id).map_err(|e| io(e, &env_dir))?;
    match env.symlink_metadata(CONAN_HOME_TEMPLATE) {
        Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {}
        Ok(_) => {
            return Err(UnpackError::BadRoot {
                path: template_path,
                reason: "is not a directory; the env is damaged, unpack it again".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(e, &template_path)),
    }
    let template = open_child(&env, CONAN_HOME_TEMPLATE).map_err(|e| io(e, &template_path))?;
    check_template_links(&crate::staging::env_manifest(&env_dir)?)?;
    // Copy aside then rename, so an interrupted seed never leaves a partial conan-home.
    copy_tree(
        &template,
        scratch.dir(),
        CONAN_HOME_TEMPLATE,
        &template_path,
    )?;
    let copied_remotes = scratch.path().join(CONAN_HOME_TEMPLATE).join(REMOTES_FILE);
    if let Ok(bytes) = fs_err::read(&copied_remotes) {
        let env_abs = std::path::absolute(&env_dir).map_err(|e| io(e, &env_dir))?;
        let resolved =
            resolve_local_remotes(&bytes, &env_abs).map_err(|reason| UnpackError::BadRoot {
                path: template_path.join(REMOTES_FILE),
                reason,
            })?;
        if resolved != bytes {
            // A fresh file: the copy may be a link (inside the template) that must not be
            // written through.
            fs_err::remove_file(&copied_remotes)?;
            fs_err::write(&copied_remotes, &resolved)?;
        }
    }
    crate::durability::sync_tree(&scratch.path().join(CONAN_HOME_TEMPLATE))?;
    let state = child_dir(&dirs.state, env_id, &state_path)?;
    scratch
        .dir()
        .rename(CONAN_HOME_TEMPLATE, &state, CONAN_HOME_TEMPLATE)
        .map_err(|e| io(e, &target))?;
    crate::root_dirs::sync_dir(&state)?;
    tracing::info!(path = %target.display(), "seeded writable conan home");
    Ok(true)
}

/// The template's list of Conan remotes.
pub const REMOTES_FILE: &str = "remotes.json";

/// `remotes.json` as the seeded home needs it: each `local-recipes-index` remote's url (a
/// folder of the env relative to its root, as the builder writes it, since the env's place is
/// known only once unpacked) made absolute under `env_dir`. Other remotes, and files with no
/// such remote, keep their bytes. A url that climbs out of the env, or an absolute one (Conan
/// would run recipes from wherever it points), is an error.
pub fn resolve_local_remotes(json: &[u8], env_dir: &Path) -> Result<Vec<u8>, String> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("is not a Conan remotes file: {e}"))?;
    let Some(list) = doc.get_mut("remotes").and_then(|r| r.as_array_mut()) else {
        return Ok(json.to_vec());
    };
    let mut changed = false;
    for remote in list {
        let local =
            remote.get("remote_type").and_then(|t| t.as_str()) == Some("local-recipes-index");
        let Some(url) = remote.get("url").and_then(|u| u.as_str()) else {
            continue;
        };
        if !local {
            continue;
        }
        envpack_layers::tree::validate_rel_path(url).map_err(|e| {
            format!(
                "local-recipes-index url \"{}\" must name a folder inside the env: {e}",
                envpack_layers::shown_name(url)
            )
        })?;
        let mut path = env_dir.to_path_buf();
        path.extend(url.split('/'));
        let path = path
            .to_str()
            .ok_or_else(|| format!("the env's path {} is not UTF-8", env_dir.display()))?
            .to_owned();
        remote["url"] = serde_json::Value::String(path);
        changed = true;
    }
    if !changed {
        return Ok(json.to_vec());
    }
    // Conan's own layout (`json.dumps(indent=True)`): a one-space indent.
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&doc, &mut ser).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Errors unless every link below the template resolves inside the template itself.
pub fn check_template_links(manifest: &Manifest) -> Result<(), LayersError> {
    let prefix = format!("{CONAN_HOME_TEMPLATE}/");
    let inside: Vec<TreeEntry> = manifest
        .entries
        .iter()
        .filter_map(|e| {
            let rest = e.path.strip_prefix(&prefix)?;
            Some(TreeEntry {
                path: rest.to_owned(),
                kind: e.kind.clone(),
            })
        })
        .collect();
    check_links(&inside).map_err(|e| match e {
        LayersError::BadLink { path, detail } => LayersError::BadLink {
            path: format!("{prefix}{path}"),
            detail: format!(
                "{}; the CONAN_HOME template is copied into the root's state dir, so its \
                 links must stay inside the template",
                detail.replace("outside the environment", "outside the template")
            ),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::RootLayout;
    use std::path::Path;

    /// A root with one env `e` made by `fill`, with its manifest.
    fn root_with_env(fill: impl Fn(&Path)) -> (tempfile::TempDir, RootDirs) {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(dir.path());
        let dirs = RootDirs::open(&layout).unwrap();
        let env = layout.env_dir("e");
        fs_err::create_dir_all(&env).unwrap();
        fill(&env);
        let entries = envpack_layers::tree::scan_tree(&env).unwrap();
        let bytes = Manifest::from_entries(entries).to_bytes();
        fs_err::write(env.join("manifest"), bytes).unwrap();
        (dir, dirs)
    }

    #[test]
    fn local_remotes_resolve_under_the_env() {
        let env = Path::new("/r/envs/e1");
        let json = br#"{"remotes": [{"name": "envpack-recipes", "url": "conan-recipes", "verify_ssl": true, "remote_type": "local-recipes-index"}, {"name": "team", "url": "https://conan.example/x", "verify_ssl": true}]}"#;
        let got = resolve_local_remotes(json, env).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
        let want = env.join("conan-recipes");
        assert_eq!(v["remotes"][0]["url"], want.to_str().unwrap());
        assert_eq!(v["remotes"][1]["url"], "https://conan.example/x");
        assert!(got.starts_with(b"{\n \"remotes\": [\n  {\n"));
        let plain = br#"{"remotes": [{"name": "team", "url": "https://conan.example/x", "verify_ssl": true}]}"#;
        assert_eq!(resolve_local_remotes(plain, env).unwrap(), plain.to_vec());
        for bad in [
            "../../etc",
            "a/../../b",
            "",
            "/srv/idx",
            "C:/idx",
            "//server/share",
        ] {
            let json = format!(
                r#"{{"remotes": [{{"name": "l", "url": "{bad}", "verify_ssl": true, "remote_type": "local-recipes-index"}}]}}"#
            );
            let e = resolve_local_remotes(json.as_bytes(), env).unwrap_err();
            assert!(
                e.contains("must name a folder inside the env"),
                "{bad}: {e}"
            );
        }
        assert!(resolve_local_remotes(b"not json", env).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn template_links_must_stay_in_the_template() {
        for (target, ok) in [
            ("profiles/default", true),
            ("../envpack.json", false),
            ("profiles/../../python", false),
        ] {
            let (_dir, dirs) = root_with_env(|env| {
                fs_err::create_dir_all(env.join("conan-home/profiles")).unwrap();
                fs_err::create_dir_all(env.join("python")).unwrap();
                fs_err::write(env.join("envpack.json"), "{}").unwrap();
                fs_err::write(env.join("conan-home/profiles/default"), "v1").unwrap();
                std::os::unix::fs::symlink(target, env.join("conan-home/out")).unwrap();
            });
            let scratch = Scratch::new(&dirs).unwrap();
            let got = seed_state(&dirs, "e", &scratch);
            match (ok, got) {
                (true, Ok(seeded)) => assert!(seeded, "{target}"),
                (false, Err(e)) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("conan-home/out") && e.contains("template"),
                        "{e}"
                    );
                    assert!(!dirs.layout.conan_home("e").exists(), "{target}");
                }
                (_, got) => panic!("{target}: {got:?}"),
            }
        }
    }

    #[test]
    fn seeds_once_and_never_overwrites() {
        let (_dir, dirs) = root_with_env(|env| {
            fs_err::create_dir_all(env.join("conan-home/profiles")).unwrap();
            fs_err::write(env.join("conan-home/profiles/default"), "v1").unwrap();
        });
        let scratch = Scratch::new(&dirs).unwrap();
        assert!(seed_state(&dirs, "e", &scratch).unwrap());
        let seeded = dirs.layout.conan_home("e").join("profiles/default");
        assert_eq!(fs_err::read_to_string(&seeded).unwrap(), "v1");
        fs_err::write(&seeded, "user edit").unwrap();
        assert!(!seed_state(&dirs, "e", &scratch).unwrap());
        assert_eq!(fs_err::read_to_string(&seeded).unwrap(), "user edit");
        // No template: nothing to seed.
        fs_err::create_dir_all(dirs.layout.env_dir("f")).unwrap();
        assert!(!seed_state(&dirs, "f", &scratch).unwrap());
    }
}
