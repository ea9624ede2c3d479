//! Where a bundle goes: what may be replaced at `--out`, the work directory beside it, and
//! the swap that puts a finished bundle in place without losing an earlier one.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};

use super::{archive, check_component, SUMS_FILE};

/// Refuses a destination that is something other than an earlier bundle, before any work;
/// returns the name of a tar's top directory (the file's stem).
pub(super) fn check_destination(out: &Path, as_tar: bool) -> anyhow::Result<String> {
    let top = match out.file_stem().and_then(|s| s.to_str()) {
        Some(stem) if as_tar => stem.to_string(),
        _ => String::new(),
    };
    if as_tar {
        check_component("the tar's top directory (its file name without .tar)", &top)?;
    }
    let Ok(meta) = fs_err::symlink_metadata(out) else {
        return Ok(top);
    };
    if as_tar {
        if !meta.is_file() || !archive::is_bundle_tar(out, &top)? {
            bail!(
                "{} exists and is not an earlier bundle of that name (a tar whose first entry is {top}/, holding {top}/{SUMS_FILE}); remove it or choose another --out",
                out.display()
            );
        }
        return Ok(top);
    }
    let empty = meta.is_dir() && fs_err::read_dir(out)?.next().is_none();
    let earlier =
        meta.is_dir() && out.join(SUMS_FILE).is_file() && out.join("spec/envpack.lock").is_file();
    if !(empty || earlier) {
        bail!(
            "{} exists and is not an earlier bundle (no {SUMS_FILE} and spec/envpack.lock); remove it or choose another --out",
            out.display()
        );
    }
    Ok(top)
}

/// A work directory beside `out` (same filesystem, so the finished bundle is renamed in),
/// made once every input is gathered: the directories above `out` are made if missing.
pub(super) fn work_dir(out: &Path) -> anyhow::Result<tempfile::TempDir> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs_err::create_dir_all(&parent)?;
    tempfile::Builder::new()
        .prefix(".envpack-bundle-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a work dir in {}", parent.display()))
}

/// Puts the finished `dir` at `out`, moving an earlier bundle there aside first and deleting
/// it only once the new one is in place. If the earlier bundle can't be put back after a
/// failure, the work directory is kept and the error says where the earlier bundle is.
pub(super) fn replace_dir(dir: &Path, out: &Path, work: tempfile::TempDir) -> anyhow::Result<()> {
    if fs_err::symlink_metadata(out).is_err() {
        fs_err::rename(dir, out)?;
        return Ok(());
    }
    let old = work.path().join("replaced");
    fs_err::rename(out, &old)?;
    if let Err(e) = fs_err::rename(dir, out) {
        if let Err(back) = fs_err::rename(&old, out) {
            let kept = work.keep();
            bail!(
                "{e}; and the earlier bundle could not be put back ({back}): it is in {}",
                kept.join("replaced").display()
            );
        }
        return Err(e.into());
    }
    let at = work.path().display().to_string();
    work.close()
        .map_err(|e| anyhow!("removing the earlier bundle, moved to {at}: {e}"))
}
