//! The bundle as one tar: every directory and file under one top directory, in sorted order,
//! with the lock's epoch as every mtime, owner 0 and modes 0755/0644, so one lock makes one
//! tar byte for byte (`tar -xf` gives the directory back).

use std::path::Path;

use anyhow::Context;

/// Writes the tree at `dir` into `out` under the top directory `top`.
pub(super) fn write_tar(dir: &Path, top: &str, epoch: u64, out: &Path) -> anyhow::Result<()> {
    let file = fs_err::File::create(out)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let entries = walkdir::WalkDir::new(dir).sort_by_file_name();
    for entry in entries {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        let rel = entry
            .path()
            .strip_prefix(dir)
            .with_context(|| format!("{} is outside {}", entry.path().display(), dir.display()))?;
        let name = if rel.as_os_str().is_empty() {
            top.to_string()
        } else {
            format!("{top}/{}", rel.display())
        };
        let mut header = tar::Header::new_gnu();
        header.set_mtime(epoch);
        header.set_uid(0);
        header.set_gid(0);
        if entry.file_type().is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, format!("{name}/"), std::io::empty())
                .with_context(|| format!("writing {}", out.display()))?;
        } else {
            let f = fs_err::File::open(entry.path())?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(f.metadata()?.len());
            tar.append_data(&mut header, &name, f)
                .with_context(|| format!("writing {}", out.display()))?;
        }
    }
    let w = tar
        .into_inner()
        .with_context(|| format!("writing {}", out.display()))?;
    let f = w.into_inner().map_err(|e| {
        std::io::Error::new(
            e.error().kind(),
            format!("{}: {}", out.display(), e.error()),
        )
    })?;
    f.sync_all()?;
    Ok(())
}

/// Whether the tar at `path` is a bundle under the top directory `top`: its first entry is
/// `top/` and it holds `top/SHA256SUMS` (only headers are read).
pub(super) fn is_bundle_tar(path: &Path, top: &str) -> anyhow::Result<bool> {
    let file = fs_err::File::open(path)?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    let Ok(entries) = tar.entries() else {
        return Ok(false);
    };
    let (dir, sums) = (format!("{top}/"), format!("{top}/{}", super::SUMS_FILE));
    let mut first = true;
    for entry in entries {
        let Ok(entry) = entry else {
            return Ok(false);
        };
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(_) => return Ok(false),
        };
        if first && name != dir && name != top {
            return Ok(false);
        }
        first = false;
        if name == sums {
            return Ok(true);
        }
    }
    Ok(false)
}
