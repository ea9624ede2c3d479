//! Repairs of the root around the env: shims, `current`, the state dir, quarantining extras.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::UnpackError;
use crate::layout::RootLayout;
use crate::shims::write_shims_where;

/// Writes only the shims named in `names` (temp file + rename); others stay untouched.
/// Returns their root-relative paths.
pub fn write_named_shims(
    layout: &RootLayout,
    env_dir: &Path,
    names: &BTreeSet<String>,
    scratch: &Path,
) -> Result<Vec<String>, UnpackError> {
    let written = write_shims_where(layout, env_dir, scratch, |n| names.contains(n))?;
    Ok(written.into_iter().map(|n| format!("bin/{n}")).collect())
}

/// Moves the state dir aside to `conan-home.stale-<run_id>` (the user's data stays there)
/// and seeds a fresh one from the env's template. Returns where the old one went.
pub fn reseed_state(
    layout: &RootLayout,
    env_id: &str,
    run_id: &str,
    scratch: &Path,
) -> Result<Option<PathBuf>, UnpackError> {
    let home = layout.conan_home(env_id);
    let mut kept = None;
    if fs_err::symlink_metadata(&home).is_ok() {
        let aside = home.with_file_name(format!("conan-home.stale-{run_id}"));
        fs_err::rename(&home, &aside)?;
        kept = Some(aside);
    }
    let seeded = crate::state_seed::seed_state(layout, env_id, &layout.env_dir(env_id), scratch)?;
    if !seeded {
        return Err(UnpackError::BadRoot {
            path: home,
            reason: "could not be seeded: the env has no conan-home template".into(),
        });
    }
    Ok(kept)
}
