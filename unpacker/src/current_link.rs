//! Reading and atomically switching `ROOT/current`.

use std::path::Path;

use crate::env_id::validate_env_id;
use crate::error::UnpackError;
use crate::layout::RootLayout;
use crate::root_dirs::RootDirs;
use crate::scratch::Scratch;

/// The env id `ROOT/current` points at, or `None` when there is no `current` yet.
pub fn read_current(layout: &RootLayout) -> Result<Option<String>, UnpackError> {
    let link = layout.current_link();
    let meta = match fs_err::symlink_metadata(&link) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bad = |reason: &str| UnpackError::BadRoot {
        path: link.clone(),
        reason: format!("{reason}; remove it and unpack again"),
    };
    // Junctions report as symlinks too (they are name-surrogate reparse points).
    if !meta.file_type().is_symlink() {
        return Err(bad("is not a link"));
    }
    let target = fs_err::read_link(&link)?;
    let id = env_id_of_target(&target).ok_or_else(|| bad("does not point into envs/"))?;
    validate_env_id(&id).map_err(|_| bad("points at an invalid env id"))?;
    if !names_root_env(layout, &target, &id) {
        return Err(bad(&format!(
            "points at {}, not at this root's envs/{id}",
            target.display()
        )));
    }
    Ok(Some(id))
}

/// Whether `target`, read from `ROOT/current`, is this root's `envs/<id>`: relative as unpack
/// writes it, or absolute (Windows junctions) into this root's `envs`. Anything else only
/// ends like it (`/elsewhere/envs/<id>`, `envs/../../elsewhere/envs/<id>`), and everything
/// that follows `current`, the shims included, would run an env nobody verified.
fn names_root_env(layout: &RootLayout, target: &Path, id: &str) -> bool {
    if target == Path::new("envs").join(id) {
        return true;
    }
    let same = |a: &Path, b: &Path| match (fs_err::canonicalize(a), fs_err::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    target.is_absolute() && target.parent().is_some_and(|p| same(p, &layout.envs_dir()))
}

/// Extracts `<id>` from a link target `envs/<id>` (or an absolute `…/envs/<id>`).
pub fn env_id_of_target(target: &Path) -> Option<String> {
    let id = target.file_name()?.to_str()?;
    let parent = target.parent()?;
    if parent.file_name()?.to_str()? != "envs" {
        return None;
    }
    Some(id.to_owned())
}

/// Points `ROOT/current` at `envs/<env_id>` by renaming a fresh link over the old one, so
/// readers see either the old or the new env and never a missing `current`. The link is made
/// in `scratch` and renamed through the root's handles.
pub fn switch_current(dirs: &RootDirs, env_id: &str, scratch: &Scratch) -> Result<(), UnpackError> {
    const TMP: &str = "current.link";
    #[cfg(unix)]
    {
        let shown = scratch.path().join(TMP);
        if scratch.dir().symlink_metadata(TMP).is_ok() {
            scratch
                .dir()
                .remove_file(TMP)
                .map_err(|e| UnpackError::at(e, &shown))?;
        }
        // Relative, so the root can be moved or mounted elsewhere.
        scratch
            .dir()
            .symlink_contents(format!("envs/{env_id}"), TMP)
            .map_err(|e| UnpackError::at(e, &shown))?;
        scratch
            .dir()
            .rename(TMP, &dirs.root, "current")
            .map_err(|e| UnpackError::at(e, &dirs.layout.current_link()))?;
        crate::root_dirs::sync_dir(&dirs.root)?;
    }
    #[cfg(windows)]
    {
        let layout = &dirs.layout;
        let tmp = scratch.path().join(TMP);
        if fs_err::symlink_metadata(&tmp).is_ok() {
            remove_link(&tmp)?;
        }
        make_link(layout, env_id, &tmp)?;
        replace_link(&tmp, &layout.current_link())?;
    }
    tracing::info!(env_id, "current switched");
    Ok(())
}

#[cfg(windows)]
fn make_link(layout: &RootLayout, env_id: &str, at: &Path) -> Result<(), UnpackError> {
    // Junctions need no privilege (unlike directory symlinks) but need an absolute target;
    // std has no API to create one, so use cmd's built-in mklink.
    let target = std::path::absolute(layout.env_dir(env_id))?;
    let out = std::process::Command::new("cmd")
        .arg("/C")
        .arg("mklink")
        .arg("/J")
        .arg(at)
        .arg(&target)
        .output()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("running mklink for {}: {e}", at.display()),
            )
        })?;
    // mklink's exit code is not proof (Wine's prints its error and exits 0, and Wine can't
    // make junctions at all): the junction must exist and name the env before `current` is
    // touched, so a failure here leaves the root as it was.
    let made = fs_err::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink())
        && fs_err::read_link(at)
            .ok()
            .and_then(|t| env_id_of_target(&t))
            .as_deref()
            == Some(env_id);
    if !out.status.success() || !made {
        if fs_err::symlink_metadata(at).is_ok() {
            let _ = remove_link(at);
        }
        // cmd's built-ins report errors on stdout or stderr depending on the error.
        let said = [&out.stderr, &out.stdout]
            .iter()
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        return Err(UnpackError::BadRoot {
            path: at.to_path_buf(),
            reason: format!(
                "could not create a directory junction to {} ({}); current was not changed. \
                 The root must be on a filesystem with junctions (NTFS; Wine has none)",
                target.display(),
                if said.is_empty() {
                    format!("mklink /J exited with {} but made no junction", out.status)
                } else {
                    format!("mklink /J: {said}")
                }
            ),
        });
    }
    Ok(())
}

