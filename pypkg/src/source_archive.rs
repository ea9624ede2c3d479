//! Unpacking third-party archives (CPython `.tar.gz`, sdists) with the same safety rules as our layers.

use std::io::Read;
use std::path::Path;

use envpack_layers::extract::{extract_layer, ExtractOptions};

use crate::PypkgError;

/// Upper bound for what one third-party archive may expand to.
const MAX_EXPANDED: u64 = 8 << 30;

/// Extract a gzip-compressed tar archive into `dest` (created if missing); entries that would
/// escape, devices, links out of the tree and the like are rejected with the entry named.
pub fn extract_tar_gz(archive: &Path, dest: &Path) -> Result<(), PypkgError> {
    let name = archive.display().to_string();
    let file = fs_err::File::open(archive)?;
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    extract_tar(gz, dest, &name)
}

fn extract_tar(reader: impl Read, dest: &Path, name: &str) -> Result<(), PypkgError> {
    fs_err::create_dir_all(dest)?;
    let dir = cap_std::fs::Dir::open_ambient_dir(dest, cap_std::ambient_authority())
        .map_err(|e| std::io::Error::new(e.kind(), format!("opening {}: {e}", dest.display())))?;
    let opts = ExtractOptions {
        manifest: None,
        max_total_bytes: MAX_EXPANDED,
        ..Default::default()
    };
    let layers = |source| PypkgError::ArchiveLayers {
        archive: name.to_string(),
        source,
    };
    let entries = extract_layer(reader, &dir, &opts).map_err(layers)?;
    // Each link passed the lexical check on its own; a chain of them may still lead out, and
    // what is built from this tree would follow it.
    envpack_layers::links::check_links(&entries).map_err(layers)?;
    Ok(())
}

/// Extract a `.zip` sdist with zip-slip checks.
pub fn extract_zip(archive: &Path, dest: &Path) -> Result<(), PypkgError> {
    let name = archive.display().to_string();
    let file = fs_err::File::open(archive)?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| zip_err(&name, e))?;
    fs_err::create_dir_all(dest)?;
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| zip_err(&name, e))?;
        let entry_name = entry.name().to_string();
        let rel = entry_name.trim_end_matches('/');
        envpack_layers::tree::validate_rel_path(rel).map_err(|source| {
            PypkgError::ArchiveLayers {
                archive: name.clone(),
                source,
            }
        })?;
        let out = dest.join(rel);
        if entry.is_dir() {
            fs_err::create_dir_all(&out)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            fs_err::create_dir_all(parent)?;
        }
        total = total.saturating_add(entry.size());
        if total > MAX_EXPANDED {
            return Err(PypkgError::ArchiveUnsupported(format!(
                "{name}: expands beyond the size limit"
            )));
        }
        let mut f = fs_err::File::create(&out)?;
        std::io::copy(&mut entry, &mut f)?;
    }
    Ok(())
}

fn zip_err(name: &str, e: zip::result::ZipError) -> PypkgError {
    PypkgError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{name}: {e}"),
    ))
}

/// Extract an sdist of either format; `filename` (as on the index) decides which, since cached
/// blobs are stored by hash without an extension.
pub fn extract_sdist(archive: &Path, filename: &str, dest: &Path) -> Result<(), PypkgError> {
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        extract_zip(archive, dest)
    } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        extract_tar_gz(archive, dest)
    } else {
        Err(PypkgError::ArchiveUnsupported(filename.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_chains_out_of_an_archive_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for d in ["p/", "p/q/"] {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, d, &[][..]).unwrap();
        }
        for (path, target) in [("p/q/s", "../.."), ("p/q/t", "s/../etc/passwd")] {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, path, target).unwrap();
        }
        let tar_bytes = b.into_inner().unwrap();
        let err = extract_tar(&tar_bytes[..], &dir.path().join("x"), "cpython.tar.gz")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cpython.tar.gz") && err.contains("p/q/t") && err.contains("outside"),
            "{err}"
        );
    }
}
