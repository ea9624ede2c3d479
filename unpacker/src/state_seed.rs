//! Seeding an env's writable state (`ROOT/state/<env-id>/conan-home`) from its template.

use std::path::Path;

use crate::layout::RootLayout;
use crate::tree_copy::copy_tree;

/// The env's CONAN_HOME template directory name.
pub const CONAN_HOME_TEMPLATE: &str = "conan-home";

/// Copies `env_dir/conan-home` to the env's state dir unless that already exists (it then
/// holds the user's changes and must never be overwritten). Returns whether it seeded.
pub fn seed_state(
    layout: &RootLayout,
    env_id: &str,
    env_dir: &Path,
    scratch: &Path,
) -> std::io::Result<bool> {
    let template = env_dir.join(CONAN_HOME_TEMPLATE);
    let target = layout.conan_home(env_id);
    if fs_err::symlink_metadata(&target).is_ok() || !template.is_dir() {
        return Ok(false);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_once_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(dir.path());
        let env = dir.path().join("env");
        fs_err::create_dir_all(env.join("conan-home/profiles")).unwrap();
        fs_err::write(env.join("conan-home/profiles/default"), "v1").unwrap();
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