#[cfg(windows)]
fn replace_link(tmp: &Path, current: &Path) -> Result<(), UnpackError> {
    // Windows cannot rename a directory over an existing one; the gap between removing the
    // old junction and renaming the new one is as short as it can be.
    if fs_err::symlink_metadata(current).is_ok() {
        remove_link(current)?;
    }
    fs_err::rename(tmp, current)?;
    Ok(())
}

#[cfg(windows)]
fn remove_link(path: &Path) -> Result<(), UnpackError> {
    // Removes the junction itself, never the directory it points at.
    fs_err::remove_dir(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_id_of_target_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("envs/abc", Some("abc")),
            ("/r/envs/abc", Some("abc")),
            ("other/abc", None),
            ("abc", None),
            ("envs/", None),
        ];
        for (t, want) in cases {
            assert_eq!(env_id_of_target(Path::new(t)).as_deref(), *want, "{t}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn switch_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let layout = RootLayout::new(dir.path());
        let dirs = RootDirs::open(&layout).unwrap();
        let scratch = Scratch::new(&dirs).unwrap();
        assert_eq!(read_current(&layout).unwrap(), None);
        switch_current(&dirs, "one", &scratch).unwrap();
        assert_eq!(read_current(&layout).unwrap().as_deref(), Some("one"));
        switch_current(&dirs, "two", &scratch).unwrap();
        assert_eq!(read_current(&layout).unwrap().as_deref(), Some("two"));
        assert_eq!(
            fs_err::read_link(layout.current_link()).unwrap(),
            Path::new("envs/two")
        );
        fs_err::create_dir_all(layout.envs_dir()).unwrap();
        let other = tempfile::tempdir().unwrap();
        let abs_ok = layout.envs_dir().join("two");
        let elsewhere = other.path().join("envs/two");
        fs_err::create_dir_all(&elsewhere).unwrap();
        for (target, ok) in [
            (abs_ok.as_path(), true),
            (elsewhere.as_path(), false),
            (Path::new("envs/../envs/two"), false),
            (Path::new("./envs/two"), false),
        ] {
            fs_err::remove_file(layout.current_link()).unwrap();
            std::os::unix::fs::symlink(target, layout.current_link()).unwrap();
            let got = read_current(&layout);
            assert_eq!(got.is_ok(), ok, "{}: {got:?}", target.display());
        }
        fs_err::remove_file(layout.current_link()).unwrap();
        fs_err::create_dir(layout.current_link()).unwrap();
        assert!(read_current(&layout).is_err());
    }
}
