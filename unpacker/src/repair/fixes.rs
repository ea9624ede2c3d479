//! Repairs of the root around the env: shims, `current`, the state dir, quarantining extras.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::UnpackError;
use crate::root_dirs::{child_dir, RootDirs};
use crate::scratch::Scratch;
use crate::shims::write_shims_where;
use crate::state_seed::CONAN_HOME_TEMPLATE;

/// Writes only the shims named in `names` (temp file + rename); others stay untouched.
/// Returns their root-relative paths.
pub fn write_named_shims(
    dirs: &RootDirs,
    env_dir: &Path,
    names: &BTreeSet<String>,
    scratch: &Scratch,
) -> Result<Vec<String>, UnpackError> {
    let written = write_shims_where(dirs, env_dir, scratch, |n| names.contains(n))?;
    Ok(written.into_iter().map(|n| format!("bin/{n}")).collect())
}

/// Moves the state dir aside to `conan-home.stale-<run_id>` (the user's data stays there)
/// and seeds a fresh one from the env's template. Returns where the old one went.
pub fn reseed_state(
    dirs: &RootDirs,
    env_id: &str,
    run_id: &str,
    scratch: &Scratch,
) -> Result<Option<PathBuf>, UnpackError> {
    let layout = &dirs.layout;
    let home = layout.conan_home(env_id);
    let mut kept = None;
    if dirs.state.symlink_metadata(env_id).is_ok() {
        let state = child_dir(&dirs.state, env_id, &layout.state_dir().join(env_id))?;
        if state.symlink_metadata(CONAN_HOME_TEMPLATE).is_ok() {
            let aside_name = format!("{CONAN_HOME_TEMPLATE}.stale-{run_id}");
            let aside = home.with_file_name(&aside_name);
            state
                .rename(CONAN_HOME_TEMPLATE, &state, &aside_name)
                .map_err(|e| {
                    UnpackError::Io(std::io::Error::new(
                        e.kind(),
                        format!("moving {} aside: {e}", home.display()),
                    ))
                })?;
            kept = Some(aside);
        }
    }
    let seeded = crate::state_seed::seed_state(dirs, env_id, scratch)?;
    if !seeded {
        return Err(UnpackError::BadRoot {
            path: home,
            reason: "could not be seeded: the env has no conan-home template".into(),
        });
    }
    Ok(kept)
}
