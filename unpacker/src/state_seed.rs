//! Seeding an env's writable state (`ROOT/state/<env-id>/conan-home`) from its template.

use std::path::Path;

use envpack_layers::links::check_links;
use envpack_layers::manifest::Manifest;
use envpack_layers::tree::TreeEntry;
use envpack_layers::LayersError;

use crate::error::UnpackError;
use crate::layout::RootLayout;
use crate::tree_copy::copy_tree;

/// The env's CONAN_HOME template directory name.
pub const CONAN_HOME_TEMPLATE: &str = "conan-home";

/// Copies `env_dir/conan-home` to the env's state dir unless that already exists (it then
/// holds the user's changes and must never be overwritten). Returns whether it seeded.
///
/// The template must be a real directory whose links all resolve inside it: the copy lands
/// elsewhere, so a link that reached out of the template (even to elsewhere in the env)
/// would mean something else, or something outside the root, once copied.
pub fn seed_state(
    layout: &RootLayout,
    env_id: &str,
    env_dir: &Path,
    scratch: &Path,
) -> Result<bool, UnpackError> {
    let template = env_dir.join(CONAN_HOME_TEMPLATE);
    let target = layout.conan_home(env_id);
    if fs_err::symlink_metadata(&target).is_ok() {
        return Ok(false);
    }
    match fs_err::symlink_metadata(&template) {
        Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {}
        Ok(_) => {
            return Err(UnpackError::BadRoot {
                path: template,
                reason: "is not a directory; the env is damaged, unpack it again".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    check_template_links(&crate::staging::env_manifest(env_dir)?)?;
    // Copy aside then rename, so an interrupted seed never leaves a partial conan-home.
    let staged = scratch.join("conan-home");
    copy_tree(&template, &staged)?;
    crate::durability::sync_tree(&staged)?;
    let parent = layout.state_dir().join(env_id);
    fs_err::create_dir_all(&parent)?;
    fs_err::rename(&staged, &target)?;
    crate::durability::sync_dir(&parent)?;
    tracing::info!(path = %target.display(), "seeded writable conan home");
    Ok(true)
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

    fn write_manifest(env: &Path) {
        let entries = envpack_layers::tree::scan_tree(env).unwrap();
        let bytes = Manifest::from_entries(entries).to_bytes();
        fs_err::write(env.join("manifest"), bytes).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn template_links_must_stay_in_the_template() {
        for (target, ok) in [
            ("profiles/default", true),
            ("../envpack.json", false),
            ("profiles/../../python", false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let layout = RootLayout::new(&dir.path().join("root"));
            let env = dir.path().join("env");
            fs_err::create_dir_all(env.join("conan-home/profiles")).unwrap();
            fs_err::create_dir_all(env.join("python")).unwrap();
            fs_err::write(env.join("envpack.json"), "{}").unwrap();
            fs_err::write(env.join("conan-home/profiles/default"), "v1").unwrap();
            std::os::unix::fs::symlink(target, env.join("conan-home/out")).unwrap();
            write_manifest(&env);
            let scratch = dir.path().join("s");
            fs_err::create_dir_all(&scratch).unwrap();
            let got = seed_state(&layout, "e", &env, &scratch);
            match (ok, got) {
                (true, Ok(seeded)) => assert!(seeded, "{target}"),
                (false, Err(e)) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("conan-home/out") && e.contains("template"),
                        "{e}"
                    );
                    assert!(!layout.conan_home("e").exists(), "{target}");
                }
                (_, got) => panic!("{target}: {got:?}"),
            }
        }
    }

    #[test]
    fn seeds_once_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(dir.path());
        let env = dir.path().join("env");
        fs_err::create_dir_all(env.join("conan-home/profiles")).unwrap();
        fs_err::write(env.join("conan-home/profiles/default"), "v1").unwrap();
        write_manifest(&env);
        let scratch = dir.path().join("s");
        fs_err::create_dir_all(&scratch).unwrap();
        assert!(seed_state(&layout, "e", &env, &scratch).unwrap());
        let seeded = layout.conan_home("e").join("profiles/default");
        assert_eq!(fs_err::read_to_string(&seeded).unwrap(), "v1");
        fs_err::write(&seeded, "user edit").unwrap();
        assert!(!seed_state(&layout, "e", &env, &scratch).unwrap());
        assert_eq!(fs_err::read_to_string(&seeded).unwrap(), "user edit");
        // No template: nothing to seed.
        assert!(!seed_state(&layout, "f", &dir.path().join("none"), &scratch).unwrap());
    }
}
