//! Repairs of the root around the env: shims, `current`, the state dir, quarantining extras.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::UnpackError;
use crate::layout::RootLayout;
use crate::repair::restore_entries::set_mode;
use crate::shims::{
    activate_file_name, activate_shim, env_programs, plan_shims, program_shim, ShimStyle,
};

/// Writes only the shims named in `names` (temp file + rename); others stay untouched.
pub fn write_named_shims(
    layout: &RootLayout,
    env_dir: &Path,
    names: &BTreeSet<String>,
    scratch: &Path,
) -> Result<Vec<String>, UnpackError> {
    let style = ShimStyle::native();
    let mut scripts: Vec<(String, String)> = plan_shims(&env_programs(env_dir)?, style)
        .into_iter()
        .map(|p| (p.file_name, program_shim(&p.target, style)))
        .collect();
    scripts.push((
        activate_file_name(style).to_owned(),
        activate_shim(&layout.root, style),
    ));
    let bin = layout.bin_dir();
    fs_err::create_dir_all(&bin)?;
    let mut written = Vec::new();
    for (name, script) in scripts.into_iter().filter(|(n, _)| names.contains(n)) {
        let tmp = scratch.join(format!("shim-{name}"));
        {
            let mut f = fs_err::File::create(&tmp)?;
            f.write_all(script.as_bytes())?;
            f.sync_all()?;
        }
        set_mode(&tmp, 0o755)?;
        fs_err::rename(&tmp, bin.join(&name))?;
        written.push(format!("bin/{name}"));
    }
    crate::durability::sync_dir(&bin)?;
    Ok(written)
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
